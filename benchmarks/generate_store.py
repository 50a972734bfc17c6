"""Build a store with years of synthetic history, fast, for benchmarks and the large-store tests.

    python benchmarks/generate_store.py --config config.toml --store /tmp/big --cases 100000

Cases are spread evenly over the ``--years`` before ``--end`` (a five-year dealership has on
the order of 100,000), across the workflows in realistic proportions, each in a state reached
by walking its workflow's transitions from the initial state: older cases mostly finished,
recent ones still open. Each case carries its example's data (``examples/<workflow>.json``,
validated once through the engine) with its own customer name and mobile; the documents its
path issued get numbers from the real series counters, and the audit trail and the register
log are real hash chains, so ``verify`` passes on them except for the document files: the
generator writes no .docx/.pdf, so ``verify`` reports those as missing.

It writes through :meth:`engine.store.Store.bulk` (no journal, one sync at the end), about
100,000 cases in a minute or two on a small machine.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import random
import sys
import time
from collections import deque
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import case_migrations  # noqa: E402
from engine.config import load_config  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.numbering import counter_key, format_number  # noqa: E402
from engine.workflow import Workflow  # noqa: E402

SHARE = {"quote": 0.45, "test_drive": 0.22, "contract": 0.15, "delivery": 0.14,
         "rectification": 0.04}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰飞鹏辉斌宇浩凯健俊帆"
TZ = timezone(timedelta(hours=8))


def paths_of(wf: Workflow) -> dict[str, list]:
    """For each state, the transitions of a shortest walk to it from the initial state."""
    walks = {wf.initial: []}
    queue = deque([wf.initial])
    while queue:
        state = queue.popleft()
        for t in wf.transitions:
            if state in t.sources and t.dest not in walks:
                walks[t.dest] = walks[state] + [t]
                queue.append(t.dest)
    return walks


def example_data(engine: Engine, wf: Workflow) -> dict[str, Any]:
    raw = json.loads((ROOT / "examples" / f"{wf.key}.json").read_text(encoding="utf-8"))
    raw = {k: v for k, v in raw.items() if wf.fields.get(k) is None
           or wf.fields[k].type != "attachments"}
    return engine.definitions.normalize(wf, raw, {}, edits=("*",))


def generate(config_path: Path, store_dir: Path, cases: int, *, end: date, years: float = 5.0,
             seed: int = 7, progress: bool = False) -> dict[str, Any]:
    """Fill the empty store ``store_dir`` (the config's store is not touched) and return what
    was made: counts per workflow and state, and a sample of ids and numbers to look up."""
    config = load_config(config_path)
    config = dataclasses.replace(config, paths=dataclasses.replace(
        config.paths, store=str(Path(store_dir).resolve())))
    engine = Engine(config)
    rng = random.Random(seed)
    flows = [engine.workflows[k] for k in SHARE if k in engine.workflows]
    weights = [SHARE[wf.key] for wf in flows]
    walks = {wf.key: paths_of(wf) for wf in flows}
    base = {wf.key: example_data(engine, wf) for wf in flows}
    span = timedelta(days=365 * years)
    start = datetime.combine(end, dtime(9, 0), TZ) - span
    step = span / max(cases - 1, 1)
    made: dict[str, dict[str, int]] = {}
    sample: dict[str, Any] = {"cases": [], "documents": [], "first": None, "last": None}
    seq = {wf.key: 0 for wf in flows}
    began = time.perf_counter()
    with engine.store.bulk() as tx:
        for i in range(cases):
            wf = rng.choices(flows, weights)[0]
            opened = start + step * i
            age_days = (end - opened.date()).days
            states = list(walks[wf.key])
            finished = [s for s in states if wf.states[s].final]
            # older cases have mostly come to an end; the last month's are mostly open
            if finished and (age_days > 30 and rng.random() < 0.93):
                state = rng.choice(finished)
            else:
                state = rng.choice(states)
            seq[wf.key] += 1
            case_id = f"{wf.case_prefix}-{tx.next_counter(f'case:{wf.case_prefix}')}"
            data = copy.deepcopy(base[wf.key])
            name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
            for field in ("customer_name", "driver_name", "buyer_name"):
                if field in data:
                    data[field] = name
            if "customer_mobile" in data:
                data["customer_mobile"] = f"13{rng.randrange(10**9):09d}"
            stamp = opened.isoformat()
            actor = data.get("consultant") or "zhang"
            record = {"id": case_id, "workflow": wf.key, "state": state, "data": data,
                      "links": {}, "created_at": stamp, "created_by": actor,
                      "updated_at": stamp, "updated_by": actor, "owners": [actor]}
            tx.append_chained("audit", {"at": stamp, "actor": actor, "case_id": case_id,
                                        "workflow": wf.key, "trigger": "create", "from": None,
                                        "to": wf.initial, "changed": [], "documents": [],
                                        "warnings": [], "note": "generated"})
            when = opened
            for t in walks[wf.key][state]:
                when += timedelta(minutes=rng.randrange(5, 600))
                numbers = []
                for kind in t.documents:
                    spec = wf.documents[kind]
                    series = engine.config.series[spec.series]
                    number = format_number(series, when.year, tx.next_counter(
                        counter_key(spec.series, series, when.year)))
                    doc = {"number": number, "series": spec.series, "year": when.year,
                           "version": 1, "case_id": case_id, "workflow": wf.key, "kind": kind,
                           "title": spec.title, "trigger": t.trigger, "template": spec.template,
                           "template_sha256": "0" * 64, "issued_at": when.isoformat(),
                           "issued_by": actor,
                           "docx": f"{when.year}/{spec.series}/{number}.docx",
                           "pdf": f"{when.year}/{spec.series}/{number}.pdf",
                           "docx_sha256": "0" * 64, "pdf_sha256": "0" * 64,
                           "status": "void" if t.void_documents else "issued",
                           "superseded_by": None, "superseded_at": None}
                    tx.put_document(doc)
                    tx.append_chained("register_log", {
                        "at": when.isoformat(), "actor": actor, "event": "issued",
                        "number": number, "case_id": case_id, "kind": kind, "version": 1,
                        "pdf_sha256": doc["pdf_sha256"], "docx_sha256": doc["docx_sha256"]})
                    numbers.append(number)
                    if len(sample["documents"]) < 2000 and rng.random() < 0.05:
                        sample["documents"].append([number, case_id])
                tx.append_chained("audit", {"at": when.isoformat(), "actor": actor,
                                            "case_id": case_id, "workflow": wf.key,
                                            "trigger": t.trigger, "from": None, "to": t.dest,
                                            "changed": [], "documents": numbers,
                                            "warnings": [], "note": "generated"})
            record["updated_at"] = when.isoformat()
            tx.put_case(record)
            made.setdefault(wf.key, {}).setdefault(state, 0)
            made[wf.key][state] += 1
            if len(sample["cases"]) < 2000 and rng.random() < 0.05:
                sample["cases"].append([case_id, wf.key, state, stamp[:10]])
            sample["first"] = sample["first"] or stamp[:10]
            sample["last"] = stamp[:10]
            if (i + 1) % 2000 == 0:
                tx.flush_unjournaled()
                if progress:
                    rate = (i + 1) / (time.perf_counter() - began)
                    print(f"\r{i + 1:,} / {cases:,} 件（{rate:,.0f} 件/秒）", end="", flush=True,
                          file=sys.stderr)
        # synthetic cases have no customers to link, and put_case indexed their deadlines
        case_migrations.record_generated(tx, engine.workflows)
    if progress:
        print(file=sys.stderr)
    return {"cases": cases, "by_workflow": made, "sample": sample,
            "seconds": round(time.perf_counter() - began, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.toml")
    parser.add_argument("--store", type=Path, required=True, help="an empty or new folder")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--end", type=date.fromisoformat, default=date.today())
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    result = generate(args.config, args.store, args.cases, end=args.end, years=args.years,
                      seed=args.seed, progress=True)
    print(json.dumps({k: v for k, v in result.items() if k != "sample"}, ensure_ascii=False,
                     indent=1))


if __name__ == "__main__":
    main()
