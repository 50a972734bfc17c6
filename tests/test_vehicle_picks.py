"""Issue 19, vehicles picked by the sales chain, end to end through the engine's API:

- a catalogue model's colours are the choices of a quote's and a contract's colour
  (``choices_from``): refused with the allowed colours named, accepted when listed; a quote with
  a model typed freely (no pick) keeps any colour; the web form lists the picked model's colours;
- the contract prints its 车源 and, for an order without a car (无车订单), says the VIN comes at
  配车 instead of leaving it blank (the committed template, converted to PDF);
- a stock car whose VIN has no valid check digit (平行进口) is registered with an explicit
  override and a reason (refused without one, audited, still unique; by hand, by edit and from
  .xlsx), only by the stock keeper or a sales manager; a contract and a delivery naming it
  take it.

Most tests make their engine without a converter (nothing is issued); the contract PDF tests
issue on the session's converter."""
from __future__ import annotations

import re

import pytest

from engine import Engine, load_config
from engine.errors import InputError, PermissionDenied
from engine.sheets import read_xlsx
from helpers import contract_data, docx_text, example, pdf_text, require_stock_vins, write_xlsx

MODEL = {"brand": "奇瑞", "series": "瑞虎8 PRO", "model": "2026款 1.6TGDI DCT 卓越版",
         "exterior_colours": "珍珠白、曜石黑", "interior_colours": "黑色、棕色",
         "list_price": "139900.00", "energy_type": "燃油", "valid_from": "2026-11-01"}
# a Mercedes VIN (built in Germany) whose 9th character is no GB 16735 check digit (it would be 2)
IMPORTED_VIN = "WDD2050461F123456"
IMPORTED_CAR = {"vin": IMPORTED_VIN, "engine_number": "M264920123456", "brand": "奔驰",
                "series": "C级", "model": "C 260 L 平行进口", "colour": "曜岩黑"}
REASON = "平行进口车，原厂 VIN 第 9 位不是校验位（海关单证号 2026-0815）"


@pytest.fixture
def plain(config_path, clock):
    eng = Engine(load_config(config_path), clock=clock)
    yield eng
    eng.close()


@pytest.fixture
def stocked_engine(config_path, converter, clock):
    """The store keeps its stock here: a contract's VIN must be a stock car (调车 aside)."""
    eng = Engine(load_config(require_stock_vins(config_path)), converter=converter, clock=clock)
    yield eng
    eng.close()


def catalogued(engine) -> str:
    return engine.create("vehicle_model", MODEL, "wang").id


def quote(**changes) -> dict:
    return example("quote", series=MODEL["series"], model=MODEL["model"], **changes)


# --- 1. the catalogue's colours are the colour's choices -----------------------------------------

def test_a_colour_the_picked_model_does_not_list_is_refused_naming_the_allowed_ones(plain):
    model_id = catalogued(plain)
    with pytest.raises(InputError) as refused:
        plain.create("quote", quote(colour="天空蓝"), "zhang")
    assert refused.value.message == \
        f"颜色「天空蓝」不在车型 {model_id} 的可选颜色中（可选：珍珠白、曜石黑）"
    assert refused.value.field == "colour"
    assert plain.cases("quote", actor="wang") == []

    made = plain.create("quote", quote(colour="曜石黑"), "zhang")
    shown = plain.case(made.id, actor="zhang")
    assert shown["refs"] == {"vehicle_model": [model_id]} and shown["data"]["colour"] == "曜石黑"
    # an edit to another listed colour is fine, to an unlisted one refused the same way
    plain.fire(made.id, "edit", "zhang", {"colour": "珍珠白"})
    with pytest.raises(InputError) as refused:
        plain.fire(made.id, "edit", "zhang", {"colour": "天空蓝"})
    assert "可选：珍珠白、曜石黑" in refused.value.message
    assert plain.case(made.id, actor="zhang")["data"]["colour"] == "珍珠白"


def test_a_quote_whose_model_is_typed_freely_keeps_any_colour(plain):
    catalogued(plain)
    made = plain.create("quote", example("quote", model="某款未入库车型", colour="天空蓝"), "zhang")
    shown = plain.case(made.id, actor="zhang")
    assert shown["refs"] == {} and shown["data"]["colour"] == "天空蓝"
    # an edit of something else, or of the colour, on the old-style quote is not checked
    plain.fire(made.id, "edit", "zhang", {"colour": "火山红"})
    assert plain.case(made.id, actor="zhang")["data"]["colour"] == "火山红"


def test_a_contract_checks_body_and_interior_colour_against_the_model(plain):
    model_id = catalogued(plain)
    data = contract_data(plain.clock().date(), model=MODEL["model"], colour="珍珠白",
                         interior_colour="米白")
    with pytest.raises(InputError) as refused:
        plain.create("contract", data, "zhang")
    assert refused.value.message == \
        f"内饰颜色「米白」不在车型 {model_id} 的可选内饰颜色中（可选：黑色、棕色）"
    made = plain.create("contract", {**data, "interior_colour": "棕色"}, "zhang")
    assert plain.case(made.id, actor="zhang")["refs"] == {"vehicle_model": [model_id]}


def test_the_form_lists_the_picked_models_colours(plain):
    from engine.web.app import create_app
    from web_support import client, errors_of, post_form, sign_in

    model_id = catalogued(plain)
    made = plain.create("quote", quote(colour="珍珠白"), "zhang")
    with client(create_app(plain)) as c:
        sign_in(c, "zhang")
        page = c.get("/cases/new/quote").text
        assert 'data-choices-from="model" data-choices-field="exterior_colours"' in page
        # the case picked CX-1: its edit form lists that model's colours
        page = c.get(f"/cases/{made.id}").text
        assert re.search(r'<datalist id="[^"]*-colour-choices"><option value="珍珠白">'
                         r'</option><option value="曜石黑"></option></datalist>', page)
        # the server refuses a colour the picked model does not list, next to the field
        answer = post_form(c, "/cases/new/quote", "/cases/new/quote", {
            "customer_name": "刘晓明", "customer_mobile": "13800138000",
            "vehicle_model": model_id, "model": MODEL["model"], "colour": "天空蓝",
            "list_price": "139900.00", "discount": "0", "valid_until": "2099-12-31"})
        assert answer.status_code == 422
        assert f"颜色「天空蓝」不在车型 {model_id} 的可选颜色中（可选：珍珠白、曜石黑）" \
            in errors_of(answer.text)


def issued(engine, case_id: str) -> list:
    """A drafted contract submitted (approved by wang when it needs a manager) and issued."""
    if engine.fire(case_id, "submit", "zhang").state == "pending_approval":
        engine.fire(case_id, "approve", "wang")
    return engine.fire(case_id, "issue", "zhang").documents


# --- 2. the contract prints 车源, and 无车订单 instead of a blank VIN --------------------------------

def test_a_contract_without_a_car_says_the_vin_comes_at_allocation(stocked_engine):
    engine = stocked_engine
    data = {k: v for k, v in contract_data(engine.clock().date(), car_source="无车订单").items()
            if k not in ("vin", "engine_number")}
    case_id = engine.create("contract", data, "zhang").id
    [doc] = issued(engine, case_id)

    words = docx_text(doc.docx).replace(" ", "")
    assert "无车订单（签订时尚无现车，由甲方配车）" in words
    text = pdf_text(doc.pdf).replace(" ", "").replace("\n", "")
    assert "车源无车订单（签订时尚无现车，由甲方配车）" in text, text
    assert "车辆识别代号无车订单：车辆识别代号、发动机（电机）号于配车时填写" in text, text
    assert "None" not in text


def test_a_contract_with_a_stock_car_prints_its_source_and_vin(stocked_engine, tmp_path):
    engine = stocked_engine
    car = engine.create("stock", {**IMPORTED_CAR, "vin_check_override": True,
                                  "vin_check_override_reason": REASON}, "gao").id
    engine.fire(car, "arrive", "gao", {"arrival_date": "2026-11-20"})
    # the contract names the imported car without its own override: the stock car vouches
    data = contract_data(engine.clock().date(), vin=IMPORTED_VIN.lower(),
                         engine_number=IMPORTED_CAR["engine_number"], vehicle_origin="进口",
                         brand="奔驰", series="C级", model="C 260 L 平行进口", colour="曜岩黑")
    case_id = engine.create("contract", data, "zhang").id
    shown = engine.case(case_id, actor="wang")
    assert shown["data"]["vin"] == IMPORTED_VIN and shown["links"]["stock"] == [car]
    assert "已按例外接受" in shown["history"][0]["warnings"][0]
    [doc] = issued(engine, case_id)
    engine.fire(case_id, "sign", "zhang", {"signed_date": "2026-11-26"})
    assert engine.case(car, actor="gao")["state"] == "reserved"
    text = pdf_text(doc.pdf).replace(" ", "").replace("\n", "")
    assert "车源库存车" in text and f"车辆识别代号{IMPORTED_VIN}" in text, text
    assert "于配车时填写" not in text
    # the delivery naming the same VIN takes it too, without its own override
    delivery = example("delivery", delivery_date="2026-11-29", pdi_date="2026-11-26",
                       vin=IMPORTED_VIN, engine_number=IMPORTED_CAR["engine_number"],
                       colour="曜岩黑")
    made = engine.create("delivery", delivery, "zhang", source=case_id).id
    assert engine.case(made, actor="wang")["links"]["stock"] == [car]


# --- 3. the VIN check-digit override in stock ----------------------------------------------------

def test_an_imported_vin_is_refused_without_override_and_without_a_reason(plain):
    with pytest.raises(InputError) as refused:
        plain.create("stock", IMPORTED_CAR, "gao")
    assert "第 9 位校验位不符" in refused.value.message and refused.value.field == "vin"
    with pytest.raises(InputError) as refused:
        plain.create("stock", {**IMPORTED_CAR, "vin_check_override": True}, "gao")
    assert refused.value.message == (
        f"VIN 校验位例外原因（vin_check_override_reason）：VIN {IMPORTED_VIN} 按校验位例外登记"
        "须写明原因（如平行进口车，原厂 VIN 第 9 位不是校验位）")
    assert refused.value.field == "vin_check_override_reason"
    assert plain.cases("stock", actor="wang") == []
    # a Chinese-built VIN (L…) with a wrong check digit is refused even with the override
    bad = "LSJA24U69JG269225"
    with pytest.raises(InputError) as refused:
        plain.create("stock", {**IMPORTED_CAR, "vin": bad, "vin_check_override": True,
                               "vin_check_override_reason": REASON}, "gao")
    assert "无效" in refused.value.message


def test_an_imported_vin_with_a_reason_is_registered_audited_and_unique(plain):
    car = plain.create("stock", {**IMPORTED_CAR, "vin_check_override": True,
                                 "vin_check_override_reason": REASON}, "wang").id
    shown = plain.case(car, actor="gao")
    assert shown["data"]["vin"] == IMPORTED_VIN
    [event] = shown["history"]
    assert event["actor"] == "wang"
    assert {"field": "vin_check_override_reason", "old": None, "new": REASON} in event["changed"]
    assert len(event["warnings"]) == 1 and IMPORTED_VIN in event["warnings"][0] \
        and "已按例外接受" in event["warnings"][0]
    # one car per VIN, override or not
    with pytest.raises(InputError) as refused:
        plain.create("stock", {**IMPORTED_CAR, "vin_check_override": True,
                               "vin_check_override_reason": "重复登记"}, "gao")
    assert f"已有库存车辆 {car}" in refused.value.message
    # the reason cannot be dropped while the override stands
    with pytest.raises(InputError) as refused:
        plain.fire(car, "edit", "gao", {"vin_check_override_reason": None})
    assert "须写明原因" in refused.value.message
    # an edit setting the override on a car registered with a good VIN
    other = plain.create("stock", {**IMPORTED_CAR, "vin": "LSJA24U62JG269225"}, "gao").id
    with pytest.raises(InputError):
        plain.fire(other, "edit", "gao", {"vin": "WDD2050461F654321"})
    plain.fire(other, "edit", "gao", {"vin": "WDD2050461F654321", "vin_check_override": True,
                                      "vin_check_override_reason": REASON})
    assert "已按例外接受" in plain.case(other, actor="gao")["history"][-1]["warnings"][0]


def test_a_consultant_may_not_register_or_override_a_stock_car(plain):
    with pytest.raises(PermissionDenied):
        plain.create("stock", {**IMPORTED_CAR, "vin_check_override": True,
                               "vin_check_override_reason": REASON}, "zhang")
    car = plain.create("stock", {**IMPORTED_CAR, "vin": "LSJA24U62JG269225"}, "gao").id
    with pytest.raises(PermissionDenied):
        plain.fire(car, "edit", "zhang", {"vin": IMPORTED_VIN, "vin_check_override": True,
                                          "vin_check_override_reason": REASON})
    assert plain.case(car, actor="gao")["data"]["vin"] == "LSJA24U62JG269225"


HEADER = ["车辆识别代号（VIN）", "VIN 校验位例外（进口车）", "VIN 校验位例外原因", "发动机号", "品牌",
          "车系", "车型", "车身颜色"]


def test_an_import_takes_the_override_column_and_refuses_a_row_without_reason(plain, tmp_path):
    rows = [[IMPORTED_VIN, "是", REASON, "M264920123456", "奔驰", "C级", "C 260 L", "曜岩黑"],
            ["WDD2050461F654321", "是", None, "M264920654321", "奔驰", "C级", "C 260 L", "极地白"],
            ["WDD2050461F777777", None, None, "M264920777777", "奔驰", "C级", "C 260 L", "极地白"],
            ["LSJA24U62JG269225", None, None, "SQRE4T15C2501234", "奇瑞", "瑞虎8 PRO", "卓越版",
             "珍珠白"]]
    report = plain.import_cases("stock", read_xlsx(write_xlsx(tmp_path / "s.xlsx", HEADER, rows)),
                                "gao")
    assert not report.ok and report.created == [] and report.failed_rows == [3, 4]
    said = {p.row: p.message for p in report.problems}
    assert "须写明原因" in said[3] and "第 9 位校验位不符" in said[4]

    report = plain.import_cases("stock", read_xlsx(write_xlsx(tmp_path / "s.xlsx", HEADER,
                                                              [rows[0], rows[3]])), "gao")
    assert report.ok, report.problems
    car = report.created[0]["id"]
    shown = plain.case(car, actor="wang")
    assert shown["data"]["vin_check_override"] is True
    assert shown["data"]["vin_check_override_reason"] == REASON
    assert "已按例外接受" in shown["history"][0]["warnings"][0]


def test_a_contract_naming_an_imported_vin_not_so_registered_is_refused(plain):
    plain.create("stock", {**IMPORTED_CAR, "vin": "WDD2050461F654321",
                           "vin_check_override": True, "vin_check_override_reason": REASON}, "gao")
    data = contract_data(plain.clock().date(), vin=IMPORTED_VIN, car_source="调车",
                         engine_number="M264920123456")
    with pytest.raises(InputError) as refused:
        plain.create("contract", data, "zhang")       # not in stock: nobody vouches for it
    assert "第 9 位校验位不符" in refused.value.message
