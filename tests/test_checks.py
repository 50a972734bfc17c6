"""Cross-field checks, transition conditions and the quote calculator. Pure: no I/O, no clock."""
from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from engine import calculators, checks
from engine.calculators import CALCULATORS, contract_totals, quote_totals
from engine.checks import Facts
from engine.config import load_config
from engine.fields import normalize, to_python
from engine.workflow import load_workflow

from helpers import ROOT

TODAY = date(2026, 11, 26)


def facts(data=None, totals=None, today=TODAY) -> Facts:
    return Facts(data or {}, totals or {}, today)


# --- checks ----------------------------------------------------------------------------------

@pytest.mark.parametrize("data, problems", [
    ({"list_price": D("139900.00"), "discount": D("8000.00")}, []),
    ({"list_price": D("139900.00"), "discount": D("139900.00")}, []),
    ({"list_price": D("139900.00"), "discount": D("139900.01")},
     [("discount", "优惠 ¥139,900.01 超过指导价 ¥139,900.00")]),
    ({"list_price": None, "discount": D("1")}, []),
    ({"list_price": D("1"), "discount": None}, []),
    ({}, []),
])
def test_discount_within_list_price(data, problems):
    assert checks.discount_within_list_price(facts(data)) == problems


CAP_MESSAGE = ("定金 {deposit} 超过车辆成交价的 20%（{cap}），超出部分不产生定金效力"
               "（民法典第五百八十六条）")


@pytest.mark.parametrize("deposit, price, problems", [
    (D("26380.00"), D("131900.00"), []),  # exactly 20 % is allowed
    (D("26380.01"), D("131900.00"),
     [("deposit", CAP_MESSAGE.format(deposit="¥26,380.01", cap="¥26,380.00"))]),
    (D("50000.00"), D("131900.00"),
     [("deposit", CAP_MESSAGE.format(deposit="¥50,000.00", cap="¥26,380.00"))]),
    (D("0.00"), D("131900.00"), []),
    (D("20000.00"), D("99999.99"), []),  # the cap is rounded half-up to 分: 19999.998 → 20000.00
    (D("20000.01"), D("99999.99"),
     [("deposit", CAP_MESSAGE.format(deposit="¥20,000.01", cap="¥20,000.00"))]),
    (None, D("131900.00"), []),
    (D("5000.00"), None, []),
])
def test_deposit_within_legal_cap(deposit, price, problems):
    f = facts({"deposit": deposit}, {"net_vehicle_price": price})
    assert checks.deposit_within_legal_cap(f) == problems


def test_deposit_cap_reads_the_net_price_not_the_list_price():
    # a quote's totals carry both; the cap is taken from the net (成交价) one
    f = facts({"deposit": D("26380.01")},
              {"vehicle_price": D("200000.00"), "net_vehicle_price": D("131900.00")})
    assert [field for field, _ in checks.deposit_within_legal_cap(f)] == ["deposit"]


def test_deposit_cap_uses_the_price_after_discount():
    data = {"list_price": D("139900.00"), "discount": D("8000.00"), "deposit": D("27000.00")}

    [(field, message)] = checks.deposit_within_legal_cap(facts(data, quote_totals(dict(data))))

    assert field == "deposit" and "¥26,380.00" in message  # 20 % of 131,900, not of 139,900


LOAN = {"payment_method": "分期", "down_payment": D("40000.00"), "loan_term_months": 36,
        "monthly_payment": D("2650.00")}


@pytest.mark.parametrize("patch, price, loan, fields, words", [
    ({}, D("131900.00"), D("91900.00"), [], []),
    ({"monthly_payment": D("2552.78")}, D("131900.00"), D("91900.00"), [], []),  # 91900.08 ≥
    ({"monthly_payment": D("2552.77")}, D("131900.00"), D("91900.00"), ["monthly_payment"],
     ["月供 ¥2,552.77 × 36 期 = ¥91,899.72，少于贷款金额 ¥91,900.00"]),
    ({"down_payment": D("131900.00")}, D("131900.00"), D("0.00"), ["down_payment"],
     ["首付款 ¥131,900.00 应小于车辆成交价 ¥131,900.00，否则无需分期"]),
    ({"down_payment": D("131899.99"), "monthly_payment": D("0.00")}, D("131900.00"),
     D("0.01"), ["monthly_payment"], ["少于贷款金额 ¥0.01"]),
    ({"down_payment": D("200000.00")}, D("131900.00"), D("-68100.00"), ["down_payment"], []),
    ({"payment_method": "全款", "down_payment": D("200000.00"), "monthly_payment": D("0")},
     D("131900.00"), None, [], []),
    ({"payment_method": None}, D("131900.00"), None, [], []),
    ({"loan_term_months": None}, D("131900.00"), D("91900.00"), [], []),
    ({"monthly_payment": None}, D("131900.00"), D("91900.00"), [], []),
])
def test_loan_terms_consistent(patch, price, loan, fields, words):
    problems = checks.loan_terms_consistent(
        facts({**LOAN, **patch}, {"net_vehicle_price": price, "loan_amount": loan}))

    assert [f for f, _ in problems] == fields
    for word in words:
        assert any(word in m for _, m in problems), problems


@pytest.mark.parametrize("valid_until, problems", [
    (TODAY, []),
    (TODAY + timedelta(days=1), []),
    (TODAY - timedelta(days=1),
     [("valid_until", "报价有效期 2026年11月25日 已早于今天 2026年11月26日")]),
    (None, []),
])
def test_valid_until_not_past(valid_until, problems):
    assert checks.valid_until_not_past(facts({"valid_until": valid_until})) == problems


# --- conditions ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, valid_until, reason", [
    ("valid_until_passed", TODAY - timedelta(days=1), None),
    ("valid_until_passed", TODAY, "报价有效期至 2026年11月26日，尚未过期"),
    ("valid_until_passed", date(2026, 12, 3), "报价有效期至 2026年12月3日，尚未过期"),
    ("valid_until_not_passed", TODAY, None),
    ("valid_until_not_passed", TODAY + timedelta(days=7), None),
    ("valid_until_not_passed", TODAY - timedelta(days=1),
     "报价已于 2026年11月25日 过期，请先修订（revise）报价再接受"),
    ("valid_until_passed", None, None),
    ("valid_until_not_passed", None, None),
])
def test_conditions(name, valid_until, reason):
    assert checks.CONDITIONS[name](facts({"valid_until": valid_until})) == reason


SALES_CHAIN_CHECKS = {
    "discount_within_list_price", "deposit_within_legal_cap", "loan_terms_consistent",
    "valid_until_not_past", "discount_within_vehicle_price", "contract_dates_in_order",
    "signed_date_not_future", "delivery_date_not_past", "vehicle_matches_contract",
    "statutory_documents_handed", "odometer_within_contract", "followup_in_time"}
SALES_CHAIN_CONDITIONS = {"valid_until_passed", "valid_until_not_passed",
                          "discount_within_approval_threshold", "pdi_passed"}


@pytest.mark.parametrize("registry, module, needed", [
    (checks.CHECKS, checks, SALES_CHAIN_CHECKS),
    (checks.CONDITIONS, checks, SALES_CHAIN_CONDITIONS),
    (CALCULATORS, calculators, {"quote_totals", "contract_totals"}),
], ids=["checks", "conditions", "calculators"])
def test_registries_name_their_functions(registry, module, needed):
    # every name a workflow file may use is the module function of that name
    assert {name: fn.__name__ for name, fn in registry.items()} == {n: n for n in registry}
    assert all(getattr(module, name) is fn for name, fn in registry.items())
    assert needed <= set(registry), needed - set(registry)


# --- quote_totals ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def example_values() -> dict:
    """examples/quote.json as the engine's calculators see it (normalised, then Python values)."""
    config = load_config(ROOT / "config.toml")
    wf = load_workflow(ROOT / "workflows" / "quote.toml", config)
    raw = json.loads((ROOT / "examples" / "quote.json").read_text(encoding="utf-8"),
                     parse_float=D)
    stored = {k: normalize(wf.fields[k], v, config) for k, v in raw.items()}
    return {k: to_python(spec, stored.get(k), config) for k, spec in wf.fields.items()}


def test_quote_totals_of_the_example(example_values):
    totals = quote_totals(example_values)

    assert totals == {
        "vehicle_price": D("131900.00"), "net_vehicle_price": D("131900.00"),
        "accessories_total": D("3442.00"),
        "insurance_total": D("5155.00"), "fees_total": D("500.00"),
        "purchase_tax": D("11672.57"), "taxes_and_fees_total": D("12172.57"),
        "grand_total": D("152669.57"), "balance_due": D("147669.57"),
        "loan_amount": D("91900.00"),
    }
    assert [r["amount"] for r in example_values["accessories"]] == [
        D("680.00"), D("2380.00"), D("382.00")]


ZERO = D("0.00")


@pytest.mark.parametrize("data, expected", [
    ({}, {"vehicle_price": ZERO, "net_vehicle_price": ZERO, "accessories_total": ZERO,
          "insurance_total": ZERO,
          "fees_total": ZERO, "purchase_tax": ZERO, "taxes_and_fees_total": ZERO,
          "grand_total": ZERO, "balance_due": ZERO, "loan_amount": None}),
    ({"list_price": D("100000.00"), "discount": None, "deposit": D("5000.00")},
     {"vehicle_price": D("100000.00"), "net_vehicle_price": D("100000.00"),
      "grand_total": D("100000.00"), "balance_due": D("95000.00")}),
    ({"accessories": [{"name": "雨眉", "quantity": 3, "unit_price": D("0.10")}] * 7},
     {"accessories_total": D("2.10"), "grand_total": D("2.10")}),
    ({"accessories": [{"name": "x", "quantity": None, "unit_price": D("9.99")},
                      {"name": "y", "quantity": 2, "unit_price": None}]},
     {"accessories_total": ZERO}),
    ({"insurance": [{"name": "交强险", "premium": D("950.00")}, {"name": "?", "premium": None}]},
     {"insurance_total": D("950.00")}),
    ({"registration_fee": D("500.00"),
      "other_fees": [{"name": "金融服务费", "amount": D("0.00")}, {"name": "临牌", "amount": D("10")}],
      "purchase_tax": D("11672.57")},
     {"fees_total": D("510.00"), "taxes_and_fees_total": D("12182.57"),
      "grand_total": D("12182.57")}),
    ({"list_price": D("100000.00"), "payment_method": "全款", "down_payment": D("30000.00")},
     {"loan_amount": None}),
    ({"list_price": D("100000.00"), "discount": D("5000.00"), "payment_method": "分期",
      "down_payment": D("30000.00")}, {"loan_amount": D("65000.00")}),
    ({"list_price": D("100000.00"), "payment_method": "分期"}, {"loan_amount": None}),
    ({"deposit": D("100.00")}, {"balance_due": D("-100.00")}),
])
def test_quote_totals(data, expected):
    totals = quote_totals(data)

    assert {k: totals[k] for k in expected} == expected
    assert all(v is None or v == v.quantize(D("0.01")) for v in totals.values())


def test_quote_totals_adds_line_amounts_to_the_rows():
    rows = [{"name": "原厂雨眉", "quantity": 4, "unit_price": D("95.50")}]

    quote_totals({"accessories": rows})

    assert rows[0]["amount"] == D("382.00")
