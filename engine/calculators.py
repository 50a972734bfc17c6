"""Computed values of a case, referred to by name from ``workflow.calculator``.

A calculator takes the case data as Python values (Decimal, date, lists of row dicts) and the
day to compute for, may add derived columns to table rows of that copy (e.g. a line's amount),
and returns the ``totals`` mapping the templates and ``show`` use. Pure: no I/O, no clock.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Callable

from .money import quantize

Calculator = Callable[[dict[str, Any], date], dict[str, Any]]


def _sum(values) -> Decimal:
    return quantize(sum((v for v in values if v is not None), Decimal("0")))


def _line_amounts(rows: list[dict[str, Any]]) -> Decimal:
    """Each row's amount (quantity × unit price, to 分) written into the row; their sum."""
    for row in rows:
        row["amount"] = quantize((row.get("unit_price") or Decimal("0")) * (row.get("quantity") or 0))
    return _sum(row["amount"] for row in rows)


def quote_totals(data: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    """商谈报价单: vehicle price after discount, accessories, insurance, taxes and fees, total."""
    zero = Decimal("0")
    accessories_total = _line_amounts(data.get("accessories") or [])
    vehicle_price = quantize((data.get("list_price") or zero) - (data.get("discount") or zero))
    insurance_total = _sum(r.get("premium") for r in data.get("insurance") or [])
    fees_total = _sum([data.get("registration_fee")]
                      + [r.get("amount") for r in data.get("other_fees") or []])
    purchase_tax = quantize(data.get("purchase_tax") or zero)
    grand_total = quantize(vehicle_price + accessories_total + insurance_total + fees_total
                           + purchase_tax)
    loan_amount = None
    if data.get("payment_method") == "分期" and data.get("down_payment") is not None:
        loan_amount = quantize(vehicle_price - data["down_payment"])
    return {
        "vehicle_price": vehicle_price,
        "net_vehicle_price": vehicle_price,
        "accessories_total": accessories_total,
        "insurance_total": insurance_total,
        "fees_total": fees_total,
        "purchase_tax": purchase_tax,
        "taxes_and_fees_total": quantize(purchase_tax + fees_total),
        "grand_total": grand_total,
        "balance_due": quantize(grand_total - (data.get("deposit") or zero)),
        "loan_amount": loan_amount,
    }


def contract_totals(data: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    """购车合同: total = vehicle price − discount + accessories + registration and other fees."""
    zero = Decimal("0")
    accessories_total = _line_amounts(data.get("accessories") or [])
    net = quantize((data.get("vehicle_price") or zero) - (data.get("discount") or zero))
    fees_total = _sum([data.get("registration_fee")]
                      + [r.get("amount") for r in data.get("other_fees") or []])
    grand_total = quantize(net + accessories_total + fees_total)
    deposit = data.get("deposit") or zero
    loan_amount = None
    if data.get("payment_method") == "分期" and data.get("down_payment") is not None:
        loan_amount = quantize(net - data["down_payment"])
    return {
        "net_vehicle_price": net,
        "accessories_total": accessories_total,
        "fees_total": fees_total,
        "grand_total": grand_total,
        "deposit_share": (deposit / net).quantize(Decimal("0.0001")) if net > 0 else None,
        "balance_due": quantize(grand_total - deposit),
        "loan_amount": loan_amount,
    }


RATING_SCORES = {"不满意": 1, "基本满意": 2, "很满意": 3}


def test_drive_metrics(data: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    """试乘试驾: kilometres driven, minutes on the road, mean rating on the 3-point scale."""
    out_km, back_km = data.get("departure_odometer"), data.get("return_odometer")
    start, end = data.get("departure_time"), data.get("return_time")
    ratings = [RATING_SCORES[v] for k, v in data.items()
               if k.startswith("rating_") and v in RATING_SCORES]
    return {
        "km_driven": back_km - out_km if None not in (out_km, back_km) else None,
        "minutes_on_road": (int((end - start).total_seconds() // 60)
                            if None not in (start, end) else None),
        "rating_score": (Decimal(sum(ratings)) / len(ratings)).quantize(Decimal("0.1"))
        if ratings else None,
    }


def rectification_metrics(data: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    """整改: days an extension asks for, approved extensions so far, days left to the deadline."""
    deadline, requested = data.get("deadline"), data.get("requested_deadline")
    return {
        "extension_days": (requested - deadline).days if None not in (deadline, requested)
        else None,
        "extensions": data.get("extension_count") or 0,
        "days_to_deadline": (deadline - today).days if None not in (deadline, today) else None,
    }


CALCULATORS: dict[str, Calculator] = {
    "quote_totals": quote_totals,
    "contract_totals": contract_totals,
    "test_drive_metrics": test_drive_metrics,
    "rectification_metrics": rectification_metrics,
}
