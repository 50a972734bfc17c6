"""车辆购置税 computed by the workflow files' rules (issue 19): the taxable price is the invoice
price ÷ 1.13 to 分, the tax 10 % of it to 分; a NEV on the tax authorities' list is exempt in
2024–25 (relief at most ¥30,000) and halved in 2026–27 (relief at most ¥15,000), by its purchase
date; a consultant overrides the figure only with a reason, printed and audited; a quote stored
with a typed purchase tax keeps it as its override. Every figure below is worked by hand."""
from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal as D

import pytest

from engine import Engine, InputError, load_config
from engine.workflow import load_workflows

from helpers import ROOT, contract_data, make_dealer_dir, pdf_text, point_at_workflows

NOV_2026 = date(2026, 11, 26)   # the clock fixture's day


@pytest.fixture(scope="module")
def shipped():
    config = load_config(ROOT / "config.toml")
    return config, load_workflows(config)


def computed(shipped, workflow: str, net_price: str, nev: bool | None, day: date | None,
             override: str | None = None) -> dict:
    """The computed values of a case of ``workflow`` whose vehicle sells for ``net_price``."""
    config, workflows = shipped
    wf = workflows[workflow]
    values = {name: None for name in wf.fields}
    price = "list_price" if workflow == "quote" else "vehicle_price"
    values.update({price: D(net_price), "discount": D("0"), "nev_listed": nev,
                   "purchase_date": day, "accessories": [], "insurance": [], "other_fees": [],
                   "purchase_tax_override": D(override) if override else None})
    return wf.compute(values, NOV_2026, config.policy)


# net price, NEV listed, purchase date → taxable price, tax before relief, relief, tax
# 150,000 ÷ 1.13 = 132,743.3628… → 132,743.36; × 10 % = 13,274.336 → 13,274.34
# 200,000 ÷ 1.13 = 176,991.1504… → 176,991.15; 17,699.115 → 17,699.12; half 8,849.56
# 400,000 ÷ 1.13 = 353,982.3008… → 353,982.30; 35,398.23; half 17,699.115 → 17,699.12 > 15,000
# 250,000 ÷ 1.13 = 221,238.9380… → 221,238.94; 22,123.894 → 22,123.89, all of it exempt
# 339,000 ÷ 1.13 = 300,000.00; 30,000.00: the last price relieved in full in 2024–25 (and
#   the last whose half stays within 15,000 in 2026–27)
VECTORS = [
    ("petrol", "150000.00", False, NOV_2026, "132743.36", "13274.34", "0.00", "13274.34"),
    ("petrol, NEV field empty", "150000.00", None, NOV_2026, "132743.36", "13274.34", "0.00",
     "13274.34"),
    ("NEV 2026 below the cap: halved", "200000.00", True, NOV_2026, "176991.15", "17699.12",
     "8849.56", "8849.56"),
    ("NEV 2026 above the cap", "400000.00", True, NOV_2026, "353982.30", "35398.23",
     "15000.00", "20398.23"),
    ("NEV 2026 at the cap", "339000.00", True, date(2026, 1, 1), "300000.00", "30000.00",
     "15000.00", "15000.00"),
    ("NEV 2025 below the cap: exempt", "250000.00", True, date(2025, 6, 1), "221238.94",
     "22123.89", "22123.89", "0.00"),
    ("NEV 2025 at the cap", "339000.00", True, date(2025, 12, 31), "300000.00", "30000.00",
     "30000.00", "0.00"),
    ("NEV 2025 above the cap", "400000.00", True, date(2024, 1, 1), "353982.30", "35398.23",
     "30000.00", "5398.23"),
    ("NEV after 2027: no relief", "400000.00", True, date(2028, 1, 1), "353982.30", "35398.23",
     "0.00", "35398.23"),
    ("NEV before 2024: no relief here", "200000.00", True, date(2023, 12, 31), "176991.15",
     "17699.12", "0.00", "17699.12"),
    ("petrol in 2025: no relief", "250000.00", False, date(2025, 6, 1), "221238.94", "22123.89",
     "0.00", "22123.89"),
]


@pytest.mark.parametrize("workflow", ["quote", "contract"])
@pytest.mark.parametrize("what, net, nev, day, taxable, full, relief, tax", VECTORS,
                         ids=[v[0] for v in VECTORS])
def test_the_rule_computes_the_tax_by_hand(shipped, workflow, what, net, nev, day, taxable,
                                           full, relief, tax):
    totals = computed(shipped, workflow, net, nev, day)
    assert totals["purchase_tax_invoice_price"] == D(net)
    assert totals["purchase_tax_taxable_price"] == D(taxable)
    assert totals["purchase_tax_full"] == D(full)
    assert totals["purchase_tax_relief"] == D(relief)
    assert totals["purchase_tax_computed"] == totals["purchase_tax"] == D(tax)


@pytest.mark.parametrize("net, nev, day, words", [
    ("150000.00", False, NOV_2026, "计税价格 ¥132,743.36 = 发票价 ¥150,000.00 ÷ 1.13，税率 10%"),
    ("200000.00", True, NOV_2026,
     "计税价格 ¥176,991.15 = 发票价 ¥200,000.00 ÷ 1.13，税率 10%；新能源汽车，购置日期 "
     "2026年11月26日，减半征收，减免 ¥8,849.56，上限 ¥15,000.00"),
    ("400000.00", True, NOV_2026,
     "计税价格 ¥353,982.30 = 发票价 ¥400,000.00 ÷ 1.13，税率 10%；新能源汽车，购置日期 "
     "2026年11月26日，减半征收，减免 ¥15,000.00，上限 ¥15,000.00（已达上限）"),
    ("250000.00", True, date(2025, 6, 1),
     "计税价格 ¥221,238.94 = 发票价 ¥250,000.00 ÷ 1.13，税率 10%；新能源汽车，购置日期 "
     "2025年6月1日，免征，减免 ¥22,123.89，上限 ¥30,000.00"),
    ("400000.00", True, date(2028, 1, 1),
     "计税价格 ¥353,982.30 = 发票价 ¥400,000.00 ÷ 1.13，税率 10%；新能源汽车，购置日期 "
     "2028年1月1日，不在减免期内"),
])
def test_the_basis_says_how_it_was_computed(shipped, net, nev, day, words):
    assert computed(shipped, "quote", net, nev, day)["purchase_tax_basis"] == words


def test_an_override_replaces_the_figure_and_says_so(shipped):
    totals = computed(shipped, "quote", "150000.00", False, NOV_2026, override="13000.00")
    assert totals["purchase_tax_computed"] == D("13274.34")
    assert totals["purchase_tax"] == D("13000.00")
    assert totals["grand_total"] == D("163000.00")   # 150,000 + 13,000: the override counts
    assert totals["purchase_tax_basis"].startswith(
        "人工调整，原因：（未填写）；按规则计算为 ¥13,274.34：计税价格 ¥132,743.36")


def test_the_store_may_move_the_relief_dates(tmp_path):
    """The periods and caps are [policy]: a store whose config.toml says otherwise (a new
    announcement before the product is updated) gets its own figures."""
    config = make_dealer_dir(tmp_path / "dealer")
    text = config.read_text(encoding="utf-8").replace(
        "[policy]\n", '[policy]\nnev_halved_until = 2028-12-31\nnev_halved_cap = "10000.00"\n', 1)
    config.write_text(text, encoding="utf-8")
    moved = load_config(config)
    totals = computed((moved, load_workflows(moved)), "quote", "400000.00", True,
                      date(2028, 6, 1))
    assert totals["purchase_tax_relief"] == D("10000.00")
    assert totals["purchase_tax"] == D("25398.23")


# --- through the engine: totals, the issued PDF, the override's reason, the audit trail -------

def nev_quote(quote_data: dict, **changes) -> dict:
    """examples/quote.json for a listed NEV whose agreed price is ¥400,000."""
    paid_in_full = {k: v for k, v in quote_data.items()
                    if k not in ("lender", "down_payment", "loan_term_months", "monthly_payment")}
    return {**paid_in_full, "list_price": "408000.00", "discount": "8000.00",
            "payment_method": "全款", "nev_listed": True, **changes}


def test_an_issued_nev_quote_totals_and_prints_the_computation(engine, quote_data):
    case = engine.create("quote", nev_quote(quote_data), "zhang")
    [doc] = engine.fire(case.id, "issue", "zhang").documents

    shown = engine.case(case.id, actor="wang")
    assert shown["data"]["purchase_date"] == "2026-11-26"   # today, when the quote was made
    totals = shown["totals"]
    assert totals["purchase_tax_taxable_price"] == "353982.30"
    assert totals["purchase_tax_relief"] == "15000.00"
    assert totals["purchase_tax"] == "20398.23"
    # vehicle 400,000 + accessories 3,442 + insurance 5,155 + fees 500 + tax 20,398.23
    assert totals["grand_total"] == "429495.23"
    assert totals["taxes_and_fees_total"] == "20898.23"

    text = pdf_text(doc.pdf).replace(" ", "")
    line = ("车辆购置税：¥20,398.23（计税价格¥353,982.30=发票价¥400,000.00÷1.13，税率10%；"
            "新能源汽车，购置日期2026年11月26日，减半征收，减免¥15,000.00，上限¥15,000.00（已达上限）"
            "）；以税务机关核定为准。")
    assert line in text.replace("\n", ""), text
    assert "¥429,495.23" in text


def test_the_example_quote_computes_what_it_used_to_type(engine, quote_data):
    """examples/quote.json typed 11,672.57 by hand; the rule gives the same for its ¥131,900
    petrol car: 131,900 ÷ 1.13 = 116,725.66; × 10 % = 11,672.566 → 11,672.57."""
    case = engine.create("quote", quote_data, "zhang")
    totals = engine.case(case.id, actor="wang")["totals"]
    assert totals["purchase_tax"] == "11672.57" and totals["grand_total"] == "152669.57"


def test_an_override_without_a_reason_is_refused_naming_the_field(engine, quote_data):
    case = engine.create("quote", quote_data, "zhang")
    with pytest.raises(InputError) as refused:
        engine.fire(case.id, "issue", "zhang", {"purchase_tax_override": "11000.00"})
    assert refused.value.field == "purchase_tax_override_reason"
    assert refused.value.message == (
        "购置税人工调整原因（purchase_tax_override_reason）：购置税按规则计算为 ¥11,672.57，"
        "人工调整为 ¥11,000.00 须写明原因")
    assert engine.case(case.id, actor="wang")["state"] == "draft"   # nothing happened

    with pytest.raises(InputError) as editing:
        engine.fire(case.id, "edit", "zhang", {"purchase_tax_override": "11000.00"})
    assert editing.value.field == "purchase_tax_override_reason"


def test_an_override_with_a_reason_is_used_printed_and_audited(engine, quote_data):
    case = engine.create("quote", quote_data, "zhang")
    reason = "客户为残疾人专用车，税务机关已核定减免"
    [doc] = engine.fire(case.id, "issue", "zhang", {"purchase_tax_override": "0.00",
                                                    "purchase_tax_override_reason": reason}
                        ).documents

    shown = engine.case(case.id, actor="wang")
    assert shown["totals"]["purchase_tax_computed"] == "11672.57"
    assert shown["totals"]["purchase_tax"] == "0.00"
    assert shown["totals"]["grand_total"] == "140997.00"   # 152,669.57 − 11,672.57
    assert {"field": "purchase_tax_override", "old": None, "new": "0.00"} in \
        shown["history"][-1]["changed"]
    assert {"field": "purchase_tax_override_reason", "old": None, "new": reason} in \
        shown["history"][-1]["changed"]

    text = pdf_text(doc.pdf).replace(" ", "").replace("\n", "")
    assert (f"车辆购置税：¥0.00（人工调整，原因：{reason}；按规则计算为¥11,672.57："
            "计税价格¥116,725.66=发票价¥131,900.00÷1.13，税率10%）") in text, text

    # clearing the override goes back to the rule's figure
    engine.fire(case.id, "revise", "zhang", {"purchase_tax_override": None,
                                             "purchase_tax_override_reason": None})
    assert engine.case(case.id, actor="wang")["totals"]["purchase_tax"] == "11672.57"


def test_a_contract_from_the_quote_states_the_same_tax(engine, quote_data):
    quote = engine.create("quote", nev_quote(quote_data), "zhang")
    engine.fire(quote.id, "issue", "zhang")
    engine.fire(quote.id, "accept", "zhang")
    data = {k: v for k, v in contract_data(NOV_2026).items()
            if k not in ("vehicle_price", "discount", "accessories")}
    contract = engine.create("contract", {**data, "agency_services": ["车辆上牌", "购置税缴纳"]},
                             "zhang", source=quote.id)
    shown = engine.case(contract.id, actor="wang")
    assert shown["data"]["nev_listed"] is True           # carried over from the quote
    assert shown["totals"]["purchase_tax"] == "20398.23"
    # the contract price does not include the tax (第二条 2.)
    assert D(shown["totals"]["grand_total"]) == D("400000.00") + D(
        shown["totals"]["accessories_total"]) + D(shown["totals"]["fees_total"])

    assert engine.fire(contract.id, "submit", "zhang").state == "approved"   # 8,000 ≤ 5 %
    [doc] = engine.fire(contract.id, "issue", "zhang").documents
    text = pdf_text(doc.pdf).replace(" ", "").replace("\n", "")
    assert ("3.车辆购置税不含在合同总价款内，由乙方依法缴纳（乙方已委托甲方代办）：按车辆成交价计为"
            "¥20,398.23（计税价格¥353,982.30=发票价¥400,000.00÷1.13，税率10%；新能源汽车，"
            "购置日期2026年11月26日，减半征收，减免¥15,000.00，上限¥15,000.00（已达上限）），"
            "以税务机关核定为准。") in text, text
    assert "4.除本合同列明的款项外" in text


# --- a store from before: the typed figure is kept as the override --------------------------

@pytest.fixture
def old_store(tmp_path, converter, clock, quote_data):
    """A store whose Q-1 was issued under the quote.toml before issue 19, with a typed
    purchase tax of 12,000.00 (the rule gives 11,672.57); then the current quote.toml."""
    folder = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", folder)
    quote_toml = folder / "quote.toml"
    current = quote_toml.read_text(encoding="utf-8")
    head, found, _ = current.partition("\n[migrations]\n")
    assert found
    # the typed field back (the definition's other changes do not matter here)
    quote_toml.write_text(head + '\n[fields.purchase_tax]\ntype = "money"\nlabel = "购置税"\n',
                          encoding="utf-8")
    config = point_at_workflows(make_dealer_dir(tmp_path / "dealer"), str(folder))
    with Engine(load_config(config), converter=converter, clock=clock) as old:
        old.create("quote", {**quote_data, "purchase_tax": "12000.00"}, "zhang")
        old.fire("Q-1", "issue", "zhang")
    quote_toml.write_text(current, encoding="utf-8")
    with Engine(load_config(config), converter=converter, clock=clock) as new:
        yield new


def test_a_quote_stored_with_a_typed_tax_keeps_it_as_its_override(old_store):
    shown = old_store.case("Q-1", actor="wang")
    assert shown["data"]["purchase_tax_override"] == "12000.00"
    assert "purchase_tax" not in shown["data"]
    assert shown["totals"]["purchase_tax"] == "12000.00"    # the figure it was issued with
    assert shown["totals"]["purchase_tax_computed"] == "11672.57"
    assert shown["totals"]["grand_total"] == "152997.00"    # 152,669.57 − 11,672.57 + 12,000
    assert old_store.fire("Q-1", "accept", "zhang").state == "accepted"   # moves on as it was


def test_revising_a_migrated_quote_asks_for_the_reason(old_store):
    with pytest.raises(InputError) as refused:
        old_store.fire("Q-1", "revise", "zhang", {"remarks": "改交车日期"})
    assert refused.value.field == "purchase_tax_override_reason"
    assert "人工调整为 ¥12,000.00 须写明原因" in refused.value.message

    result = old_store.fire("Q-1", "revise", "zhang", {"purchase_tax_override": None})
    assert result.documents[0].version == 2
    assert old_store.case("Q-1", actor="wang")["totals"]["purchase_tax"] == "11672.57"
