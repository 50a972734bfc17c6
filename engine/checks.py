"""Cross-field checks and transition conditions, referred to by name from workflow files.

A *check* validates data a transition is about to commit and returns problems as
``(field, message)`` pairs; the engine reports them as one :class:`InputError`. A *condition*
decides whether a transition may happen at all now (e.g. a quote can only expire after its
validity date) and returns a refusal reason or ``None``; the engine reports a
:class:`StateError`. Both are pure: "today" is passed in, so tests can move the clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Callable

from .dates import cn_date
from .money import format_money, quantize


@dataclass(frozen=True)
class Facts:
    """What a check or condition may look at."""

    data: dict[str, Any]  # Python values (Decimal, date, …)
    totals: dict[str, Any]
    today: date


Problem = tuple[str, str]
Check = Callable[[Facts], list[Problem]]
Condition = Callable[[Facts], "str | None"]

# 民法典 Art. 586: a 定金 above 20 % of the contract's subject amount is not enforceable.
DEPOSIT_CAP = Decimal("0.20")


def discount_within_list_price(f: Facts) -> list[Problem]:
    price, discount = f.data.get("list_price"), f.data.get("discount")
    if price is not None and discount is not None and discount > price:
        return [("discount", f"优惠 {format_money(discount)} 超过指导价 {format_money(price)}")]
    return []


def deposit_within_legal_cap(f: Facts) -> list[Problem]:
    deposit, price = f.data.get("deposit"), f.totals.get("vehicle_price")
    if deposit is None or price is None:
        return []
    cap = quantize(price * DEPOSIT_CAP)
    if deposit > cap:
        return [("deposit", f"定金 {format_money(deposit)} 超过车辆成交价的 20%（{format_money(cap)}），"
                            f"超出部分不产生定金效力（民法典第五百八十六条）")]
    return []


def loan_terms_consistent(f: Facts) -> list[Problem]:
    if f.data.get("payment_method") != "分期":
        return []
    down, price = f.data.get("down_payment"), f.totals.get("vehicle_price")
    problems = []
    if down is not None and price is not None and down >= price:
        problems.append(("down_payment", f"首付款 {format_money(down)} 应小于车辆成交价 "
                                         f"{format_money(price)}，否则无需分期"))
    loan, term, monthly = f.totals.get("loan_amount"), f.data.get("loan_term_months"), \
        f.data.get("monthly_payment")
    if loan and term and monthly is not None and monthly * term < loan:
        problems.append(("monthly_payment", f"月供 {format_money(monthly)} × {term} 期 = "
                                            f"{format_money(monthly * term)}，少于贷款金额 "
                                            f"{format_money(loan)}"))
    return problems


def valid_until_not_past(f: Facts) -> list[Problem]:
    valid_until = f.data.get("valid_until")
    if valid_until is not None and valid_until < f.today:
        return [("valid_until", f"报价有效期 {cn_date(valid_until)} 已早于今天 {cn_date(f.today)}")]
    return []


def valid_until_passed(f: Facts) -> str | None:
    valid_until = f.data.get("valid_until")
    if valid_until is not None and valid_until >= f.today:
        return f"报价有效期至 {cn_date(valid_until)}，尚未过期"
    return None


def valid_until_not_passed(f: Facts) -> str | None:
    valid_until = f.data.get("valid_until")
    if valid_until is not None and valid_until < f.today:
        return f"报价已于 {cn_date(valid_until)} 过期，请先修订（revise）报价再接受"
    return None


CHECKS: dict[str, Check] = {
    "discount_within_list_price": discount_within_list_price,
    "deposit_within_legal_cap": deposit_within_legal_cap,
    "loan_terms_consistent": loan_terms_consistent,
    "valid_until_not_past": valid_until_not_past,
}

CONDITIONS: dict[str, Condition] = {
    "valid_until_passed": valid_until_passed,
    "valid_until_not_passed": valid_until_not_passed,
}
