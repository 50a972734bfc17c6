"""Issue 20: dealerdocs against the peer a store's IT would pick instead, Carbone (Node, npm
``carbone``, a warm LibreOffice pool of its own), measured side by side in one interleaved run.

1. One contract end to end: ``fire … issue`` through the engine (render, PDF/A conversion as
   the shipped config.toml asks for contracts, finishing, archive, store), one warm instance,
   vs Carbone render → PDF of the same contract, one factory.            target ≤ 1.0×
   Also each converter alone on the same rendered .docx (ours plain and PDF/A, Carbone's).
2. Batch per document: ``batch fire … issue`` in process (plans, conversions ahead, commits),
   a pool of 2, vs Carbone with 2 factories and the whole batch in flight. target ≤ 1.0×
3. Starting the pool of 2 (fresh profiles both): ours vs Carbone's.     target ours ≤ 2 s
4. The split of our single issue: render, convert, finish (pypdf), the rest (rehearsal,
   numbering, archive with SHA-256, the store commit).

Carbone gets a copy of our contract template in its syntax with the same text: our template's
control flow (``{% if %}``, ``{%tr for %}``) is resolved for the benchmark's contract data by
docxtpl, and every ``{{ … }}`` becomes a ``{d.vN}`` tag whose value is what ours prints there.
So Carbone substitutes the same ~120 values into the same paragraphs and tables, with the same
fonts (its LibreOffice inherits FONTCONFIG_FILE=engine/fonts.conf: Noto CJK, embedded).
Without Node (or npm) the bench says so and prints our figures alone. Medians of interleaved
runs: this 2-core machine is shared and noisy; compare the ratios, measured in one run.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import engine.pdf  # noqa: E402
from engine import Engine, load_config  # noqa: E402
from engine.batch import BatchItem, BatchRunner  # noqa: E402
from engine.convert import FONTS_CONF, ArchivalDocx, Converter  # noqa: E402
from engine.render import FILTERS, Renderer  # noqa: E402
from engine.warm import WarmConverter, find_office_python  # noqa: E402
from bench_speed import dealer_dir  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache"
CARBONE_DIR = CACHE / "carbone"
CARBONE_VERSION = "3.8.2"
med = statistics.median


# --- our side, instrumented from outside (timing wrappers, no flag in the engine) ----------

class Split:
    """Seconds spent in each step during one measured operation."""

    def __init__(self) -> None:
        self.render = self.convert = self.finish = 0.0

    def reset(self) -> None:
        self.render = self.convert = self.finish = 0.0


SPLIT = Split()
_CONVERTING = threading.Lock()


class TimedRenderer(Renderer):
    def render(self, template, context, properties=None, bookmarks=None):
        t = time.perf_counter()
        try:
            return super().render(template, context, properties, bookmarks)
        finally:
            SPLIT.render += time.perf_counter() - t


class TimedConverter(Converter):
    def __init__(self, real: WarmConverter) -> None:
        self.real = real
        self.instances = real.instances   # the batch runner sizes its waves by it

    def convert_many(self, documents, suffix=".docx"):
        t = time.perf_counter()
        try:
            return self.real.convert_many(documents, suffix)
        finally:
            with _CONVERTING:   # a batch converts on two threads at once
                SPLIT.convert += time.perf_counter() - t


def _timed_finish(real):
    def finish(*args, **kwargs):
        t = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            SPLIT.finish += time.perf_counter() - t
    return finish


engine.pdf.finish = _timed_finish(engine.pdf.finish)   # issuing imports it when it runs


def contract_data() -> dict:
    data = json.loads((ROOT / "examples" / "contract.json").read_text(encoding="utf-8"))
    today = date.today()
    data.update(deposit_date=today.isoformat(),
                payment_deadline=(today + timedelta(days=10)).isoformat(),
                delivery_deadline=(today + timedelta(days=20)).isoformat())
    return data


_SERIAL = iter(range(100_000, 1_000_000))


def vin_numbered(serial: int) -> str:
    """A valid VIN of its own (one car, one contract): the check digit found by the product's
    own rule."""
    from engine.validators import RuleViolation, vin

    for check in "0123456789X":
        try:
            return vin(f"LSJA24U6{check}JG{serial:06d}")
        except RuleViolation:
            continue
    raise AssertionError(serial)


def ready_contract(eng: Engine, data: dict) -> str:
    """A contract case for a car of its own, waiting to be issued (submitted, approved when
    it must be)."""
    data = {**data, "vin": vin_numbered(next(_SERIAL))}
    case_id = eng.create("contract", data, "zhang").id
    if eng.fire(case_id, "submit", "zhang").state == "pending_approval":
        eng.fire(case_id, "approve", "wang")
    return case_id


# --- the peer ---------------------------------------------------------------------------------

def carbone_template(eng: Engine, data: dict) -> tuple[bytes, dict, bytes]:
    """Our contract template in Carbone's syntax, its data, and our own render of it."""
    import jinja2
    from docxtpl import DocxTemplate

    context = eng.context_for("contract", data, "contract", "zhang", number="BJ-HT-2026-000001")
    path = eng.config.template_path("contract.docx")
    values: dict[str, str] = {}

    def slot(value) -> str:
        key = f"v{len(values)}"
        values[key] = "" if value is None else str(value)
        return "{d.%s}" % key

    env = jinja2.Environment(autoescape=True, finalize=slot)
    env.filters.update(FILTERS)
    doc = DocxTemplate(str(path))
    doc.render(context, jinja_env=env)
    out = io.BytesIO()
    doc.save(out)
    ours = eng.renderer.render(eng.renderer.load(path), context)
    return out.getvalue(), values, ours


def node_ready() -> str | None:
    """Why the peer cannot run, or None when Carbone is installed (into benchmarks/.cache)."""
    if not shutil.which("node") or not shutil.which("npm"):
        return "Node 20 and npm are not installed (tools/setup-system.sh --bench installs them)"
    if not (CARBONE_DIR / "node_modules" / "carbone").is_dir():
        CARBONE_DIR.mkdir(parents=True, exist_ok=True)
        (CARBONE_DIR / "package.json").write_text('{"name": "bench-peer", "private": true}\n')
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund",
                               f"carbone@{CARBONE_VERSION}"], cwd=CARBONE_DIR,
                              capture_output=True, text=True)
        if done.returncode != 0:
            return f"npm install carbone failed: {done.stderr.strip()[-300:]}"
    return None


class Carbone:
    """benchmarks/carbone_driver.js as a child process: one JSON line per command."""

    def __init__(self, templates: Path, out_pdf: Path) -> None:
        # Carbone looks for soffice.bin (it skips the oosplash launcher) and a python3 with uno
        # on PATH: Debian's LibreOffice program folder and /usr/bin first
        soffice = shutil.which("soffice")
        program = str(Path(soffice).resolve().parent) if soffice else ""
        env = {**os.environ, "FONTCONFIG_FILE": str(FONTS_CONF),
               "NODE_PATH": str(CARBONE_DIR / "node_modules"),
               "PATH": os.pathsep.join([program, "/usr/bin", os.environ.get("PATH", "")])}
        self.proc = subprocess.Popen(
            ["node", str(ROOT / "benchmarks" / "carbone_driver.js"), str(templates), str(out_pdf)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
            start_new_session=True)

    def __call__(self, op: str, **args) -> float:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"op": op, **args}, ensure_ascii=False) + "\n")
        self.proc.stdin.flush()
        if not select.select([self.proc.stdout], [], [], 180)[0]:   # a factory that never
            raise RuntimeError(f"carbone {op}: no answer in 180 s")   # starts never calls back
        answer = json.loads(self.proc.stdout.readline() or '{"error": "driver exited"}')
        if "error" in answer:
            raise RuntimeError(f"carbone {op}: {answer['error']}")
        return answer["ms"] / 1000

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)


def pdf_text(pdf: Path) -> str:
    out = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True)
    return "".join(out.stdout.split())


# --- the figures ------------------------------------------------------------------------------

ROWS: list[tuple[str, str, str]] = []


def row(what: str, ours: str, theirs: str = "", note: str = "") -> None:
    ROWS.append((what, ours, theirs + (f"  → {note}" if note else "")))
    print(f"  {what}: {ours}   {theirs}   {note}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def verdict(ratio: float, target: float) -> str:
    return f"{ratio:.2f}× (≤ {target:g}×: {'met' if ratio <= target else 'MISSED'})"


def bench_start(work: Path, peer: Carbone | None, rounds: int) -> None:
    print("3. starting a pool of 2 (fresh profiles)", flush=True)
    ours, theirs = [], []
    for i in range(rounds):
        pool = WarmConverter(work / f"start-{i}", instances=2, timeout=120)
        t = time.perf_counter()
        pool.start()
        ours.append(time.perf_counter() - t)
        pool.stop()
        if peer is not None:
            theirs.append(peer("start", factories=2))
            peer("stop")
    seconds = med(ours)
    row("pool of 2 ready (median of %d)" % rounds, f"{seconds:.2f} s",
        f"Carbone {med(theirs):.2f} s" if theirs else "",
        f"≤ 2 s: {'met' if seconds <= 2 else 'MISSED'}")


def bench_single(work: Path, peer: Carbone | None, repeat: int, templates: Path) -> None:
    print("1, 4. one contract end to end, one warm instance (Carbone: one factory)", flush=True)
    cfg = dealer_dir(work / "single")
    pool = WarmConverter(work / "pool-1", instances=1, timeout=120)
    pool.start()
    eng = Engine(load_config(cfg), converter=TimedConverter(pool), renderer=TimedRenderer())
    data = contract_data()
    carbone_docx, values, ours_docx = carbone_template(eng, data)
    (templates / "contract.docx").write_bytes(carbone_docx)
    rendered = work / "ours.docx"
    rendered.write_bytes(ours_docx)
    try:
        if peer is not None:
            peer("start", factories=1)
        for _ in range(2):   # warm-up: imports, caches, each LibreOffice's first document
            eng.fire(ready_contract(eng, data), "issue", "zhang")
            if peer is not None:
                peer("render", template="contract.docx", data=values)
        if peer is not None:   # the same text on the same pages, or the comparison is void
            (work / "ours.pdf").write_bytes(pool.convert(ours_docx))
            same = pdf_text(work / "ours.pdf") == pdf_text(work / "carbone.pdf")
            print(f"  Carbone's PDF has our text: {same}", flush=True)
        issue, parts, peer_render, conv_plain, conv_pdfa, peer_conv = [], [], [], [], [], []
        for _ in range(repeat):   # interleaved: all see the same machine load
            case_id = ready_contract(eng, data)
            SPLIT.reset()
            t = time.perf_counter()
            eng.fire(case_id, "issue", "zhang")
            issue.append(time.perf_counter() - t)
            parts.append((SPLIT.render, SPLIT.convert, SPLIT.finish))
            if peer is not None:
                peer_render.append(peer("render", template="contract.docx", data=values))
            t = time.perf_counter()
            pool.convert(ours_docx)
            conv_plain.append(time.perf_counter() - t)
            t = time.perf_counter()
            pool.convert(ArchivalDocx(ours_docx))
            conv_pdfa.append(time.perf_counter() - t)
            if peer is not None:
                peer_conv.append(peer("convert", docx=str(rendered)))
    finally:
        pool.stop()
        eng.close()
        if peer is not None:
            peer("stop")
    if peer_render:
        row("issue a contract end to end (PDF/A)", ms(med(issue)),
            f"Carbone render → PDF {ms(med(peer_render))}",
            verdict(med(issue) / med(peer_render), 1.0))
    else:
        row("issue a contract end to end (PDF/A)", ms(med(issue)))
    render, convert, finish = (med(p[i] for p in parts) for i in range(3))
    rest = med(i - sum(p) for i, p in zip(issue, parts))
    row("  of which render (all renders of the fire)", ms(render))
    row("  of which convert (PDF/A)", ms(convert))
    row("  of which finish (one incremental update: metadata, signature fields, QR)", ms(finish))
    row("  of which the rest (rehearsal, numbers, archive + SHA-256, store commit)", ms(rest))
    row("convert our rendered contract, plain PDF", ms(med(conv_plain)),
        f"Carbone convert {ms(med(peer_conv))}" if peer_conv else "",
        verdict(med(conv_plain) / med(peer_conv), 1.0) if peer_conv else "")
    row("convert our rendered contract, PDF/A-2b", ms(med(conv_pdfa)))


def bench_batch(work: Path, peer: Carbone | None, size: int, rounds: int) -> None:
    print(f"2. batch of {size} contracts, pool of 2 (Carbone: 2 factories, {size} in flight)",
          flush=True)
    cfg = dealer_dir(work / "batch")
    pool = WarmConverter(work / "pool-2", instances=2, timeout=120)
    pool.start()
    eng = Engine(load_config(cfg), converter=TimedConverter(pool), renderer=TimedRenderer())
    data = contract_data()
    ours, theirs, parts = [], [], []
    try:
        if peer is not None:
            peer("start", factories=2)
        pool.convert_many([carbone_template(eng, data)[2]] * 2)   # each instance's first
        for _ in range(rounds):
            ids = [ready_contract(eng, data) for _ in range(size)]
            SPLIT.reset()
            t = time.perf_counter()
            summary = BatchRunner(eng, "zhang").run(
                "fire", "issue", [BatchItem(i, "issue", case_id=i) for i in ids])
            ours.append((time.perf_counter() - t) / size)
            parts.append((SPLIT.render / size, SPLIT.convert / size, SPLIT.finish / size))
            assert summary["done"] == size, summary
            if peer is not None:
                theirs.append(peer("batch", template="contract.docx", data=carbone_values(eng),
                                   n=size) / size)
    finally:
        pool.stop()
        eng.close()
        if peer is not None:
            peer("stop")
    row(f"batch per document (pool of 2, {size} contracts)", ms(med(ours)),
        f"Carbone 2 factories {ms(med(theirs))}" if theirs else "",
        verdict(med(ours) / med(theirs), 1.0) if theirs else "")
    # in a batch these overlap (each document converts on its instance while others render
    # and finish), so they add up to more than the time per document
    render, convert, finish = (med(p[i] for p in parts) for i in range(3))
    row("  per document: render / convert (on its instance) / finish",
        f"{render * 1000:.0f} / {convert * 1000:.0f} / {finish * 1000:.0f} ms")


_VALUES: dict = {}


def carbone_values(eng: Engine) -> dict:
    if not _VALUES:
        _VALUES.update(carbone_template(eng, contract_data())[1])
    return _VALUES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=12, help="single issues (1)")
    parser.add_argument("--batch", type=int, default=20, help="contracts per batch (2)")
    parser.add_argument("--rounds", type=int, default=3, help="batch rounds and pool starts")
    parser.add_argument("--only", default="123", help="which figures, e.g. 13")
    args = parser.parse_args()
    if find_office_python() is None:
        sys.exit("the warm converter needs python3-uno: run `make setup` first")
    why = node_ready()
    if why:
        print(f"No peer: {why}. Our figures alone follow.", flush=True)
    with tempfile.TemporaryDirectory(prefix="dealerdocs-peer-") as tmp:
        work = Path(tmp)
        templates = work / "carbone-templates"
        templates.mkdir()
        peer = None if why else Carbone(templates, work / "carbone.pdf")
        try:
            if "1" in args.only:
                bench_single(work, peer, args.repeat, templates)
            elif peer is not None:   # the batch needs the template
                cfg = dealer_dir(work / "tpl")
                eng = Engine(load_config(cfg))
                (templates / "contract.docx").write_bytes(
                    carbone_template(eng, contract_data())[0])
            if "2" in args.only:
                bench_batch(work, peer, args.batch, args.rounds)
            if "3" in args.only:
                bench_start(work, peer, args.rounds)
        finally:
            if peer is not None:
                peer.close()
    print(f"\n{'figure':<74}{'ours':>10}   peer → ratio")
    for what, ours, theirs in ROWS:
        print(f"{what:<74}{ours:>10}   {theirs}")


if __name__ == "__main__":
    main()
