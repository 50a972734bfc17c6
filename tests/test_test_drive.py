"""Test drives through the CLI: booking → agreement → on the road → back → evaluation, the
guards that protect the store, and the register exported as .xlsx / .docx / .pdf."""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import pytest

from helpers import ROOT, docx_text, pdf_fonts, pdf_text



@pytest.fixture
def tomorrow(today) -> date:
    return today.date + timedelta(days=1)


def at(day: date, hour: int, minute: int = 0) -> str:
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}"


def id_number(born: date) -> str:
    """A valid resident ID number (GB 11643 check digit) of someone born on ``born``."""
    body = f"110101{born:%Y%m%d}001"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


def booking(day: date, **changes) -> dict:
    """examples/test_drive.json booked for 10:00–10:45 on ``day``, with ``changes``; the
    licence stays valid for years after ``day`` (the example's own date would run out)."""
    data = json.loads((ROOT / "examples" / "test_drive.json").read_text(encoding="utf-8"))
    data.update(slot_start=at(day, 10), slot_end=at(day, 10, 45),
                licence_valid_until=(day + timedelta(days=5 * 365)).isoformat())
    data.update(changes)
    return data


RATINGS = {"impressions": "动力充沛；底盘扎实；座椅舒适", "rating_power": "很满意",
           "rating_handling": "很满意", "rating_braking": "基本满意", "rating_comfort": "很满意",
           "rating_space": "很满意", "rating_service": "很满意", "rating_car_condition": "很满意",
           "rating_route_length": "基本满意", "rating_route_items": "很满意",
           "rating_overall": "很满意", "helped_decision": True, "comments": "希望增加高速路段"}


@pytest.mark.slow
def test_a_drive_from_booking_to_evaluation_and_the_register(dealer, today, tomorrow, cli):
    drive = cli(dealer, "new", "test_drive", "--as", "zhang", data=booking(tomorrow))["id"]
    agreement = cli(dealer, "fire", drive, "sign_agreement", "--as", "zhang")["documents"][0]
    for text in (docx_text(Path(agreement["docx"])),
                 "".join(pdf_text(Path(agreement["pdf"])).split())):  # no spaces, no line wraps
        for expected in ("试乘试驾协议书", "王芳", "京A12345", "城市道路", "440305199912318881",
                         "C1", agreement["number"], "年满18周岁", "驾龄满1年",
                         "试乘试驾结束后1年"):
            assert expected.replace(" ", "") in text.replace(" ", ""), expected
    fonts = pdf_fonts(Path(agreement["pdf"]))
    assert fonts and all(f["emb"] == "yes" for f in fonts), fonts

    cli(dealer, "fire", drive, "depart", "--as", "zhang",
        data={"departure_time": at(tomorrow, 10, 3), "departure_odometer": 1200})
    cli(dealer, "fire", drive, "return_car", "--as", "zhang",
        data={"return_time": at(tomorrow, 10, 41), "return_odometer": 1209, "fuel_level": "3/4",
              "damage": False})
    evaluation = cli(dealer, "fire", drive, "evaluate", "--as", "zhang",
                     data=RATINGS)["documents"][0]
    layout = pdf_text(Path(evaluation["pdf"]))
    text = layout.replace(" ", "")
    for expected in ("试乘试驾满意度评估表", "王芳", "动力充沛；底盘扎实；座椅舒适", "希望增加高速路段",
                     "行驶里程9公里", "试驾时长38分钟", "满意度得分2.8/3", "■是□否",
                     f"出具日期：{today.date.year}年{today.date.month}月{today.date.day}日",
                     f"试驾日期{tomorrow.year}年{tomorrow.month}月{tomorrow.day}日"):
        assert expected in text, expected
    ticked = {}  # each rating's row: the label, then one box per column, the chosen one filled
    for line in layout.splitlines():
        words = line.split()
        if words[-3:] and all(w in ("■", "□") for w in words[-3:]):
            ticked[words[-4]] = ("不满意", "基本满意", "很满意")[words[-3:].index("■")]
    assert ticked == {"动力性": "很满意", "操控性": "很满意", "制动性": "基本满意",
                      "舒适性": "很满意", "内部空间": "很满意", "销售顾问试驾服务": "很满意",
                      "车况及清洁": "很满意", "路线长度": "基本满意", "路线试驾项目": "很满意",
                      "总体评价": "很满意"}
    shown = cli(dealer, "show", drive, "--as", "wang")
    assert shown["totals"] == {"km_driven": 9, "minutes_on_road": 38, "rating_score": "2.8"}

    # a second drive the same day with the other consultant, then the register
    other = cli(dealer, "new", "test_drive", "--as", "li",
                data=booking(tomorrow, customer_name="赵磊", customer_mobile="13912345678",
                             experience_type="试乘", driver_name=None, driver_id_number=None,
                             licence_number=None, licence_class=None,
                             licence_first_issued=None, licence_valid_until=None,
                             slot_start=at(tomorrow, 14), slot_end=at(tomorrow, 14, 30),
                             consultant="li"))["id"]
    result = cli(dealer, "report", "test-drives", "--as", "wang", "--from", tomorrow.isoformat(),
                 "--to", tomorrow.isoformat())
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


def test_the_agreement_states_the_stores_own_policy(dealer, tomorrow, cli):
    """The limits the agreement prints are the ones the checks apply ([policy])."""
    config = dealer / "config.toml"
    config.write_text(config.read_text(encoding="utf-8")
                      .replace("test_drive_min_age = 18", "test_drive_min_age = 21")
                      .replace("test_drive_min_licence_years = 1", "test_drive_min_licence_years = 3"),
                      encoding="utf-8")
    drive = cli(dealer, "new", "test_drive", "--as", "zhang", data=booking(tomorrow))["id"]
    agreement = cli(dealer, "fire", drive, "sign_agreement", "--as", "zhang")["documents"][0]
    text = "".join(pdf_text(Path(agreement["pdf"])).split())
    assert "年满21周岁" in text and "驾龄满3年" in text and "年满18周岁" not in text


def test_test_ride_only_needs_no_licence(dealer, tomorrow, cli, refused):
    data = booking(tomorrow, experience_type="试乘", driver_name=None, driver_id_number=None,
                   licence_number=None, licence_class=None, licence_first_issued=None,
                   licence_valid_until=None)
    drive = cli(dealer, "new", "test_drive", "--as", "zhang", data=data)["id"]
    assert cli(dealer, "show", drive, "--as", "wang")["state"] == "booked"
    line = refused(dealer, "new", "test_drive", "--as", "zhang",
                   data={**data, "experience_type": "试驾", "slot_start": at(tomorrow, 15),
                         "slot_end": at(tomorrow, 15, 30)})
    assert "驾驶证号" in line and "驾驶人身份证号" in line


# each case's changes are made from the drive's day (tomorrow), when the test runs
@pytest.mark.parametrize("changes, words", [
    (lambda day: {"licence_first_issued": (day - timedelta(days=200)).isoformat()},
     ["驾龄不足 1 年"]),
    (lambda day: {"licence_valid_until": (day - timedelta(days=1)).isoformat()},
     ["驾驶证已于", "过期"]),
    (lambda day: {"driver_id_number": id_number(day - timedelta(days=365 * 17))},
     ["未满 18 周岁"]),
    (lambda day: {"driver_id_number": "110105194912310021"},
     ["驾驶人身份证号", "110105194912310021"]),
    (lambda day: {"slot_end": at(day, 9)}, ["结束时间", "应晚于开始时间"]),
    (lambda day: {"car_plate": None, "car_vin": None}, ["号牌或 VIN"]),
    (lambda day: {"car_plate": "京AO1234"}, ["京AO1234"]),
], ids=["licence_too_new", "licence_expired", "driver_under_18", "driver_id_checksum",
        "slot_ends_before_it_starts", "no_plate_no_vin", "plate_with_letter_o"])
def test_booking_refusals(dealer, tomorrow, refused, changes, words):
    line = refused(dealer, "new", "test_drive", "--as", "zhang",
                   data=booking(tomorrow, **changes(tomorrow)))
    for word in words:
        assert word in line, line


@pytest.mark.slow
def test_the_car_is_one_resource(dealer, tomorrow, cli, refused):
    first = cli(dealer, "new", "test_drive", "--as", "zhang", data=booking(tomorrow))["id"]
    other = {"customer_name": "钱多多", "customer_mobile": "18912345678"}   # li's own customer
    line = refused(dealer, "new", "test_drive", "--as", "li",
                   data=booking(tomorrow, slot_start=at(tomorrow, 10, 30),
                                slot_end=at(tomorrow, 11), **other))
    assert "冲突" in line and first in line and "10:00–10:45" in line
    # the same car by VIN only is the same car
    line = refused(dealer, "new", "test_drive", "--as", "li",
                   data=booking(tomorrow, car_plate=None, slot_start=at(tomorrow, 10, 30),
                                slot_end=at(tomorrow, 11), **other))
    assert first in line
    second = cli(dealer, "new", "test_drive", "--as", "li",
                 data=booking(tomorrow, slot_start=at(tomorrow, 10, 45),
                              slot_end=at(tomorrow, 11, 30), **other))["id"]

    for case in (first, second):
        cli(dealer, "fire", case, "sign_agreement", "--as", "zhang")
    cli(dealer, "fire", first, "depart", "--as", "zhang",
        data={"departure_time": at(tomorrow, 10, 2), "departure_odometer": 1200})
    line = refused(dealer, "fire", second, "depart", "--as", "li",
                   data={"departure_time": at(tomorrow, 10, 50), "departure_odometer": 1200})
    assert "在途冲突" in line and first in line

    line = refused(dealer, "fire", first, "return_car", "--as", "zhang",
                   data={"return_time": at(tomorrow, 10, 44), "return_odometer": 1150,
                         "fuel_level": "1/2", "damage": False})
    assert "1150" in line and "1200" in line
    cli(dealer, "fire", first, "return_car", "--as", "zhang",
        data={"return_time": at(tomorrow, 10, 44), "return_odometer": 1207, "fuel_level": "1/2",
              "damage": True, "damage_description": "右后轮毂轻微刮擦"})
    departed = cli(dealer, "fire", second, "depart", "--as", "li",
                   data={"departure_time": at(tomorrow, 10, 50), "departure_odometer": 1207})
    assert departed["state"] == "on_road"


def test_wrong_state_role_and_no_show(dealer, today, tomorrow, cli, refused):
    drive = cli(dealer, "new", "test_drive", "--as", "zhang", data=booking(tomorrow))["id"]
    line = refused(dealer, "fire", drive, "evaluate", "--as", "zhang", data=RATINGS)
    assert "已预约" in line and "evaluate" in line
    line = refused(dealer, "fire", drive, "sign_agreement", "--as", "zhao")
    assert "找不到案件" in line and drive in line   # the register keeper sees no customer's case
    line = refused(dealer, "fire", drive, "no_show", "--as", "zhang")
    assert "尚未开始" in line
    # a slot at midnight of the CLI's day has begun, whatever the time of day
    early = cli(dealer, "new", "test_drive", "--as", "zhang",
                data=booking(today.date, slot_start=at(today.date, 0, 0),
                             slot_end=at(today.date, 0, 30), car_plate="京B54321",
                             car_vin=None))["id"]
    assert cli(dealer, "fire", early, "no_show", "--as", "zhang")["state"] == "no_show"
