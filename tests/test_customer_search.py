"""Finding a customer's file by name, mobile, ID number or plate (``dealerdocs find``), and the
customer page's one timeline (issue 15, "Customers at the centre"). End to end on a real store:
the quote, contract and delivery documents are rendered and converted for real."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from engine import case_migrations
from engine.errors import InputError, NotFoundError
from helpers import contract_data, example, sign_contract

MOBILE, ID_NUMBER, PLATE = "13800138000", "11010519491231002X", "京A12345"


def walk_in(engine, actor="xu", **changes):
    data = {"kind": "来店", "arrived_at": "2026-11-26T10:05", "party_size": 2,
            "customer_name": "刘晓明", "customer_mobile": MOBILE, "gender": "男",
            "intended_model": "瑞虎8 PRO", "source": "网络", **changes}
    return engine.create("reception", {k: v for k, v in data.items() if v is not None}, actor)


def follow(engine, customer, level, *, day="2026-11-26", next_day, actor="zhang"):
    return engine.fire(customer, "follow_up", actor, {
        "fu_date": day, "fu_method": "电话", "fu_content": "介绍瑞虎8 PRO 配置",
        "fu_feedback": "关心油耗", "fu_response": "约周末试驾", "new_level": level,
        "next_follow_up": next_day})


def sold(engine, clock) -> dict[str, str]:
    """刘晓明, zhang's customer: a visit, a follow-up, a quote, a signed contract (his ID
    number on it) and a delivery whose car got plate 京A12345."""
    customer = walk_in(engine, consultant="zhang").party
    clock.advance(minutes=30)
    follow(engine, customer, "A", next_day="2026-12-01")
    clock.advance(minutes=30)
    q = engine.create("quote", {k: v for k, v in example("quote").items()
                                if k not in ("customer_name", "customer_mobile")},
                      "zhang", customer=customer).id
    engine.fire(q, "issue", "zhang")
    engine.fire(q, "accept", "zhang")
    clock.advance(minutes=30)
    c = engine.create("contract", contract_data(engine.clock().date()), "zhang", source=q).id
    sign_contract(engine, c)
    clock.advance(minutes=30)
    d = engine.create("delivery", example("delivery", delivery_date="2026-11-29",
                                          pdi_date="2026-11-26"), "zhang", source=c).id
    engine.fire(d, "pdi", "zhang")
    engine.fire(d, "deliver", "zhang", {"plate_number": "京A 12345"})
    return {"customer": customer, "quote": q, "contract": c, "delivery": d}


def other_customer(engine):
    """赵倩, li's customer."""
    return walk_in(engine, consultant="li", customer_name="赵倩", customer_mobile="13700002222",
                   arrived_at="2026-11-26T09:40").party


def found(engine, query, actor):
    return [r["id"] for r in engine.find(query, actor=actor)]


# --- finding a customer ----------------------------------------------------------------------------

def test_a_customer_is_found_by_name_mobile_id_and_plate_and_by_nobody_else(engine, clock):
    ids = sold(engine, clock)
    customer = ids["customer"]
    theirs = other_customer(engine)

    # part of a name; the full mobile however it is typed; the ID on his contract (lower-case
    # x); the plate of his delivery, with a dot and a space
    assert found(engine, "刘晓", "zhang") == [customer]
    for query in (MOBILE, "138-0013-8000", "+86 138 0013 8000"):
        assert found(engine, query, "zhang") == [customer], query
    by_id = engine.find(ID_NUMBER.lower(), actor="zhang")
    assert [r["id"] for r in by_id] == [customer]
    assert {(m["case"], m["label"]) for m in by_id[0]["matches"]} == {
        (ids["contract"], "证件号码"), (ids["delivery"], "证件号码")}
    by_plate = engine.find("京A·12345", actor="zhang")
    assert [r["id"] for r in by_plate] == [customer]
    assert [(m["case"], m["field"]) for m in by_plate[0]["matches"]] == [
        (ids["delivery"], "plate_number")]
    # exact only: a part of a number finds nobody (a list of customers is not a phone book)
    assert found(engine, "1380013", "zhang") == []
    assert found(engine, "A12345", "zhang") == []
    assert found(engine, "赵倩", "zhang") == []                 # li's customer

    # what comes back is masked: finding someone by a full number is not a reveal
    text = json.dumps(engine.find(MOBILE, actor="wang"), ensure_ascii=False)
    assert MOBILE not in text and ID_NUMBER not in text and "138****8000" in text
    assert by_id[0]["contact"] == {"联系电话": "138****8000"}
    assert by_id[0]["assignee_label"] == "张伟（zhang）" and by_id[0]["state_label"] == "D 级（已交车）"
    assert "reveal" not in {e["trigger"] for e in engine.case(customer, actor="wang")["history"]}

    # a colleague finds none of zhang's customer, however asked; her own she finds
    for query in ("刘晓明", MOBILE, ID_NUMBER, PLATE, ids["contract"]):
        assert found(engine, query, "li") == [], query
    assert found(engine, "13700002222", "li") == [theirs]
    # the manager finds both; the front desk and the document controller no customer file
    assert found(engine, "孙", "wang") == []                     # no name or summary holds 孙
    assert set(found(engine, "刘", "wang")) == {customer}
    for actor in ("xu", "zhao"):
        for query in ("刘晓明", MOBILE, ID_NUMBER, PLATE, "赵倩"):
            assert found(engine, query, actor) == [], (actor, query)
    with pytest.raises(InputError) as empty:
        engine.find("   ", actor="zhang")
    assert "请输入要查找的" in empty.value.message


def test_an_old_store_gets_its_search_index_when_opened(engine, clock, config_path, converter):
    """A store from before the search index (no index/search, no note in meta.json): its
    deliveries' plates are indexed once when it is opened, and found."""
    from engine import Engine, load_config

    ids = sold(engine, clock)
    store = engine.store.directory
    assert (store / "index" / "search").is_dir()
    engine.close()
    import shutil

    shutil.rmtree(store / "index" / "search")
    meta = json.loads((store / "meta.json").read_text(encoding="utf-8"))
    assert any(v["key"] == case_migrations.SEARCH_INDEX for v in meta["definitions"].values())
    meta["definitions"] = {k: v for k, v in meta["definitions"].items()
                           if v["key"] != case_migrations.SEARCH_INDEX}
    (store / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    again = Engine(load_config(config_path), converter=converter, clock=clock)
    try:
        assert (store / "index" / "search").is_dir()
        assert found(again, PLATE, "zhang") == [ids["customer"]]
        with again.store.snapshot() as tx:
            assert tx.definition(case_migrations.SEARCH_INDEX) == "delivery.plate_number,stock.vin"
        assert case_migrations.build_search_index(again.store, again.workflows) == 0   # once
    finally:
        again.close()


@pytest.mark.parametrize("field, key, words", [
    ('[fields.vehicle_price]\ntype = "money"\nlabel = "价格"\nsearch = true',
     "fields.vehicle_price.search", ["只有 string 类型的字段可以标 search = true"]),
    ('[fields.phone]\ntype = "string"\nlabel = "电话"\npersonal = "mobile"\nsearch = true',
     "fields.phone.search", ["本来就能按完整号码查找"]),
    ('[fields.note]\ntype = "string"\nlabel = "备注"\ntimeline = { date = "d", text = "x" }',
     "fields.note.timeline", ["只有 table 类型的字段可以有 timeline"]),
    ('[fields.calls]\ntype = "table"\nlabel = "电话"\ntimeline = { date = "what", text = "{{ what }}" }\n'
     '[fields.calls.columns.what]\ntype = "string"\nlabel = "内容"',
     "fields.calls.timeline.date", ['"what" 应为本表的 date 或 datetime 列']),
    ('[fields.calls]\ntype = "table"\nlabel = "电话"\ntimeline = { date = "on", text = "{{ who }}" }\n'
     '[fields.calls.columns.on]\ntype = "date"\nlabel = "日期"',
     "fields.calls.timeline.text", ["引用了本表没有的列 who"]),
])
def test_mistakes_in_search_and_timeline_name_their_key(tmp_path, field, key, words):
    from helpers import ROOT, definition_error

    quote = (ROOT / "workflows" / "quote.toml").read_text(encoding="utf-8")
    at = quote.index("\n[fields.")
    error = definition_error(tmp_path, {"quote.toml": quote[:at] + "\n" + field + "\n" + quote[at:]},
                             with_product=True)
    assert error.details["key"] == key, error.message
    for word in words:
        assert word in error.message, error.message


# --- the customer's timeline -------------------------------------------------------------------

def test_the_customer_page_timeline_merges_visits_follow_ups_and_cases_newest_first(engine, clock):
    customer = walk_in(engine, consultant="zhang").party          # V-1, 10:30
    clock.advance(minutes=30)
    follow(engine, customer, "A", next_day="2026-12-01")          # 11:00
    clock.advance(minutes=30)
    q = engine.create("quote", {k: v for k, v in example("quote").items()
                                if k not in ("customer_name", "customer_mobile")},
                      "zhang", customer=customer).id              # 11:30
    issued = engine.fire(q, "issue", "zhang")
    number = issued.documents[0].number

    lines = engine.timeline(customer, actor="zhang")
    assert [line["at"] for line in lines] == sorted((line["at"] for line in lines), reverse=True)
    said = [(line["case"], line["what"], line["change"], line["detail"], line["actor_label"])
            for line in lines]
    assert said == [
        (q, "出具报价单", "草稿 → 已出具", "", "张伟（zhang）"),
        (q, "新建商谈报价单", "草稿", "", "张伟（zhang）"),
        (customer, "记录跟进", "N 级（新接触） → A 级",
         "电话跟进：介绍瑞虎8 PRO 配置；客户反馈：关心油耗；应对：约周末试驾", "张伟（zhang）"),
        ("V-1", "新建展厅来电/店登记", "已登记", "", "徐静（xu）"),
        (customer, "新建客户档案", "N 级（新接触）", "由展厅来电/店登记 V-1 登记", "徐静（xu）"),
    ]
    assert lines[0]["documents"] == [{"number": number, "title": "商谈报价单", "link": True}]
    assert lines[0]["at"] == "2026-11-26T11:30:00+08:00" and all(line["link"] for line in lines)
    # a page that is not a customer's file has its own events only
    assert {line["case"] for line in engine.timeline(q, actor="zhang")} == {q}

    # a month with no follow-up: li receives him; zhang's visit and quote are not hers to open
    clock.advance(days=31)
    walk_in(engine, actor="li", arrived_at="2026-12-27T10:00")
    lines = engine.timeline(customer, actor="li")
    unseen = [line for line in lines if line["case"] in ("V-1", q)]
    assert [(line["case"], line["what"], line["detail"], line["link"], line["actor"],
             line["documents"]) for line in unseen] == [
        (q, "新建商谈报价单", "（无权查看）", False, None, []),
        ("V-1", "新建展厅来电/店登记", "（无权查看）", False, None, [])]
    assert lines[0]["case"] == "V-2" and lines[0]["actor_label"] == "李娜（li）"
    assert "原销售顾问 张伟（zhang） 超过期限未跟进" in next(
        line["detail"] for line in lines if line["what"] == "关联案件")
    # and zhang no longer sees the file or its timeline; the desk and doc control never do
    for actor in ("zhang", "xu", "zhao"):
        with pytest.raises(NotFoundError):
            engine.timeline(customer, actor=actor)


# --- the command line --------------------------------------------------------------------------

def test_find_and_timeline_on_the_command_line(dealer, today, cli):
    made = cli(dealer, "new", "reception", "--as", "xu", data={
        "kind": "来店", "customer_name": "刘晓明", "customer_mobile": MOBILE, "consultant": "zhang"})
    customer = made["customer"]
    rows = cli(dealer, "find", "138 0013 8000", "--as", "zhang")
    assert [(r["id"], r["contact"]) for r in rows] == [(customer, {"联系电话": "138****8000"})]
    text = today.run("find", "刘晓明", "--as", "zhang", cwd=dealer).stdout.splitlines()
    assert text[2].split()[:6] == [customer, "客户档案", "N", "级（新接触）", "刘晓明", "138****8000"]
    nothing = today.run("find", MOBILE, "--as", "li", cwd=dealer).stdout
    assert nothing.startswith(f"（没有找到“{MOBILE}”") and MOBILE not in nothing.split("”", 1)[1]
    assert today.refused(dealer, "find", " ", "--as", "zhang") == \
        "错误：请输入要查找的客户姓名、手机号、车牌号或证件号"
    lines = cli(dealer, "timeline", customer, "--as", "zhang")
    assert [(e["case"], e["what"]) for e in lines] == [(made["id"], "新建展厅来电/店登记"),
                                                       (customer, "新建客户档案")]
    human = today.run("timeline", customer, "--as", "zhang", cwd=dealer).stdout.splitlines()
    assert "新建客户档案（N 级（新接触））：由展厅来电/店登记 V-1 登记" in human[-1]
    assert "徐静（xu）" in human[-1]
    assert today.refused(dealer, "timeline", customer, "--as", "li").startswith("错误：找不到案件")


# --- the web app and the API -------------------------------------------------------------------

def test_the_search_box_the_api_and_the_customer_page(config_path, converter):
    from engine.web.app import create_app
    from web_support import DEMO_PASSWORD, client, sign_in, web_engine

    eng = web_engine(config_path, converter)
    try:
        today = eng.clock().date()
        customer = walk_in(eng, consultant="zhang", arrived_at=f"{today}T09:00").party
        follow(eng, customer, "B", day=today.isoformat(),
               next_day=(today + timedelta(days=7)).isoformat())
        theirs = walk_in(eng, consultant="li", customer_name="赵倩", customer_mobile="13700002222",
                         arrived_at=f"{today}T09:30").party
        app = create_app(eng)
        pages = {}
        for login in ("zhang", "li", "xu", "zhao", "wang"):
            c = client(app)
            assert sign_in(c, login).status_code == 200
            pages[login] = c
        found_page = pages["zhang"].get("/cases", params={"customer": "138 0013 8000"})
        assert found_page.status_code == 200 and "找到的客户档案" in found_page.text
        assert f'href="/cases/{customer}"' in found_page.text and "138****8000" in found_page.text
        assert MOBILE not in found_page.text.replace('value="138 0013 8000"', "")
        assert theirs not in found_page.text
        by_name = pages["zhang"].get("/cases", params={"customer": "刘晓", "workflow": "customer"})
        assert f'href="/cases/{customer}"' in by_name.text
        for login in ("li", "xu", "zhao"):
            page = pages[login].get("/cases", params={"customer": MOBILE})
            assert f"/cases/{customer}" not in page.text, login
            assert "找到的客户档案" not in page.text, login
        assert f"/cases/{theirs}" in pages["wang"].get("/cases", params={"customer": "赵倩"}).text

        # the customer's page: one timeline, newest first, the follow-up's words on its line
        file_page = pages["zhang"].get(f"/cases/{customer}")
        assert "客户动态" in file_page.text and 'id="timeline"' in file_page.text
        timeline = file_page.text[file_page.text.index('id="timeline"'):]
        assert timeline.index("记录跟进") < timeline.index("新建展厅来电/店登记")
        assert "电话跟进：介绍瑞虎8 PRO 配置；客户反馈：关心油耗" in timeline
        assert "张伟（zhang）" in timeline and 'href="/cases/V-1"' in timeline
        # a case that is not a customer's file keeps its plain history
        assert "客户动态" not in pages["zhang"].get("/cases/V-1").text

        api = client(app)
        tokens = {login: api.post("/api/token", json={"login": login, "password": DEMO_PASSWORD}
                                  ).json()["token"] for login in ("zhang", "li")}
        h = {login: {"Authorization": f"Bearer {t}"} for login, t in tokens.items()}
        rows = api.get("/api/find", params={"q": MOBILE}, headers=h["zhang"]).json()
        assert [r["id"] for r in rows] == [customer] and MOBILE not in json.dumps(rows)
        assert api.get("/api/find", params={"q": MOBILE}, headers=h["li"]).json() == []
        empty = api.get("/api/find", params={"q": ""}, headers=h["zhang"])
        assert empty.status_code == 422 and empty.json()["field"] == "query"
        lines = api.get(f"/api/cases/{customer}/timeline", headers=h["zhang"]).json()
        assert [line["what"] for line in lines][:1] == ["记录跟进"]
        assert api.get(f"/api/cases/{customer}/timeline", headers=h["li"]).status_code == 404
    finally:
        eng.close()
