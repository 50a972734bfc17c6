"""Issue 17's figures: the store on PostgreSQL against the embedded store, measured in one run
(ratios: this 2-core machine is noisy).

1. Throughput: 4 processes × 250 transitions each (a new quote through the engine: its rules,
   its case number, its audit entry, one unit of work), on each backend. Every case number
   must be unique and gap-free and the audit chain whole (no lost update); printed: cases per
   second and the ratio PostgreSQL / embedded.
2. A page read under that load: the manager's list of open quotes (what /cases reads), timed
   while the writers run, against the same read on the idle store after them (at its
   largest: the reads under load see fewer cases, so the ratio flatters neither backend).

The PostgreSQL server is started for the run (``tests/postgres_server.py``: initdb into a
temporary folder, a free port) and stopped at the end.

    .venv/bin/python benchmarks/bench_group.py [--processes 4] [--transitions 250]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from engine import Engine, chain, load_config  # noqa: E402
from helpers import make_dealer_dir, use_database  # noqa: E402
from postgres_server import PostgresServer  # noqa: E402

WRITER = """
import json, sys
sys.path[:0] = [{root!r}]
from engine import Engine, load_config
data = json.loads(open({quote!r}, encoding="utf-8").read())
with Engine(load_config({config!r})) as engine:
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range({n}):
        engine.create("quote", {{**data, "customer_name": "客户{w}-" + str(i),
                                 "customer_mobile": "13{w}" + f"{{i:08d}}"}}, "zhang")
"""


def run(config: Path, processes: int, transitions: int) -> dict[str, float]:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER.format(
        root=str(ROOT), quote=str(ROOT / "examples" / "quote.json"), config=str(config),
        n=transitions, w=w + 1)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for w in range(processes)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    with Engine(load_config(config)) as engine:
        started = time.perf_counter()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        busy = []
        while any(p.poll() is None for p in procs):
            busy += _reads(engine, 1)
        elapsed = time.perf_counter() - started
        assert [p.wait() for p in procs] == [0] * processes
        idle = _reads(engine, 30)   # the same read on the idle store, now at its largest
        with engine.store.snapshot() as tx:
            ids = sorted(int(c["id"].split("-")[1]) for c in tx.find_cases(workflow="quote"))
            audit_ok = chain.check(tx.log_entries("audit"), tx.chain_head("audit")) is None
    total = processes * transitions
    assert ids == list(range(1, total + 1)), "case numbers not unique and gap-free"
    assert audit_ok, "the audit chain is broken"
    return {"per_second": total / elapsed, "idle_read_ms": statistics.median(idle) * 1000,
            "busy_read_ms": statistics.median(busy) * 1000 if busy else float("nan")}


def _reads(engine: Engine, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        engine.cases("quote", open_only=True, actor="wang")
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--transitions", type=int, default=250)
    args = parser.parse_args()
    server = PostgresServer().start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            embedded = make_dealer_dir(Path(folder) / "embedded")
            on_pg = use_database(make_dealer_dir(Path(folder) / "pg"),
                                 server.new_database())
            results = {"embedded": run(embedded, args.processes, args.transitions),
                       "postgresql": run(on_pg, args.processes, args.transitions)}
    finally:
        server.stop()
    e, p = results["embedded"], results["postgresql"]
    print(f"{args.processes} processes × {args.transitions} transitions (new quotes), "
          f"numbers unique and gap-free, audit chain whole on both")
    for name, r in results.items():
        print(f"  {name:<10} {r['per_second']:7.1f} transitions/s   list of open quotes: "
              f"{r['idle_read_ms']:6.1f} ms idle, {r['busy_read_ms']:6.1f} ms under load")
    print(f"  throughput PostgreSQL / embedded: {p['per_second'] / e['per_second']:.2f}×")
    print(f"  page read under load / idle: embedded {e['busy_read_ms'] / e['idle_read_ms']:.2f}×, "
          f"PostgreSQL {p['busy_read_ms'] / p['idle_read_ms']:.2f}×")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
