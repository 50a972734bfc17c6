"""``spawn``: a step makes cases of other workflows (the calls a delivery schedules, a file for
each referral a call names). Three small workflow files in a temp folder, no Python: an order
whose completion schedules a call three days on, a sampled call a month on, and a lead for
each referral; a referral who already has a lead is not made twice, and the order's event
says so."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from engine import load_config
from engine.engine import Engine
from engine.errors import NotFoundError, WorkflowDefinitionError
from engine.functions import in_sample
from helpers import make_dealer_dir, point_at_workflows


def _head(key: str, title: str, prefix: str, initial: str, assignee: str, summary: str) -> str:
    """A workflow file's ``[workflow]`` table: sales create its cases."""
    return f'''
[workflow]
key = "{key}"
title = "{title}"
case_prefix = "{prefix}"
initial = "{initial}"
create_roles = ["sales"]
assignee = "{assignee}"
summary = ["{summary}"]
'''


def _one_step(start: str, start_label: str, end: str, end_label: str, trigger: str,
              label: str) -> str:
    """Two states and the sales' step from the first to the second (final); the step's other
    keys may follow."""
    return f'''
[states.{start}]
label = "{start_label}"

[states.{end}]
label = "{end_label}"
final = true

[[transitions]]
trigger = "{trigger}"
label = "{label}"
source = ["{start}"]
dest = "{end}"
roles = ["sales"]
'''


LEAD = _head("lead", "客户", "L", "new", "owner", "name") + '''
[fields.name]
type = "string"
label = "姓名"
personal = "name"
required = true

[fields.mobile]
type = "string"
label = "手机"
personal = "mobile"
rule = "mobile"
required = true

[fields.owner]
type = "user"
label = "顾问"
roles = ["sales"]
default = "actor"

[fields.referrer]
type = "string"
label = "推荐人"

[states.new]
label = "新客户"

[[transitions]]
trigger = "edit"
label = "修改"
source = ["new"]
dest = "="
roles = ["sales"]
edits = ["name"]
'''

ORDER = _head("order", "订单", "O", "open", "consultant", "buyer") + '''
[party]
workflow = "lead"
key = "mobile"
match = "mobile"
owner = "consultant"
create = { name = "buyer", mobile = "mobile" }

[fields.buyer]
type = "string"
label = "买方"
personal = "name"
required = true

[fields.mobile]
type = "string"
label = "手机"
personal = "mobile"
rule = "mobile"
required = true

[fields.consultant]
type = "user"
label = "顾问"
roles = ["sales"]
default = "actor"

[fields.done_on]
type = "date"
label = "完成日期"

[fields.refs]
type = "table"
label = "转介绍"

[fields.refs.columns.name]
type = "string"
label = "姓名"

[fields.refs.columns.mobile]
type = "string"
label = "手机"
rule = "mobile"
''' + _one_step("open", "进行中", "done", "已完成", "finish", "完成") + '''edits = ["refs"]
stamps = ["done_on"]
spawn = [
  { workflow = "call", data = { kind = "'三日回访'", due = "add_days(done_on, 3)", caller = "consultant", buyer = "buyer", mobile = "mobile" } },
  { workflow = "call", when = "in_sample(case_id, policy.sample_share)", data = { kind = "'抽样回访'", due = "add_days(done_on, 30)", buyer = "buyer", mobile = "mobile" } },
  { workflow = "lead", each = "refs", data = { name = "row.name", mobile = "row.mobile", owner = "consultant", referrer = "buyer" } },
]

[policy.sample_share]
type = "decimal"
default = "1"
min = "0"
max = "1"
'''

CALL = _head("call", "回访", "H", "due", "caller", "kind") + '''
[party]
workflow = "lead"
key = "mobile"
match = "mobile"
create = { name = "buyer", mobile = "mobile" }

[deadline]
field = "due"
owner = "caller"

[fields.kind]
type = "string"
label = "回访类型"
required = true

[fields.due]
type = "date"
label = "应回访日期"
required = true

[fields.caller]
type = "user"
label = "回访人"
roles = ["sales"]

[fields.buyer]
type = "string"
label = "买方"
personal = "name"

[fields.mobile]
type = "string"
label = "手机"
personal = "mobile"
''' + _one_step("due", "待回访", "made", "已回访", "record", "记录回访")

CST = timezone(timedelta(hours=8))


def _store(tmp_path, *, order: str = ORDER, share: str = "1"):
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name, text in (("lead", LEAD), ("order", order), ("call", CALL)):
        (folder / f"{name}.toml").write_text(text, encoding="utf-8")
    config = point_at_workflows(make_dealer_dir(tmp_path / "dealer"), str(folder))
    config.write_text(config.read_text(encoding="utf-8")
                      + f'\n[policy]\nsample_share = "{share}"\n', encoding="utf-8")
    moment = datetime(2026, 12, 1, 10, 0, tzinfo=CST)
    return Engine(load_config(config), clock=lambda: moment)


def test_a_step_makes_the_cases_its_file_names(tmp_path):
    engine = _store(tmp_path)
    try:
        known = engine.create("lead", {"name": "老客户", "mobile": "13900000002"}, "li").id
        order = engine.create("order", {"buyer": "王建华", "mobile": "13600001111"}, "zhang")
        assert order.party == "L-2"
        done = engine.fire(order.id, "finish", "zhang", {"refs": [
            {"name": "同事甲", "mobile": "13900000001"}, {"name": "老客户", "mobile": "13900000002"}]})
        assert done.spawned == ["H-1", "H-2", "L-3"]
        three, month = (engine.case(i, actor="zhang") for i in ("H-1", "H-2"))
        assert (three["data"]["kind"], three["data"]["due"], three["data"]["caller"]) == \
            ("三日回访", "2026-12-04", "zhang")
        assert (month["data"]["kind"], month["data"]["due"]) == ("抽样回访", "2026-12-31")
        assert month["data"].get("caller") is None
        # linked both ways, and each call joins the buyer's file
        assert three["links"] == {"order": [order.id], "lead": ["L-2"]}
        assert engine.case(order.id, actor="zhang")["links"] == {"lead": ["L-2"],
                                                                 "call": ["H-1", "H-2"]}
        assert engine.case("L-2", actor="zhang")["links"]["call"] == ["H-1", "H-2"]
        # a referral is a new lead of the consultant; one who is a lead already is not made again
        referral = engine.case("L-3", actor="zhang", reveal=True)
        assert referral["data"] == {"name": "同事甲", "mobile": "13900000001", "owner": "zhang",
                                    "referrer": "王建华"}
        assert referral["links"] == {"order": [order.id]}
        assert "由 O-1 完成生成" in referral["history"][0]["note"]
        assert [c["id"] for c in engine.cases("lead", actor="zhang")] == ["L-2", "L-3"]
        assert [c["id"] for c in engine.cases("lead", actor="li")] == [known]   # still li's
        event = engine.case(order.id, actor="zhang")["history"][-1]
        assert "手机 139****0002 已有客户 L-1（顾问：李娜（li）），未重复建档" in event["warnings"]
        # the calls are the caller's: on zhang's due list, not li's
        assert [d["id"] for d in engine.due(within=3, actor="zhang")] == ["H-1"]
        with pytest.raises(NotFoundError):
            engine.case("H-1", actor="li")
    finally:
        engine.close()


def test_a_spawn_made_only_when_its_expression_holds(tmp_path):
    """``when``: the sampled call is made for about the policy's share of orders, the same
    answer every time for the same case number."""
    engine = _store(tmp_path, share="0.5")
    try:
        made = []
        for i in range(8):
            order = engine.create("order", {"buyer": f"客户{i}", "mobile": f"1360000111{i}"}, "zhang")
            made.append(engine.fire(order.id, "finish", "zhang").spawned)
        sampled = [len(s) == 2 for s in made]
        assert sampled == [in_sample(f"O-{i + 1}", "0.5") for i in range(8)]
        assert 0 < sum(sampled) < 8
    finally:
        engine.close()


def test_a_spawn_naming_what_the_other_workflow_lacks_fails_at_start(tmp_path):
    bad = ORDER.replace('buyer = "buyer", mobile = "mobile" } },\n  { workflow = "call", when',
                        'buyer = "buyer", mobile = "mobile", colour = "buyer" } },\n'
                        '  { workflow = "call", when')
    assert bad != ORDER
    with pytest.raises(WorkflowDefinitionError) as err:
        _store(tmp_path, order=bad)
    assert "spawn[0].data.colour" in err.value.message and "不是 call 的字段" in err.value.message
