"""A dealer group with two stores in one store (issue 17): each case belongs to one store, a
consultant of one store cannot see the other's cases, numbers carry the store's prefix and
count per store, and the group manager reads every store, read-only. On both backends."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from engine import Engine, load_config
from engine.config import GROUP
from engine.errors import ConfigError, NotFoundError, PermissionDenied
from helpers import make_group_dir, pdf_text, use_database


@pytest.fixture(params=["folder", "postgresql"])
def group(request, tmp_path, converter, clock):
    """The group's engine (its read-only view of every store), on each backend."""
    path = make_group_dir(tmp_path / "group")
    if request.param == "postgresql":
        use_database(path, request.getfixturevalue("postgres").new_database())
    eng = Engine(load_config(path), converter=converter, clock=clock)
    yield eng
    eng.close()


def issued_quote(eng: Engine, data: dict, actor: str) -> tuple[str, str]:
    """A quote ``actor`` (a consultant of ``eng``'s store) makes and issues: (case, number)."""
    case_id = eng.create("quote", {**data, "consultant": actor}, actor).id
    number = eng.fire(case_id, "issue", actor).documents[0].number
    return case_id, number


def test_each_store_numbers_its_own_documents_and_prints_its_own_company(group, quote_data):
    bj, sh = group.branch("BJ01"), group.branch("SH01")

    bj_case, bj_number = issued_quote(bj, quote_data, "zhang")
    sh_case, sh_number = issued_quote(sh, {**quote_data, "customer_mobile": "13900139000"}, "he")
    _, bj_second = issued_quote(bj, {**quote_data, "customer_mobile": "13700137000"}, "zhang")

    assert (bj_number, bj_second, sh_number) == (
        "BJ01-BJ-2026-000001", "BJ01-BJ-2026-000002", "SH01-BJ-2026-000001")
    assert bj_case != sh_case   # case ids stay unique across the group's stores
    sh_pdf = pdf_text(sh.document_file(sh_number, "pdf", actor="he"))
    assert "上海星辰汽车销售服务有限公司" in sh_pdf and "SH01-BJ-2026-000001" in sh_pdf
    assert "北京星辰" not in sh_pdf
    assert "北京星辰汽车销售服务有限公司" in pdf_text(bj.document_file(bj_number, "pdf", actor="zhang"))
    assert group.verify() == []


def test_a_consultant_of_one_store_cannot_see_the_other_stores_cases(group, quote_data):
    bj, sh = group.branch("BJ01"), group.branch("SH01")
    bj_case, bj_number = issued_quote(bj, quote_data, "zhang")

    # 马超 manages SH01: every case of his store, none of BJ01's
    with pytest.raises(NotFoundError):
        sh.case(bj_case, actor="ma")
    with pytest.raises(NotFoundError):
        sh.document(bj_number, actor="ma")
    assert sh.cases(actor="ma") == [] and sh.documents(actor="ma") == []
    assert sh.find("13800138000", actor="ma") == []
    assert sh.register_rows(actor="ma") == []
    # 李娜 sells in both stores: in SH01 she sees nothing of BJ01 either
    assert sh.cases(actor="li") == []
    # 王强 manages BJ01 only: in SH01 he has no role, so he sees and may do nothing
    assert sh.cases(actor="wang") == []
    with pytest.raises(PermissionDenied):
        sh.create("quote", {**quote_data, "consultant": "wang"}, "wang")
    # in BJ01 the case is there for its own manager
    assert [c["id"] for c in bj.cases("quote", actor="wang")] == [bj_case]


def test_the_same_customer_has_a_file_in_each_store(group, quote_data):
    """The customer index is per store: SH01 registering BJ01's customer makes SH01's own
    file (BJ01's owner check does not reach across stores)."""
    bj, sh = group.branch("BJ01"), group.branch("SH01")
    bj_customer = bj.create("quote", {**quote_data, "consultant": "zhang"}, "zhang").party
    sh_customer = sh.create("quote", {**quote_data, "consultant": "he"}, "he").party

    assert bj_customer and sh_customer and bj_customer != sh_customer
    with pytest.raises(NotFoundError):
        sh.case(bj_customer, actor="ma")


def test_the_group_manager_reads_every_store_and_writes_nothing(group, quote_data):
    bj, sh = group.branch("BJ01"), group.branch("SH01")
    bj_case, bj_number = issued_quote(bj, quote_data, "zhang")
    sh_case, sh_number = issued_quote(sh, {**quote_data, "customer_mobile": "13900139000"}, "he")

    assert {c["id"] for c in group.cases(actor="boss")} >= {bj_case, sh_case}
    assert {d["number"] for d in group.documents(actor="boss")} == {bj_number, sh_number}
    bj.dispatch(bj_number, to="客户", dept="销售部", actor="wang")
    sh.dispatch(sh_number, to="客户", dept="销售部", actor="ma")
    assert {row[1] for row in group.register_rows(actor="boss")} == {bj_number, sh_number}
    assert {row[1] for row in sh.register_rows(actor="ma")} == {sh_number}
    viewed = group.case(sh_case, actor="boss")
    assert "*" in viewed["data"]["customer_mobile"]   # masked: no reveal for head office
    with pytest.raises(PermissionDenied):
        group.case(sh_case, actor="boss", reveal=True)
    with pytest.raises(PermissionDenied):
        group.fire(sh_case, "accept", "boss")
    with pytest.raises(PermissionDenied):
        group.create("quote", quote_data, "boss")
    # and in one store's view, the group manager reads that store only
    assert {c["id"] for c in bj.cases(actor="boss")} >= {bj_case}
    assert sh_case not in {c["id"] for c in bj.cases(actor="boss")}


def test_the_group_managers_report_counts_every_store(group, quote_data, tmp_path):
    bj, sh = group.branch("BJ01"), group.branch("SH01")
    issued_quote(bj, quote_data, "zhang")
    issued_quote(sh, {**quote_data, "customer_mobile": "13900139000"}, "he")

    whole = group.report("models_quoted_sold", formats=("xlsx",), out_dir=tmp_path / "g",
                         actor="boss")
    one = sh.report("models_quoted_sold", formats=("xlsx",), out_dir=tmp_path / "s", actor="ma")
    assert quotes_counted(whole["files"]["xlsx"]) == 2
    assert quotes_counted(one["files"]["xlsx"]) == 1


def quotes_counted(xlsx: str) -> int:
    """The sum of the 报价单数 column of a report's .xlsx."""
    import openpyxl

    rows = list(openpyxl.load_workbook(xlsx).active.iter_rows(values_only=True))
    header = next(i for i, r in enumerate(rows) if "报价单数" in r)
    column = rows[header].index("报价单数")
    return sum(r[column] for r in rows[header + 1:] if r[0] != "合计")


def test_each_store_has_its_own_policy(group):
    assert group.branch("SH01").config.policy["contract_approval_discount_share"] == Decimal("0.08")
    assert group.branch("BJ01").config.policy["contract_approval_discount_share"] == Decimal("0.05")


def test_a_timer_tick_of_the_group_runs_each_stores_timers_in_that_store(group, quote_data, clock):
    bj, sh = group.branch("BJ01"), group.branch("SH01")
    soon = {**quote_data, "valid_until": "2026-12-10"}
    issued_quote(bj, soon, "zhang")
    issued_quote(sh, {**soon, "customer_mobile": "13900139000"}, "he")
    clock.advance(days=40)   # past both quotes' validity

    done = group.tick()

    expired = {(e["store"], e["case"]) for e in done if e["trigger"] == "expire"}
    assert {s for s, _ in expired} == {"BJ01", "SH01"}
    for store, case_id in expired:
        eng = group.branch(store)
        actor = "wang" if store == "BJ01" else "ma"
        assert eng.case(case_id, actor=actor)["state"] == "expired"


@pytest.mark.parametrize("edit, key, words", [
    ('prefix = "SH01"', "stores.SH01.prefix", ["已用于门店 BJ01"]),
    ('uscc = "91310115MA1K4ABC0Y"', "stores.SH01.uscc", ["不能为空"]),
    ('stores = { SH01 = ["sales"] }', "users.he.stores.XX01", ["没有门店"]),
    ('stores = { SH01 = ["sales_manager"] }', "users.ma.stores.SH01[0]", ["集团角色"]),
])
def test_group_config_mistakes_name_their_key(tmp_path, edit, key, words):
    path = make_group_dir(tmp_path / "g")
    text = path.read_text(encoding="utf-8")
    replacement = {
        'prefix = "SH01"': 'prefix = "BJ01"',
        'uscc = "91310115MA1K4ABC0Y"': 'uscc = ""',
        'stores = { SH01 = ["sales"] }': 'stores = { XX01 = ["sales"] }',
        'stores = { SH01 = ["sales_manager"] }': 'stores = { SH01 = ["group_manager"] }',
    }[edit]
    assert text.count(edit) == 1
    path.write_text(text.replace(edit, replacement), encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert raised.value.details["key"] == key
    for word in words:
        assert word in raised.value.message


def test_roles_per_store_need_stores(tmp_path):
    from helpers import make_dealer_dir

    path = make_dealer_dir(tmp_path / "d")
    path.write_text(path.read_text(encoding="utf-8").replace(
        '[users.li]\nname = "李娜"\nroles = ["sales"]',
        '[users.li]\nname = "李娜"\nstores = { BJ01 = ["sales"] }'), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert "只有写了 [stores" in raised.value.message


def test_a_store_that_is_not_there_is_named(tmp_path):
    config = load_config(make_group_dir(tmp_path / "g"))
    with pytest.raises(ConfigError) as raised:
        config.for_store("GZ01")
    assert "BJ01" in raised.value.message and "SH01" in raised.value.message
    assert config.for_store(GROUP).users["zhang"].roles == []


# --- the web app: a store switcher, every page and API answer limited to the current store ---

@pytest.fixture
def group_web(tmp_path, converter, quote_data):
    """The group's web app (folder store) with a quote issued in each store:
    (a client signed in as a login, {store: (case, number)})."""
    from engine.web.app import create_app
    from web_support import client, sign_in

    eng = Engine(load_config(make_group_dir(tmp_path / "group")), converter=converter)
    made = {"BJ01": issued_quote(eng.branch("BJ01"), quote_data, "zhang"),
            "SH01": issued_quote(eng.branch("SH01"),
                                 {**quote_data, "customer_mobile": "13900139000"}, "he")}
    app = create_app(eng, secret=b"k" * 32)

    def signed_in(login: str | None):
        c = client(app)
        if login:
            sign_in(c, login)
        return c

    yield signed_in, made
    eng.close()


def test_pages_show_the_current_store_only(group_web):
    signed_in, made = group_web
    (bj_case, bj_number), (sh_case, sh_number) = made["BJ01"], made["SH01"]
    c = signed_in("he")

    listed = c.get("/cases").text
    assert sh_case in listed and bj_case not in listed
    assert "上海星辰汽车销售服务有限公司" in c.get("/").text
    assert 'action="/store"' not in c.get("/").text       # one store: no switcher
    assert c.get(f"/cases/{bj_case}").status_code == 404
    assert c.get(f"/documents/{bj_number}").status_code == 404
    assert c.get(f"/documents/{bj_number}/file/pdf").status_code == 404
    assert bj_number not in c.get("/documents").text
    assert c.get(f"/documents/{sh_number}/file/pdf").content.startswith(b"%PDF")
    # a store cookie naming a store he has no role in changes nothing
    c.cookies.set("dealerdocs_store", "BJ01")
    assert bj_case not in c.get("/cases").text


def test_the_store_switcher_moves_a_user_of_two_stores(group_web):
    from web_support import csrf_of

    signed_in, made = group_web
    c = signed_in("li")   # 李娜 sells in both stores: BJ01 first
    home = c.get("/").text
    assert 'action="/store"' in home and "上海星辰汽车销售服务有限公司（SH01）" in home
    assert "北京星辰汽车销售服务有限公司" in home
    assert made["BJ01"][0] not in c.get("/cases").text   # zhang's case: not hers

    switched = c.post("/store", data={"store": "SH01", "_csrf": csrf_of(home)})
    assert switched.status_code == 200
    assert '<option value="SH01" selected>' in switched.text
    assert "上海星辰汽车销售服务有限公司" in switched.text.split("</header>")[0]

    refused = c.post("/store", data={"store": "GZ01", "_csrf": csrf_of(home)})
    assert refused.status_code == 403
    assert c.post("/store", data={"store": "SH01"}).status_code == 403   # no CSRF token


def test_the_group_manager_sees_every_store_and_can_do_nothing(group_web):
    signed_in, made = group_web
    (bj_case, _), (sh_case, sh_number) = made["BJ01"], made["SH01"]
    c = signed_in("boss")

    listed = c.get("/cases?workflow=quote").text
    assert bj_case in listed and sh_case in listed
    for label in ("上海星辰汽车销售服务有限公司（SH01）", "北京星辰汽车销售服务有限公司（BJ01）"):
        assert f'<td data-label="门店">{label}</td>' in listed
    page = c.get(f"/cases/{sh_case}").text
    assert "13900139000" not in page and "139****9000" in page
    assert "/fire/" not in page
    assert c.get(f"/documents/{sh_number}/file/pdf").status_code == 200
    assert "全部门店" in c.get("/").text


def test_the_api_works_in_the_store_its_header_names(group_web):
    signed_in, made = group_web
    c = signed_in(None)
    token = c.post("/api/token", json={"login": "li", "password": "demo-2026"}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}

    assert c.get("/api/me", headers=auth).json()["store"] == "BJ01"
    me = c.get("/api/me", headers={**auth, "X-Dealerdocs-Store": "SH01"}).json()
    assert me["store"] == "SH01" and me["stores"] == ["BJ01", "SH01"]
    sh = c.get("/api/cases?workflow=quote", headers={**auth, "X-Dealerdocs-Store": "SH01"})
    bj_case, sh_case = made["BJ01"][0], made["SH01"][0]
    assert sh.status_code == 200 and bj_case not in sh.text
    assert c.get(f"/api/cases/{bj_case}", headers={**auth, "X-Dealerdocs-Store": "SH01"}
                 ).status_code == 404
    refused = c.get("/api/cases", headers={**auth, "X-Dealerdocs-Store": "GZ01"})
    assert refused.status_code == 403 and "GZ01" in refused.json()["message"]
    assert sh_case not in sh.text   # li sells in SH01 but this is 何静's case: not hers


# --- the command line: --store, or the operator's only store ---------------------------------

def test_the_command_line_works_in_the_operators_store(tmp_path, warm_pool_dir):
    from helpers import cli_json, refused, run_cli, use_pool

    folder = tmp_path / "group"
    use_pool(make_group_dir(folder), warm_pool_dir)
    quote = tmp_path / "quote.json"
    quote.write_text(json.dumps({**json_example("quote"), "consultant": "he"},
                                ensure_ascii=False), encoding="utf-8")

    made = cli_json(folder, "new", "quote", "--data", str(quote), "--as", "he")
    issued = cli_json(folder, "fire", made["id"], "issue", "--as", "he")
    assert issued["documents"][0]["number"] == "SH01-BJ-2026-000001"
    # 王强 manages BJ01 only: the command works in BJ01, where the case is not
    assert "找不到案件" in refused(folder, "show", made["id"], "--as", "wang")
    # 李娜 sells in both stores: she must say which
    assert "--store" in refused(folder, "list", "--as", "li")
    assert cli_json(folder, "list", "--as", "li", "--store", "SH01") == []  # 何静's, not hers
    # the group manager reads every store
    assert made["id"] in {c["id"] for c in cli_json(folder, "list", "--as", "boss")}
    assert "没有角色" in refused(folder, "list", "--as", "he", "--store", "BJ01")
    assert "GZ01" in refused(folder, "list", "--as", "boss", "--store", "GZ01")
    run_cli("verify", cwd=folder)


def json_example(name: str) -> dict:
    from helpers import ROOT
    return json.loads((ROOT / "examples" / f"{name}.json").read_text(encoding="utf-8"))


def test_a_store_that_becomes_a_group_keeps_its_cases_in_its_first_store(
        tmp_path, converter, clock, quote_data):
    from helpers import GROUP_STORES, make_dealer_dir

    path = make_dealer_dir(tmp_path / "d")
    with Engine(load_config(path), converter=converter, clock=clock) as one:
        old_case, old_number = issued_quote(one, quote_data, "zhang")
    assert old_number == "BJ-2026-000001"
    path.write_text(path.read_text(encoding="utf-8") + GROUP_STORES, encoding="utf-8")

    with Engine(load_config(path), converter=converter, clock=clock) as group:
        bj, sh = group.branch("BJ01"), group.branch("SH01")
        assert bj.case(old_case, actor="zhang")["state"] == "issued"
        assert bj.document(old_number, actor="wang")["number"] == old_number
        with pytest.raises(NotFoundError):
            sh.case(old_case, actor="ma")
        _, new_number = issued_quote(bj, {**quote_data, "customer_mobile": "13700137000"},
                                     "zhang")
        assert new_number == "BJ01-BJ-2026-000001"
        assert group.verify() == []


def test_a_list_report_of_the_whole_group_names_each_rows_store(group, tmp_path):
    walk_in = json_example("walk_in")
    group.branch("BJ01").create("reception", walk_in, "xu")
    group.branch("SH01").create("reception", {**walk_in, "customer_mobile": "13900139000",
                                              "customer_name": "陈思"}, "xu")

    whole = group.report("reception", formats=("xlsx",), out_dir=tmp_path / "g", actor="boss")
    rows = xlsx_rows(whole["files"]["xlsx"])
    header = next(r for r in rows if "客户姓名" in r)
    assert header[0] == "门店"
    stores = {r[0]: r[header.index("客户姓名")] for r in rows[rows.index(header) + 1:]}
    assert stores == {"北京星辰汽车销售服务有限公司（BJ01）": "刘晓明",
                      "上海星辰汽车销售服务有限公司（SH01）": "陈思"}
    assert "139****9000" in {r[header.index("电话")] for r in rows}   # masked

    one = group.branch("BJ01").report("reception", formats=("xlsx",), out_dir=tmp_path / "b",
                                      actor="wang")
    rows = xlsx_rows(one["files"]["xlsx"])
    header = next(r for r in rows if "客户姓名" in r)
    assert "门店" not in header
    assert [r[header.index("客户姓名")] for r in rows[rows.index(header) + 1:]] == ["刘晓明"]


def test_a_counting_report_of_the_whole_group_has_a_row_per_store(group, tmp_path):
    """Head office's traffic table: each store's month in a row (what its own table's 合计
    says), then the group's; a store's own table keeps its days and counts only its own."""
    from test_customers import _sheet

    walk_in = json_example("walk_in")
    bj, sh = group.branch("BJ01"), group.branch("SH01")
    bj.create("reception", walk_in, "xu")
    bj.create("reception", {**walk_in, "customer_mobile": "13700137000",
                            "customer_name": "王芳"}, "xu")
    sh.create("reception", {**walk_in, "kind": "来电", "customer_mobile": "13900139000",
                            "customer_name": "陈思"}, "xu")

    whole = group.report("traffic", formats=("xlsx", "docx"), out_dir=tmp_path / "g",
                         actor="boss")
    header, rows = _sheet(whole["files"]["xlsx"])
    visits, calls = header.index("全天合计|来店客户批数"), header.index("全天合计|来电客户批数")
    assert [(r[0], r[visits], r[calls]) for r in rows] == [
        ("北京星辰汽车销售服务有限公司（BJ01）", 2, 0),
        ("上海星辰汽车销售服务有限公司（SH01）", 0, 1),
        ("合计", 2, 1)]
    assert header[1] == "08:00–10:00|来店客户批数"        # the slots' groups moved with it
    # each store's ratio of its own visits (none in Shanghai: no ratio), the group's of all
    assert [r[header.index("展厅销售率")] for r in rows] == ["0.0%", "—", "0.0%"]

    header, rows = _sheet(bj.report("traffic", formats=("xlsx",), out_dir=tmp_path / "b",
                                    actor="wang")["files"]["xlsx"])
    assert header[:2] == ["日期", "星期"] and len(rows) == 31          # November and 合计
    assert rows[-1][0] == "合计" and rows[-1][header.index("全天合计|来店客户批数")] == 2
    assert rows[-1][header.index("全天合计|来电客户批数")] == 0


def xlsx_rows(path: str) -> list[tuple]:
    import openpyxl

    return list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))
