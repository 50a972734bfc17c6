"""The checks, conditions and computed values of the shipped workflow files (expressions in
workflows/*.toml, engine/rules.py), each judged on its own. Pure: no I/O, no clock."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal as D
from types import SimpleNamespace

import pytest

from engine import functions, rules, validators
from engine.config import load_config
from engine.fields import normalize, to_python
from engine.workflow import load_workflow, load_workflows

from helpers import ROOT

TODAY = date(2026, 11, 26)
CONFIG = load_config(ROOT / "config.toml")
WORKFLOWS = load_workflows(CONFIG)


def facts(data=None, totals=None, today=TODAY, policy=None, linked=None, now=None):
    """What a rule is judged on: some fields (the others empty), some computed values."""
    return SimpleNamespace(data=data or {}, totals=totals or {}, today=today,
                           policy={**CONFIG.policy, **(policy or {})}, linked=linked or {},
                           now=now)


class _Named:
    """A check or condition of a shipped workflow, called like a function of :func:`facts`."""

    def __init__(self, name: str) -> None:
        found = [(wf, kind[name]) for wf in WORKFLOWS.values()
                 for kind in (wf.checks, wf.conditions) if name in kind]
        assert found, f"no workflow defines {name}"
        self.workflow, self.rule = found[0]

    def __call__(self, f):
        empty = {n: None for n in [*self.workflow.fields, *self.workflow.computed]}
        scope = rules.namespace({**empty, **f.data, **f.totals}, {}, today=f.today, now=f.now,
                                policy=f.policy, linked=f.linked)
        return self.rule(scope)


class _Book:
    """``checks.<name>`` and ``checks.CHECKS[name]``: the rule of that name."""

    def __getattr__(self, name: str) -> _Named:
        return _Named(name)

    def __getitem__(self, name: str) -> _Named:
        return _Named(name)

    CHECKS = CONDITIONS = property(lambda self: self)


checks = _Book()


def computed(workflow: str, data: dict) -> dict:
    """The computed values of a ``workflow`` case holding ``data`` (rows get derived columns)."""
    wf = WORKFLOWS[workflow]
    values = {**{n: None for n in wf.fields}, **data}
    return wf.compute(values, TODAY, CONFIG.policy)


def quote_totals(data: dict) -> dict:
    return computed("quote", data)


def contract_totals(data: dict) -> dict:
    return computed("contract", data)


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


def test_the_workflows_name_the_rules_they_use():
    assert SALES_CHAIN_CHECKS <= {n for k in ("quote", "contract", "delivery")
                                  for n in WORKFLOWS[k].checks}
    assert SALES_CHAIN_CONDITIONS <= {n for k in ("quote", "contract", "delivery")
                                      for n in WORKFLOWS[k].conditions}


def test_the_workflows_use_only_generic_python():
    """No workflow needs Python of its own: the named functions they rely on are the generic
    ones (field validation rules and expression functions), each known to its registry."""
    generic = ({f"validators.{n}" for n in validators.RULES}
               | {f"functions.{n}" for n in functions.FUNCTIONS})
    used = {name for wf in WORKFLOWS.values() for name in wf.functions_used}
    assert used <= generic, used - generic
    assert {"functions.money", "functions.sum_of", "validators.vin"} <= used


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
        # 131,900 ÷ 1.13 = 116,725.66; × 10 % = 11,672.566 → 11,672.57 (a petrol car)
        "purchase_tax_invoice_price": D("131900.00"), "purchase_tax_taxable_price": D("116725.66"),
        "purchase_tax_full": D("11672.57"), "purchase_tax_relief_kind": "",
        "purchase_tax_relief_cap": D("0.00"), "purchase_tax_relief": D("0.00"),
        "purchase_tax_computed": D("11672.57"), "purchase_tax": D("11672.57"),
        "purchase_tax_basis": "计税价格 ¥116,725.66 = 发票价 ¥131,900.00 ÷ 1.13，税率 10%",
        "taxes_and_fees_total": D("12172.57"),
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
     # the purchase tax is computed: 100,000 ÷ 1.13 = 88,495.58; × 10 % = 8,849.558 → 8,849.56
     {"vehicle_price": D("100000.00"), "net_vehicle_price": D("100000.00"),
      "purchase_tax": D("8849.56"), "grand_total": D("108849.56"), "balance_due": D("103849.56")}),
    ({"accessories": [{"name": "雨眉", "quantity": 3, "unit_price": D("0.10")}] * 7},
     {"accessories_total": D("2.10"), "grand_total": D("2.10")}),
    ({"accessories": [{"name": "x", "quantity": None, "unit_price": D("9.99")},
                      {"name": "y", "quantity": 2, "unit_price": None}]},
     {"accessories_total": ZERO}),
    ({"insurance": [{"name": "交强险", "premium": D("950.00")}, {"name": "?", "premium": None}]},
     {"insurance_total": D("950.00")}),
    ({"registration_fee": D("500.00"),
      "other_fees": [{"name": "金融服务费", "amount": D("0.00")}, {"name": "临牌", "amount": D("10")}],
      "purchase_tax_override": D("11672.57")},   # typed: the override counts
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
    assert all(v == v.quantize(D("0.01")) for v in totals.values() if isinstance(v, D))


def test_quote_totals_adds_line_amounts_to_the_rows():
    rows = [{"name": "原厂雨眉", "quantity": 4, "unit_price": D("95.50")}]

    quote_totals({"accessories": rows})

    assert rows[0]["amount"] == D("382.00")


# --- contract_totals -------------------------------------------------------------------------

CONTRACT = {"vehicle_price": D("139900.00"), "discount": D("6000.00"),
            "accessories": [{"name": "全景天窗遮阳帘", "quantity": 1, "unit_price": D("680.00")},
                            {"name": "真皮座椅套", "quantity": 1, "unit_price": D("2380.00")}],
            "registration_fee": D("500.00"), "other_fees": [], "deposit": D("5000.00"),
            "payment_method": "全款"}


# the purchase tax the contract states outside its price (issue 19; tests/test_purchase_tax.py)
PURCHASE_TAX = {"purchase_tax_invoice_price", "purchase_tax_taxable_price", "purchase_tax_full",
                "purchase_tax_relief_kind", "purchase_tax_relief_cap", "purchase_tax_relief",
                "purchase_tax_computed", "purchase_tax", "purchase_tax_basis"}


@pytest.mark.parametrize("data, expected", [
    ({}, {"net_vehicle_price": ZERO, "accessories_total": ZERO, "fees_total": ZERO,
          "grand_total": ZERO, "deposit_share": None, "balance_due": ZERO, "loan_amount": None}),
    (CONTRACT,  # examples/contract.json
     {"net_vehicle_price": D("133900.00"), "accessories_total": D("3060.00"),
      "fees_total": D("500.00"), "grand_total": D("137460.00"), "deposit_share": D("0.0373"),
      "balance_due": D("132460.00"), "loan_amount": None}),
    ({**CONTRACT, "payment_method": "分期", "down_payment": D("40000.00")},
     {"net_vehicle_price": D("133900.00"), "loan_amount": D("93900.00")}),  # net − down payment
    ({**CONTRACT, "payment_method": "分期", "down_payment": None}, {"loan_amount": None}),
    ({**CONTRACT, "payment_method": "全款", "down_payment": D("40000.00")}, {"loan_amount": None}),
    ({"vehicle_price": D("100000.00"), "discount": None}, {"net_vehicle_price": D("100000.00"),
                                                           "grand_total": D("100000.00")}),
    ({"vehicle_price": D("100000.00"), "deposit": D("20000.00")},
     {"deposit_share": D("0.2000"), "balance_due": D("80000.00")}),
    ({"vehicle_price": D("99999.99"), "deposit": D("20000.00")}, {"deposit_share": D("0.2000")}),
    ({"vehicle_price": D("100000.00"), "deposit": D("20000.01")}, {"deposit_share": D("0.2000")}),
    ({"vehicle_price": D("30000.00"), "deposit": D("10000.00")}, {"deposit_share": D("0.3333")}),
    ({"vehicle_price": D("100.00"), "discount": D("100.00"), "deposit": D("10.00")},
     {"net_vehicle_price": ZERO, "deposit_share": None, "balance_due": D("-10.00")}),
    ({"registration_fee": None,
      "other_fees": [{"name": "临牌", "amount": D("10")}, {"name": "?", "amount": None}]},
     {"fees_total": D("10.00"), "grand_total": D("10.00")}),
    ({"registration_fee": D("500"), "other_fees": [{"name": "临牌", "amount": D("10.5")}]},
     {"fees_total": D("510.50")}),
    ({"accessories": [{"name": "雨眉", "quantity": 4, "unit_price": D("95.50")},
                      {"name": "x", "quantity": None, "unit_price": D("9.99")}]},
     {"accessories_total": D("382.00"), "grand_total": D("382.00")}),
])
def test_contract_totals(data, expected):
    totals = contract_totals(data)

    assert {k: totals[k] for k in expected} == expected
    assert set(totals) == {"net_vehicle_price", "accessories_total", "fees_total", "grand_total",
                           "deposit_share", "balance_due", "loan_amount", *PURCHASE_TAX}
    money = [v for k, v in totals.items() if k != "deposit_share" and isinstance(v, D)]
    assert all(v == v.quantize(D("0.01")) for v in money)


def test_contract_totals_add_line_amounts_to_the_rows():
    rows = [{"name": "原厂雨眉", "quantity": 4, "unit_price": D("95.50")}]

    contract_totals({"accessories": rows})

    assert rows[0]["amount"] == D("382.00")


def test_contract_checks_read_the_contract_totals():
    # deposit and loan checks take the price after discount from contract_totals too
    data = {**CONTRACT, "deposit": D("26780.01"), "payment_method": "分期",
            "down_payment": D("133900.00"), "loan_term_months": 12, "monthly_payment": D("0")}
    f = facts(data, contract_totals(dict(data)))

    [(_, cap)] = checks.deposit_within_legal_cap(f)
    assert "¥26,780.00" in cap  # 20 % of 133,900
    assert [name for name, _ in checks.loan_terms_consistent(f)] == ["down_payment"]


# --- contract checks -------------------------------------------------------------------------

@pytest.mark.parametrize("price, discount, reason", [
    (D("139900.00"), D("6995.00"), None),  # exactly 5 %: within the threshold
    (D("139900.00"), D("6995.01"), "优惠 ¥6,995.01 超过车辆价格的"),
    (D("139900.00"), D("6000.00"), None),
    (D("139900.00"), D("0.00"), None),
    (D("139900.00"), None, None),
    (None, D("99999.00"), None),  # nothing to compare with (submit requires the price anyway)
    (D("99999.99"), D("5000.00"), None),  # 4999.9995 rounds half-up to 5000.00
    (D("99999.99"), D("5000.01"), "（¥5,000.00），需销售经理审批"),
])
def test_discount_within_approval_threshold(price, discount, reason):
    result = checks.discount_within_approval_threshold(
        facts({"vehicle_price": price, "discount": discount}))

    if reason is None:
        assert result is None
    else:
        assert reason in result and "需销售经理审批" in result, result


def test_discount_threshold_message_names_amount_and_limit():
    result = checks.discount_within_approval_threshold(
        facts({"vehicle_price": D("139900.00"), "discount": D("6995.01")}))

    assert result.startswith("优惠 ¥6,995.01 超过车辆价格的 5")
    assert result.endswith("（¥6,995.00），需销售经理审批")


@pytest.mark.parametrize("share, discount, passes", [
    ("0.10", D("13990.00"), True),
    ("0.10", D("13990.01"), False),
    ("0", D("0.00"), True),
    ("0", D("0.01"), False),
    ("1", D("139900.00"), True),
])
def test_discount_threshold_is_the_policy(share, discount, passes):
    f = facts({"vehicle_price": D("139900.00"), "discount": discount},
              policy={"contract_approval_discount_share": D(share)})

    assert (checks.discount_within_approval_threshold(f) is None) is passes


@pytest.mark.parametrize("data, problems", [
    ({"vehicle_price": D("139900.00"), "discount": D("139900.00")}, []),
    ({"vehicle_price": D("139900.00"), "discount": D("139900.01")},
     [("discount", "优惠 ¥139,900.01 超过车辆价格 ¥139,900.00")]),
    ({"vehicle_price": None, "discount": D("1")}, []),
])
def test_discount_within_vehicle_price(data, problems):
    assert checks.discount_within_vehicle_price(facts(data)) == problems


@pytest.mark.parametrize("data, fields", [
    ({"delivery_deadline": TODAY, "payment_deadline": TODAY, "deposit_date": TODAY}, []),
    ({"delivery_deadline": TODAY - timedelta(days=1)}, ["delivery_deadline"]),
    ({"payment_deadline": TODAY - timedelta(days=1)}, ["payment_deadline"]),
    ({"deposit_date": TODAY + timedelta(days=1)}, ["deposit_date"]),  # not paid yet
    ({"deposit_date": TODAY - timedelta(days=30)}, []),
    ({"delivery_deadline": TODAY - timedelta(days=1), "payment_deadline": TODAY - timedelta(days=1),
      "deposit_date": TODAY + timedelta(days=1)},
     ["delivery_deadline", "payment_deadline", "deposit_date"]),
    ({}, []),
])
def test_contract_dates_in_order(data, fields):
    assert [f for f, _ in checks.contract_dates_in_order(facts(data))] == fields


@pytest.mark.parametrize("name, field, day, refused", [
    ("signed_date_not_future", "signed_date", TODAY, False),
    ("signed_date_not_future", "signed_date", TODAY + timedelta(days=1), True),
    ("signed_date_not_future", "signed_date", TODAY - timedelta(days=3), False),
    ("delivery_date_not_past", "delivery_date", TODAY, False),
    ("delivery_date_not_past", "delivery_date", TODAY - timedelta(days=1), True),
    ("delivery_date_not_past", "delivery_date", None, False),
])
def test_date_checks(name, field, day, refused):
    problems = checks.CHECKS[name](facts({field: day}))

    assert [f for f, _ in problems] == ([field] if refused else [])


# --- delivery checks and conditions ----------------------------------------------------------

STATUTORY = ["车辆一致性证书", "中文使用说明书", "保修保养手册"]
LAW = "（《汽车销售管理办法》第十六条要求随车交付）"


@pytest.mark.parametrize("origin, buyer, handed, missing", [
    ("国产", "individual", STATUTORY + ["机动车整车出厂合格证", "三包凭证"], None),
    ("国产", "individual", STATUTORY + ["机动车整车出厂合格证"], "三包凭证"),
    ("国产", "company", STATUTORY + ["机动车整车出厂合格证"], None),  # 三包 only for household cars
    ("国产", "company", STATUTORY, "机动车整车出厂合格证"),
    ("进口", "individual", STATUTORY + ["货物进口证明", "进口机动车检验证明", "三包凭证"], None),
    ("进口", "individual", STATUTORY + ["机动车整车出厂合格证", "三包凭证"],
     "货物进口证明、进口机动车检验证明"),  # an imported car has no 合格证; the import papers count
    ("进口", "company", STATUTORY + ["货物进口证明", "进口机动车检验证明"], None),
    ("国产", "individual", [], "车辆一致性证书、中文使用说明书、保修保养手册、机动车整车出厂合格证、三包凭证"),
    ("进口", "company", ["购车合同"],
     "车辆一致性证书、中文使用说明书、保修保养手册、货物进口证明、进口机动车检验证明"),
    (None, None, STATUTORY + ["机动车整车出厂合格证", "三包凭证"], None),  # unknown: domestic, household
    (None, None, STATUTORY + ["机动车整车出厂合格证"], "三包凭证"),
])
def test_statutory_documents_handed(origin, buyer, handed, missing):
    data = {"vehicle_origin": origin, "buyer_type": buyer, "handover_documents": handed}

    problems = checks.statutory_documents_handed(facts(data))

    assert problems == ([] if missing is None
                        else [("handover_documents", f"缺少随车凭证：{missing}{LAW}")])


CAR = {"vin": "LSJA24U62JG269225", "engine_number": "SQRE4T15C2501234", "colour": "极地白"}


@pytest.mark.parametrize("ours, linked, problems", [
    (CAR, {"contract": dict(CAR)}, []),
    (CAR, {"contract": {**CAR, "brand": "奇瑞"}}, []),
    ({**CAR, "vin": "LDC613P23A1305189"}, {"contract": CAR},
     [("vin", 'VIN "LDC613P23A1305189" 与购车合同中的 "LSJA24U62JG269225" 不一致')]),
    ({**CAR, "engine_number": "X1234"}, {"contract": CAR},
     [("engine_number", '发动机号 "X1234" 与购车合同中的 "SQRE4T15C2501234" 不一致')]),
    ({**CAR, "colour": "曜石黑"}, {"contract": CAR},
     [("colour", '车身颜色 "曜石黑" 与购车合同中的 "极地白" 不一致')]),
    ({"vin": "LDC613P23A1305189", "engine_number": "X1234", "colour": "曜石黑"}, {"contract": CAR},
     ["vin", "engine_number", "colour"]),
    ({"vin": None, "engine_number": None, "colour": None}, {"contract": CAR}, []),  # not given yet
    (CAR, {}, [("vin", "找不到关联的购车合同，无法核对车辆")]),
    (CAR, {"quote": CAR}, [("vin", "找不到关联的购车合同，无法核对车辆")]),
])
def test_vehicle_matches_contract(ours, linked, problems):
    found = checks.vehicle_matches_contract(facts(ours, linked=linked))

    if problems and isinstance(problems[0], str):
        assert [f for f, _ in found] == problems
    else:
        assert found == problems


@pytest.mark.parametrize("reading, limit, problems", [
    (12, 50, []),
    (50, 50, []),  # the limit itself is allowed
    (51, 50, [("odometer_km", "交车里程 51 公里超过合同约定的 50 公里")]),
    (0, 0, []),
    (1, 0, [("odometer_km", "交车里程 1 公里超过合同约定的 0 公里")]),
    (None, 50, []),
    (500, None, []),
])
def test_odometer_within_contract(reading, limit, problems):
    data = {"odometer_km": reading, "max_odometer_km": limit}
    assert checks.odometer_within_contract(facts(data)) == problems


DELIVERED = datetime(2026, 11, 19, 15, 30)
LATER = date(2026, 12, 10)  # "today" for the follow-up table


@pytest.mark.parametrize("day, reason, days, problems", [
    (date(2026, 11, 19), None, 7, []),  # the same day
    (date(2026, 11, 26), None, 7, []),  # the 7th day: still in time
    (date(2026, 11, 27), None, 7,
     [("followup_late_reason", "回访在交车后第 8 天，超过规定的 7 天，请填写逾期原因")]),
    (date(2026, 11, 27), "客户出差，电话未接通", 7, []),
    (date(2026, 12, 10), "", 7, [("followup_late_reason",
                                   "回访在交车后第 21 天，超过规定的 7 天，请填写逾期原因")]),
    (date(2026, 11, 30), None, 14, []),  # the store's policy, not a constant
    (date(2026, 11, 20), None, 1, []),
    (date(2026, 11, 21), None, 1, [("followup_late_reason",
                                    "回访在交车后第 2 天，超过规定的 1 天，请填写逾期原因")]),
    (date(2026, 11, 18), "任意", 7,
     [("followup_date", "回访日期 2026年11月18日 早于交车日期 2026年11月19日")]),
    (date(2026, 12, 11), None, 7, [("followup_date", "回访日期 2026年12月11日 晚于今天")]),
    (None, None, 7, []),
])
def test_followup_in_time(day, reason, days, problems):
    data = {"followup_date": day, "delivered_at": DELIVERED, "followup_late_reason": reason}
    f = facts(data, today=LATER, policy={"delivery_followup_days": days})

    assert checks.followup_in_time(f) == problems


def test_followup_counts_days_not_hours():
    late_evening = datetime(2026, 11, 19, 23, 50)
    data = {"followup_date": date(2026, 11, 26), "delivered_at": late_evening}

    assert checks.followup_in_time(facts(data, today=LATER)) == []
    assert checks.followup_in_time(facts({**data, "delivered_at": None}, today=LATER)) == []


@pytest.mark.parametrize("result, reason", [
    ("合格", None),
    ("不合格", "PDI 检查结果为「不合格」，不能进入交车"),
    (None, "PDI 检查结果为「未填写」，不能进入交车"),
])
def test_pdi_passed(result, reason):
    assert checks.pdi_passed(facts({"pdi_result": result})) == reason
