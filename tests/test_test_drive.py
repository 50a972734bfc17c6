"""Test drives through the CLI: booking → agreement → on the road → back → evaluation, the
guards that protect the store, and the register exported as .xlsx / .docx / .pdf."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from helpers import ROOT, cli_json as cli, docx_text, pdf_fonts, pdf_text, refused

NOW = datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
TOMORROW = (NOW + timedelta(days=1)).date()


def at(hour: int, minute: int = 0, day=TOMORROW) -> str:
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}"


def booking(**changes) -> dict:
    data = json.loads((ROOT / "examples" / "test_drive.json").read_text(encoding="utf-8"))
    data.update(slot_start=at(10), slot_end=at(10, 45))
    data.update(changes)
    return data


RATINGS = {"impressions": "动力充沛；底盘扎实；座椅舒适", "rating_power": "很满意",
           "rating_handling": "很满意", "rating_braking": "基本满意", "rating_comfort": "很满意",
           "rating_space": "很满意", "rating_service": "很满意", "rating_car_condition": "很满意",
           "rating_route_length": "基本满意", "rating_route_items": "很满意",
           "rating_overall": "很满意", "helped_decision": True, "comments": "希望增加高速路段"}






def test_a_drive_from_booking_to_evaluation_and_the_register(dealer):
    drive = cli(dealer, "new", "test_drive", "--as", "zhang", data=booking())["id"]
    agreement = cli(dealer, "fire", drive, "sign_agreement", "--as", "zhang")["documents"][0]
    for text in (docx_text(Path(agreement["docx"])),
                 "".join(pdf_text(Path(agreement["pdf"])).split())):  # no spaces, no line wraps
        for expected in ("试乘试驾协议书", "王芳", "京A12345", "城市道路", "440305199912318881",
                         "C1", agreement["number"], "年满18周岁", "驾龄满1年",
                         "试乘试驾结束后1年"):
            assert expected.replace(" ", "") in text.replace(" ", ""), expected
    assert all(f["emb"] == "yes" for f in pdf_fonts(Path(agreement["pdf"])))

    cli(dealer, "fire", drive, "depart", "--as", "zhang",
        data={"departure_time": at(10, 3), "departure_odometer": 1200})
    cli(dealer, "fire", drive, "return_car", "--as", "zhang",
        data={"return_time": at(10, 41), "return_odometer": 1209, "fuel_level": "3/4",
              "damage": False})
    evaluation = cli(dealer, "fire", drive, "evaluate", "--as", "zhang",
                     data=RATINGS)["documents"][0]
    text = pdf_text(Path(evaluation["pdf"])).replace(" ", "")
    for expected in ("试乘试驾满意度评估表", "王芳", "动力充沛", "希望增加高速路段", "9"):
        assert expected in text, expected
    assert "■" in text and "□" in text  # ratings ticked in their columns
    shown = cli(dealer, "show", drive, "--as", "wang")
    assert shown["totals"] == {"km_driven": 9, "minutes_on_road": 38, "rating_score": "2.8"}

    # a second drive the same day with the other consultant, then the register
    other = cli(dealer, "new", "test_drive", "--as", "li",
                data=booking(customer_name="赵磊", customer_mobile="13912345678",
                             experience_type="试乘", driver_name=None, driver_id_number=None,
                             licence_number=None, licence_class=None,
                             licence_first_issued=None, licence_valid_until=None,
                             slot_start=at(14), slot_end=at(14, 30), consultant="li"))["id"]
    result = cli(dealer, "report", "test-drives", "--as", "wang", "--from", TOMORROW.isoformat(),
                 "--to", TOMORROW.isoformat())
    assert result["rows"] == 2 and set(result["files"]) == {"xlsx", "docx", "pdf"}
    sheet = openpyxl.load_workbook(result["files"]["xlsx"]).active
    rows = list(sheet.iter_rows(values_only=True))
    headers = rows[2]
    assert "预约编号" in headers and "里程（公里）" in headers and "总体评价" in headers
    body = {r[0]: dict(zip(headers, r)) for r in rows[3:]}
    assert body[drive]["状态"] == "已评估" and body[drive]["里程（公里）"] == 9
    assert body[drive]["总体评价"] == "很满意" and body[drive]["销售顾问"] == "张伟"
    assert body[other]["状态"] == "已预约" and body[other]["方式"] == "试乘"
    report_pdf = pdf_text(Path(result["files"]["pdf"]))
    assert "试乘试驾预约登记表" in report_pdf and drive in report_pdf and other in report_pdf


def test_the_agreement_states_the_stores_own_policy(dealer):
    """The limits the agreement prints are the ones the checks apply ([policy])."""
    config = dealer / "config.toml"
    config.write_text(config.read_text(encoding="utf-8")
                      .replace("test_drive_min_age = 18", "test_drive_min_age = 21")
                      .replace("test_drive_min_licence_years = 1", "test_drive_min_licence_years = 3"),
                      encoding="utf-8")
    drive = cli(dealer, "new", "test_drive", "--as", "zhang", data=booking())["id"]
    agreement = cli(dealer, "fire", drive, "sign_agreement", "--as", "zhang")["documents"][0]
    text = "".join(pdf_text(Path(agreement["pdf"])).split())
    assert "年满21周岁" in text and "驾龄满3年" in text and "年满18周岁" not in text


def test_test_ride_only_needs_no_licence(dealer):
    data = booking(experience_type="试乘", driver_name=None, driver_id_number=None,
                   licence_number=None, licence_class=None, licence_first_issued=None,
                   licence_valid_until=None)
    drive = cli(dealer, "new", "test_drive", "--as", "zhang", data=data)["id"]
    assert cli(dealer, "show", drive, "--as", "wang")["state"] == "booked"
    line = refused(dealer, "new", "test_drive", "--as", "zhang",
                   data={**data, "experience_type": "试驾", "slot_start": at(15),
                         "slot_end": at(15, 30)})
    assert "驾驶证号" in line and "驾驶人身份证号" in line


@pytest.mark.parametrize("changes, words", [
    ({"licence_first_issued": (TOMORROW - timedelta(days=200)).isoformat()}, ["驾龄不足 1 年"]),
    ({"licence_valid_until": (TOMORROW - timedelta(days=1)).isoformat()}, ["驾驶证已于", "过期"]),
    ({"driver_id_number": "110101201001010015"}, ["未满 18 周岁"]),
    ({"driver_id_number": "110105194912310021"}, ["驾驶人身份证号", "110105194912310021"]),
    ({"slot_end": at(9)}, ["结束时间", "应晚于开始时间"]),
    ({"car_plate": None, "car_vin": None}, ["号牌或 VIN"]),
    ({"car_plate": "京AO1234"}, ["京AO1234"]),
])
def test_booking_refusals(dealer, changes, words):
    line = refused(dealer, "new", "test_drive", "--as", "zhang", data=booking(**changes))
    for word in words:
        assert word in line, line


def test_the_car_is_one_resource(dealer):
    first = cli(dealer, "new", "test_drive", "--as", "zhang", data=booking())["id"]
    line = refused(dealer, "new", "test_drive", "--as", "li",
                   data=booking(slot_start=at(10, 30), slot_end=at(11)))
    assert "冲突" in line and first in line and "10:00–10:45" in line
    # the same car by VIN only is the same car
    line = refused(dealer, "new", "test_drive", "--as", "li",
                   data=booking(car_plate=None, slot_start=at(10, 30), slot_end=at(11)))
    assert first in line
    second = cli(dealer, "new", "test_drive", "--as", "li",
                 data=booking(slot_start=at(10, 45), slot_end=at(11, 30)))["id"]

    for case in (first, second):
        cli(dealer, "fire", case, "sign_agreement", "--as", "zhang")
    cli(dealer, "fire", first, "depart", "--as", "zhang",
        data={"departure_time": at(10, 2), "departure_odometer": 1200})
    line = refused(dealer, "fire", second, "depart", "--as", "li",
                   data={"departure_time": at(10, 50), "departure_odometer": 1200})
    assert "在途冲突" in line and first in line

    line = refused(dealer, "fire", first, "return_car", "--as", "zhang",
                   data={"return_time": at(10, 44), "return_odometer": 1150,
                         "fuel_level": "1/2", "damage": False})
    assert "1150" in line and "1200" in line
    cli(dealer, "fire", first, "return_car", "--as", "zhang",
        data={"return_time": at(10, 44), "return_odometer": 1207, "fuel_level": "1/2",
              "damage": True, "damage_description": "右后轮毂轻微刮擦"})
    assert cli(dealer, "fire", second, "depart", "--as", "li",
               data={"departure_time": at(10, 50), "departure_odometer": 1207})["state"] == "on_road"


def test_wrong_state_role_and_no_show(dealer):
    drive = cli(dealer, "new", "test_drive", "--as", "zhang", data=booking())["id"]
    line = refused(dealer, "fire", drive, "evaluate", "--as", "zhang", data=RATINGS)
    assert "已预约" in line and "evaluate" in line
    line = refused(dealer, "fire", drive, "sign_agreement", "--as", "zhao")
    assert "找不到案件" in line and drive in line   # the register keeper sees no customer's case
    line = refused(dealer, "fire", drive, "no_show", "--as", "zhang")
    assert "尚未开始" in line
    today = NOW.date()
    early = cli(dealer, "new", "test_drive", "--as", "zhang",
                data=booking(slot_start=at(0, 0, today), slot_end=at(0, 30, today),
                             car_plate="京B54321", car_vin=None))["id"]
    assert cli(dealer, "fire", early, "no_show", "--as", "zhang")["state"] == "no_show"
