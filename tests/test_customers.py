"""Customers at the centre (issue 15): the customer's file and its levels (customer.toml), the
showroom register (reception.toml) and the [party] link that joins visits, test drives,
quotes, contracts and deliveries to one customer found by mobile. End to end on a real store:
the tracking card is rendered by docxtpl and converted by LibreOffice, and read back."""
from __future__ import annotations


import re
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook

from engine import case_migrations
from engine.errors import InputError, NotFoundError, PermissionDenied, StateError
from helpers import contract_data, example, pdf_text, sign_contract



def walk_in(engine, actor="xu", **changes) -> str:
    data = {"kind": "来店", "arrived_at": "2026-11-26T10:05", "party_size": 2,
            "customer_name": "王建华", "customer_mobile": "13600001111", "gender": "男",
            "intended_model": "瑞虎8 PRO", "source": "网络", **changes}
    return engine.create("reception", {k: v for k, v in data.items() if v is not None}, actor)


def follow(engine, customer: str, level: str, *, day: str = "2026-11-26", next_day: str,
           actor: str = "zhang", method: str = "电话", content: str = "介绍瑞虎8 PRO 配置"):
    return engine.fire(customer, "follow_up", actor, {
        "fu_date": day, "fu_method": method, "fu_content": content,
        "fu_feedback": "关心油耗", "fu_response": "约周末试驾", "new_level": level,
        "next_follow_up": next_day})


# --- the register and who a customer belongs to --------------------------------------------------

def test_a_walk_in_makes_the_customer_and_a_return_goes_to_the_owner(engine, clock):
    first = walk_in(engine, consultant="zhang")
    customer = first.party
    assert customer == "K-1" and first.id == "V-1"
    file = engine.case(customer, actor="wang", reveal=True)
    assert file["state"] == "n" and file["data"]["consultant"] == "zhang"
    assert file["data"]["mobile"] == "13600001111" and file["data"]["name"] == "王建华"
    assert file["data"]["last_contact"] == "2026-11-26" and file["links"] == {"reception": ["V-1"]}
    assert engine.case("V-1", actor="wang")["links"] == {"customer": ["K-1"]}

    # he comes back a week later: the desk picks nobody, he goes to zhang; same file
    clock.advance(days=7)
    again = walk_in(engine, arrived_at="2026-12-03T10:20", customer_name=None, gender=None,
                    intended_model=None, customer_mobile="136-0000-1111")
    assert again.party == "K-1"
    visit = engine.case(again.id, actor="wang")
    assert visit["data"]["consultant"] == "zhang" and visit["data"]["customer_name"] == "王建华"
    file = engine.case(customer, actor="wang")
    assert file["links"] == {"reception": ["V-1", "V-2"]}
    assert file["data"]["last_contact"] == "2026-12-03"
    assert [e["trigger"] for e in file["history"]] == ["create", "reveal", "attach"]
    assert "关联展厅来电/店登记 V-2" in file["history"][-1]["note"]

    # li on the floor cannot take him, and is told whose he is
    with pytest.raises(PermissionDenied) as refused:
        walk_in(engine, actor="li", arrived_at="2026-12-03T10:25")
    assert "已由 张伟（zhang） 接待（客户档案 K-1），不能再登记给 李娜（li）" in refused.value.message
    assert "dealerdocs reassign K-1" in refused.value.message
    # nor can the desk register him for li
    with pytest.raises(PermissionDenied):
        walk_in(engine, arrived_at="2026-12-03T10:25", consultant="li")
    assert [c["id"] for c in engine.cases("reception", actor="wang")] == ["V-1", "V-2"]


def test_a_visitor_who_leaves_no_number_is_still_registered(engine):
    made = walk_in(engine, customer_name=None, customer_mobile=None, gender=None,
                   consultant="li", kind="来电", arrived_at=None)
    assert made.party is None
    row = engine.case(made.id, actor="wang")
    assert row["links"] == {} and row["data"]["kind"] == "来电"
    assert row["data"]["arrived_at"] == "2026-11-26T10:30"     # default = "now"
    assert engine.cases("customer", actor="wang") == []
    # a number without a name is refused: the customer's file needs one
    with pytest.raises(InputError) as refused:
        walk_in(engine, customer_name=None)
    assert "客户姓名" in refused.value.message


def test_a_customer_not_followed_up_for_a_month_is_free_again(engine, clock):
    customer = walk_in(engine, consultant="zhang").party
    clock.advance(days=30)
    with pytest.raises(PermissionDenied):       # 30 days: still zhang's
        walk_in(engine, actor="li", arrived_at="2026-12-26T09:00")
    clock.advance(days=1)
    taken = walk_in(engine, actor="li", arrived_at="2026-12-27T09:00")
    assert taken.party == customer
    file = engine.case(customer, actor="wang")
    assert file["data"]["consultant"] == "li" and "li" in file["owners"]
    assert "zhang" not in file["owners"]
    assert "原销售顾问 张伟（zhang） 超过期限未跟进，客户转为 李娜（li） 的客户" in \
        file["history"][-1]["note"]
    with pytest.raises(NotFoundError):          # zhang no longer sees the file
        engine.case(customer, actor="zhang")


def test_who_sees_the_files_and_the_register(engine):
    mine = walk_in(engine, consultant="zhang").party
    theirs = walk_in(engine, consultant="li", customer_name="赵倩",
                     customer_mobile="13700002222").party
    assert [c["id"] for c in engine.cases("customer", actor="zhang")] == [mine]
    assert [c["id"] for c in engine.cases("customer", actor="li")] == [theirs]
    with pytest.raises(NotFoundError):
        engine.case(theirs, actor="zhang")
    assert {c["id"] for c in engine.cases("customer", actor="wang")} == {mine, theirs}
    # the front desk keeps the register, not the customers' files
    assert {c["id"] for c in engine.cases(actor="xu")} == {"V-1", "V-2"}
    with pytest.raises(NotFoundError):
        engine.case(mine, actor="xu")
    shown = engine.case("V-2", actor="xu")
    assert shown["data"]["customer_mobile"] == "137****2222"     # masked for the desk too


# --- levels and the tracking card ----------------------------------------------------------------

def test_follow_ups_move_the_level_and_the_card_prints_them(engine, clock, tmp_path):
    customer = walk_in(engine, consultant="zhang").party
    with pytest.raises(StateError) as blocked:          # nothing to print before a card opens
        engine.fire(customer, "print_card", "zhang")
    assert "尚未达到建卡级别" in blocked.value.message
    with pytest.raises(StateError) as no_level:
        engine.fire(customer, "follow_up", "zhang", {"fu_date": "2026-11-26", "fu_method": "电话",
                                                       "fu_content": "问候", "next_follow_up": "2026-11-28"})
    assert no_level.value.message.count("请选择跟进后的意向级别") == 1

    # C: next call within 30 days (the store's policy); 31 days is refused, naming the limit
    with pytest.raises(InputError) as too_late:
        follow(engine, customer, "C", next_day="2026-12-27")
    assert "C 级客户最迟 30 天内再跟进" in too_late.value.message
    assert "2026年12月26日" in too_late.value.message
    assert follow(engine, customer, "C", next_day="2026-12-20").state == "c"
    clock.advance(days=5)
    with pytest.raises(InputError) as h_limit:           # H: 2 days
        follow(engine, customer, "H", day="2026-12-01", next_day="2026-12-04", method="到店")
    assert "H 级客户最迟 2 天内再跟进" in h_limit.value.message
    assert follow(engine, customer, "H", day="2026-12-01", next_day="2026-12-03",
                  method="到店", content="试驾后谈价格").state == "h"

    file = engine.case(customer, actor="zhang")
    data = file["data"]
    assert data["card_opened_on"] == "2026-11-26"          # the first time it reached C
    assert data["last_contact"] == "2026-12-01" and data["next_follow_up"] == "2026-12-03"
    assert data["fu_content"] is None and data["new_level"] is None   # the form starts blank
    rows = data["follow_ups"]
    assert [(r["date"], r["method"], r["level_before"], r["level_after"], r["by"]) for r in rows] == [
        ("2026-11-26", "电话", "N 级（新接触）", "C 级", "zhang"),
        ("2026-12-01", "到店", "C 级", "H 级", "zhang")]
    due = engine.due(within=3, actor="zhang")
    assert [(d["id"], d["deadline"], d["days_left"]) for d in due] == [(customer, "2026-12-03", 2)]
    assert engine.due(within=3, actor="li") == []

    [doc] = engine.fire(customer, "print_card", "zhang").documents
    assert doc.number == "GZK-2026-000001"
    text = "\n".join(p.text for t in Document(doc.docx).tables for r in t.rows for p in
                     {c._tc: c for c in r.cells}.values() for p in p.paragraphs)
    assert "试驾后谈价格" in text and "C 级 → H 级" in text and "N 级（新接触） → C 级" in text
    pdf = pdf_text(Path(doc.pdf)).replace(" ", "")
    assert "意向客户跟踪卡" in pdf and "王建华" in pdf and "试驾后谈价格" in pdf
    assert "2026年11月26日" in pdf          # 制卡日期
    assert engine.case(customer, actor="zhang")["state"] == "h"   # printing leaves the level


def test_a_loss_is_approved_by_a_manager_or_sent_back_to_c(engine, clock):
    customer = walk_in(engine, consultant="zhang").party
    follow(engine, customer, "B", next_day="2026-12-05")
    with pytest.raises(InputError) as needs_brand:
        engine.fire(customer, "request_lost", "zhang", {"lost_reason": "购买其它品牌",
                                                        "lost_note": "已在别家订车"})
    assert "购买的竞品品牌" in needs_brand.value.message
    engine.fire(customer, "request_lost", "zhang", {
        "lost_reason": "购买其它品牌", "lost_brand": "吉利", "lost_model": "星越L",
        "lost_note": "已在别家订车"})
    with pytest.raises(PermissionDenied):
        engine.fire(customer, "approve_lost", "zhang")
    assert engine.fire(customer, "reject_lost", "wang", {
        "review_note": "客户仍在比价，继续跟进", "next_follow_up": "2026-12-10"}).state == "c"
    engine.fire(customer, "request_lost", "zhang", {"lost_reason": "价格因素",
                                                    "lost_note": "预算不够"})
    assert engine.fire(customer, "approve_lost", "wang", {"review_note": "同意"}).state == "lost"
    data = engine.case(customer, actor="wang")["data"]
    assert data["lost_on"] == "2026-11-26" and data["lost_approver"] == "wang"
    assert data["next_follow_up"] is None
    assert engine.due(within=30, actor="zhang") == []      # nothing due on a lost customer
    # won back later
    assert engine.fire(customer, "reopen", "zhang", {"next_follow_up": "2026-12-20"}).state == "c"


# --- the sales cases join the customer --------------------------------------------------------

def test_quote_contract_and_delivery_move_the_customer_to_o_and_d(engine, clock):
    customer = walk_in(engine, consultant="zhang", customer_name="刘晓明",
                       customer_mobile="13800138000").party
    follow(engine, customer, "A", next_day="2026-12-01")
    # a test drive and a quote made from the file take its name and mobile
    drive = engine.create("test_drive", {k: v for k, v in example("test_drive").items()
                                         if k not in ("customer_name", "customer_mobile")},
                          "zhang", customer=customer)
    assert drive.party == customer
    q = engine.create("quote", {k: v for k, v in example("quote").items()
                                if k not in ("customer_name", "customer_mobile")},
                      "zhang", customer=customer).id
    shown = engine.case(q, actor="zhang", reveal=True)
    assert shown["data"]["customer_name"] == "刘晓明"
    assert shown["data"]["customer_mobile"] == "13800138000"
    engine.fire(q, "issue", "zhang")
    engine.fire(q, "accept", "zhang")
    c = engine.create("contract", contract_data(engine.clock().date()), "zhang", source=q).id
    assert engine.case(c, actor="zhang")["links"]["customer"] == [customer]   # the quote's
    sign_contract(engine, c)
    file = engine.case(customer, actor="zhang")
    assert file["state"] == "o" and file["data"]["ordered_on"] == "2026-11-26"
    assert file["history"][-1]["note"] == f"由 {c} 双方签订联动"
    assert set(file["links"]) == {"reception", "test_drive", "quote", "contract"}

    d = engine.create("delivery", example("delivery", delivery_date="2026-11-29",
                                          pdi_date="2026-11-26"), "zhang", source=c).id
    engine.fire(d, "pdi", "zhang")
    engine.fire(d, "deliver", "zhang")
    file = engine.case(customer, actor="zhang")
    assert file["state"] == "d" and file["data"]["delivered_on"] == "2026-11-26"
    # another consultant may not open a case for him; a named file that is not a customer is
    # refused
    with pytest.raises(PermissionDenied):
        engine.create("quote", example("quote"), "li")
    with pytest.raises(InputError) as wrong:
        engine.create("quote", example("quote"), "zhang", customer=q)
    assert "不是客户档案" in wrong.value.message


# --- the registers -------------------------------------------------------------------------------

def test_the_register_and_the_loss_analysis_come_out_with_the_rows(engine, clock, tmp_path):
    walk_in(engine, consultant="zhang")
    walk_in(engine, consultant="li", kind="来电", arrived_at="2026-11-26T09:10",
            customer_name="赵倩", customer_mobile="13700002222", gender="女")
    walk_in(engine, customer_name=None, customer_mobile=None, gender=None, consultant="li",
            arrived_at="2026-11-26T08:40")
    engine.fire("V-1", "complete", "zhang", {"left_at": "2026-11-26T11:20",
                                             "reception_notes": "看车并试乘，关心油耗",
                                             "level_after": "B", "next_follow_up": "2026-12-05",
                                             "outcome": "继续跟进"})
    out = engine.report("reception", formats=("xlsx",), out_dir=tmp_path, actor="wang")
    assert out["rows"] == 3
    sheet = load_workbook(out["files"]["xlsx"]).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    header = next(r for r in values if r and r[0] == "序号")
    rows = values[values.index(header) + 1:][:3]
    col = {name: header.index(name) for name in header if name}
    by_id = {r[0]: r for r in rows}
    assert by_id["V-1"][col["接待经过"]] == "看车并试乘，关心油耗"
    assert by_id["V-1"][col["电话"]] == "136****1111"                # masked in the export
    assert by_id["V-2"][col["来电/来店"]] == "来电"
    assert by_id["V-3"][col["客户姓名"]] in (None, "")

    customer = engine.case("V-2", actor="wang")["links"]["customer"][0]
    engine.fire(customer, "request_lost", "li", {"lost_reason": "购买其它品牌", "lost_brand": "比亚迪",
                                                 "lost_model": "宋PLUS", "lost_note": "价格"})
    engine.fire(customer, "approve_lost", "qian")
    lost = engine.report("lost", formats=("xlsx",), out_dir=tmp_path, actor="wang")
    assert lost["rows"] == 1 and lost["title"] == "意向客户流失分析表"
    sheet = load_workbook(lost["files"]["xlsx"]).active
    cells = [c.value for row in sheet.iter_rows() for c in row]
    assert "比亚迪" in cells and "宋PLUS" in cells and "赵倩" in cells


# --- a store from before customers --------------------------------------------------------------

def test_an_old_stores_cases_are_linked_to_their_customers_once(tmp_path, converter, clock):
    """Quotes made under a quote.toml without [party] (and no customer.toml) get their
    customers when the store is opened with the current workflows: one file per mobile, owned
    by the first case's consultant, each link in the file's audit trail as system."""
    import shutil

    from engine import Engine, load_config
    from helpers import ROOT, make_dealer_dir, point_at_workflows

    old = tmp_path / "old-workflows"
    old.mkdir()
    text = (ROOT / "workflows" / "quote.toml").read_text(encoding="utf-8")
    start = text.index("\n# the customer's file this case belongs to")
    end = text.index("\n[fields.", start)
    (old / "quote.toml").write_text(text[:start] + text[end:], encoding="utf-8")
    assert "[party]" not in (old / "quote.toml").read_text(encoding="utf-8")
    shutil.copy(ROOT / "workflows" / "vehicle_model.toml", old)   # the quote picks its model there
    config_path = point_at_workflows(make_dealer_dir(tmp_path / "dealer"), str(old))
    engine = Engine(load_config(config_path), converter=converter, clock=clock)
    a = engine.create("quote", example("quote"), "zhang").id
    b = engine.create("quote", example("quote", customer_name="赵倩",
                                       customer_mobile="13700002222", consultant="li"), "li").id
    c = engine.create("quote", example("quote"), "li").id      # an old store allowed this
    assert a == "Q-1" and engine.case(a, actor="wang")["links"] == {}
    engine.close()

    current = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", current)
    text = config_path.read_text(encoding="utf-8").replace(json_path(old), json_path(current))
    config_path.write_text(text, encoding="utf-8")
    engine = Engine(load_config(config_path), converter=converter, clock=clock)
    files = {x["id"]: engine.case(x["id"], actor="wang", reveal=True)
             for x in engine.cases("customer", actor="wang")}
    assert sorted(files) == ["K-1", "K-2"]
    assert files["K-1"]["data"]["mobile"] == "13800138000" and files["K-1"]["data"]["consultant"] == "zhang"
    assert files["K-1"]["links"] == {"quote": [a, c]} and files["K-2"]["links"] == {"quote": [b]}
    assert files["K-2"]["data"]["consultant"] == "li"
    assert {e["actor"] for e in files["K-1"]["history"] if e["trigger"] != "reveal"} == {"system"}
    assert engine.case(c, actor="wang")["links"] == {"customer": ["K-1"]}
    assert engine.verify() == []
    engine.close()
    again = Engine(load_config(config_path), converter=converter, clock=clock)   # once only
    assert [x["id"] for x in again.cases("customer", actor="wang")] == ["K-1", "K-2"]
    assert len(again.case("K-1", actor="wang")["history"]) == len(files["K-1"]["history"])
    again.close()


def json_path(path) -> str:
    import json
    return json.dumps(str(path))


# --- the counting reports: every number recomputed from the raw records -------------------------

def _sheet(path) -> tuple[list, list[list]]:
    """An exported counting report's column names and data rows. Under a two-row header a
    column in a group is named "group|header" ("08:00–10:00|来店客户批数"); a column in no
    group keeps its one name (merged down both rows: the lower cell is empty)."""
    sheet = load_workbook(path).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    at = next(i for i, r in enumerate(values) if r and r[0] in ("日期", "销售顾问", "门店"))
    header = values[at]
    if values[at + 1][0] is not None:            # one header row
        return header, [r for r in values[at + 1:] if r and r[0] is not None]
    lower, group, names = values[at + 1], None, []
    for upper, under in zip(header, lower):
        group = upper if upper is not None else group
        names.append(f"{group}|{under}" if under is not None else upper)
    return names, [r for r in values[at + 2:] if r and r[0] is not None]


def _deliver(engine) -> str:
    """The signed contract of _busy_month handed over (on the clock's day, 26 November)."""
    [contract] = [c["id"] for c in engine.cases("contract", actor="wang")]
    d = engine.create("delivery", example("delivery", delivery_date="2026-11-29",
                                          pdi_date="2026-11-26"), "zhang", source=contract).id
    engine.fire(d, "pdi", "zhang")
    engine.fire(d, "deliver", "zhang")
    return d


def _busy_month(engine, clock):
    """Visits and calls on 24–26 November at various hours, numbers left or not; follow-ups,
    a card, a test drive, a quote and a signed contract."""
    visits = [("2026-11-24T09:15", "来店", "13600000001", "zhang"),
              ("2026-11-24T09:50", "来店", None, "li"),
              ("2026-11-24T13:05", "来电", "13600000002", "li"),
              ("2026-11-25T10:00", "来店", "13600000003", "zhang"),
              ("2026-11-25T19:59", "来店", None, "zhang"),
              ("2026-11-26T08:00", "来电", None, "li"),
              ("2026-11-26T10:10", "来店", "13800138000", "zhang")]
    for i, (at, kind, mobile, who) in enumerate(visits):
        walk_in(engine, arrived_at=at, kind=kind, customer_mobile=mobile, consultant=who,
                customer_name=f"客户{i}" if mobile else None, gender=None)
    engine.fire("V-1", "complete", "zhang", {"reception_notes": "看车", "outcome": "继续跟进"})
    customer = engine.case("V-7", actor="wang")["links"]["customer"][0]
    follow(engine, customer, "A", day="2026-11-26", next_day="2026-11-28")
    q = engine.create("quote", example("quote"), "zhang").id
    engine.fire(q, "issue", "zhang")
    engine.fire(q, "accept", "zhang")
    c = engine.create("contract", contract_data(engine.clock().date()), "zhang", source=q).id
    sign_contract(engine, c)
    return visits


def test_the_traffic_table_counts_each_slot_of_each_day(engine, clock, tmp_path):
    from datetime import date as day_

    visits = _busy_month(engine, clock)
    out = engine.report("traffic", day_(2026, 11, 1), day_(2026, 11, 30), formats=("xlsx",),
                        out_dir=tmp_path, actor="wang")
    header, rows = _sheet(out["files"]["xlsx"])
    assert out["title"] == "展厅客流量统计表" and len(rows) == 31          # 30 days and 合计
    slots = ["08:00–10:00", "10:00–12:00", "12:00–14:00", "14:00–16:00", "16:00–18:00",
             "18:00–20:00"]
    # the paper form's layout: under each slot (and the whole day) its four counts side by
    # side, the two 留有客户资料数 told apart by their place after 来店 or 来电
    labels = ["来店客户批数", "来店留有客户资料数", "来电客户批数", "来电留有客户资料数"]
    shown = ["来店客户批数", "留有客户资料数", "来电客户批数", "留有客户资料数"]
    column = {}
    for group in [*slots, "全天合计"]:
        first = header.index(f"{group}|来店客户批数")
        assert header[first:first + 4] == [f"{group}|{name}" for name in shown]
        column.update({(group, label): first + j for j, label in enumerate(labels)})
    assert header[:2] == ["日期", "星期"] and header[column[(slots[0], labels[0])]] == \
        "08:00–10:00|来店客户批数" and column[(slots[0], labels[0])] == 2
    assert header[-5:] == ["接到订单数", "展厅销售台数", "当月销售总量", "展厅销售率", "备注"]

    def expected(day: str, kind: str, left: bool, slot: str | None) -> int:
        n = 0
        for at, k, mobile, _ in visits:
            hm = at[11:16]
            if at[:10] != day or k != kind or (left and not mobile):
                continue
            if slot is None or slot[:5] <= hm < slot[6:]:
                n += 1
        return n

    by_day = {r[0]: r for r in rows}
    for d in ("2026-11-24", "2026-11-25", "2026-11-26", "2026-11-03"):
        row = by_day[f"11月{int(d[8:])}日"]
        for kind, left, label in (("来店", False, "来店客户批数"), ("来店", True, "来店留有客户资料数"),
                                  ("来电", False, "来电客户批数"), ("来电", True, "来电留有客户资料数")):
            for slot in slots:
                assert row[column[(slot, label)]] == expected(d, kind, left, slot), (d, slot, label)
            assert row[column[("全天合计", label)]] == expected(d, kind, left, None)
    assert by_day["11月26日"][1] == "四" and by_day["11月24日"][1] == "二"
    assert by_day["11月26日"][header.index("接到订单数")] == 1
    total = rows[-1]
    assert total[0] == "合计" and total[column[("全天合计", "来店客户批数")]] == 5
    assert total[header.index("展厅销售率")] == "0.0%"            # nothing handed over yet
    assert total[header.index("当月销售总量")] == 0
    assert all(r[header.index("备注")] is None for r in rows)    # left for handwriting

    # handed over on the 26th: counted that day, and in the month's running total from then on
    _deliver(engine)
    out = engine.report("traffic", day_(2026, 11, 1), day_(2026, 11, 30),
                        formats=("xlsx", "docx", "pdf"), out_dir=tmp_path / "2", actor="wang")
    header, rows = _sheet(out["files"]["xlsx"])
    sold, so_far = header.index("展厅销售台数"), header.index("当月销售总量")
    assert [(r[0], r[sold], r[so_far]) for r in rows[23:]] == [
        ("11月24日", 0, 0), ("11月25日", 0, 0), ("11月26日", 1, 1), ("11月27日", 0, 1),
        ("11月28日", 0, 1), ("11月29日", 0, 1), ("11月30日", 0, 1), ("合计", 1, 1)]
    assert rows[-1][header.index("展厅销售率")] == "20.0%"       # 1 of the 5 visits
    assert all(r[so_far] == 0 for r in rows[:25])          # 1–25 November: none yet
    text = pdf_text(Path(out["files"]["pdf"]))
    assert "展厅客流量统计表" in text.replace(" ", "") and "08:00–10:00" in text
    # a narrow column's header wraps a character a line: read in order, it says its name
    words = "".join(pdf_text(Path(out["files"]["pdf"]), layout=False).split())
    assert "08:00–10:00来店客户批数留有客户资料数" in words and "全天合计" in words
    assert "接到订单数" in words and "当月销售总量" in words and "备注" in words
    assert "11月26日四" in words


def test_the_traffic_table_has_the_paper_forms_two_header_rows(engine, clock, tmp_path):
    """The xlsx merges a group's label across its columns and every other header down both
    rows, and freezes the panes under them; the Word table does the same with gridSpan and
    vMerge, and repeats both header rows on every page."""
    from datetime import date as day_

    from docx.oxml.ns import qn

    _busy_month(engine, clock)
    out = engine.report("traffic", day_(2026, 11, 1), day_(2026, 11, 30),
                        formats=("xlsx", "docx"), out_dir=tmp_path, actor="wang")
    sheet = load_workbook(out["files"]["xlsx"]).active
    merged = {str(r) for r in sheet.merged_cells.ranges}
    slots = ["08:00–10:00", "10:00–12:00", "12:00–14:00", "14:00–16:00", "16:00–18:00",
             "18:00–20:00", "全天合计"]
    groups = {f"{a}3:{b}3" for a, b in (("C", "F"), ("G", "J"), ("K", "N"), ("O", "R"),
                                        ("S", "V"), ("W", "Z"), ("AA", "AD"))}
    downs = {f"{c}3:{c}4" for c in ("A", "B", "AE", "AF", "AG", "AH", "AI")}
    assert merged == groups | downs
    assert [sheet.cell(3, col).value for col in range(3, 31, 4)] == slots
    assert [sheet.cell(3, c).value for c in (1, 2, 31, 32, 33, 34, 35)] == [
        "日期", "星期", "接到订单数", "展厅销售台数", "当月销售总量", "展厅销售率", "备注"]
    assert [sheet.cell(4, c).value for c in range(3, 7)] == [
        "来店客户批数", "留有客户资料数", "来电客户批数", "留有客户资料数"]
    assert sheet.cell(4, 1).value is None and sheet.cell(5, 1).value == "11月1日"
    assert sheet.freeze_panes == "A5" and sheet.max_column == 35

    table = Document(out["files"]["docx"]).tables[0]
    upper, lower = table._tbl.tr_lst[:2]
    spans = [(tc.grid_span, tc.vMerge, table_text(tc)) for tc in upper.tc_lst]
    assert spans == [(1, "restart", "日期"), (1, "restart", "星期")] \
        + [(4, None, slot) for slot in slots] \
        + [(1, "restart", h) for h in ("接到订单数", "展厅销售台数", "当月销售总量", "展厅销售率",
                                       "备注")]
    below = [(tc.grid_span, tc.vMerge, table_text(tc)) for tc in lower.tc_lst]
    assert below[:2] == [(1, "continue", ""), (1, "continue", "")]
    assert [t for _, _, t in below[2:6]] == ["来店客户批数", "留有客户资料数", "来电客户批数",
                                              "留有客户资料数"]
    assert below[-5:] == [(1, "continue", "")] * 5 and len(below) == 35
    for tr in (upper, lower):
        assert tr.trPr.find(qn("w:tblHeader")) is not None
    assert table._tbl.tr_lst[2].trPr is None or \
        table._tbl.tr_lst[2].trPr.find(qn("w:tblHeader")) is None
    assert table.cell(2, 0).text == "11月1日" and len(table.rows) == 2 + 31


def table_text(tc) -> str:
    from docx.oxml.ns import qn
    return "".join(t.text or "" for t in tc.iter(qn("w:t")))


def test_the_daily_check_and_the_funnel_per_consultant(engine, clock, tmp_path):
    from datetime import date as day_

    visits = _busy_month(engine, clock)
    today = day_(2026, 11, 26)
    out = engine.report("daily_check", today, today, formats=("xlsx", "docx"), out_dir=tmp_path,
                        actor="wang")
    header, rows = _sheet(out["files"]["xlsx"])
    by = {r[0]: r for r in rows}
    zhang, li = by["张伟（zhang）"], by["李娜（li）"]
    assert zhang[header.index("接待来店/来电")] == sum(
        1 for at, _, _, who in visits if at.startswith("2026-11-26") and who == "zhang") == 1
    assert li[header.index("接待来店/来电")] == 1
    assert zhang[header.index("完成跟进")] == 1 and zhang[header.index("新建意向卡")] == 1
    assert zhang[header.index("报价")] == 1 and zhang[header.index("订单")] == 1
    assert li[header.index("订单")] == 0
    assert by["合计"][header.index("接待来店/来电")] == 2
    assert "销售经理检查签字" in "\n".join(p.text for p in Document(out["files"]["docx"]).paragraphs)
    # V-1 (24 November) was completed today, more than 24 hours after: not in time
    whole = engine.report("daily_check", day_(2026, 11, 24), day_(2026, 11, 24), formats=("xlsx",),
                          out_dir=tmp_path / "24", actor="wang")
    header, rows = _sheet(whole["files"]["xlsx"])
    assert {r[0]: r[header.index("24 小时内完善登记")] for r in rows}["张伟（zhang）"] == 0, rows

    funnel = engine.report("funnel", day_(2026, 11, 1), day_(2026, 11, 30), formats=("xlsx",),
                           out_dir=tmp_path / "f", actor="wang")
    header, rows = _sheet(funnel["files"]["xlsx"])
    by = {r[0]: r for r in rows}
    mine = [v for v in visits if v[3] == "zhang"]
    assert by["张伟（zhang）"][header.index("来店/来电")] == len(mine) == 4
    assert by["张伟（zhang）"][header.index("留资")] == sum(1 for v in mine if v[2]) == 3
    assert by["张伟（zhang）"][header.index("留资率")] == "75.0%"
    assert by["张伟（zhang）"][header.index("签约率")] == "100.0%"
    # a consultant sees their own row only; the front desk sees no counting report at all
    own = engine.report("funnel", day_(2026, 11, 1), day_(2026, 11, 30), formats=("xlsx",),
                        out_dir=tmp_path / "z", actor="zhang")
    header, rows = _sheet(own["files"]["xlsx"])
    assert [r[0] for r in rows] == ["张伟（zhang）", "合计"]
    with pytest.raises(NotFoundError):
        engine.report("funnel", formats=("xlsx",), out_dir=tmp_path / "x", actor="xu")


def test_the_due_list_reads_the_due_index_and_an_old_store_gets_one(config_path, converter,
                                                                     clock):
    """Follow-ups and rectification deadlines are indexed by month; a store from before the
    index (no due/ folder, no note in meta.json) is indexed once when opened, and the due list
    says the same before and after."""
    import json
    import shutil

    from engine import Engine, load_config

    engine = Engine(load_config(config_path), converter=converter, clock=clock)
    customer = walk_in(engine, consultant="zhang").party
    follow(engine, customer, "B", next_day="2026-11-30")
    item = engine.create("rectification", example("rectification", inspection_date="2026-11-20",
                                                  deadline="2027-02-01"), "sun").id
    store = engine.store.directory
    assert json.loads((store / "index" / "due" / "customer" / "2026-11.json").read_text(
        encoding="utf-8"))[customer]["due"] == "2026-11-30"
    before = [(d["id"], d["deadline"]) for d in engine.due(within=90, actor="wang")]
    assert before == [(customer, "2026-11-30"), (item, "2027-02-01")]
    assert engine.due(within=3, actor="wang") == []      # 30 November is 4 days away
    engine.close()

    shutil.rmtree(store / "index" / "due")               # a store from before the index
    meta = json.loads((store / "meta.json").read_text(encoding="utf-8"))
    meta["definitions"] = {k: v for k, v in meta["definitions"].items()
                           if v["key"] != case_migrations.DUE_INDEX}
    (store / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    engine = Engine(load_config(config_path), converter=converter, clock=clock)
    assert (store / "index" / "due" / "rectification" / "2027-02.json").is_file()
    assert [(d["id"], d["deadline"]) for d in engine.due(within=90, actor="wang")] == before
    # a follow-up done moves the customer to its new month; a loss takes it out
    follow(engine, customer, "B", day="2026-11-26", next_day="2026-12-08")
    assert [d["id"] for d in engine.due(within=90, actor="wang")] == [customer, item]
    assert customer not in json.loads((store / "index" / "due" / "customer" / "2026-11.json")
                                      .read_text(encoding="utf-8"))
    engine.fire(customer, "request_lost", "zhang", {"lost_reason": "价格因素", "lost_note": "预算"})
    engine.fire(customer, "approve_lost", "wang")
    assert [d["id"] for d in engine.due(within=90, actor="wang")] == [item]
    engine.close()


# --- the rota (轮岗制排班 / 当班记录) ----------------------------------------------------------

def test_new_visitors_go_round_the_rota_and_returning_ones_to_their_consultant(engine, clock):
    duty = engine.create("duty", {"on_duty": [{"consultant": "li"}, {"consultant": "zhang"}]},
                         "wang").id
    with pytest.raises(PermissionDenied):
        engine.create("duty", {"on_duty": [{"consultant": "li"}]}, "zhang")   # the manager's
    made = [walk_in(engine, customer_name=f"新客{i}", customer_mobile=f"1370000000{i}",
                    arrived_at=f"2026-11-26T09:0{i}") for i in range(3)]
    assert [engine.case(m.id, actor="wang")["data"]["consultant"] for m in made] == \
        ["li", "zhang", "li"]
    # their new files are theirs too
    assert engine.case(made[0].party, actor="li")["data"]["consultant"] == "li"
    # a returning customer goes to his own consultant, and does not take a turn
    back = walk_in(engine, customer_name=None, customer_mobile="13700000001",
                   arrived_at="2026-11-26T10:00")
    assert engine.case(back.id, actor="wang")["data"]["consultant"] == "zhang"
    # a visitor with no number, no one named: the next turn (zhang)
    anon = walk_in(engine, customer_name=None, customer_mobile=None, gender=None,
                   arrived_at="2026-11-26T10:05")
    assert engine.case(anon.id, actor="wang")["data"]["consultant"] == "zhang"
    record = engine.case(duty, actor="wang")["data"]["received"]
    assert [(r["visit"], r["consultant"]) for r in record] == [
        (made[0].id, "li"), (made[1].id, "zhang"), (made[2].id, "li"), (anon.id, "zhang")]
    # the manager changes the order at noon: the next turn follows the new order
    engine.fire(duty, "edit", "wang", {"on_duty": [{"consultant": "zhang"}, {"consultant": "li"}]})
    nxt = walk_in(engine, customer_name="午后客", customer_mobile="13700000009",
                  arrived_at="2026-11-26T10:20")
    assert engine.case(nxt.id, actor="wang")["data"]["consultant"] == "li"   # after zhang
    # no rota for a day: the desk names the consultant itself, nothing is guessed
    other_day = walk_in(engine, customer_name="昨日客", customer_mobile="13700000010",
                        arrived_at="2026-11-25T16:00")
    assert engine.case(other_day.id, actor="wang")["data"].get("consultant") is None


SOLD = '{ label = "当月销售总量", cumulative = "展厅销售台数" }'
NOTE = '{ label = "备注", blank = true }'
RATE = '{ label = "展厅销售率", ratio = ["展厅销售台数", "来店客户批数"] }'


@pytest.mark.parametrize("old, new, key, words", [
    (SOLD, SOLD.replace("展厅销售台数", "展厅销售数"), "tallies.traffic.columns[6].cumulative",
     ['"展厅销售数" 应为写在它前面的计数列', "展厅销售台数"]),
    (SOLD, SOLD.replace("展厅销售台数", "展厅销售率"), "tallies.traffic.columns[6].cumulative",
     ['"展厅销售率" 应为写在它前面的计数列']),
    (SOLD, SOLD.replace(" }", ', date_field = "arrived_at" }'),
     "tallies.traffic.columns[6].cumulative", ["cumulative 列不计数，不能再写 date_field"]),
    (NOTE, NOTE.replace(" }", ', per_slot = true }'), "tallies.traffic.columns[8].blank",
     ["blank 列不计数"]),
    (NOTE, NOTE.replace(" }", ', cumulative = "接到订单数" }'),
     "tallies.traffic.columns[8].blank", ["cumulative 与 blank 不能写在同一列"]),
    (RATE, RATE.replace('"来店客户批数"', '"当月销售总量"'), "tallies.traffic.columns[7].ratio",
     ["两列须是写在它前面的计数列"]),
    ('{ label = "来店成交率", ratio = ["签约", "来店/来电"] },',
     '{ label = "来店成交率", ratio = ["签约", "来店/来电"] },\n  '
     '{ label = "累计交车", cumulative = "交车" },', "tallies.funnel.columns[12].cumulative",
     ['累计列只用于按天的统计表（rows = "day"）']),
])
def test_a_tally_column_mistake_names_the_key(tmp_path, old, new, key, words):
    """当月销售总量 and 备注 are generic column options (cumulative, blank) checked when the
    workflow files load."""
    from helpers import shipped_edit_error

    error = shipped_edit_error(tmp_path, "reception.toml", old, new)
    assert error.details["key"] == key, error.message
    for word in words:
        assert word in error.message, error.message


def test_the_counting_reports_carry_a_native_chart(engine, clock, tmp_path):
    """The xlsx of a counting report has an Excel chart drawn from its count columns."""
    import zipfile
    from datetime import date as day_

    _busy_month(engine, clock)
    out = engine.report("funnel", day_(2026, 11, 1), day_(2026, 11, 30), formats=("xlsx",),
                        out_dir=tmp_path, actor="wang")
    with zipfile.ZipFile(out["files"]["xlsx"]) as xlsx:
        charts = [n for n in xlsx.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 1
        xml = xlsx.read(charts[0]).decode("utf-8")
    assert "<barChart>" in xml and xml.count("<ser>") == 7    # the seven counts
    assert "$A$4:$A$5" in xml                 # the two consultants, not the 合计 row
    traffic = engine.report("traffic", day_(2026, 11, 1), day_(2026, 11, 30), formats=("xlsx",),
                            out_dir=tmp_path / "t", actor="wang")
    with zipfile.ZipFile(traffic["files"]["xlsx"]) as xlsx:
        xml = xlsx.read("xl/charts/chart1.xml").decode("utf-8")
    # under the two header rows: the 30 days, each line named by its count
    assert "<lineChart>" in xml and "$A$5:$A$34" in xml and xml.count("<ser>") == 6
    assert "来店留有客户资料数" in xml and "展厅销售台数" in xml and "当月销售总量" not in xml


def test_a_referred_visitor_goes_to_the_referrers_consultant(engine, clock):
    """老客户转介绍: the visitor a customer referred goes to that customer's consultant, not to
    the rota's next, and the new file names the referrer."""
    old = walk_in(engine, consultant="zhang").party          # 王建华, zhang's
    engine.create("duty", {"on_duty": [{"consultant": "li"}, {"consultant": "zhang"}]}, "wang")
    made = walk_in(engine, customer_name="王建华的同事", customer_mobile="13755556666",
                   source="老客户转介绍", referred_by="13600001111",
                   arrived_at="2026-11-26T10:15")
    assert engine.case(made.id, actor="wang")["data"]["consultant"] == "zhang"
    file = engine.case(made.party, actor="zhang")
    assert file["data"]["consultant"] == "zhang" and file["data"]["referrer"] == f"{old} 王建华"
    # a referrer's number nobody has: the rota decides (li is first)
    other = walk_in(engine, customer_name="路人", customer_mobile="13755557777",
                    referred_by="13999999999", arrived_at="2026-11-26T10:20")
    assert engine.case(other.id, actor="wang")["data"]["consultant"] == "li"


def test_the_timer_frees_a_customer_nobody_followed_up(engine, clock):
    """After ownership_lapse_days without a follow-up, dealerdocs tick takes the consultant off
    the file (as system, in its audit trail); the next registration gives the customer to
    whoever receives them."""
    customer = walk_in(engine, consultant="zhang").party
    follow(engine, customer, "C", next_day="2026-12-20")
    clock.advance(days=30)
    # 30 days: still zhang's, but the follow-up due on 12-20 was missed (written once)
    assert [t["trigger"] for t in engine.tick() if t["case"] == customer] == ["miss_follow_up"]
    clock.advance(days=1)
    fired = [t for t in engine.tick() if t["case"] == customer]
    assert [t["trigger"] for t in fired] == ["release"]
    file = engine.case(customer, actor="wang")
    assert file["data"].get("consultant") is None and file["data"]["released_on"] == "2026-12-27"
    assert file["data"].get("next_follow_up") is None and file["state"] == "c"
    assert file["history"][-1]["actor"] == "system"
    taken = walk_in(engine, actor="li", arrived_at="2026-12-27T09:00")
    assert taken.party == customer
    file = engine.case(customer, actor="wang")
    assert file["data"]["consultant"] == "li" and "zhang" not in file["owners"]


# --- the store's settings: where the card opens, how far ownership is checked --------------------

def _engine_with_policy(config_path, converter, clock, **policy):
    from engine.config import load_config
    from engine.engine import Engine

    text = config_path.read_text(encoding="utf-8")
    for key, value in policy.items():      # the key's line in config.toml's [policy]
        text, count = re.subn(rf'(?m)^{key} = .*$', f'{key} = "{value}"', text)
        assert count == 1, key
    config_path.write_text(text, encoding="utf-8")
    return Engine(load_config(config_path), converter=converter, clock=clock)


def test_the_card_opens_at_the_stores_level(config_path, converter, clock):
    """policy.card_min_level: a brand that opens cards at B; a C follow-up opens none."""
    engine = _engine_with_policy(config_path, converter, clock, card_min_level="B")
    try:
        customer = walk_in(engine, consultant="zhang").party
        follow(engine, customer, "C", next_day="2026-12-20")
        assert engine.case(customer, actor="zhang")["data"].get("card_opened_on") is None
        with pytest.raises(StateError) as blocked:
            engine.fire(customer, "print_card", "zhang")
        assert "客户尚未达到建卡级别（B 级及以上）" in blocked.value.message
        clock.advance(days=2)
        follow(engine, customer, "B", day="2026-11-28", next_day="2026-12-05")
        assert engine.case(customer, actor="zhang")["data"]["card_opened_on"] == "2026-11-28"
        clock.advance(days=3)
        follow(engine, customer, "A", day="2026-12-01", next_day="2026-12-05")
        assert engine.case(customer, actor="zhang")["data"]["card_opened_on"] == "2026-11-28"
    finally:
        engine.close()


def test_a_level_the_policy_does_not_know_is_refused_at_start(config_path, converter, clock):
    from engine.errors import ConfigError

    with pytest.raises(ConfigError) as bad:
        _engine_with_policy(config_path, converter, clock, card_min_level="E")
    assert "policy.card_min_level 应为 H / A / B / C 之一，收到 \"E\"" in bad.value.message


def test_ownership_checked_per_consultant_lets_a_colleague_receive(config_path, converter,
                                                                   clock):
    """policy.owner_check = "consultant" (the Chery CRM's check within the consultant's own
    customers): li registers zhang's customer; the visit is li's, the file stays zhang's, li
    may read it; the default ("store") refuses, as the tests above show."""
    engine = _engine_with_policy(config_path, converter, clock, owner_check="consultant")
    try:
        customer = walk_in(engine, consultant="zhang").party
        visit = walk_in(engine, actor="li", arrived_at="2026-11-26T10:20")
        assert visit.party == customer
        assert engine.case(visit.id, actor="li")["data"]["consultant"] == "li"
        file = engine.case(customer, actor="li")
        assert file["data"]["consultant"] == "zhang" and set(file["owners"]) >= {"zhang", "li"}
        assert "客户由 张伟（zhang） 跟进；本次由 李娜（li） 接待" in file["history"][-1]["note"]
        assert [c["id"] for c in engine.cases("customer", actor="zhang")] == [customer]
    finally:
        engine.close()


def test_a_missed_follow_up_is_written_once_and_listed_for_the_manager(engine, clock, tmp_path):
    from datetime import date as day_

    customer = walk_in(engine, consultant="zhang").party
    follow(engine, customer, "A", next_day="2026-12-01")
    clock.advance(days=5)                                     # 12-01: due today, not missed
    assert [t for t in engine.tick() if t["case"] == customer] == []
    clock.advance(days=1)                                     # 12-02: missed
    assert [t["trigger"] for t in engine.tick() if t["case"] == customer] == ["miss_follow_up"]
    assert engine.tick() == []                                # once per missed date
    file = engine.case(customer, actor="wang")
    assert file["data"]["missed_for"] == "2026-12-01" and file["data"]["missed_count"] == 1
    assert file["history"][-1]["actor"] == "system" and file["state"] == "a"
    # followed up late, the next date missed too: a second one
    follow(engine, customer, "A", day="2026-12-02", next_day="2026-12-04")
    clock.advance(days=3)
    assert [t["trigger"] for t in engine.tick()] == ["miss_follow_up"]
    assert engine.case(customer, actor="wang")["data"]["missed_count"] == 2
    out = engine.report("missed", day_(2026, 12, 1), day_(2026, 12, 31), formats=("xlsx",),
                        out_dir=tmp_path / "wang", actor="wang")
    sheet = load_workbook(out["files"]["xlsx"]).active
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    header = rows.index(next(r for r in rows if r[0] == "档案号"))
    assert rows[header + 1][:2] == [customer, "王建华"] and "136****1111" in rows[header + 1]
    assert rows[header + 1][5].date() == day_(2026, 12, 4) and rows[header + 1][8] == 2
    # a colleague's register has none of zhang's customers
    theirs = engine.report("missed", day_(2026, 12, 1), day_(2026, 12, 31), formats=("xlsx",),
                           out_dir=tmp_path / "li", actor="li")
    assert customer not in str([[c.value for c in r]
                                for r in load_workbook(theirs["files"]["xlsx"]).active.iter_rows()])


def test_a_released_customer_is_in_the_pool_for_any_consultant_to_take(engine, clock):
    """公共客户池: a customer with no consultant is seen by every consultant (masked), and the
    first to take it has it; the one who let it lapse no longer sees it; the desk never."""
    customer = walk_in(engine, consultant="zhang").party
    mine = walk_in(engine, consultant="li", customer_name="赵倩", customer_mobile="13700002222").party
    assert [c["id"] for c in engine.cases("customer", actor="li")] == [mine]
    with pytest.raises(StateError):             # zhang's own: nothing to take
        engine.fire(customer, "take", "zhang")
    clock.advance(days=20)                      # li keeps hers; zhang lets his lapse
    follow(engine, mine, "C", day="2026-12-16", next_day="2026-12-30", actor="li")
    clock.advance(days=11)
    assert [(t["case"], t["trigger"]) for t in engine.tick()] == [(customer, "release")]
    assert {c["id"] for c in engine.cases("customer", actor="li")} == {customer, mine}
    pooled = engine.case(customer, actor="li")
    assert pooled["data"]["mobile"] == "136****1111" and pooled["owners"] == ["xu"]   # the desk
    assert customer in {c["id"] for c in engine.cases("customer", actor="zhang")}  # as the pool
    with pytest.raises(NotFoundError):
        engine.case(customer, actor="xu")
    with pytest.raises(NotFoundError):
        engine.case(mine, actor="zhang")        # li's own is not in the pool
    engine.fire(customer, "take", "li")
    file = engine.case(customer, actor="li")
    assert file["data"]["consultant"] == "li" and file["owners"] == ["xu", "li"]
    assert file["history"][-1]["trigger"] == "take"
    with pytest.raises(NotFoundError):
        engine.case(customer, actor="zhang")
    assert [c["id"] for c in engine.cases("customer", actor="zhang")] == []
    with pytest.raises(NotFoundError):          # taken: not anyone's to take again
        engine.fire(customer, "take", "zhang")


def test_the_registers_level_is_the_customers_follow_up(engine, clock):
    """Completing a register row with 追踪后级别 H/A/B/C records the customer's follow-up (the
    card's row, the level, the next date; the level's interval checked); N leaves the file as
    it is; a customer whose level takes no follow-up is left, and the completion says so."""
    visit = walk_in(engine, consultant="zhang", arrived_at="2026-11-26T10:05")
    customer = visit.party
    row = {"reception_notes": "看瑞虎8 PRO，约周末试驾", "outcome": "继续跟进",
           "left_at": "2026-11-26T10:40"}
    with pytest.raises(InputError) as no_date:
        engine.fire(visit.id, "complete", "zhang", {**row, "level_after": "A"})
    assert "追踪后级别为 A 级时，请填写下次跟进日期" in no_date.value.message
    with pytest.raises(InputError) as too_late:          # A: within 7 days (customer.toml)
        engine.fire(visit.id, "complete", "zhang",
                    {**row, "level_after": "A", "next_follow_up": "2026-12-10"})
    assert "A 级客户最迟 7 天内再跟进：下次跟进日期应不晚于 2026年12月3日" in too_late.value.message
    assert engine.case(visit.id, actor="wang")["state"] == "registered"     # nothing written
    assert engine.case(customer, actor="wang")["state"] == "n"

    engine.fire(visit.id, "complete", "zhang",
                {**row, "level_after": "A", "next_follow_up": "2026-12-01"})
    file = engine.case(customer, actor="zhang")
    assert file["state"] == "a" and file["data"]["next_follow_up"] == "2026-12-01"
    assert [(r["date"], r["method"], r["content"], r["level_after"], r["by"])
            for r in file["data"]["follow_ups"]] == [
        ("2026-11-26", "到店", "看瑞虎8 PRO，约周末试驾", "A 级", "zhang")]
    assert file["history"][-1]["trigger"] == "follow_up"
    assert f"由 {visit.id} 完善登记联动" in file["history"][-1]["note"]

    # a call the next day, level N: the file is not touched
    call = walk_in(engine, kind="来电", customer_name=None, arrived_at="2026-11-26T10:20")
    engine.fire(call.id, "complete", "zhang", {"reception_notes": "问价", "outcome": "继续跟进",
                                               "level_after": "N"})
    assert len(engine.case(customer, actor="zhang")["data"]["follow_ups"]) == 1

    # a customer who ordered (O) visits; the consultant writes H: the row completes, the file
    # stays O, and the completion says why
    engine.fire(customer, "order", "wang")
    again = walk_in(engine, customer_name=None, arrived_at="2026-11-26T10:25")
    done = engine.fire(again.id, "complete", "zhang",
                       {"reception_notes": "来问提车时间", "outcome": "继续跟进",
                        "level_after": "H", "next_follow_up": "2026-11-28"})
    assert done.state == "completed"
    assert engine.case(customer, actor="wang")["state"] == "o"
    events = engine.case(again.id, actor="wang")["history"]
    assert "客户档案 K-1 处于「O 级（已订车）」，未记录跟进" in str(events[-1])


def test_a_second_file_for_the_same_mobile_is_refused(engine):
    """One customer's file per mobile: making one by hand for a number that has a file names
    that file and its consultant (masked), and writes nothing."""
    customer = walk_in(engine, consultant="zhang").party
    with pytest.raises(InputError) as refused:
        engine.create("customer", {"name": "王建华", "mobile": "136 0000 1111"}, "li")
    assert refused.value.message == ("联系电话 136****1111 已有客户档案 K-1（销售顾问：张伟（zhang））；"
                                     "请在该档案上继续（登记来店、记录跟进）")
    assert refused.value.details["field"] == "mobile"
    assert [c["id"] for c in engine.cases("customer", actor="wang")] == [customer]
