"""Field normalisation: raw user data in, stored (JSON-safe) form out, or an InputError naming the
field by its Chinese label and quoting the value."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from engine.config import load_config
from engine.errors import InputError
from engine.fields import FieldSpec, is_empty, normalize, to_python

from helpers import ROOT


@pytest.fixture(scope="module")
def config():
    return load_config(ROOT / "config.toml")


def spec(type: str, **kw) -> FieldSpec:
    return FieldSpec(name=kw.pop("name", "f"), type=type, label=kw.pop("label", "字段"), **kw)


CHOICE = {"choices": ("全款", "分期")}


@pytest.mark.parametrize("type, kw, raw, stored", [
    # text hygiene: one-line strings collapse whitespace, text keeps its lines
    ("string", {}, "  刘  晓明 ", "刘 晓明"),
    ("string", {}, "a\tb\nc\r\nd", "a b c d"),
    ("string", {}, "a\x0bb\x0c\x00c\x7f", "abc"),
    ("text", {}, "  第一行\r\n第二行\x0b\r第三行  ", "第一行\n第二行\n第三行"),
    ("text", {}, "a\tb", "a\tb"),
    ("string", {}, 12, "12"),
    ("string", {}, Decimal("1.50"), "1.50"),
    ("string", {"max_length": 3}, " abc ", "abc"),  # trimmed before counting
    ("string", {}, "x" * 200, "x" * 200),
    ("text", {}, "x" * 5000, "x" * 5000),
    ("string", {"rule": "mobile"}, "+86 138-0013-8000", "13800138000"),
    ("choice", CHOICE, " 分期 ", "分期"),
    # money: Decimal strings rounded to 分
    ("money", {}, "1,234.5", "1234.50"),
    ("money", {}, "￥8000", "8000.00"),
    ("money", {}, Decimal("3"), "3.00"),
    ("money", {}, 0, "0.00"),
    ("money", {"min": "-100"}, "-5", "-5.00"),
    ("money", {"max": "100"}, "100", "100.00"),
    ("money", {"min": "0.01"}, "0.01", "0.01"),
    # integer
    ("integer", {}, 5, 5),
    ("integer", {}, "  -7 ", -7),
    ("integer", {}, Decimal("3.0"), 3),
    ("integer", {}, Decimal("36"), 36),
    ("integer", {"min": "1", "max": "10"}, "10", 10),
    # dates
    ("date", {}, "2026-02-28", "2026-02-28"),
    ("date", {}, " 2026-01-05 ", "2026-01-05"),
    ("date", {}, date(2026, 1, 5), "2026-01-05"),
    ("datetime", {}, "2026-01-05 14:05", "2026-01-05T14:05"),
    ("datetime", {}, "2026-01-05T14:05:33", "2026-01-05T14:05"),
    ("datetime", {}, datetime(2026, 1, 5, 9, 7), "2026-01-05T09:07"),
    # boolean
    ("boolean", {}, True, True),
    ("boolean", {}, False, False),
    ("boolean", {}, "是", True),
    ("boolean", {}, "否", False),
    ("boolean", {}, "true", True),
    ("boolean", {}, "0", False),
    ("boolean", {}, 1, True),
    # user
    ("user", {}, "zhang", "zhang"),
    ("user", {}, " wang ", "wang"),
    ("user", {"roles": ("sales", "sales_manager")}, "wang", "wang"),
])
def test_normalize_stores(config, type, kw, raw, stored):
    assert normalize(spec(type, **kw), raw, config) == stored


@pytest.mark.parametrize("type, raw", [
    ("string", None), ("string", ""), ("string", "  \t\n"), ("text", "   "), ("money", None),
    ("money", " "), ("integer", ""), ("date", None), ("user", ""), ("boolean", None),
    ("choice", ""),
])
def test_empty_is_none(config, type, raw):
    assert normalize(spec(type, **(CHOICE if type == "choice" else {})), raw, config) is None


@pytest.mark.parametrize("raw", [None, [], "  "])
def test_empty_table_is_empty_list(config, raw):
    table = spec("table", columns={"name": spec("string", name="name")})
    assert normalize(table, raw, config) == []


@pytest.mark.parametrize("value, empty", [
    (None, True), ("", True), (" \n", True), ([], True), (0, False), (False, False),
    ("0", False), ({}, False), (Decimal("0"), False),
])
def test_is_empty(value, empty):
    assert is_empty(value) is empty


@pytest.mark.parametrize("type, kw, raw, words", [
    ("string", {"max_length": 3}, "abcd", ["过长：4 个字符，最多 3 个"]),
    ("string", {}, "x" * 201, ["过长：201 个字符，最多 200 个"]),
    ("text", {}, "x" * 5001, ["最多 5000 个"]),
    ("text", {"max_length": 10}, "一二三四五\n六七八九十", ["过长：11 个字符"]),  # newline counts
    ("string", {}, True, ["应为文字，收到 True"]),
    ("string", {}, ["a"], ["应为文字，收到 ['a']"]),
    ("string", {}, {"a": 1}, ["应为文字"]),
    ("choice", CHOICE, "赊账", ['"赊账" 不是可选值；可选：全款、分期']),
    ("choice", CHOICE, 1, ["应为文字，收到 1"]),
    ("string", {"rule": "mobile"}, "1380013800", ['"1380013800" 无效', "10 位"]),
    ("money", {}, "-1", ["不能小于 ¥0.00（收到 -¥1.00）"]),
    ("money", {"min": "0.01"}, "0", ["不能小于 ¥0.01（收到 ¥0.00）"]),
    ("money", {"max": "100"}, "100.01", ["不能大于 ¥100.00（收到 ¥100.01）"]),
    ("money", {}, 1.5, ["不接受浮点数", "收到 1.5"]),
    ("money", {}, "12.345", ['最多两位小数（收到 "12.345"）']),
    ("money", {}, "abc", ['不是有效金额（收到 "abc"）']),
    ("money", {}, True, ["布尔值"]),
    ("integer", {}, 1.5, ["应为整数，收到 1.5"]),
    ("integer", {}, 2.0, ["应为整数，收到 2.0"]),
    ("integer", {}, "abc", ['应为整数，收到 "abc"']),
    ("integer", {}, True, ["应为整数，收到 True"]),
    ("integer", {}, False, ["应为整数，收到 False"]),
    ("integer", {}, "1.0", ['应为整数，收到 "1.0"']),
    ("integer", {}, "-", ['应为整数，收到 "-"']),
    ("integer", {}, Decimal("3.5"), ["应为整数，收到 Decimal('3.5')"]),
    ("integer", {}, Decimal("Infinity"), ["应为整数"]),
    ("integer", {}, Decimal("NaN"), ["应为整数"]),
    ("integer", {"min": "1", "max": "120"}, 0, ["不能小于 1（收到 0）"]),
    ("integer", {"min": "1", "max": "120"}, "121", ["不能大于 120（收到 121）"]),
    ("date", {}, "2026-02-30", ['"2026-02-30"', "不是有效日期"]),
    ("date", {}, "2026/02/01", ["日期应为 YYYY-MM-DD 格式"]),
    ("date", {}, "26-1-5", ["日期应为 YYYY-MM-DD 格式"]),
    ("date", {}, datetime(2026, 1, 1, 10, 0), ["应为日期，不含时间"]),
    ("date", {}, 20260101, ["日期应为 YYYY-MM-DD 格式", "int 20260101"]),
    ("datetime", {}, "2026-01-05T25:05", ["不是有效时间"]),
    ("datetime", {}, "2026-01-05", ["时间应为 YYYY-MM-DD HH:MM[:SS] 格式"]),
    ("boolean", {}, "maybe", ['应为 是/否，收到 "maybe"']),
    ("boolean", {}, 2, ["应为 是/否，收到 2"]),
    ("user", {}, "nobody", ['"nobody" 不是已配置的用户']),
    ("user", {"roles": ("sales",)}, "wang", ['"wang"（王强）不是销售顾问']),
    ("user", {"roles": ("sales", "doc_controller")}, "chen", ["不是销售顾问、文控"]),
])
def test_normalize_refuses(config, type, kw, raw, words):
    with pytest.raises(InputError) as raised:
        normalize(spec(type, label="客户资料", name="info", **kw), raw, config)

    err = raised.value
    assert err.field == "info" and err.label == "客户资料"
    assert err.message.startswith("客户资料（info）")
    for word in words:
        assert word in err.message, err.message
    assert err.problems == [err]


def test_long_values_are_shortened_in_messages(config):
    with pytest.raises(InputError) as raised:
        normalize(spec("integer"), "9" * 30 + "x" * 30, config)

    assert "9" * 30 + "x" * 10 + "…" in raised.value.message
    assert "x" * 11 not in raised.value.message


@pytest.mark.parametrize("raw", ["--5", "²", "5²"])
def test_integer_look_alikes_are_refused_as_input_errors(config, raw):
    with pytest.raises(InputError) as raised:
        normalize(spec("integer", label="贷款期限（月）", name="loan_term_months"), raw, config)

    assert "应为整数" in raised.value.message


# --- tables ----------------------------------------------------------------------------------

COLUMNS = {
    "name": spec("string", name="name", label="项目", required=True, max_length=5),
    "quantity": spec("integer", name="quantity", label="数量", required=True, min="1"),
    "unit_price": spec("money", name="unit_price", label="单价"),
    "note": spec("string", name="note", label="说明", required_if={"name": "其他"}),
}
TABLE = spec("table", name="accessories", label="精品附件", columns=COLUMNS, max_rows=3)


def test_table_rows_are_normalised(config):
    rows = normalize(TABLE, [{"name": " 脚垫 ", "quantity": "2", "unit_price": "95.5"},
                             {"name": "其他", "quantity": 1, "note": "贴膜"}], config)

    assert rows == [
        {"name": "脚垫", "quantity": 2, "unit_price": "95.50", "note": None},
        {"name": "其他", "quantity": 1, "unit_price": None, "note": "贴膜"},
    ]


@pytest.mark.parametrize("raw, words, rows_and_columns", [
    ("脚垫", ['精品附件（accessories）应为列表，收到 "脚垫"'], [(None, None)]),
    ({"name": "脚垫"}, ["应为列表"], [(None, None)]),
    ([{}] * 4, ["精品附件（accessories）最多 3 行，收到 4 行"], [(None, None)]),
    ([1], ["精品附件第 1 行的数据应为对象（键值表），收到 1"], [(1, None)]),
    ([{"name": "a", "quantity": 1}, "x"], ['第 2 行的数据应为对象（键值表），收到 "x"'],
     [(2, None)]),
    ([{"name": "a", "qty": 1, "quantity": 1}],
     ['精品附件第 1 行的"qty" 不是已定义的列（可用：name、quantity、unit_price、note）'],
     [(1, "qty")]),
    ([{"quantity": 1}], ["精品附件第 1 行的项目（name）必填"], [(1, "name")]),
    ([{"name": "toolong", "quantity": 1}], ["精品附件第 1 行的项目（name）过长：7 个字符"],
     [(1, "name")]),
    ([{"name": "其他", "quantity": 1}], ["精品附件第 1 行的说明（note）必填"], [(1, "note")]),
    ([{"name": "a", "quantity": 0}, {"name": "b"}],
     ["数据有 2 处问题", "精品附件第 1 行的数量（quantity）不能小于 1（收到 0）",
      "精品附件第 2 行的数量（quantity）必填"], [(1, "quantity"), (2, "quantity")]),
    ([{"name": "a", "quantity": "x", "unit_price": "1.234"}],
     ["数据有 2 处问题", '第 1 行的数量（quantity）应为整数，收到 "x"', "第 1 行的单价（unit_price）"],
     [(1, "quantity"), (1, "unit_price")]),
])
def test_table_problems_name_the_table_and_row(config, raw, words, rows_and_columns):
    with pytest.raises(InputError) as raised:
        normalize(TABLE, raw, config)

    err = raised.value
    assert [p.field for p in err.problems] == ["accessories"] * len(rows_and_columns)
    assert [(p.details.get("row"), p.details.get("column")) for p in err.problems] == \
        rows_and_columns
    for word in words:
        assert word in err.message, err.message


def test_column_required_if_uses_the_normalised_value(config):
    with pytest.raises(InputError) as raised:
        normalize(TABLE, [{"name": " 其他 ", "quantity": 1}], config)

    assert "说明（note）必填" in raised.value.message


# --- required_if -----------------------------------------------------------------------------

LENDER = spec("string", name="lender", label="贷款机构", required_if={"payment_method": "分期"})


@pytest.mark.parametrize("field, data, required", [
    (LENDER, {"payment_method": "分期"}, True),
    (LENDER, {"payment_method": "全款"}, False),
    (LENDER, {"payment_method": None}, False),
    (LENDER, {}, False),
    (spec("string", required=True), {}, True),
    (spec("string"), {"payment_method": "分期"}, False),
    (spec("string", required_if={"a": "1", "b": "2"}), {"a": "1", "b": "2"}, True),
    (spec("string", required_if={"a": "1", "b": "2"}), {"a": "1", "b": "3"}, False),
    (spec("string", required_if={"n": "3"}), {"n": 3}, True),  # compared as text
])
def test_required_if(field, data, required):
    assert field.is_required(data) is required


# --- to_python -------------------------------------------------------------------------------

@pytest.mark.parametrize("field, stored, value", [
    (spec("money"), "1234.50", Decimal("1234.50")),
    (spec("money"), None, None),
    (spec("date"), "2026-01-05", date(2026, 1, 5)),
    (spec("datetime"), "2026-01-05T09:07", datetime(2026, 1, 5, 9, 7)),
    (spec("integer"), 36, 36),
    (spec("boolean"), False, False),
    (spec("string"), "刘晓明", "刘晓明"),
    (spec("user"), "zhang", {"login": "zhang", "name": "张伟"}),
    (spec("user"), "departed", {"login": "departed", "name": "departed"}),
    (spec("table", columns=COLUMNS), None, []),
    (spec("table", columns=COLUMNS), [{"name": "脚垫", "quantity": 2, "unit_price": "95.50"}],
     [{"name": "脚垫", "quantity": 2, "unit_price": Decimal("95.50"), "note": None}]),
])
def test_to_python(config, field, stored, value):
    result = to_python(field, stored, config)

    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("type, raw", [
    ("money", "¥1,234.5"), ("date", "2026-01-05"), ("datetime", "2026-01-05 09:07"),
    ("integer", "12"), ("string", " x "), ("boolean", "是"),
])
def test_normalize_then_to_python_is_stable(config, type, raw):
    field = spec(type)
    value = to_python(field, normalize(field, raw, config), config)

    assert normalize(field, value, config) == normalize(field, raw, config)


# --- multichoice -----------------------------------------------------------------------------

DOCS = spec("multichoice", name="handover_documents", label="随车凭证",
            choices=("合格证", "一致性证书", "说明书", "三包凭证"))


@pytest.mark.parametrize("raw, stored", [
    (["说明书", "合格证"], ["合格证", "说明书"]),  # the order of the choices, not of the input
    (["三包凭证", "合格证", "三包凭证"], ["合格证", "三包凭证"]),  # duplicates removed
    ([" 说明书 ", "说明书"], ["说明书"]),  # trimmed, then de-duplicated
    (["三包凭证", "说明书", "一致性证书", "合格证"], ["合格证", "一致性证书", "说明书", "三包凭证"]),
    (["合格证"], ["合格证"]),
    ([], []),
    (None, []),
    ("  ", []),
])
def test_multichoice_is_stored_in_the_order_of_its_choices(config, raw, stored):
    assert normalize(DOCS, raw, config) == stored


@pytest.mark.parametrize("raw, words", [
    (["合格证", "行驶证"], ['"行驶证" 不是可选值；可选：合格证、一致性证书、说明书、三包凭证']),
    (["发票", "行驶证"], ['"发票" 不是可选值']),  # the first unknown one is named
    ("合格证", ['应为可选值的列表，收到 "合格证"']),
    (["合格证", 1], ["应为可选值的列表，收到 ['合格证', 1]"]),
    ({"合格证": True}, ["应为可选值的列表"]),
    (True, ["应为可选值的列表，收到 True"]),
])
def test_multichoice_refuses(config, raw, words):
    with pytest.raises(InputError) as raised:
        normalize(DOCS, raw, config)

    err = raised.value
    assert err.field == "handover_documents"
    assert err.message.startswith("随车凭证（handover_documents）")
    for word in words:
        assert word in err.message, err.message


def test_multichoice_to_python(config):
    assert to_python(DOCS, None, config) == []
    assert to_python(DOCS, ["合格证", "说明书"], config) == ["合格证", "说明书"]


# --- choice labels -----------------------------------------------------------------------------

BUYER_TYPE = spec("choice", name="buyer_type", label="买受人类型",
                  choices=("individual", "company"),
                  choice_labels={"individual": "个人", "company": "单位"})


@pytest.mark.parametrize("field, raw, words", [
    (BUYER_TYPE, "person", ['"person" 不是可选值；可选：individual（个人）、company（单位）']),
    (BUYER_TYPE, "个人", ['"个人" 不是可选值']),  # the label is shown, the value is stored
    (spec("choice", name="buyer_type", label="买受人类型", choices=("individual", "company"),
          choice_labels={"company": "单位"}),
     "x", ["可选：individual、company（单位）"]),  # only labelled values get a label
    (spec("multichoice", name="buyer_type", label="买受人类型", choices=("a", "b"),
          choice_labels={"a": "甲"}), ["c"], ["可选：a（甲）、b"]),
])
def test_choice_labels_are_shown_with_the_choices(config, field, raw, words):
    with pytest.raises(InputError) as raised:
        normalize(field, raw, config)

    for word in words:
        assert word in raised.value.message, raised.value.message


def test_choice_label(config):
    assert normalize(BUYER_TYPE, " company ", config) == "company"
    assert BUYER_TYPE.choice_label("company") == "单位"
    assert BUYER_TYPE.choice_label("other") == "other"


# --- required_if_set ---------------------------------------------------------------------------

AGENT_ID = spec("string", name="agent_id_number", label="委托代理人身份证号",
                required_if_set=("agent_name",))


@pytest.mark.parametrize("field, data, required", [
    (AGENT_ID, {"agent_name": "吴昊"}, True),
    (AGENT_ID, {"agent_name": ""}, False),
    (AGENT_ID, {"agent_name": "  "}, False),
    (AGENT_ID, {"agent_name": None}, False),
    (AGENT_ID, {}, False),
    (spec("date", required_if_set=("deposit",)), {"deposit": "0.00"}, True),  # set, even if 0
    (spec("date", required_if_set=("deposit",)), {"deposit": 0}, True),
    (spec("string", required_if_set=("services",)), {"services": []}, False),
    (spec("string", required_if_set=("services",)), {"services": ["上牌"]}, True),
    (spec("string", required_if_set=("a", "b")), {"b": "x"}, True),  # any one of them
    (spec("string", required_if_set=("a", "b")), {"a": "", "b": None}, False),
])
def test_required_if_set(field, data, required):
    assert field.is_required(data) is required


# --- rules chosen by the caller, and a rule's warning accepted on override --------------------

IMPORTED_VIN = "9BWZZZ377VT004251"  # check digit wrong, not built in China: a warning
VIN = spec("string", name="vin", label="车辆识别代号（VIN）", rule="vin",
           override="vin_check_override")


def test_a_rule_warning_is_refused_without_a_warnings_list(config):
    with pytest.raises(InputError) as raised:
        normalize(VIN, IMPORTED_VIN, config)

    message = raised.value.message
    assert message.startswith("车辆识别代号（VIN）（vin）")
    assert f'"{IMPORTED_VIN}" 存疑' in message and "校验位" in message


def test_a_rule_warning_is_accepted_and_recorded_with_a_warnings_list(config):
    warnings: list[str] = []

    assert normalize(VIN, IMPORTED_VIN.lower(), config, warnings=warnings) == IMPORTED_VIN

    [message] = warnings
    assert message.startswith(f'车辆识别代号（VIN）（vin）"{IMPORTED_VIN.lower()}"：')
    assert "校验位" in message and message.endswith("（已按例外接受）")


@pytest.mark.parametrize("raw", [
    "LDC613P24A1305189",  # built in China (L…): the check digit is mandatory
    "LSJA24U62JG26922",   # too short
    "LSJA24I62JG269225",  # letter I
])
def test_a_rule_violation_is_refused_even_with_a_warnings_list(config, raw):
    warnings: list[str] = []

    with pytest.raises(InputError) as raised:
        normalize(VIN, raw, config, warnings=warnings)

    assert "无效" in raised.value.message and warnings == []


def test_a_valid_value_adds_no_warning(config):
    warnings: list[str] = []

    assert normalize(VIN, "lsja24u62jg269225", config, warnings=warnings) == "LSJA24U62JG269225"
    assert warnings == []


BUYER_ID = spec("string", name="buyer_id_number", label="证件号码", rule_field="buyer_type",
                rule_map={"individual": "cn_id", "company": "uscc"})


@pytest.mark.parametrize("field, rule, raw, stored", [
    (BUYER_ID, "uscc", " 91230184ma1buflt44 ", "91230184MA1BUFLT44"),
    (BUYER_ID, "cn_id", "11010519491231002x", "11010519491231002X"),
    (spec("string", rule="cn_id"), "uscc", "91110108772551611J", "91110108772551611J"),  # replaces
    (spec("string", rule="mobile"), None, "138 0013 8000", "13800138000"),  # None: spec's own rule
    (BUYER_ID, None, "anything at all", "anything at all"),  # no rule given, none of its own
])
def test_rule_given_by_the_caller(config, field, rule, raw, stored):
    assert normalize(field, raw, config, rule=rule) == stored


@pytest.mark.parametrize("rule, raw, words", [
    ("uscc", "11010519491231002X", ['"11010519491231002X" 无效', "校验位不符"]),  # an ID number
    ("uscc", "91230184MA1BUFLI44", ['"91230184MA1BUFLI44" 无效', '含不允许的字符 "I"']),
    ("uscc", "91230184MA1BUFLT45", ["校验位不符"]),
    ("cn_id", "91230184MA1BUFLT44", ['"91230184MA1BUFLT44" 无效']),
])
def test_rule_given_by_the_caller_refuses(config, rule, raw, words):
    with pytest.raises(InputError) as raised:
        normalize(BUYER_ID, raw, config, rule=rule)

    assert raised.value.message.startswith("证件号码（buyer_id_number）")
    for word in words:
        assert word in raised.value.message, raised.value.message
