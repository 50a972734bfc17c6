"""The calls after a delivery (issue 16, care_call.toml): one case per scheduled call, the
十项核心流程 questionnaire of a reached call, retries up to the store's limit and the fallback,
the manager's call, the timer, the due list, the 新客户回访登记表 and the count per consultant,
and who sees a call. End to end on a real store (reports converted by LibreOffice, read back).
The calls are made here with ``engine.create`` as the delivery's scheduling would make them."""
from __future__ import annotations

from datetime import date

import pytest
from docx import Document
from openpyxl import load_workbook

from engine.errors import InputError, NotFoundError, PermissionDenied
from helpers import pdf_text, sign_contract
from test_customers import _sheet, walk_in

ITEMS = ["showroom", "greeting", "product", "test_drive", "paperwork", "ceremony", "features",
         "care_contact", "manners", "promises"]
LABELS = ["展厅氛围", "主动接待", "产品介绍", "邀约试驾", "购车文件", "交车仪式", "功能讲解",
          "致电关怀", "礼仪态度", "承诺兑现"]
VIN = "LSJA24U62JG269225"


def schedule(engine, kind="三日回访", due="2026-11-26", caller="zhang", actor="zhang",
             mobile="13600001111", **changes) -> str:
    """A call as the delivery's scheduling makes it."""
    data = {"call_kind": kind, "due_date": due, "caller": caller, "consultant": "zhang",
            "customer_name": "王建华", "customer_mobile": mobile, "model": "瑞虎8 PRO",
            "vin": VIN, "plate_number": "京A·12345", "delivered_on": "2026-11-23", **changes}
    return engine.create("care_call", {k: v for k, v in data.items() if v is not None}, actor).id


def answers(not_done=(), **changes) -> dict:
    data = {"reached": "是", "attempted_at": "2026-11-26T09:40", "satisfaction": "满意",
            **{f"q_{k}": "未执行" if k in not_done else "已执行" for k in ITEMS},
            "q_ceremony_note": "交车仪式很用心", "note": "客户很满意", **changes}
    return data


@pytest.fixture
def customer(engine):
    """王建华, zhang's customer (K-1)."""
    return walk_in(engine, consultant="zhang").party


def test_a_reached_call_records_the_ten_items(engine, customer):
    call = schedule(engine)
    engine.fire(call, "record", "zhang", answers(
        not_done=["test_drive"], q_test_drive_note="未邀约", has_complaint=True,
        complaint_description="交车等待时间过长", complaint_ask="希望改进流程",
        complaint_level="一般", complaint_category="交车",
        referrals=[{"name": "刘洋", "mobile": "13700002222", "note": "同事，想看瑞虎7"}]))
    case = engine.case(call, actor="zhang", reveal=True)
    data = case["data"]
    assert case["state"] == "done" and data["attempts"] == 1 and data["closed_on"] == "2026-11-26"
    assert data["q_test_drive"] == "未执行" and data["q_showroom"] == "已执行"
    assert data["referrals"][0]["mobile"] == "13700002222"
    assert data["tries"] == [{"at": "2026-11-26T09:40", "reached": "是", "by": "zhang"}]
    assert case["links"] == {"customer": [customer], "complaint": ["TS-1"]}
    assert engine.case(customer, actor="wang")["links"]["care_call"] == [call]
    # the complaint said on the call is a complaint case, received now, joined to his file
    complaint = engine.case("TS-1", actor="zhang")
    assert complaint["state"] == "received" and complaint["links"] == {
        "customer": [customer], "care_call": [call]}
    assert {k: complaint["data"].get(k) for k in (
        "source", "category", "level", "description", "customer_ask", "consultant",
        "received_at", "due_on")} == {
        "source": "电话回访", "category": "交车", "level": "一般", "description": "交车等待时间过长",
        "customer_ask": "希望改进流程", "consultant": "zhang", "received_at": "2026-11-26T10:30",
        "due_on": "2026-11-27"}
    # the referral's mobile is personal: masked like the buyer's, hashed in the audit trail
    shown = engine.case(call, actor="zhang")["data"]
    assert shown["customer_mobile"] == "136****1111"
    assert shown["referrals"][0]["mobile"] == "137****2222"
    assert "13700002222" not in str(engine.case(call, actor="wang")["history"])


def test_an_item_left_out_of_a_reached_call_is_refused(engine, customer):
    call = schedule(engine)
    data = answers()
    del data["q_manners"]
    with pytest.raises(InputError) as err:
        engine.fire(call, "record", "zhang", data)
    assert "礼仪态度" in err.value.message
    with pytest.raises(InputError) as err:
        engine.fire(call, "record", "zhang", answers(has_complaint=True))
    assert "抱怨内容" in err.value.message
    with pytest.raises(InputError) as err:
        engine.fire(call, "record", "zhang", answers(q_showroom="做了"))
    assert "展厅氛围" in err.value.message and "做了" in err.value.message
    with pytest.raises(InputError) as err:
        engine.fire(call, "record", "zhang", answers(attempted_at="2026-11-27T09:00"))
    assert "回访时间" in err.value.message and "晚于现在" in err.value.message
    with pytest.raises(InputError) as err:
        engine.fire(call, "record", "zhang", answers(referrals=[{"name": "刘洋",
                                                                  "mobile": "1370000"}]))
    assert "手机号" in err.value.message
    assert engine.case(call, actor="zhang")["state"] == "open"


def test_bad_scheduling_is_refused_naming_the_field(engine, customer):
    with pytest.raises(InputError) as err:
        schedule(engine, kind="半年回访")
    assert "回访类型" in err.value.message and "半年回访" in err.value.message
    with pytest.raises(InputError) as err:
        schedule(engine, caller=None)
    assert "回访人" in err.value.message
    with pytest.raises(InputError) as err:
        schedule(engine, vin="LSJA24U62JG26922X")
    assert "车架号" in err.value.message


def test_an_unreached_call_is_retried_then_closed_with_a_fallback(engine, clock, customer):
    call = schedule(engine)
    engine.fire(call, "record", "zhang", {"reached": "否", "attempted_at": "2026-11-26T09:00",
                                          "next_try": "2026-11-27"})
    case = engine.case(call, actor="zhang")
    assert case["state"] == "open" and case["data"]["attempts"] == 1
    assert case["data"]["due_date"] == "2026-11-27" and case["data"]["scheduled_on"] == "2026-11-26"
    assert case["data"].get("reached") is None            # the next attempt's form starts blank
    with pytest.raises(InputError) as err:                # not reached: when to try again
        engine.fire(call, "record", "zhang", {"reached": "否", "attempted_at": "2026-11-26T10:00"})
    assert "下次回访日期" in err.value.message
    with pytest.raises(InputError) as err:
        engine.fire(call, "record", "zhang", {"reached": "否", "attempted_at": "2026-11-26T10:00",
                                              "next_try": "2026-11-26"})
    assert "下次回访日期" in err.value.message and "应晚于" in err.value.message
    clock.advance(days=1)
    engine.fire(call, "record", "zhang", {"reached": "否", "attempted_at": "2026-11-27T10:00",
                                          "next_try": "2026-11-28"})
    clock.advance(days=1)
    # the third failed attempt is the last (policy.care_call_max_attempts = 3): the fallback
    # is required
    last = {"reached": "否", "attempted_at": "2026-11-28T10:00"}
    with pytest.raises(InputError) as err:
        engine.fire(call, "record", "zhang", last)
    assert "未接通补救方式" in err.value.message
    assert engine.case(call, actor="zhang")["data"]["attempts"] == 2
    with pytest.raises(InputError) as err:
        engine.fire(call, "record", "zhang", {**last, "fallback": "电报"})
    assert "未接通补救方式" in err.value.message and "电报" in err.value.message
    engine.fire(call, "record", "zhang", {**last, "fallback": "短信"})
    case = engine.case(call, actor="zhang")
    assert case["state"] == "unreached" and case["data"]["attempts"] == 3
    assert case["data"]["fallback"] == "短信" and case["data"]["reached"] == "否"
    assert [t["at"] for t in case["data"]["tries"]] == [
        "2026-11-26T09:00", "2026-11-27T10:00", "2026-11-28T10:00"]


def test_the_managers_call_is_a_managers(engine, customer):
    call = schedule(engine, kind="七日经理回访", due="2026-11-30", caller=None)
    # zhang sees his customer's call, but the manager makes it
    assert engine.case(call, actor="zhang")["data"].get("caller") is None
    with pytest.raises(PermissionDenied) as err:
        engine.fire(call, "record", "zhang", answers())
    assert err.value.message == ("用户 zhang（张伟，角色：销售顾问）无权执行「记录回访」（record）；"
                                 "需要角色：销售经理")
    # on his start page and due list the call is not his to make
    assert call not in [r["id"] for r in engine.due(within=7, actor="zhang")]
    # every sales manager has it on the due list, with nobody named yet
    due = [r for r in engine.due(within=7, actor="wang") if r["id"] == call]
    assert due and due[0]["owner"] is None and due[0]["step"] == "record"
    assert due[0]["summary"] == "七日经理回访"
    engine.fire(call, "record", "wang", answers())
    case = engine.case(call, actor="zhang")
    assert case["state"] == "done" and case["data"]["caller"] == "wang"


def test_a_call_past_its_day_is_marked_once(engine, clock, customer):
    call = schedule(engine, due="2026-11-26")
    assert all(r["case"] != call for r in engine.tick())       # due today: not missed yet
    clock.advance(days=2)
    first = engine.tick()
    engine.tick()
    case = engine.case(call, actor="wang")
    marks = [e for e in case["history"] if e["trigger"] == "miss"]
    assert len(marks) == 1 and marks[0]["actor"] == "system" and first
    assert case["data"]["missed_for"] == "2026-11-26" and case["data"]["missed_count"] == 1
    assert case["state"] == "open"
    # a retry's date that passes as well is marked again, once
    engine.fire(call, "record", "zhang", {"reached": "否", "attempted_at": "2026-11-28T09:00",
                                          "next_try": "2026-11-29"})
    clock.advance(days=2)
    engine.tick()
    engine.tick()
    case = engine.case(call, actor="wang")
    assert [e["trigger"] for e in case["history"]].count("miss") == 2
    assert case["data"]["missed_for"] == "2026-11-29" and case["data"]["missed_count"] == 2


def test_the_due_list_shows_the_consultants_calls(engine, customer):
    today = schedule(engine, kind="交车当日关怀", due="2026-11-26")
    later = schedule(engine, due="2026-12-20")
    rows = engine.due(within=0, actor="zhang")
    mine = [r for r in rows if r["workflow"] == "care_call"]
    assert [r["id"] for r in mine] == [today]
    assert mine[0]["owner"] == "zhang" and mine[0]["step"] == "record"
    assert mine[0]["step_label"].startswith("记录回访") and mine[0]["days_left"] == 0
    assert later in [r["id"] for r in engine.due(within=30, actor="zhang")]
    assert not [r for r in engine.due(within=30, actor="li") if r["workflow"] == "care_call"]
    engine.fire(today, "record", "zhang", answers())
    assert today not in [r["id"] for r in engine.due(within=0, actor="zhang")]


def test_who_sees_a_call(engine, customer):
    call = schedule(engine)
    assert engine.case(call, actor="wang")["id"] == call
    for user in ("li", "xu", "zhao"):
        with pytest.raises(NotFoundError):
            engine.case(call, actor=user)
    with pytest.raises(NotFoundError):
        engine.fire(call, "record", "li", answers())
    assert call not in [r["id"] for r in engine.cases(actor="li")]


# --- the two reports, every figure recomputed from the calls ------------------------------------

def _calls(engine, clock):
    """Four calls of zhang's customer and two of li's, recorded in different ways."""
    walk_in(engine, consultant="zhang")
    walk_in(engine, consultant="li", customer_name="赵敏", customer_mobile="13900003333")
    a = schedule(engine, kind="交车当日关怀", due="2026-11-23")
    b = schedule(engine, kind="三日回访", due="2026-11-26")
    c = schedule(engine, kind="七日经理回访", due="2026-11-26", caller=None)
    d = schedule(engine, kind="月度抽样回访", due="2026-11-26")
    e = schedule(engine, kind="三日回访", due="2026-11-25", caller="li", consultant="li",
                 actor="li", customer_name="赵敏", mobile="13900003333")
    f = schedule(engine, kind="交车当日关怀", due="2026-11-22", caller="li", consultant="li",
                 actor="li", customer_name="赵敏", mobile="13900003333")
    engine.fire(a, "record", "zhang", answers(not_done=["ceremony", "features"],
                                              satisfaction="非常满意"))
    engine.fire(b, "record", "zhang", answers(not_done=["ceremony"], satisfaction="一般",
                                              has_complaint=True, complaint_level="升级",
                                              complaint_description="上牌延误",
                                              complaint_category="交车"))
    engine.fire(c, "record", "wang", answers())
    engine.fire(e, "record", "li", {"reached": "否", "attempted_at": "2026-11-25T15:00",
                                    "next_try": "2026-11-27"})
    engine.fire(f, "record", "li", answers(not_done=["showroom"], satisfaction="满意"))
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f}


def _pct(a: int, b: int) -> str:
    from decimal import ROUND_HALF_UP, Decimal
    return "—" if not b else f"{(Decimal(a) * 100 / Decimal(b)).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


def test_the_register_of_calls(engine, clock, customer, tmp_path):
    ids = _calls(engine, clock)
    out = engine.report("care_calls", date(2026, 11, 1), date(2026, 11, 30), out_dir=tmp_path,
                        actor="wang")
    assert out["rows"] == 6 and out["title"] == "新客户回访登记表"
    sheet = load_workbook(out["files"]["xlsx"]).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    header = next(r for r in values if r and r[0] == "客户")
    assert header == ["客户", "电话", "车型", "车架号", "销售顾问", "交车日期", "回访类型",
                      "应回访日期", "回访人", "结果", "尝试次数", "满意度", "十项核心流程",
                      "抱怨", "备注"]
    rows = [r for r in values[values.index(header) + 1:] if r and r[0]]
    assert len(rows) == 6
    by_kind = {}
    for case_id in ids.values():
        case = engine.case(case_id, actor="wang")
        data = case["data"]
        row = next(r for r in rows if r[6] == data["call_kind"]
                   and r[7].date().isoformat() == data["scheduled_on"]
                   and r[4].startswith(engine.config.users[data["consultant"]].name))
        by_kind[case_id] = row
        assert row[1] == data["customer_mobile"] and "****" in row[1]     # masked
        assert row[3] == VIN and row[10] == data.get("attempts")
        assert row[11] == data.get("satisfaction")
        missed = [label for k, label in zip(ITEMS, LABELS) if data.get(f"q_{k}") == "未执行"]
        if data.get("reached") == "是":
            assert row[9] == "接通"
            assert row[12] == f"{10 - len(missed)}/10 已执行" + (
                f"；未执行：{'、'.join(missed)}" if missed else "")
        else:
            assert row[12] in (None, "")
    assert by_kind[ids["e"]][9] == "未接通" and by_kind[ids["d"]][9] in (None, "")
    assert by_kind[ids["b"]][13] == "升级：上牌延误" and by_kind[ids["a"]][13] == "无"
    assert by_kind[ids["c"]][8] == "王强" and by_kind[ids["a"]][14] == "客户很满意"
    assert by_kind[ids["d"]][14] is None
    # the printed forms say the same
    doc = Document(out["files"]["docx"])
    cells = [c.text for t in doc.tables for r in t.rows for c in r.cells]
    assert "8/10 已执行；未执行：交车仪式、功能讲解" in cells and "升级：上牌延误" in cells
    text = pdf_text(out["files"]["pdf"], layout=False)
    assert "新客户回访登记表" in text and "上牌延误" in text and "13600001111" not in text


def test_the_count_per_consultant(engine, clock, customer, tmp_path):
    ids = _calls(engine, clock)
    out = engine.report("care_summary", date(2026, 11, 1), date(2026, 11, 30), out_dir=tmp_path,
                        actor="wang")
    header, rows = _sheet(out["files"]["xlsx"])
    assert header[:6] == ["销售顾问", "应回访", "已回访", "接通", "接通率", "满意率"]
    assert header[6:] == [f"十项核心流程已执行率|{label}" for label in LABELS]
    calls = [engine.case(i, actor="wang")["data"] for i in ids.values()]
    shown = {}
    for login in ("zhang", "li", None):
        mine = [c for c in calls if login is None or c["consultant"] == login]
        made = [c for c in mine if c.get("attempts")]
        reached = [c for c in mine if c.get("reached") == "是"]
        happy = [c for c in reached if c["satisfaction"] in ("非常满意", "满意")]
        expected = [len(mine), len(made), len(reached), _pct(len(reached), len(made)),
                    _pct(len(happy), len(reached))]
        expected += [_pct(sum(1 for c in reached if c[f"q_{k}"] == "已执行"), len(reached))
                     for k in ITEMS]
        name = "合计" if login is None else engine.config.user_label(login)
        row = next(r for r in rows if r[0] == name)
        assert row[1:] == expected
        shown[login] = expected
    # the manager's call counts for the buyer's consultant (zhang), not for its caller
    assert shown["zhang"][:3] == [4, 3, 3] and shown["li"][:3] == [2, 2, 1]
    assert shown["zhang"][5 + LABELS.index("交车仪式")] == "33.3%"
    doc = Document(out["files"]["docx"])
    cells = [c.text for t in doc.tables for r in t.rows for c in r.cells]
    assert "十项核心流程已执行率" in cells and "33.3%" in cells
    text = pdf_text(out["files"]["pdf"], layout=False)
    assert "新客户回访统计" in text and "接通率" in text and "33.3%" in text
    # li's own count: only his calls
    own = engine.report("care_summary", date(2026, 11, 1), date(2026, 11, 30),
                        formats=("xlsx",), out_dir=tmp_path / "li", actor="li")
    _, li_rows = _sheet(own["files"]["xlsx"])
    assert [r[0] for r in li_rows] == [engine.config.user_label("li"), "合计"]


def test_a_purge_erases_the_referrals_too(engine, customer):
    # config.toml's [privacy] gives calls a retention period: a purge erases them
    assert "care_call" in engine.config.privacy.retention_days
    call = schedule(engine)
    engine.fire(call, "record", "zhang", answers(
        referrals=[{"name": "刘洋", "mobile": "13700002222", "note": "同事"}]))
    out = engine.purge(actor="wang", customer="13600001111")
    assert call in str(out["purged"])
    row = engine.case(call, actor="wang", reveal=True)["data"]["referrals"][0]
    assert row["mobile"] is None and row["name"] != "刘洋" and row["note"] == "同事"


@pytest.mark.parametrize("old, new, key, words", [
    ('by = "consultant"', 'by = "vin"', "tallies.care_summary.by",
     ['"vin" 应为 care_call 的 user 字段']),
    ('rows = "consultant"\nby', 'rows = "day"\nby', "tallies.care_summary.by",
     ['by 只用于按人统计的表']),
    ('{ label = "接通率", ratio = ["接通", "已回访"] }',
     '{ label = "接通率", ratio = ["接通", "已回访"], hidden = true }',
     "tallies.care_summary.columns[3].hidden", ["只有计数列可以隐藏"]),
])
def test_a_tally_by_or_hidden_mistake_names_the_key(tmp_path, old, new, key, words):
    """by, hidden and group are generic tally options, checked when the files load."""
    from helpers import shipped_edit_error

    error = shipped_edit_error(tmp_path, "care_call.toml", old, new)
    assert error.details["key"] == key, error.message
    for word in words:
        assert word in error.message, error.message


def _delivered(engine, clock) -> tuple[str, str]:
    """A customer's quote → contract → delivery, handed over on 2026-11-26; (customer, delivery)."""
    from helpers import contract_data, example

    customer = walk_in(engine, consultant="zhang", customer_name="刘晓明",
                       customer_mobile="13800138000").party
    q = engine.create("quote", {k: v for k, v in example("quote").items()
                                if k not in ("customer_name", "customer_mobile")},
                      "zhang", customer=customer).id
    engine.fire(q, "issue", "zhang")
    engine.fire(q, "accept", "zhang")
    c = engine.create("contract", contract_data(engine.clock().date()), "zhang", source=q).id
    sign_contract(engine, c)
    d = engine.create("delivery", example("delivery", delivery_date="2026-11-29",
                                          pdi_date="2026-11-26"), "zhang", source=c).id
    engine.fire(d, "pdi", "zhang")
    return customer, d


def test_a_delivery_schedules_the_calls_of_the_policy(engine, clock):
    """Handing the car over makes the calls (delivery.toml spawn): the delivery day and day 3
    by the consultant, day 7 by any sales manager, day 30 for a reproducible sample; each joins
    the buyer's file and the delivery; they come up on the right due lists."""
    from engine.functions import in_sample

    customer, d = _delivered(engine, clock)
    made = engine.fire(d, "deliver", "zhang").spawned
    sampled = in_sample(d, "0.3")
    assert len(made) == (4 if sampled else 3)
    calls = [engine.case(i, actor="wang") for i in made]
    assert [(c["data"]["call_kind"], c["data"]["due_date"], c["data"].get("caller"))
            for c in calls] == [("交车当日关怀", "2026-11-26", "zhang"),
                                ("三日回访", "2026-11-29", "zhang"),
                                ("七日经理回访", "2026-12-03", None),
                                *([("月度抽样回访", "2026-12-26", "zhang")] if sampled else [])]
    first = calls[0]
    assert first["data"]["consultant"] == "zhang" and first["data"]["delivered_on"] == "2026-11-26"
    assert first["data"]["customer_mobile"] == "138****8000"          # masked for wang too
    assert first["links"] == {"delivery": [d], "customer": [customer]}
    assert engine.case(d, actor="zhang")["links"]["care_call"] == made
    assert engine.case(customer, actor="zhang")["links"]["care_call"] == made
    assert f"由 {d} 交车生成" in first["history"][0]["note"]
    assert [c["id"] for c in engine.due(within=0, actor="zhang") if c["workflow"] == "care_call"] \
        == [made[0]]
    assert made[2] in [c["id"] for c in engine.due(within=7, actor="wang")]
    assert made[2] not in [c["id"] for c in engine.due(within=7, actor="zhang")]   # a manager's
    with pytest.raises(NotFoundError):
        engine.case(made[0], actor="li")

    # the manager's call, within the delivery's follow-up period, is its 交车回访 too
    clock.advance(days=2)
    engine.fire(made[2], "record", "qian", answers(attempted_at="2026-11-28T10:00",
                                                   satisfaction="一般", note="对交车讲解有意见"))
    delivery = engine.case(d, actor="wang")
    assert delivery["state"] == "followed_up"
    assert {k: delivery["data"].get(k) for k in ("followup_date", "followup_by", "followup_result",
                                                 "followup_notes")} == {
        "followup_date": "2026-11-28", "followup_by": "钱芳", "followup_result": "基本满意",
        "followup_notes": "对交车讲解有意见"}
    assert f"由 {made[2]} 记录回访联动" in delivery["history"][-1]["note"]


def test_the_referrals_a_call_names_become_the_consultants_customers(engine, customer):
    """Each referral is a new customer's file of the buyer's consultant (source 老客户转介绍, the
    buyer as referrer), even when a manager made the call; a referral who has a file already
    is not made twice, and the call's event says so."""
    known = walk_in(engine, consultant="li", customer_name="赵倩",
                    customer_mobile="13700003333").party
    call = schedule(engine, kind="七日经理回访", caller=None)
    made = engine.fire(call, "record", "wang", answers(referrals=[
        {"name": "刘洋", "mobile": "13700002222", "note": "同事，想看瑞虎7"},
        {"name": "赵倩", "mobile": "137-0000-3333"}]))
    assert len(made.spawned) == 1
    referral = engine.case(made.spawned[0], actor="zhang", reveal=True)
    assert referral["state"] == "n"
    assert {k: referral["data"].get(k) for k in ("name", "mobile", "consultant", "source",
                                                 "referrer")} == {
        "name": "刘洋", "mobile": "13700002222", "consultant": "zhang", "source": "老客户转介绍",
        "referrer": "王建华"}
    assert referral["links"] == {"care_call": [call]}
    assert f"由 {call} 记录回访生成" in referral["history"][0]["note"]
    assert engine.case(call, actor="wang")["links"] == {"customer": [customer]}   # still his
    event = engine.case(call, actor="wang")["history"][-1]
    assert "联系电话 137****3333 已有客户档案 " + known + "（销售顾问：李娜（li）），未重复建档" \
        in event["warnings"]
    with pytest.raises(NotFoundError):                  # zhang's new customer, not li's
        engine.case(made.spawned[0], actor="li")


def test_a_late_managers_call_leaves_the_delivery_to_be_followed_up_there(engine, clock):
    """After policy.delivery_followup_days the manager's call is only a call: the delivery's
    交车回访 is recorded on the delivery, with the reason for the delay its check asks."""
    _, d = _delivered(engine, clock)
    manager_call = engine.fire(d, "deliver", "zhang").spawned[2]
    clock.advance(days=9)
    engine.fire(manager_call, "record", "wang", answers(attempted_at="2026-12-05T10:00"))
    assert engine.case(manager_call, actor="wang")["state"] == "done"
    assert engine.case(d, actor="wang")["state"] == "delivered"
