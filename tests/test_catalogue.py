"""The model catalogue (issue 19, ``workflows/vehicle_model.toml``): the carmaker's price list
imported from real .xlsx files (bad rows reported, nothing half-imported; a re-import reprices
what changed and keeps the old price in the history), quotes that pick their model from it
(brand, series, price and NEV flag copied; the price kept after a reprice), a list price other
than the catalogue's going to a sales manager, and the lookup endpoint as each role sees it.

Most tests make their engine without a converter (nothing is issued); the approval test issues
a quote on the session's converter."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from engine import Engine, load_config
from engine.errors import InputError, PermissionDenied
from engine.sheets import read_xlsx
from helpers import example, write_xlsx

HEADER = ["品牌", "车系", "车型", "车身颜色", "厂家指导价", "能源类型", "新能源目录", "指导价生效日期"]
GOOD = [
    ["奇瑞", "瑞虎8 PRO", "2026款 1.6TGDI DCT 卓越版", "极地白、墨玉黑", 139900, "燃油", "否",
     datetime(2026, 11, 1)],
    ["奇瑞", "瑞虎9", "2026款 1.6TGDI DCT 卓越版", "极地白", 159900, "燃油", "否",
     datetime(2026, 11, 1)],
    ["奇瑞", "风云A8", "2026款 PHEV 125km 领航版", "星光银", 119900, "插电混动", "是",
     datetime(2026, 11, 1)],
]


def xlsx(path: Path, rows: list[list], header: list = HEADER) -> Path:
    return write_xlsx(path, header, rows)


@pytest.fixture
def plain(config_path, clock):
    eng = Engine(load_config(config_path), clock=clock)
    yield eng
    eng.close()


def models(engine, actor: str = "wang") -> list[dict]:
    return engine.cases("vehicle_model", actor=actor)


def imported(engine, tmp_path) -> dict[str, str]:
    report = engine.import_cases("vehicle_model", read_xlsx(xlsx(tmp_path / "价格表.xlsx", GOOD)),
                                 "wang")
    assert report.ok, report.problems
    return {row[1]: o["id"] for row, o in zip(GOOD, report.outcomes)}


def test_a_price_list_with_bad_rows_imports_nothing_and_says_each_row(plain, tmp_path):
    path = xlsx(tmp_path / "价格表.xlsx", [
        GOOD[0],
        ["奇瑞", "瑞虎9", "2026款 1.6TGDI DCT 卓越版", None, None, "燃油", "否", datetime(2026, 11, 1)],
        ["奇瑞", "风云A8", "2026款 PHEV 125km 领航版", None, 119900, "氢能", "是", datetime(2026, 11, 1)],
        GOOD[0],
    ])
    report = plain.import_cases("vehicle_model", read_xlsx(path), "wang")
    assert not report.ok
    said = {(p.row, p.column): p.message for p in report.problems}
    assert "必填" in said[(3, "厂家指导价")]
    assert "氢能" in said[(4, "能源类型")]
    assert "与第 2 行重复" in said[(5, "车型")]
    assert report.failed_rows == [3, 4, 5]
    assert report.to_dict()["outcomes"] == [] and models(plain) == []


def test_a_good_price_list_then_a_changed_one_reprices_and_keeps_the_history(plain, tmp_path):
    ids = imported(plain, tmp_path)
    assert len(models(plain)) == 3
    changed = [list(r) for r in GOOD]
    changed[0][4] = 135900
    changed[0][7] = datetime(2026, 12, 1)
    report = plain.import_cases("vehicle_model",
                                read_xlsx(xlsx(tmp_path / "价格表2.xlsx", changed)), "wang")
    assert report.ok, report.problems
    assert [(o["row"], o["outcome"]) for o in report.outcomes] == [(2, "调价"), (3, "未变"), (4, "未变")]
    assert len(models(plain)) == 3                      # repriced, not duplicated
    case = plain.case(ids["瑞虎8 PRO"], actor="wang")
    assert case["data"]["list_price"] == "135900.00" and case["data"]["valid_from"] == "2026-12-01"
    assert case["data"]["price_history"] == [{"list_price": "139900.00", "valid_from": "2026-11-01",
                                              "changed_on": "2026-11-26", "by": "wang"}]
    assert case["totals"]["price_changes"] == 1
    assert case["history"][-1]["trigger"] == "reprice"


def test_a_changed_row_that_the_update_step_cannot_take_is_an_error(plain, tmp_path):
    imported(plain, tmp_path)
    changed = [list(r) for r in GOOD]
    changed[1][5] = "纯电"                               # not a price: 调价 may not change it
    report = plain.import_cases("vehicle_model",
                                read_xlsx(xlsx(tmp_path / "价格表2.xlsx", changed)), "wang")
    assert not report.ok and report.failed_rows == [3]
    assert "能源类型" in report.problems[0].message


def quote(**changes) -> dict:
    data = {k: v for k, v in example("quote").items()
            if k not in ("brand", "series", "model", "list_price", "nev_listed")}   # the catalogue's
    data.update(changes)
    return data


def test_a_quote_made_from_the_catalogue_takes_its_fields_and_keeps_its_price(plain, tmp_path):
    ids = imported(plain, tmp_path)
    # (its colour one the model lists: the catalogue's colours are the quote's choices)
    made = plain.create("quote", quote(model="奇瑞 风云A8 2026款 PHEV 125km 领航版", colour="星光银"),
                        "zhang")
    q = plain.case(made.id, actor="zhang")
    assert {k: q["data"].get(k) for k in ("brand", "series", "model", "list_price", "nev_listed")} \
        == {"brand": "奇瑞", "series": "风云A8", "model": "2026款 PHEV 125km 领航版",
            "list_price": "119900.00", "nev_listed": True}
    assert q["refs"] == {"vehicle_model": [ids["风云A8"]]}
    # by the catalogue's id in the data (the CLI and the API)
    by_id = plain.case(plain.create("quote", quote(vehicle_model=ids["瑞虎9"]), "zhang").id,
                       actor="zhang")
    assert by_id["data"]["series"] == "瑞虎9" and by_id["data"]["list_price"] == "159900.00"
    # the same model text in two series: the series given picks one; none given, refused
    by_text = plain.create("quote", quote(series="瑞虎8 PRO", model="2026款 1.6TGDI DCT 卓越版"),
                           "zhang")
    assert plain.case(by_text.id, actor="zhang")["data"]["list_price"] == "139900.00"
    with pytest.raises(InputError) as err:
        plain.create("quote", quote(model="2026款 1.6TGDI DCT 卓越版"), "zhang")
    assert "有 2 个" in err.value.message
    # a reprice later: the old quote keeps the price it was made with, a new one takes the new
    plain.fire(ids["风云A8"], "reprice", "wang", {"list_price": "109900", "valid_from": "2026-12-01"})
    assert plain.case(made.id, actor="zhang")["data"]["list_price"] == "119900.00"
    plain.fire(made.id, "edit", "zhang", {"remarks": "客户再议"})
    assert plain.case(made.id, actor="zhang")["data"]["list_price"] == "119900.00"
    again = plain.create("quote", quote(model="奇瑞 风云A8 2026款 PHEV 125km 领航版", colour="星光银"),
                         "zhang")
    assert plain.case(again.id, actor="zhang")["data"]["list_price"] == "109900.00"
    # a model typed that is not in the catalogue stays free text, with no reference
    free = plain.case(plain.create("quote", quote(brand="奇瑞", series="QQ冰淇淋",
                                                  model="2026款 甜筒版", list_price="39900"),
                                   "zhang").id, actor="zhang")
    assert free["data"]["model"] == "2026款 甜筒版" and free["refs"] == {}


def test_a_list_price_other_than_the_catalogues_needs_the_sales_manager(engine, tmp_path):
    ids = imported(engine, tmp_path)
    same = engine.create("quote", quote(vehicle_model=ids["瑞虎8 PRO"]), "zhang")
    assert engine.fire(same.id, "issue", "zhang").state == "issued"
    other = engine.create("quote", quote(vehicle_model=ids["瑞虎8 PRO"], list_price="145900",
                                         monthly_payment="3000"),
                          "zhang")
    result = engine.fire(other.id, "issue", "zhang")
    assert result.state == "pending_approval" and result.documents == []
    with pytest.raises(PermissionDenied):
        engine.fire(other.id, "approve", "zhang")              # a consultant: no role
    approved = engine.fire(other.id, "approve", "wang")
    assert approved.state == "issued" and len(approved.documents) == 1


def test_the_lookup_answers_a_consultant_and_nobody_without_access(plain, tmp_path):
    ids = imported(plain, tmp_path)
    found = plain.lookup("vehicle_model", "卓越", actor="zhang")
    assert [f["id"] for f in found] == [ids["瑞虎8 PRO"], ids["瑞虎9"]]
    assert found[0]["summary"] == "奇瑞 瑞虎8 PRO 2026款 1.6TGDI DCT 卓越版"
    assert found[0]["data"]["list_price"] == "139900.00"
    assert plain.lookup("vehicle_model", "风云 领航", actor="li")[0]["id"] == ids["风云A8"]
    assert plain.lookup("vehicle_model", "卓越", actor="xu") == []      # the front desk
    assert plain.lookup("vehicle_model", "卓越", actor="zhao") == []    # the document controller
    plain.fire(ids["瑞虎9"], "discontinue", "wang")
    assert [f["id"] for f in plain.lookup("vehicle_model", "卓越", actor="zhang")] \
        == [ids["瑞虎8 PRO"]]                                          # on sale only


def test_the_api_and_the_page_lookup(config_path, tmp_path):
    from engine.web.app import create_app
    from web_support import DEMO_PASSWORD, client, sign_in

    eng = Engine(load_config(config_path))
    try:
        imported(eng, tmp_path)
        app = create_app(eng)
        with client(app) as c:
            token = c.post("/api/token", json={"login": "zhang", "password": DEMO_PASSWORD,
                                               "name": "test"}).json()["token"]
            answer = c.get("/api/lookup/vehicle_model", params={"q": "瑞虎8"},
                           headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200 and len(answer.json()) == 1
            desk = c.post("/api/token", json={"login": "xu", "password": DEMO_PASSWORD,
                                              "name": "test"}).json()["token"]
            assert c.get("/api/lookup/vehicle_model", params={"q": "瑞虎8"},
                         headers={"Authorization": f"Bearer {desk}"}).json() == []
            sign_in(c, "zhang")
            assert len(c.get("/lookup/vehicle_model", params={"q": "卓越"}).json()) == 2
            page = c.get("/cases/new/quote").text
            assert 'data-lookup="/lookup/vehicle_model"' in page and "<datalist" in page
    finally:
        eng.close()
