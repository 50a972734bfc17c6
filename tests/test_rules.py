"""The expression engine of workflow rules (engine/rules.py) and its generic functions
(engine/functions.py): exact money, dates, the sandbox, what a rule reads, empty values."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal as D

import pytest

from engine import functions
from engine.rules import Expression, Message, Rule, RuleError, namespace, unknown_names

TODAY = date(2026, 11, 26)


def scope(**data):
    return namespace(data, {}, today=TODAY, now=datetime(2026, 11, 26, 10, 30),
                     policy={"cap": D("0.20")}, linked={})


def test_money_stays_decimal_and_rounds_half_up():
    value = Expression.compile("money(price * policy.cap)")(scope(price=D("99999.99")))
    assert value == D("20000.00") and isinstance(value, D)   # 19999.998 → 20000.00
    assert Expression.compile("money(a / 3)")(scope(a=D("10"))) == D("3.33")
    assert Expression.compile("money(a) + b")(scope(a=D("0.005"), b=D("0.10"))) == D("0.11")


def test_a_float_literal_is_refused_and_dec_is_exact():
    with pytest.raises(RuleError) as raised:
        Expression.compile("price * 0.13")
    assert "dec('0.13')" in str(raised.value)
    assert Expression.compile("price * dec('0.13')")(scope(price=D("100"))) == D("13.00")


def test_dates_stay_dates():
    ns = scope(deadline=date(2026, 12, 10), at=datetime(2026, 11, 19, 23, 50))
    assert Expression.compile("(deadline - today).days")(ns) == 14
    assert Expression.compile("days_between(at, today)")(ns) == 7   # days, not hours
    assert Expression.compile("now.strftime('%H:%M')")(ns) == "10:30"


@pytest.mark.parametrize("source", ["price.__class__", "price.__class__.__mro__",
                                    "lipsum.__globals__", "cycler"])
def test_the_sandbox_gives_no_way_out(source):
    expr = Expression.compile(source)
    with pytest.raises(RuleError):
        expr(scope(price=D("1")))


def test_what_an_expression_reads_is_known_before_it_runs():
    expr = Expression.compile("deposit > money(net * policy.cap) and linked.contract.vin != vin")
    assert {"deposit", "net", "vin"} <= expr.names.plain
    assert expr.names.policy == {"cap"} and expr.names.linked == {"contract"}
    assert unknown_names(expr.names, {"deposit", "vin"}, {"cap"}, {"contract"}) == ["net"]
    assert unknown_names(expr.names, {"deposit", "vin", "net"}, set(), set()) == [
        "policy.cap", "linked.contract"]


def test_a_rule_does_not_apply_while_what_it_needs_is_empty():
    rule = Rule(Expression.compile("deposit > cap"), Message.compile("定金 {{ deposit|money }}"),
                requires=("deposit", "cap"), field="deposit")
    assert rule.judge(scope(deposit=None, cap=D("1"))) is None
    assert rule.judge(scope(deposit=D("2"), cap=D("1"))) == "定金 ¥2.00"
    assert rule.judge(scope(deposit=D("1"), cap=D("1"))) is None


def test_lets_are_computed_in_order_before_the_test():
    rule = Rule(Expression.compile("age < 18"), Message.compile("{{ age }} 岁"), requires=(),
                lets=(("day", Expression.compile("date_of(start) if start else today")),
                      ("age", Expression.compile("age_on(number, day)"))))
    born_2009 = "110105200903150018"   # born 15 March 2009, check digit right
    assert functions.age_on(born_2009, TODAY) == 17
    assert rule.judge(scope(start=None, number=born_2009)) == "17 岁"
    assert rule.judge(scope(start=datetime(2027, 3, 15, 9, 0), number=born_2009)) is None


def test_an_expression_that_cannot_be_computed_says_which():
    with pytest.raises(RuleError) as raised:
        Expression.compile("a - b")(scope(a=None, b=date(2026, 1, 1)))
    assert "a - b" in str(raised.value)


@pytest.mark.parametrize("call, expected", [
    (lambda: functions.sum_of([{"x": D("1.10")}, {"x": None}, {}], "x"), D("1.10")),
    (lambda: functions.sum_of(None, "x"), D("0.00")),
    (lambda: functions.total(D("500"), None, D("0.5")), D("500.50")),
    (lambda: functions.rounded(D("1") / 3, "0.0001"), D("0.3333")),
    (lambda: functions.add_years(date(2024, 2, 29), 1), date(2025, 2, 28)),
    (lambda: functions.missing_from(["b"], ["a", "b", "c"]), ["a", "c"]),
    (lambda: functions.mean_score(["很满意", "基本满意", None, "?"], {"基本满意": 2, "很满意": 3},
                                  "0.1"), D("2.5")),
    (lambda: functions.mean_score([None], {"很满意": 3}, "0.1"), None),
    (lambda: functions.age_on("110105200903150010", TODAY), None),   # a wrong check digit
    (lambda: functions.minutes_between(datetime(2026, 1, 1, 9, 0), datetime(2026, 1, 1, 10, 29)),
     89),
    (lambda: functions.joined(["甲", "乙"]), "甲、乙"),
])
def test_generic_functions(call, expected):
    assert call() == expected


@pytest.mark.parametrize("rule, value, ok", [
    ("vin", "LSJA24U62JG269225", True), ("vin", "LSJA24U62JG269226", False),
    ("cn_id", "110105200903150018", True), ("cn_id", "110105200903150010", False),
    ("mobile", "13912345678", True), ("mobile", None, False),
])
def test_an_expression_can_ask_a_validation_rule(rule, value, ok):
    assert Expression.compile(f"valid('{rule}', x)")(scope(x=value)) is ok


def test_an_unknown_validation_rule_is_an_error():
    with pytest.raises(RuleError) as raised:
        Expression.compile("valid('vim', x)")(scope(x="1"))
    assert '没有校验规则 "vim"' in str(raised.value)
