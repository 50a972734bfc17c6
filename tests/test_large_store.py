"""Lookups on a store with years of history (benchmarks/generate_store.py): by case id, by
document number, by state, by the period a case was opened, and a transition on an old case,
each checked against a brute-force reading of every case file."""
from __future__ import annotations

import shutil
import sys
from collections import Counter
from datetime import date, datetime

import pytest

from engine import Engine, load_config
from helpers import CST, ROOT, Clock, make_dealer_dir

sys.path.insert(0, str(ROOT / "benchmarks"))
from generate_store import generate  # noqa: E402

pytestmark = pytest.mark.slow  # generating the store takes seconds, whichever test runs

CASES = 3000
END = date(2026, 11, 26)


def _engine(config_path, converter) -> Engine:
    return Engine(load_config(config_path), converter=converter,
                  clock=Clock(datetime(2026, 11, 26, 10, 30, tzinfo=CST)))


@pytest.fixture(scope="module")
def big(tmp_path_factory, converter):
    """The generated store, shared by the module's tests: they only read it (a test that
    changes a store works on :func:`big_copy`), so each sees it as generated, in any order."""
    config_path = make_dealer_dir(tmp_path_factory.mktemp("big") / "dealer")
    with open(config_path, "a", encoding="utf-8") as f:   # one user who sees every workflow
        f.write('\n[users.boss]\nname = "总经理"\nroles = ["sales_manager", "ops_manager"]\n')
    made = generate(config_path, config_path.parent / "store", CASES, end=END, years=5)
    engine = _engine(config_path, converter)
    with engine.store.snapshot() as tx:
        every = list(tx.cases_in_store())
    yield engine, made, every
    engine.close()


@pytest.fixture(autouse=True)
def shared_store_unchanged(big):
    """Each test leaves the shared store as it found it: every unit of work moves a counter or
    a chain head in meta.json, so a test that wrote to it fails here, by name."""
    meta = big[0].store.directory / "meta.json"
    before = meta.read_bytes()
    yield
    assert meta.read_bytes() == before, "this test changed the shared store: use big_copy"


@pytest.fixture
def big_copy(big, tmp_path, converter):
    """An engine on this test's own copy of the generated dealership (config and store)."""
    engine, _, _ = big
    dealer = tmp_path / "dealer"
    shutil.copytree(engine.store.directory.parent, dealer)
    copy = _engine(dealer / "config.toml", converter)
    assert copy.store.directory == dealer / "store"
    yield copy
    copy.close()


def test_the_generator_made_what_it_says(big):
    engine, made, every = big
    assert len(every) == CASES
    counts = Counter((c["workflow"], c["state"]) for c in every)
    assert counts == Counter({(wf, state): n for wf, states in made["by_workflow"].items()
                              for state, n in states.items()})
    assert made["sample"]["first"] < "2022-01-01" and made["sample"]["last"] == END.isoformat()


def test_lookup_by_case_id_and_document_number(big):
    engine, made, every = big
    by_id = {c["id"]: c for c in every}
    for case_id, workflow, state, _ in made["sample"]["cases"][:50]:
        case = engine.case(case_id, actor="boss")
        assert (case["workflow"], case["state"]) == (workflow, state) == \
            (by_id[case_id]["workflow"], by_id[case_id]["state"])
    assert made["sample"]["documents"]
    for number, case_id in made["sample"]["documents"][:50]:
        life = engine.document(number, actor="zhao")
        assert life["case_id"] == case_id
        assert number in [d["number"] for d in engine.case(case_id, actor="boss")["documents"]]


def test_lookup_by_state_and_workflow(big):
    engine, made, every = big
    for workflow, state in (("quote", "accepted"), ("contract", "pending_approval"),
                            ("test_drive", "booked"), ("rectification", "closed")):
        found = engine.cases(workflow=workflow, state=state, actor="boss")
        expected = sorted(c["id"] for c in every
                          if c["workflow"] == workflow and c["state"] == state)
        assert sorted(c["id"] for c in found) == expected
        assert len(expected) == made["by_workflow"][workflow].get(state, 0)
    assert len(engine.cases(actor="boss")) == CASES


def test_lookup_by_period_reads_only_those_days(big, monkeypatch):
    from engine.store import repository as store_module

    engine, made, every = big
    start, end = date(2024, 3, 1), date(2024, 3, 31)
    read = []
    real = store_module.read_index_cached
    monkeypatch.setattr(store_module, "read_index_cached", lambda path: read.append(path) or real(path))
    found = engine.cases(opened_from=start, opened_to=end, actor="boss")
    days = [p for p in read if "cases" in p.parts]
    assert days and all(p.parts[-3:-1] == ("2024", "03") for p in days)
    expected = sorted(c["id"] for c in every
                      if start.isoformat() <= c["created_at"][:10] <= end.isoformat())
    assert expected and sorted(c["id"] for c in found) == expected
    with engine.store.snapshot() as tx:
        docs = tx.find_documents(issued_from=start, issued_to=end)
    assert docs and all(start.isoformat() <= d["issued_at"][:10] <= end.isoformat() for d in docs)


def test_transition_and_exclusive_check_on_a_large_store(big, big_copy):
    _, _, every = big
    engine = big_copy  # the transition changes the store: this test's own copy

    def quotes(state: str) -> set[str]:
        return {c["id"] for c in engine.cases(workflow="quote", state=state, actor="boss")}

    issued = {c["id"] for c in every if c["workflow"] == "quote" and c["state"] == "issued"}
    accepted = {c["id"] for c in every if c["workflow"] == "quote" and c["state"] == "accepted"}
    assert quotes("issued") == issued and quotes("accepted") == accepted  # the copy as generated
    target = min(issued)
    engine.fire(target, "accept", "zhang")
    assert engine.case(target, actor="boss")["state"] == "accepted"
    assert quotes("accepted") == accepted | {target}
    assert quotes("issued") == issued - {target}
    with engine.store.snapshot() as tx:
        held = {c["id"] for c in tx.held_cases("test_drive")}
    rules = engine.workflow("test_drive").exclusive
    expected = {c["id"] for c in every if c["workflow"] == "test_drive"
                and any(c["state"] in r.states for r in rules)}
    assert held == expected
    problems = [p for p in engine.verify() if p["problem"] != "missing"]
    assert problems == []  # chains, register and indexes agree; only the files are synthetic


def test_open_cases_come_from_their_own_index(big):
    engine, made, _ = big
    with engine.store.snapshot() as tx:
        every = list(tx.cases_in_store())
    expected = sorted(c["id"] for c in every
                      if not engine.workflow(c["workflow"]).states[c["state"]].final)
    assert sorted(c["id"] for c in engine.cases(open_only=True, actor="boss")) == expected
    assert len(expected) < len(every) / 3   # the point: most of history is finished
    finals = [c for c in engine.cases(actor="boss") if c["final"]]
    assert finals and all(c["id"] not in set(expected) for c in finals)


def test_a_schema_3_store_gets_its_open_index(big, tmp_path):
    import json
    import shutil

    engine, made, every = big
    copy = tmp_path / "store"
    shutil.copytree(engine.store.directory, copy)
    shutil.rmtree(copy / "index" / "open")
    meta = json.loads((copy / "meta.json").read_text(encoding="utf-8"))
    meta["_meta"]["1"]["schema_version"] = 3
    (copy / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    from engine.store import SCHEMA_VERSION, Store

    store = Store(copy, listing=engine.store.listing, upgrade=engine.store.upgrade)
    with store.snapshot() as tx:
        again = sorted(c["id"] for c in tx.find_cases(open_only=True))
    assert again == sorted(c["id"] for c in engine.cases(open_only=True, actor="boss"))
    meta = json.loads((copy / "meta.json").read_text(encoding="utf-8"))
    assert meta["_meta"]["1"]["schema_version"] == SCHEMA_VERSION
