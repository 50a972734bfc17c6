"""Issue 7's figures, each against a baseline measured in the same run (ratios, not absolute
times, are what compare across runs on this noisy 2-core machine).

1. Issuing one quote end to end with the warm pool (render, PDF, finish, archive, store)
   vs plain docxtpl + one warm conversion of the same file.          target ≤ 1.3×
2. The same vs issuing with the cold ``soffice --convert-to pdf`` per document.
                                                                      target ≥ 4× faster
3. A transition's cost (``fire accept``, no document) on a store with 100,000 cases (five
   years) vs 1,000 (the same business rate, three weeks).             target ≤ 1.5×
   Also: lookups by case id, document number, state and month on the large store.
4. ``batch`` throughput with a pool of two vs one instance.           target ≥ 1.6×
5. Peak memory (PSS) of ``dealerdocs batch create`` issuing 1,000 quotes, the batch process
   and its LibreOffice instances together.                            target < 1.5 GiB
6. (issue 13) Reading a case, as ``dealerdocs show`` does, while another engine's issue is
   converting vs with nothing else going on.                          target ≈ 1×

The 100,000-case store is generated once into ``benchmarks/.cache/`` (a few minutes) and
reused; the runs accept some of its issued quotes, and it is regenerated when too few remain.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine import Engine, load_config  # noqa: E402
from engine.batch import BatchItem, BatchRunner  # noqa: E402
from engine.convert import Converter, SofficeConverter  # noqa: E402
from engine.warm import WarmConverter, find_office_python  # noqa: E402
import bench_documents  # noqa: E402
from generate_store import generate  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache"
med = statistics.median
ROWS: list[tuple[str, str, str, str, str]] = []


def dealer_dir(folder: Path) -> Path:
    """A dealership folder using the project's workflows and templates (like the tests)."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace('templates = "templates/docx"', 'templates = "templates"')
    text = text.replace('workflows = "workflows"', 'workflows = ""')
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(text, encoding="utf-8")
    return folder / "config.toml"


def engine_at(config_path: Path, store: Path | None = None, **kwargs) -> Engine:
    config = load_config(config_path)
    if store is not None:
        config = dataclasses.replace(config, paths=dataclasses.replace(config.paths, store=str(store)))
    return Engine(config, **kwargs)


def quote_data() -> dict:
    return json.loads((ROOT / "examples" / "quote.json").read_text(encoding="utf-8"),
                      parse_float=Decimal)


def row(what: str, value: float, unit: str, baseline: str, ratio: str) -> None:
    ROWS.append((what, f"{value:,.1f} {unit}", baseline, ratio, ""))
    print(f"  {what}: {value:,.1f} {unit}   {baseline}   {ratio}", flush=True)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# --- 1, 2: one document end to end -------------------------------------------------------

def bench_issue(work: Path, pool: WarmConverter, repeat: int) -> None:
    print("1–2. issuing one quote end to end", flush=True)
    cfg = dealer_dir(work / "issue")
    warm = engine_at(cfg, converter=pool)
    cold_conv = SofficeConverter()
    cold = engine_at(cfg, store=work / "issue" / "store-cold", converter=cold_conv)
    data = quote_data()
    context = warm.context_for("quote", data, "quote", "zhang", number="BJ-2026-000001")
    template = warm.renderer.load(warm.config.template_path("quote.docx"))

    def plain_render() -> bytes:
        return bench_documents.plain_render(template.data, context)

    # warm-up: first render, each instance's first document, the cold profile
    pool.convert_many([plain_render()] * 2)
    cold_conv.convert(plain_render())
    for eng in (warm, cold):
        eng.fire(eng.create("quote", data, "zhang").id, "issue", "zhang")
    raw, issue_warm, issue_cold, cold_only = [], [], [], []
    for _ in range(repeat):   # interleaved, so all see the same machine load
        t = time.perf_counter()
        pool.convert(plain_render())
        raw.append(time.perf_counter() - t)
        case = warm.create("quote", data, "zhang").id
        t = time.perf_counter()
        warm.fire(case, "issue", "zhang")
        issue_warm.append(time.perf_counter() - t)
        case = cold.create("quote", data, "zhang").id
        t = time.perf_counter()
        cold.fire(case, "issue", "zhang")
        issue_cold.append(time.perf_counter() - t)
        docx = plain_render()
        t = time.perf_counter()
        cold_conv.convert(docx)
        cold_only.append(time.perf_counter() - t)
    cold_conv.close()
    r1 = med(issue_warm) / med(raw)
    r2 = med(issue_cold) / med(issue_warm)
    row("issue, warm pool (end to end)", med(issue_warm) * 1000, "ms",
        f"docxtpl + warm conversion {med(raw) * 1000:,.0f} ms", f"{r1:.2f}× (≤ 1.3×: {verdict(r1 <= 1.3)})")
    row("issue, cold soffice per document", med(issue_cold) * 1000, "ms",
        f"warm issue {med(issue_warm) * 1000:,.0f} ms",
        f"warm is {r2:.1f}× faster (≥ 4×: {verdict(r2 >= 4)})")
    row("  of which the cold conversion alone", med(cold_only) * 1000, "ms", "", "")


# --- 3: store cost against store size ------------------------------------------------------

def large_store(cfg: Path, cases: int, years: float, end: date, name: str, need: int) -> Path:
    folder = CACHE / name
    marker = folder / "generated.json"
    if marker.exists():
        engine = engine_at(cfg, store=folder)
        if len(engine.cases(workflow="quote", state="issued", actor="wang")) >= need:
            return folder
    shutil.rmtree(folder, ignore_errors=True)
    print(f"     generating {cases:,} cases into {folder} …", flush=True)
    made = generate(cfg, folder, cases, end=end, years=years, progress=True)
    marker.write_text(json.dumps({k: v for k, v in made.items() if k != "sample"}),
                      encoding="utf-8")
    return folder


def bench_store(work: Path, repeat: int, big_cases: int) -> None:
    print("3. a transition's cost against store size", flush=True)
    cfg = dealer_dir(work / "store")
    end = date.today()
    small_dir = work / "store" / "small"
    generate(cfg, small_dir, 1000, end=end, years=5 * 1000 / 100_000)
    big_dir = large_store(cfg, big_cases, 5, end, f"store-{big_cases}", repeat + 1)
    small, big = engine_at(cfg, store=small_dir), engine_at(cfg, store=big_dir)
    targets = {e: [c["id"] for c in e.cases(workflow="quote", state="issued", actor="wang")]
               for e in (small, big)}
    n = min(repeat, *(len(v) for v in targets.values()))
    times = {small: [], big: []}
    for i in range(n):
        for eng in (small, big):
            t = time.perf_counter()
            eng.fire(targets[eng][i], "accept", "zhang")
            times[eng].append(time.perf_counter() - t)
    ratio = med(times[big]) / med(times[small])
    row(f"fire accept, {big_cases:,} cases", med(times[big]) * 1000, "ms",
        f"1,000 cases {med(times[small]) * 1000:.1f} ms",
        f"{ratio:.2f}× (≤ 1.5×: {verdict(ratio <= 1.5)})")

    with big.store.snapshot() as tx:
        some = tx.find_cases(opened_from=date(end.year - 2, 3, 1), opened_to=date(end.year - 2, 3, 31))
        numbers = [d["number"] for d in tx.find_documents(issued_from=date(end.year - 1, 6, 1),
                                                          issued_to=date(end.year - 1, 6, 3))]

    def timed(fn) -> float:
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1000

    row("  lookup: one case by id", med([timed(lambda c=c: big.case(c["id"], actor="wang")) for c in some[:20]]),
        "ms", "", "")
    row("  lookup: one document by number",
        med([timed(lambda n=n: big.document(n, actor="zhao")) for n in numbers[:20]]), "ms", "", "")
    row("  lookup: cases opened in one month",
        timed(lambda: big.cases(opened_from=date(end.year - 2, 3, 1),
                                opened_to=date(end.year - 2, 3, 31), actor="wang")), "ms", "", "")
    from engine import store as store_module
    store_module.clear_index_cache()
    row("  lookup: all issued quotes (open-case index, first read)",
        timed(lambda: big.cases(workflow="quote", state="issued", actor="wang")), "ms", "", "")
    row("  lookup: all issued quotes (server, cached)",
        timed(lambda: big.cases(workflow="quote", state="issued", actor="wang")), "ms", "", "")
    store_module.clear_index_cache()
    row("  lookup: all cancelled quotes (a final state: every day index)",
        timed(lambda: big.cases(workflow="quote", state="cancelled", actor="wang")), "ms", "", "")


# --- 6: readers while an issue converts ----------------------------------------------------

class _Watched(Converter):
    """The cold converter, telling when a conversion is under way (a slow LibreOffice)."""

    def __init__(self, real: Converter) -> None:
        self.real = real
        self.busy = threading.Event()

    def convert_many(self, documents, suffix=".docx"):
        self.busy.set()
        try:
            return self.real.convert_many(documents, suffix)
        finally:
            self.busy.clear()


def bench_readers(work: Path, repeat: int) -> None:
    print("6. reading a case while an issue converts", flush=True)
    cfg = dealer_dir(work / "readers")
    cold = SofficeConverter()   # about a second a document: a long conversion to read beside
    watched = _Watched(cold)
    writer = engine_at(cfg, converter=watched)
    reader = engine_at(cfg)     # another process, as far as the store's lock can tell
    data = quote_data()
    target = writer.create("quote", data, "zhang").id
    writer.fire(writer.create("quote", data, "zhang").id, "issue", "zhang")   # warm-up

    def read() -> float:
        t = time.perf_counter()
        reader.case(target, actor="zhang")
        return time.perf_counter() - t

    def show() -> float:
        t = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "dealerdocs"), "show", target, "--as",
                        "zhang"], cwd=cfg.parent, check=True, capture_output=True)
        return time.perf_counter() - t

    alone, during, show_alone, show_during = [], [], [], []
    for _ in range(repeat):   # interleaved: both see the same machine load
        alone += [read() for _ in range(20)]
        show_alone.append(show())
        case = writer.create("quote", data, "zhang").id
        issuing = threading.Thread(target=writer.fire, args=(case, "issue", "zhang"))
        issuing.start()
        assert watched.busy.wait(60)
        show_during.append(show())
        while watched.busy.is_set() and len(during) < 2000:
            during.append(read())
        issuing.join()
    cold.close()
    r = med(during) / med(alone)
    row("read a case while an issue converts (Engine.case)", med(during) * 1000, "ms",
        f"alone {med(alone) * 1000:.2f} ms", f"{r:.2f}× (≈ 1×, ≤ 1.5×: {verdict(r <= 1.5)})")
    r = med(show_during) / med(show_alone)
    row("dealerdocs show while an issue converts", med(show_during) * 1000, "ms",
        f"alone {med(show_alone) * 1000:.0f} ms", f"{r:.2f}× (≤ 1.5×: {verdict(r <= 1.5)})")


# --- 4: batch throughput -------------------------------------------------------------------

def bench_batch(work: Path, size: int) -> None:
    print("4. batch throughput, pool of two vs one instance", flush=True)
    cfg = dealer_dir(work / "batch")
    per_doc = {}
    for instances in (1, 2, 1, 2):
        pool = WarmConverter(work / f"pool-{instances}", instances=instances, timeout=120)
        pool.start()
        try:
            eng = engine_at(cfg, store=work / "batch" / f"store-{instances}-{len(per_doc)}",
                            converter=pool)
            pool.convert_many([eng.renderer.render(eng.renderer.load(
                eng.config.template_path("quote.docx")),
                eng.context_for("quote", quote_data(), "quote", "zhang"))] * instances)
            ids = [eng.create("quote", quote_data(), "zhang").id for _ in range(size)]
            t = time.perf_counter()
            summary = BatchRunner(eng, "zhang").run("fire", "issue",
                                                    [BatchItem(i, "issue", case_id=i) for i in ids])
            elapsed = time.perf_counter() - t
            assert summary["done"] == size, summary
            per_doc.setdefault(instances, []).append(elapsed / size)
        finally:
            pool.stop()
    one, two = min(per_doc[1]), min(per_doc[2])
    ratio = one / two
    row(f"batch of {size}, pool of 2", two * 1000, "ms/doc", f"1 instance {one * 1000:.0f} ms/doc",
        f"{ratio:.2f}× (≥ 1.6×: {verdict(ratio >= 1.6)})")


# --- 5: memory of a 1,000-document batch -------------------------------------------------------

def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _sessions_pids(sids: set[int]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                if int(fields[3]) in sids:   # field 6 of stat: session id
                    pids.append(int(entry.name))
            except (OSError, ValueError):
                continue
    return pids


def bench_memory(work: Path, docs: int) -> None:
    print(f"5. peak memory of a {docs:,}-document batch (batch process + LibreOffice)", flush=True)
    dealer = work / "memory"
    cfg = dealer_dir(dealer)
    line = json.dumps(json.loads((ROOT / "examples" / "quote.json").read_text(encoding="utf-8")),
                      ensure_ascii=False)
    (dealer / "quotes.jsonl").write_text((line + "\n") * docs, encoding="utf-8")
    exe = str(Path(sys.executable).parent / "dealerdocs")
    subprocess.run([exe, "converter", "start", "--instances", "2", "--config", str(cfg)],
                   check=True, capture_output=True)
    pool = json.loads((dealer / "store" / "converter" / "pool.json").read_text())
    peak, stop = [0], threading.Event()
    proc = subprocess.Popen([exe, "batch", "create", "quote", "--jsonl", "quotes.jsonl", "--issue",
                             "issue", "--as", "zhang", "--json", "--config", str(cfg)],
                            cwd=dealer, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    sids = {proc.pid, *(inst["pid"] for inst in pool)}

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], sum(_pss_kib(p) for p in _sessions_pids(sids)))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    out, _ = proc.communicate()
    elapsed = time.perf_counter() - t
    stop.set()
    sampler.join()
    subprocess.run([exe, "converter", "stop", "--config", str(cfg)], capture_output=True)
    summary = json.loads(out)
    gib = peak[0] / 1024 / 1024
    row(f"peak PSS, batch of {docs:,} ({summary['done']} issued, {elapsed / docs * 1000:.0f} ms/doc)",
        peak[0] / 1024, "MiB", "", f"{gib:.2f} GiB (< 1.5 GiB: {verdict(gib < 1.5)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=8, help="issues per converter (1–2)")
    parser.add_argument("--transitions", type=int, default=30, help="transitions per store size (3)")
    parser.add_argument("--big", type=int, default=100_000, help="cases in the large store (3)")
    parser.add_argument("--batch", type=int, default=48, help="documents per batch run (4)")
    parser.add_argument("--memory-docs", type=int, default=1000, help="documents (5); 0 skips")
    parser.add_argument("--only", default="123456", help="which figures, e.g. 3")
    args = parser.parse_args()
    if not find_office_python():
        sys.exit("the warm converter needs python3-uno: run `make setup` first")
    with tempfile.TemporaryDirectory(prefix="dealerdocs-bench-") as tmp:
        work = Path(tmp)
        if "1" in args.only or "2" in args.only:
            pool = WarmConverter(work / "pool", instances=2, timeout=120)
            pool.start()
            try:
                bench_issue(work, pool, args.repeat)
            finally:
                pool.stop()
        if "3" in args.only:
            bench_store(work, args.transitions, args.big)
        if "4" in args.only:
            bench_batch(work, args.batch)
        if "5" in args.only and args.memory_docs:
            bench_memory(work, args.memory_docs)
        if "6" in args.only:
            bench_readers(work, args.repeat)
    print(f"\n{'figure':<58}{'value':>16}   baseline / ratio")
    for what, value, baseline, ratio, _ in ROWS:
        print(f"{what:<58}{value:>16}   {baseline}{'  → ' + ratio if ratio else ''}")


if __name__ == "__main__":
    main()
