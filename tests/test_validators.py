"""engine.validators: every vector of domain.md §5.7, normalisation, and the error messages."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from engine.validators import RULES, RuleViolation, check, cn_id, cn_id_birth_date

DATA = Path(__file__).parent / "data" / "vectors.json"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "vectors.json"
VECTORS = json.loads(DATA.read_text("utf-8"))
KINDS = ("mobile", "cn_id", "uscc", "vin", "plate")
VALID = [(k, v) for k in KINDS for v in VECTORS[k]["valid"]]
INVALID = [(k, v) for k in KINDS for v in VECTORS[k]["invalid"]]


def test_vectors_copy_matches_shared() -> None:
    if not SHARED.exists():
        pytest.skip("shared/ not beside the repo")
    assert json.loads(SHARED.read_text("utf-8")) == VECTORS


def test_registry_names() -> None:
    assert set(RULES) == set(KINDS) | {"engine_number"}


def test_foreign_vin_check_digit_is_a_warning_domestic_an_error() -> None:
    from engine.validators import RuleWarning

    with pytest.raises(RuleWarning) as foreign:
        check("vin", "9bwzzz377vt004251")
    with pytest.raises(RuleViolation) as domestic:
        check("vin", "LDC613P24A1305189")

    assert foreign.value.normalized == "9BWZZZ377VT004251"
    assert "校验位例外" in str(foreign.value)
    assert not isinstance(domestic.value, RuleWarning)


@pytest.mark.parametrize("raw, expected", [
    ("sqre4t15 b", "SQRE4T15B"), ("G4FG-12345", "G4FG-12345"), ("TZ220XS0123", "TZ220XS0123"),
])
def test_engine_number_normalised(raw, expected) -> None:
    assert check("engine_number", raw) == expected


@pytest.mark.parametrize("raw", ["ab1", "发动机123456", "-ABC12", "A" * 21])
def test_engine_number_refused(raw) -> None:
    with pytest.raises(RuleViolation) as raised:
        check("engine_number", raw)
    assert "5–20 位" in str(raised.value)


@pytest.mark.parametrize("rule, value", VALID)
def test_valid_vectors(rule: str, value: str) -> None:
    assert check(rule, value) == value


@pytest.mark.parametrize("rule, value", INVALID)
def test_invalid_vectors_quote_the_value(rule: str, value: str) -> None:
    with pytest.raises(RuleViolation) as info:
        check(rule, value)
    assert f'"{value}"' in str(info.value)
    assert info.value.value == value


@pytest.mark.parametrize("rule, value, reason", [
    ("mobile", "12812345678", "开头是 12"),
    ("mobile", "1380013800", "10 位"),
    ("mobile", "138001380000", "12 位"),
    ("mobile", "23800138000", "开头是 23"),
    ("mobile", "1380013800a", '含非数字 "a"'),
    ("mobile", "+86", "0 位"),
    ("cn_id", "110105194912310021", "按前 17 位应为 X，实际为 1"),
    ("cn_id", "11010519491231002", "17 位"),
    ("cn_id", "110105194912310", "15 位一代证已停用"),
    ("cn_id", "110105194902300020", "19490230 不是有效日期"),
    ("cn_id", "11010519491231002Y", "末位为数字或 X"),
    ("cn_id", "110101190002290011", "19000229 不是有效日期"),
    ("cn_id", "11010118991231001X", "1899-12-31 应在 1900-01-01 至今天之间"),
    ("uscc", "91110000600037341M", "按前 17 位应为 L，实际为 M"),
    ("uscc", "9111000060003734", "16 位"),
    ("uscc", "91110000600037341I", '含不允许的字符 "I"'),
    ("uscc", "91110000600O37341L", '含不允许的字符 "O"'),
    ("uscc", "9111A000600037341L", "第 3–8 位应为行政区划代码"),
    ("vin", "LDC613P24A1305189", "应为 3，实际为 4"),
    ("vin", "LSJA24U62JG26922", "16 位"),
    ("vin", "LSJA24I62JG269225", '含不允许的字符 "I"'),
    ("vin", "9BWZZZ377VT004251", "应为 2，实际为 7"),
    ("vin", "1M8GDM9AXKP04278Q", '含不允许的字符 "Q"'),
    ("vin", "LDC613P23A13O5189", '是否应为 "LDC613P23A1305189"'),
    ("plate", "京AO1234", "不用字母 I、O"),
    ("plate", "京A1234", "6 位"),
    ("plate", "粤BD1234A", "新能源号牌应为"),
    ("plate", "京AX12345", "新能源号牌应为"),
    ("plate", "A京12345", "首字应为省份简称"),
    ("plate", "京AD12345F", "9 位"),
    ("plate", "京112345", "普通号牌应为"),
    ("mobile", " ", "为空"),
    ("vin", "", "为空"),
])
def test_messages(rule: str, value: str, reason: str) -> None:
    with pytest.raises(RuleViolation) as info:
        check(rule, value)
    assert reason in str(info.value)
    if value.strip():
        assert f'"{value}"' in str(info.value)


@pytest.mark.parametrize("rule, raw, normalised", [
    ("mobile", "+86 138-0013-8000", "13800138000"),
    ("mobile", "0086 13800138000", "13800138000"),
    ("mobile", "１３８ ００１３ ８０００", "13800138000"),
    ("mobile", " 19912345678\u3000", "19912345678"),
    ("cn_id", "11010519491231002x", "11010519491231002X"),
    ("cn_id", "110105 19491231 002X", "11010519491231002X"),
    ("cn_id", "１１０１０５１９４９１２３１００２ｘ", "11010519491231002X"),
    ("uscc", "91110000600037341l", "91110000600037341L"),
    ("uscc", "Y1110000MA0000007H", "Y1110000MA0000007H"),  # letter authority; stdnum rejects it
    ("vin", "lsja24u6-2jg 269225", "LSJA24U62JG269225"),
    ("vin", "LSJA24U62*JG269225", "LSJA24U62JG269225"),
    ("plate", "粤ｂ·d12345", "粤BD12345"),
    ("plate", "京 a-12345", "京A12345"),
])
def test_normalisation(rule: str, raw: str, normalised: str) -> None:
    assert check(rule, raw) == normalised


@pytest.mark.parametrize("rule", KINDS)
def test_non_string_rejected(rule: str) -> None:
    with pytest.raises(RuleViolation, match="应为文本"):
        check(rule, 13800138000)  # type: ignore[arg-type]


def test_unknown_rule() -> None:
    with pytest.raises(KeyError):
        check("postcode", "100000")


def test_cn_id_future_birth_date() -> None:
    value = "110105202701010016"  # check digit correct, born 2027-01-01
    assert cn_id(value, today=date(2027, 1, 1)) == value
    with pytest.raises(RuleViolation) as info:
        cn_id(value, today=date(2026, 12, 31))
    assert "2027-01-01" in str(info.value)
    assert f'"{value}"' in str(info.value)


@pytest.mark.parametrize("value, born", [
    ("11010519491231002x", date(1949, 12, 31)),
    ("110101200002290018", date(2000, 2, 29)),
    ("320106198001011233", date(1980, 1, 1)),
])
def test_cn_id_birth_date(value: str, born: date) -> None:
    assert cn_id_birth_date(value) == born


def test_cn_id_birth_date_validates() -> None:
    with pytest.raises(RuleViolation, match="校验位不符"):
        cn_id_birth_date("110105194912310021")
