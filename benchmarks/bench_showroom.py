"""Issue 15's figures: the showroom on a busy store, each against a small store measured in the
same run (ratios: this 2-core machine is noisy).

1. Registering a visit of a returning customer (the mobile finds the file through the people
   index; the visit joins it) on a store with 20,000 customers and 60,000 visits (three years
   of a busy store) vs 1,000 customers and 3,000 visits.                target ≤ 1.5×
2. Registering a new visitor (a new customer's file made with the visit).  target ≤ 1.5×
3. Today's follow-ups of one consultant (``dealerdocs due``, the start page).  target ≤ 1.5×

The stores are written directly (``Store.bulk``: no journal, one sync), like
``generate_store.py``, at the same business rate (the small store covers a few weeks, the big
one three years): customers in every level (those older than two months mostly closed),
follow-ups due around today, visits linked to their customers, the people index, the due index
and the listings as the engine keeps them.

    .venv/bin/python benchmarks/bench_showroom.py [--big 20000] [--repeat 15]
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine import Engine, case_migrations, load_config  # noqa: E402
from bench_speed import dealer_dir  # noqa: E402

TZ = timezone(timedelta(hours=8))
LEVELS = [("n", 0.10), ("h", 0.04), ("a", 0.08), ("b", 0.12), ("c", 0.16), ("o", 0.05),
          ("d", 0.20), ("lost", 0.25)]
OPEN = {"n", "h", "a", "b", "c"}
CONSULTANTS = ["zhang", "li"]


def generate(config_path: Path, store_dir: Path, customers: int, *, end: date,
             years: float = 3.0, seed: int = 15) -> dict[str, int]:
    """Customers (K-) and three visits each on average (V-), linked, over ``years``."""
    config = load_config(config_path)
    config = dataclasses.replace(config, paths=dataclasses.replace(
        config.paths, store=str(Path(store_dir).resolve())))
    engine = Engine(config)
    rng = random.Random(seed)
    start = datetime.combine(end, dtime(9, 0), TZ) - timedelta(days=365 * years)
    span = (datetime.combine(end, dtime(9, 0), TZ) - start).total_seconds()
    visits = 0
    with engine.store.bulk() as tx:
        for i in range(customers):
            first = start + timedelta(seconds=span * i / customers)
            state = rng.choices([s for s, _ in LEVELS], [w for _, w in LEVELS])[0]
            if (end - first.date()).days > 60 and state in OPEN and rng.random() < 0.95:
                state = rng.choice(["lost", "d"])   # an old prospect has mostly been closed
            who = rng.choice(CONSULTANTS)
            mobile = f"13{i:09d}"
            customer = f"K-{tx.next_counter('case:K')}"
            data = {"name": f"客户{i}", "mobile": mobile, "consultant": who, "source": "网络",
                    "intended_model": "瑞虎8 PRO", "last_contact": first.date().isoformat()}
            if state in OPEN:
                due = end + timedelta(days=rng.randrange(-5, 30))
                data["next_follow_up"] = due.isoformat()
            ids = []
            for _ in range(1 + int(rng.random() * 4)):      # 1–4 visits, 2.5 on average
                at = first + timedelta(days=rng.randrange(0, 60), minutes=rng.randrange(600))
                visit = f"V-{tx.next_counter('case:V')}"
                stamp = at.isoformat()
                tx.put_case({"id": visit, "workflow": "reception", "state": "completed",
                             "data": {"kind": "来店", "arrived_at": at.replace(tzinfo=None)
                                      .isoformat(timespec="minutes"), "customer_name": data["name"],
                                      "customer_mobile": mobile, "consultant": who,
                                      "reception_notes": "看车", "outcome": "继续跟进"},
                             "links": {"customer": [customer]}, "created_at": stamp,
                             "created_by": "xu", "updated_at": stamp, "updated_by": who,
                             "owners": ["xu", who]})
                ids.append(visit)
                visits += 1
            stamp = first.isoformat()
            tx.put_case({"id": customer, "workflow": "customer", "state": state, "data": data,
                         "links": {"reception": ids}, "created_at": stamp, "created_by": "xu",
                         "updated_at": stamp, "updated_by": who, "owners": ["xu", who]})
            if (i + 1) % 2000 == 0:
                tx.flush_unjournaled()
        case_migrations.record_generated(tx, engine.workflows)   # linked, indexed
    engine.close()
    return {"customers": customers, "visits": visits}


def med(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    end = date.today()
    rows = []
    with tempfile.TemporaryDirectory(prefix="dealerdocs-showroom-") as tmp:
        work = Path(tmp)
        cfg = dealer_dir(work / "dealer")
        stores = {}
        for name, n in (("small", 1000), ("big", args.big)):
            began = time.perf_counter()
            # the same business rate: the big store is three years, the small one a few weeks
            made = generate(cfg, work / name, n, end=end, years=3.0 * n / args.big)
            print(f"  {name}: {made['customers']:,} customers, {made['visits']:,} visits "
                  f"({time.perf_counter() - began:.0f} s to write)", flush=True)
            config = load_config(cfg)
            stores[name] = Engine(dataclasses.replace(config, paths=dataclasses.replace(
                config.paths, store=str(work / name))))
        now = datetime.now(TZ).replace(tzinfo=None)
        times: dict[str, dict[str, list[float]]] = {k: {"return": [], "new": [], "due": []}
                                                    for k in stores}
        for i in range(args.repeat):
            for name, eng in stores.items():
                at = (now - timedelta(minutes=args.repeat - i)).isoformat(timespec="minutes")
                returning = {"kind": "来店", "arrived_at": at, "customer_name": "老客户",
                             "customer_mobile": f"13{(i * 37) % 1000:09d}"}
                t = time.perf_counter()
                made = eng.create("reception", returning, "xu")
                times[name]["return"].append(time.perf_counter() - t)
                assert made.party is not None
                fresh = {"kind": "来店", "arrived_at": at, "customer_name": "新客户",
                         "customer_mobile": f"15{i:09d}", "consultant": "zhang"}
                t = time.perf_counter()
                eng.create("reception", fresh, "xu")
                times[name]["new"].append(time.perf_counter() - t)
                t = time.perf_counter()
                due = eng.due(within=0, actor="zhang")
                times[name]["due"].append(time.perf_counter() - t)
                assert due, "no follow-ups due today"
        for key, what in (("return", "register a returning customer's visit"),
                          ("new", "register a new visitor (new file)"),
                          ("due", "zhang's follow-ups due today")):
            big, small = med(times["big"][key]) * 1000, med(times["small"][key]) * 1000
            ratio = big / small
            rows.append((what, big, small, ratio))
            print(f"  {what}: {big:,.1f} ms on {args.big:,} customers, {small:,.1f} ms on 1,000: "
                  f"{ratio:.2f}× (≤ 1.5×: {'yes' if ratio <= 1.5 else 'NO'})", flush=True)
        for eng in stores.values():
            eng.close()


if __name__ == "__main__":
    main()
