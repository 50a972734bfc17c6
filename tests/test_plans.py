"""A fire planned ahead and committed later (Engine.plan_fire / plan_fires / commit): the plan
renders and converts with nothing written, the commit issues what was planned, and a store
that moved in between is rendered and converted again rather than issuing a stale number."""
from __future__ import annotations

import pytest

from engine import NotFoundError
from engine.engine import Fire
from helpers import pdf_text, store_state

YEAR = 2026  # the engine fixture's clock


def test_a_plan_converts_ahead_and_its_commit_issues_it(engine, quote_data):
    case_id = engine.create("quote", quote_data, "zhang").id
    before = store_state(engine.store.directory)

    plan = engine.plan_fire(case_id, "issue", "zhang")
    assert len(plan.documents) == 1
    assert store_state(engine.store.directory) == before          # a plan writes nothing
    assert not list(engine.archive.root.rglob("*.pdf"))

    result = engine.commit(plan)
    [doc] = result.documents
    assert (result.state, doc.number, plan.converted_late) == ("issued", f"BJ-{YEAR}-000001", 0)
    assert doc.number in pdf_text(doc.pdf).replace(" ", "")


def test_a_commit_after_the_store_moved_issues_the_next_number(engine, quote_data):
    first = engine.create("quote", {**quote_data, "customer_name": "王芳"}, "zhang").id
    second = engine.create("quote", {**quote_data, "customer_name": "李强"}, "zhang").id
    plan = engine.plan_fire(first, "issue", "zhang")   # rendered with number 1
    engine.fire(second, "issue", "zhang")              # ... which another fire takes first

    [doc] = engine.commit(plan).documents
    assert doc.number == f"BJ-{YEAR}-000002" and plan.converted_late == 1
    text = pdf_text(doc.pdf).replace(" ", "")
    assert doc.number in text and "王芳" in text and f"BJ-{YEAR}-000001" not in text


def test_plans_made_together_take_numbers_in_order(engine, quote_data):
    ids = [engine.create("quote", quote_data, "zhang").id for _ in range(3)]
    first = engine.plan_fires([Fire(ids[0], "issue")], "zhang")
    rest = engine.plan_fires([Fire(i, "issue") for i in ids[1:]], "zhang", after=first)
    assert engine.convert_ahead([*first, *rest]) == 3

    numbers = [engine.commit(p).documents[0].number for p in [*first, *rest]]
    assert numbers == [f"BJ-{YEAR}-{n:06d}" for n in (1, 2, 3)]
    assert [p.converted_late for p in [*first, *rest]] == [0, 0, 0]


def test_a_refused_fire_plans_nothing_and_its_commit_says_why(engine, quote_data):
    case_id = engine.create("quote", quote_data, "zhang").id
    plan = engine.plan_fire(case_id, "issue", "li")   # someone else's case
    assert plan.documents == []
    with pytest.raises(NotFoundError, match="找不到案件"):
        engine.commit(plan)
    assert engine.case(case_id, actor="zhang")["state"] == "draft"
