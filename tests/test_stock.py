"""库存车辆 (stock.toml) with a real store: cars imported by VIN (check digit, one car per VIN:
``unique = true``), a contract naming a car by VIN reserves it (``[joins.stock]``, both ways;
one live contract per VIN: ``[[exclusive]]``), cancelling releases it, the delivery hands over
the reserved car and no other; the stock list's 库龄, the count per model (``rows = "model"``);
who may do what (the stock keeper gao sees cars, never contracts)."""
from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook

from engine import Engine, load_config
from engine.errors import InputError, NotFoundError, PermissionDenied, StateError
from engine.sheets import read_xlsx
from helpers import (contract_data, example, require_stock_vins, sign_contract, store_state,
                     write_xlsx)

VIN_1, VIN_2, VIN_3, VIN_4 = ("LSJA24U62JG269225", "LSJA24U64JG269226", "LSJA24U66JG269227",
                              "LSJA24U68JG269228")
HEADER = ["车辆识别代号（VIN）", "发动机号", "品牌", "车系", "车型", "车身颜色", "内饰颜色",
          "合格证编号", "库位"]


def car(vin: str, model: str = "1.6TGDI DCT 卓越版", colour: str = "极地白") -> list:
    return [vin, "SQRE4T15C2501234", "奇瑞", "瑞虎8 PRO", model, colour, "曜石黑",
            "WAC012345678901", "A-01"]


def xlsx(path: Path, rows: list[list]) -> Path:
    return write_xlsx(path, HEADER, rows)


@pytest.fixture
def engine(config_path, converter, clock):
    """The store keeps its stock here: a contract's VIN must be a stock car (调车 aside)."""
    eng = Engine(load_config(require_stock_vins(config_path)), converter=converter, clock=clock)
    yield eng
    eng.close()


def stocked(engine, tmp_path, *vins: str) -> list[str]:
    """The cars imported by the stock keeper, arrived on 2026-11-01 (in stock)."""
    report = engine.import_cases("stock", read_xlsx(xlsx(tmp_path / "stock.xlsx",
                                                         [car(v) for v in vins])), "gao")
    assert report.ok, report.problems
    ids = [c["id"] for c in report.created]
    for case_id in ids:
        engine.fire(case_id, "arrive", "gao", {"arrival_date": "2026-11-01"})
    return ids


def contract(engine, vin: str | None, **changes) -> str:
    data = contract_data(engine.clock().date(), vin=vin, **changes)
    if vin is None:
        data = {k: v for k, v in data.items() if k not in ("vin", "engine_number")}
    return engine.create("contract", data, "zhang").id


def signed(engine, case_id: str) -> str:
    return sign_contract(engine, case_id)


def state(engine, case_id: str) -> str:
    return engine.case(case_id, actor="wang")["state"]


# --- importing the stock ------------------------------------------------------------------------

def test_an_import_with_a_bad_or_repeated_vin_imports_nothing(engine, tmp_path):
    engine.create("stock", dict(zip(["vin", "engine_number", "brand", "series", "model", "colour"],
                                    car(VIN_4)[:6])), "gao")
    bad = VIN_1[:8] + "9" + VIN_1[9:]                       # the check digit is 2
    before = store_state(engine.config.store_dir)
    report = engine.import_cases("stock", read_xlsx(xlsx(tmp_path / "s.xlsx", [
        car(VIN_1), car(bad), car(VIN_1), car(VIN_4)])), "gao")
    assert not report.ok and report.created == []
    assert report.failed_rows == [3, 4, 5]
    messages = {p.row: p.message for p in report.problems}
    assert "校验位" in messages[3]
    assert f"{VIN_1} 与第 2 行重复" in messages[4]
    assert f"{VIN_4} 已有库存车辆 KC-1" in messages[5]
    assert store_state(engine.config.store_dir) == before   # nothing written

    report = engine.import_cases("stock", read_xlsx(xlsx(tmp_path / "s.xlsx", [
        car(VIN_1), car(VIN_2)])), "gao")
    assert report.ok and [c["id"] for c in report.created] == ["KC-2", "KC-3"]
    assert state(engine, "KC-2") == "in_transit"
    # one car per VIN by hand too, and an edit cannot take another car's VIN
    with pytest.raises(InputError) as refused:
        engine.create("stock", dict(zip(["vin", "brand", "series", "model", "colour"],
                                        [VIN_2, "奇瑞", "瑞虎8 PRO", "X", "白"])), "wang")
    assert "已有库存车辆 KC-3" in refused.value.message
    with pytest.raises(InputError) as refused:
        engine.fire("KC-2", "edit", "gao", {"vin": VIN_2})
    assert "KC-3" in refused.value.message
    engine.fire("KC-2", "edit", "gao", {"storage_place": "B-07"})   # its own VIN is no clash


# --- a contract reserves a car; one live contract per VIN -----------------------------------------

def test_a_contract_reserves_its_car_and_a_second_is_refused_until_it_is_cancelled(engine, tmp_path):
    [car_id] = stocked(engine, tmp_path, VIN_1)
    first = contract(engine, VIN_1)
    assert engine.case(first, actor="wang")["links"]["stock"] == [car_id]
    assert engine.case(car_id, actor="wang")["links"] == {"contract": [first]}
    assert state(engine, car_id) == "in_stock"            # named, not reserved before signing
    signed(engine, first)
    assert state(engine, car_id) == "reserved"

    with pytest.raises(StateError) as refused:
        contract(engine, VIN_1, customer_name="赵倩", customer_mobile="13900139000")
    assert f"{VIN_1} 已被 {first}" in refused.value.message

    engine.fire(first, "cancel", "wang", {"cancel_reason": "客户放弃购车"})
    assert state(engine, car_id) == "in_stock"            # released
    second = signed(engine, contract(engine, VIN_1, customer_name="赵倩",
                                     customer_mobile="13900139000"))
    assert state(engine, car_id) == "reserved"
    assert engine.case(car_id, actor="wang")["links"]["contract"] == [first, second]


def test_a_vin_not_in_stock_is_refused_unless_the_car_comes_from_another_dealer(engine, tmp_path):
    stocked(engine, tmp_path, VIN_1)
    with pytest.raises(InputError) as refused:
        contract(engine, VIN_3)
    assert f"VIN {VIN_3} 不在库存车辆中" in refused.value.message
    made = contract(engine, VIN_3, car_source="调车")
    assert "stock" not in engine.case(made, actor="wang")["links"]


def test_an_order_without_a_car_is_signed_then_allocated(engine, tmp_path):
    car_1, car_2 = stocked(engine, tmp_path, VIN_1, VIN_2)
    order = contract(engine, None, car_source="无车订单")
    signed(engine, order)                                  # 无车订单: no VIN, no car
    assert "stock" not in engine.case(order, actor="wang")["links"]
    # a stock car's contract may be drafted without its VIN, not signed: a car needs its VIN
    draft = engine.create("contract", {k: v for k, v in contract_data(engine.clock().date()).items()
                                       if k != "vin"} | {"customer_name": "赵倩",
                                                         "customer_mobile": "13900139000"},
                          "zhang").id
    with pytest.raises(InputError) as refused:
        signed(engine, draft)
    assert "VIN" in refused.value.message

    engine.fire(order, "allocate", "zhang", {"vin": VIN_1, "engine_number": "SQRE4T15C2501234"})
    assert state(engine, car_1) == "reserved"
    # another car: the first is released, the second reserved
    engine.fire(order, "allocate", "zhang", {"vin": VIN_2})
    assert (state(engine, car_1), state(engine, car_2)) == ("in_stock", "reserved")
    assert engine.case(car_1, actor="wang")["links"] == {}
    # the released car's history says so in words (joins' own "detach" event)
    [released] = [line for line in engine.timeline(car_1, actor="wang") if line["what"] == "取消关联"]
    assert released["detail"] == f"不再关联购车合同 {order}" and released["change"] is None
    assert engine.case(order, actor="wang")["links"]["stock"] == [car_2]


# --- the delivery hands over the reserved car -------------------------------------------------------

def test_the_delivery_hands_over_the_reserved_car_and_no_other(engine, tmp_path):
    car_1, car_2 = stocked(engine, tmp_path, VIN_1, VIN_2)
    c = signed(engine, contract(engine, VIN_1))
    delivery = example("delivery", delivery_date="2026-11-29", pdi_date="2026-11-26")
    with pytest.raises(InputError) as refused:
        engine.create("delivery", {**delivery, "vin": VIN_2}, "zhang", source=c)
    assert f'VIN "{VIN_2}" 与购车合同中的 "{VIN_1}" 不一致' in refused.value.message
    d = engine.create("delivery", delivery, "zhang", source=c).id
    assert engine.case(d, actor="wang")["links"]["stock"] == [car_1]
    engine.fire(d, "pdi", "zhang")
    engine.fire(d, "deliver", "zhang")
    shown = engine.case(car_1, actor="wang")
    assert shown["state"] == "delivered" and shown["data"]["delivered_on"] == "2026-11-26"
    assert state(engine, car_2) == "in_stock"
    assert state(engine, c) == "fulfilled"


# --- reports ------------------------------------------------------------------------------------------

def test_the_stock_list_and_the_count_per_model(engine, tmp_path, clock):
    car_1, car_2, car_3 = stocked(engine, tmp_path, VIN_1, VIN_2, VIN_3)
    engine.fire(car_3, "edit", "gao", {"model": "1.5T CVT 豪华版", "arrival_date": "2026-11-16"})
    engine.create("stock", dict(zip(["vin", "brand", "series", "model", "colour"],
                                    [VIN_4, "奇瑞", "瑞虎8 PRO", "1.5T CVT 豪华版", "白"])), "gao")
    c = signed(engine, contract(engine, VIN_1))
    clock.advance(days=4)                                  # 2026-11-30

    made = engine.report("stock", formats=("xlsx",), actor="gao")
    rows = list(load_workbook(made["files"]["xlsx"]).active.iter_rows(values_only=True))
    header = next(r for r in rows if r and r[0] == "VIN")
    body = {r[0]: dict(zip(header, r)) for r in rows if r and r[0] in (VIN_1, VIN_2, VIN_3, VIN_4)}
    assert body[VIN_1]["状态"] == "已订" and body[VIN_1]["合同"] == c
    assert body[VIN_1]["库龄（天）"] == 29                 # 2026-11-01 → 2026-11-30
    assert body[VIN_3]["库龄（天）"] == 14
    assert body[VIN_4]["状态"] == "在途" and body[VIN_4]["库龄（天）"] in (None, "")
    assert body[VIN_2]["合同"] in (None, "")

    made = engine.report("stock_by_model", formats=("xlsx",), actor="gao")
    rows = list(load_workbook(made["files"]["xlsx"]).active.iter_rows(values_only=True))
    header = next(r for r in rows if r and r[0] == "车型")
    assert list(header) == ["车型", "在途", "在库", "已订", "平均库龄（天）"]
    table = {r[0]: list(r[1:]) for r in rows[rows.index(header) + 1:] if r and r[0]}
    assert table["1.6TGDI DCT 卓越版"][:3] == [0, 1, 1]
    assert float(table["1.6TGDI DCT 卓越版"][3]) == 29.0
    assert table["1.5T CVT 豪华版"][:3] == [1, 1, 0]
    assert float(table["1.5T CVT 豪华版"][3]) == 14.0
    assert table["合计"][:3] == [1, 2, 1]


# --- who may do what ----------------------------------------------------------------------------------

def test_a_consultant_cannot_touch_stock_and_the_stock_keeper_sees_no_contract(engine, tmp_path):
    [car_id] = stocked(engine, tmp_path, VIN_1)
    with pytest.raises(PermissionDenied):
        engine.create("stock", dict(zip(["vin", "brand", "series", "model", "colour"],
                                        [VIN_2, "奇瑞", "瑞虎8 PRO", "X", "白"])), "zhang")
    with pytest.raises(PermissionDenied):                  # seen, not edited
        engine.fire(car_id, "edit", "zhang", {"storage_place": "Z-99"})
    # every consultant sees the stock, to promise a car; nothing personal is on it
    assert [x["id"] for x in engine.cases("stock", actor="li")] == [car_id]
    assert engine.case(car_id, actor="zhang")["state"] == "in_stock"
    with pytest.raises(PermissionDenied):
        engine.import_cases("stock", read_xlsx(xlsx(tmp_path / "z.xlsx", [car(VIN_2)])), "zhang")
    with pytest.raises(PermissionDenied):                  # only a contract reserves a car
        engine.fire(car_id, "reserve", "wang")

    c = signed(engine, contract(engine, VIN_1))
    with pytest.raises(NotFoundError):                    # not hers: as if it did not exist
        engine.case(c, actor="gao")
    assert [x["id"] for x in engine.cases(actor="gao")] == [car_id]
    assert engine.case(car_id, actor="gao")["links"] == {"contract": [c]}   # the id, no buyer
    with pytest.raises(PermissionDenied):
        engine.create("contract", contract_data(engine.clock().date()), "gao")
