"""Engine.actions: each step a case's state offers, with whether a user may take it now and
why not — the judgement Engine.fire makes (roles, separation of duties, the workflow's
conditions on its machine), asked before anything is posted."""
from __future__ import annotations

import pytest

from engine import NotFoundError, PermissionDenied, StateError
from helpers import contract_data


def judged(engine, case_id: str, actor: str) -> dict[str, tuple[bool, str | None]]:
    return {a.trigger: (a.allowed, a.reason) for a in engine.actions(case_id, actor)}


def test_an_issued_quote_cannot_expire_before_its_validity(engine, quote_data, clock):
    case_id = engine.create("quote", {**quote_data, "valid_until": "2026-12-05"}, "zhang").id
    assert judged(engine, case_id, "zhang") == {
        "edit": (True, None), "issue": (True, None), "cancel": (True, None)}
    engine.fire(case_id, "issue", "zhang")

    steps = judged(engine, case_id, "zhang")
    assert list(steps) == ["revise", "accept", "expire", "cancel"]
    assert steps["revise"] == steps["accept"] == steps["cancel"] == (True, None)
    allowed, reason = steps["expire"]
    assert not allowed and "尚未过期" in reason
    with pytest.raises(StateError) as refused:   # the engine says the same when it is posted
        engine.fire(case_id, "expire", "zhang")
    assert reason in refused.value.message

    clock.advance(days=10)   # 2026-12-06: the validity has passed
    assert judged(engine, case_id, "zhang")["expire"] == (True, None)


@pytest.mark.parametrize("drafter, approver, why", [
    ("zhang", "zhang", "无权限"),   # a consultant has no role that approves
    ("qian", "qian", "职责分离：本人起草或提交的，需由他人审批"),   # a manager, their own
    ("qian", "wang", None),       # another manager
])
def test_an_approval_is_refused_by_role_and_by_the_separation_of_duties(
        engine, clock, drafter, approver, why):
    case_id = engine.create("contract", contract_data(clock().date(), discount="12000.00"),
                            drafter).id
    engine.fire(case_id, "submit", drafter)   # above the threshold: pending approval

    steps = {a.trigger: a for a in engine.actions(case_id, approver)}
    assert (steps["approve"].allowed, steps["approve"].reason) == (why is None, why)
    assert steps["approve"].refused == why and steps["approve"].blocked is None
    if why is None:
        assert engine.fire(case_id, "approve", approver).state == "approved"
    else:
        with pytest.raises(PermissionDenied):
            engine.fire(case_id, "approve", approver)


def test_a_final_state_offers_no_steps(engine, quote_data):
    case_id = engine.create("quote", quote_data, "zhang").id
    engine.fire(case_id, "cancel", "zhang")
    assert engine.actions(case_id, "zhang") == []


def test_someone_else_s_case_is_not_found(engine, quote_data):
    case_id = engine.create("quote", quote_data, "zhang").id
    with pytest.raises(NotFoundError, match="找不到案件"):
        engine.actions(case_id, "li")
