"""engine.money: strict parsing, rounding, display and 人民币大写 (vectors from domain.md §6)."""
from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from engine.money import CENT, format_money, parse_money, quantize, rmb_upper

VECTORS = json.loads((Path(__file__).parent / "data" / "vectors.json").read_text("utf-8"))


@pytest.mark.parametrize("value, expected", [
    ("¥128,800.00", "128800.00"),
    (" 12 ", "12.00"),
    (Decimal("1.5"), "1.50"),
    (Decimal("1.500"), "1.50"),
    (Decimal("1E+3"), "1000.00"),
    (5, "5.00"),
    ("-¥1,234.56", "-1234.56"),
    ("￥-3", "-3.00"),
    ("0.5", "0.50"),
    ("-0.00", "0.00"),
    (Decimal("-0"), "0.00"),
])
def test_parse_money_accepts(value: object, expected: str) -> None:
    result = parse_money(value)  # type: ignore[arg-type]
    assert isinstance(result, Decimal)
    assert str(result) == expected


@pytest.mark.parametrize("value, reason, quoted", [
    (1.5, "浮点数", "1.5"),
    (0.1 + 0.2, "浮点数", "0.30000000000000004"),
    (True, "布尔值", "True"),
    ("1.005", "最多两位小数", '"1.005"'),
    (Decimal("1.005"), "最多两位小数", "1.005"),
    ("1e3", "不是有效金额", '"1e3"'),
    ("1E3", "不是有效金额", '"1E3"'),
    ("", "金额为空", ""),
    ("   ", "金额为空", ""),
    ("abc", "不是有效金额", '"abc"'),
    ("NaN", "不是有效金额", '"NaN"'),
    ("Infinity", "不是有效金额", '"Infinity"'),
    (Decimal("NaN"), "不是有效金额", "NaN"),
    (Decimal("-Infinity"), "不是有效金额", "-Infinity"),
    ("1,23", "不是有效金额", '"1,23"'),
    (".5", "不是有效金额", '".5"'),
    ("5.", "不是有效金额", '"5."'),
    ("+5", "不是有效金额", '"+5"'),
    ("-¥-5", "不是有效金额", '"-¥-5"'),
    ("１２", "不是有效金额", '"１２"'),
    ("1" * 40, "金额过大", "1" * 40),
    (None, "不是有效金额", "NoneType"),
])
def test_parse_money_rejects(value: object, reason: str, quoted: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_money(value)  # type: ignore[arg-type]
    assert reason in str(info.value)
    assert quoted in str(info.value)


@pytest.mark.parametrize("value, expected", [
    (Decimal("1.005"), "1.01"),
    (Decimal("2.675"), "2.68"),
    (Decimal("-2.675"), "-2.68"),
    (Decimal("-0.001"), "0.00"),
    (Decimal("3") * Decimal("33.335"), "100.01"),
    (7, "7.00"),
])
def test_quantize(value: Decimal, expected: str) -> None:
    assert str(quantize(value)) == expected


@pytest.mark.parametrize("value", [1.5, True, "1.00"])
def test_quantize_rejects_non_decimal(value: object) -> None:
    with pytest.raises(TypeError):
        quantize(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("1E+40")])
def test_quantize_rejects_nan_and_huge(value: Decimal) -> None:
    with pytest.raises(ValueError):
        quantize(value)


@pytest.mark.parametrize("value, expected", [
    (Decimal("128800"), "¥128,800.00"),
    (Decimal("-1234.56"), "-¥1,234.56"),
    (Decimal("0"), "¥0.00"),
    (Decimal("-0.00"), "¥0.00"),
    (Decimal("0.005"), "¥0.01"),
    (Decimal("999.999"), "¥1,000.00"),
    ("1234567.8", "¥1,234,567.80"),
    (12, "¥12.00"),
])
def test_format_money(value: object, expected: str) -> None:
    assert format_money(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("amount, expected", VECTORS["rmb_upper"])
def test_rmb_upper_vectors(amount: str, expected: str) -> None:
    assert rmb_upper(Decimal(amount)) == expected
    assert rmb_upper(amount) == expected


@pytest.mark.parametrize("value, expected", [
    (Decimal("0.50"), "伍角"),
    (Decimal("0.05"), "伍分"),
    (Decimal("0"), "零元整"),
    (Decimal("-0"), "零元整"),
    (Decimal("-0.001"), "零元整"),
    (quantize(Decimal("1.005")), "壹元零壹分"),
    (Decimal("1.005"), "壹元零壹分"),  # rounded half-up, cn2an alone would truncate to 壹元整
    (Decimal("107000.53"), "壹拾万柒仟元伍角叁分"),
    (Decimal("1409.50"), "壹仟肆佰零玖元伍角"),
    (Decimal("1680.32"), "壹仟陆佰捌拾元叁角贰分"),
    (Decimal("100001000"), "壹亿壹仟元整"),
    (Decimal("15"), "壹拾伍元整"),
    (Decimal("999999999999.99"), "玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
    ("¥1,000.05", "壹仟元零伍分"),
    (0, "零元整"),
])
def test_rmb_upper_rules(value: object, expected: str) -> None:
    assert rmb_upper(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [Decimal("1000000000000"), Decimal("-1000000000000.00")])
def test_rmb_upper_rejects_one_wan_yi(value: Decimal) -> None:
    with pytest.raises(ValueError, match="一万亿"):
        rmb_upper(value)


@pytest.mark.parametrize("value", [0.1, "1.005", "abc"])
def test_rmb_upper_rejects_bad_input(value: object) -> None:
    with pytest.raises(ValueError):
        rmb_upper(value)  # type: ignore[arg-type]


def _reference_upper(q: Decimal) -> str:
    """Independent converter, canonical style of domain.md §6.1 (optional zeros omitted)."""
    digits, units = "零壹贰叁肆伍陆柒捌玖", ("", "万", "亿")
    if q == 0:
        return "零元整"
    cents = int(abs(q) / CENT)
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    sections = [yuan // 10**8, yuan // 10**4 % 10**4, yuan % 10**4]
    out = ""
    for i, sec in enumerate(sections):
        if not sec:
            continue
        text, zero = "", False
        for d, u in zip(f"{sec:04d}", ("仟", "佰", "拾", "")):
            if d == "0":
                zero = bool(text)
            else:
                text += ("零" if zero else "") + digits[int(d)] + u
                zero = False
        out += ("零" if out and sec < 1000 else "") + text + units[2 - i]
    out += "元" if yuan else ""
    if not jiao and not fen:
        return ("负" if q < 0 else "") + out + "整"
    out += "零" if yuan and not jiao else ""
    out += (digits[jiao] + "角" if jiao else "") + (digits[fen] + "分" if fen else "")
    return ("负" if q < 0 else "") + out


def test_reference_converter_matches_vectors() -> None:
    for amount, expected in VECTORS["rmb_upper"]:
        assert _reference_upper(quantize(Decimal(amount))) == expected


def test_rmb_upper_matches_reference_on_random_amounts() -> None:
    """Guards the cn2an wrapper (and a future cn2an upgrade) against an independent converter."""
    rng = random.Random(20261126)
    for _ in range(3000):
        body = "".join(rng.choice("0000123456789") for _ in range(rng.randint(1, 14)))
        q = quantize(Decimal(int(body)) / 100 * rng.choice((1, 1, 1, 1, 1, 1, 1, 1, 1, -1)))
        assert rmb_upper(q) == _reference_upper(q), q
