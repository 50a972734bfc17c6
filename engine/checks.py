"""Cross-field checks and transition conditions, referred to by name from workflow files.

A *check* validates data a transition is about to commit and returns problems as
``(field, message)`` pairs; the engine reports them as one :class:`InputError`. A *condition*
decides whether a transition may happen at all now (e.g. a quote can only expire after its
validity date) and returns a refusal reason or ``None``; the engine reports a
:class:`StateError`. Both are pure: "today" is passed in, so tests can move the clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable

from .config import Policy

from .dates import cn_date
from .money import format_money, quantize


@dataclass(frozen=True)
class Facts:
    """What a check or condition may look at."""

    data: dict[str, Any]  # Python values (Decimal, date, …)
    totals: dict[str, Any]
    today: date
    policy: Policy = field(default_factory=Policy)
    linked: dict[str, dict[str, Any]] = field(default_factory=dict)  # workflow → its data
    now: datetime | None = None


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
    deposit, price = f.data.get("deposit"), f.totals.get("net_vehicle_price")
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
    down, price = f.data.get("down_payment"), f.totals.get("net_vehicle_price")
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


def discount_within_vehicle_price(f: Facts) -> list[Problem]:
    price, discount = f.data.get("vehicle_price"), f.data.get("discount")
    if price is not None and discount is not None and discount > price:
        return [("discount", f"优惠 {format_money(discount)} 超过车辆价格 {format_money(price)}")]
    return []


def contract_dates_in_order(f: Facts) -> list[Problem]:
    problems = []
    for name, what in (("delivery_deadline", "交车期限"), ("payment_deadline", "付款期限")):
        value = f.data.get(name)
        if value is not None and value < f.today:
            problems.append((name, f"{what} {cn_date(value)} 已早于今天 {cn_date(f.today)}"))
    paid = f.data.get("deposit_date")
    if paid is not None and paid > f.today:
        problems.append(("deposit_date", f"定金支付日期 {cn_date(paid)} 晚于今天，请在收款后填写"))
    return problems


def signed_date_not_future(f: Facts) -> list[Problem]:
    signed = f.data.get("signed_date")
    if signed is not None and signed > f.today:
        return [("signed_date", f"签订日期 {cn_date(signed)} 晚于今天 {cn_date(f.today)}")]
    return []


def delivery_date_not_past(f: Facts) -> list[Problem]:
    day = f.data.get("delivery_date")
    if day is not None and day < f.today:
        return [("delivery_date", f"交车日期 {cn_date(day)} 已早于今天 {cn_date(f.today)}")]
    return []


def vehicle_matches_contract(f: Facts) -> list[Problem]:
    """The car handed over is the car in the contract: VIN, engine number and colour."""
    contract = f.linked.get("contract")
    if contract is None:
        return [("vin", "找不到关联的购车合同，无法核对车辆")]
    problems = []
    for name, what in (("vin", "VIN"), ("engine_number", "发动机号"), ("colour", "车身颜色")):
        ours, theirs = f.data.get(name), contract.get(name)
        if ours is not None and ours != theirs:
            problems.append((name, f"{what} \"{ours}\" 与购车合同中的 \"{theirs}\" 不一致"))
    return problems


# 《汽车销售管理办法》(2017) Art. 16: what must go with the car.
STATUTORY_DOCUMENTS = ("车辆一致性证书", "中文使用说明书", "保修保养手册")
DOMESTIC_DOCUMENTS = ("机动车整车出厂合格证",)
IMPORT_DOCUMENTS = ("货物进口证明", "进口机动车检验证明")
HOUSEHOLD_DOCUMENTS = ("三包凭证",)  # 家用汽车产品 only


def statutory_documents_handed(f: Facts) -> list[Problem]:
    handed = set(f.data.get("handover_documents") or [])
    needed = list(STATUTORY_DOCUMENTS)
    needed += IMPORT_DOCUMENTS if f.data.get("vehicle_origin") == "进口" else DOMESTIC_DOCUMENTS
    if f.data.get("buyer_type") != "company":
        needed += HOUSEHOLD_DOCUMENTS
    missing = [d for d in needed if d not in handed]
    if missing:
        return [("handover_documents", f"缺少随车凭证：{'、'.join(missing)}"
                                       f"（《汽车销售管理办法》第十六条要求随车交付）")]
    return []


def odometer_within_contract(f: Facts) -> list[Problem]:
    reading, limit = f.data.get("odometer_km"), f.data.get("max_odometer_km")
    if reading is not None and limit is not None and reading > limit:
        return [("odometer_km", f"交车里程 {reading} 公里超过合同约定的 {limit} 公里")]
    return []


def followup_in_time(f: Facts) -> list[Problem]:
    day, delivered = f.data.get("followup_date"), f.data.get("delivered_at")
    if day is None or delivered is None:
        return []
    delivered_on = delivered.date() if isinstance(delivered, datetime) else delivered
    if day < delivered_on:
        return [("followup_date", f"回访日期 {cn_date(day)} 早于交车日期 {cn_date(delivered_on)}")]
    if day > f.today:
        return [("followup_date", f"回访日期 {cn_date(day)} 晚于今天")]
    late = (day - delivered_on).days - f.policy.delivery_followup_days
    if late > 0 and not f.data.get("followup_late_reason"):
        return [("followup_late_reason", f"回访在交车后第 {(day - delivered_on).days} 天，超过规定的 "
                                         f"{f.policy.delivery_followup_days} 天，请填写逾期原因")]
    return []


def _drives(f: Facts) -> bool:
    """Test ride only (试乘) customers do not drive, so licence rules do not apply."""
    return f.data.get("experience_type") in ("试驾", "试乘试驾")


def test_car_identified(f: Facts) -> list[Problem]:
    if not f.data.get("car_plate") and not f.data.get("car_vin"):
        return [("car_plate", "请填写试驾车号牌或 VIN（至少一项）")]
    return []


def slot_in_order(f: Facts) -> list[Problem]:
    """A slot ends after it starts, lasts at most 4 hours and is not on a past day (a walk-in
    booked a few minutes late is fine)."""
    start, end = f.data.get("slot_start"), f.data.get("slot_end")
    if start is None or end is None:
        return []
    if start.date() < f.today:
        return [("slot_start", f"预约日期 {cn_date(start)} 已早于今天 {cn_date(f.today)}")]
    if end <= start:
        return [("slot_end", f"结束时间 {end:%H:%M} 应晚于开始时间 {start:%H:%M}")]
    if (end - start).total_seconds() > 4 * 3600:
        return [("slot_end", "一次试乘试驾预约不超过 4 小时")]
    return []


def driver_licence_valid(f: Facts) -> list[Problem]:
    if not _drives(f):
        return []
    start = f.data.get("slot_start")
    day = start.date() if start is not None else f.today
    problems = []
    valid_until, first = f.data.get("licence_valid_until"), f.data.get("licence_first_issued")
    if valid_until is not None and valid_until < day:
        problems.append(("licence_valid_until", f"驾驶证已于 {cn_date(valid_until)} 过期"
                                                f"（试驾日 {cn_date(day)}），不能试驾"))
    years = f.policy.test_drive_min_licence_years
    if first is not None:
        if first > day:
            problems.append(("licence_first_issued", f"初次领证日期 {cn_date(first)} 晚于试驾日"))
        elif _add_years(first, years) > day:
            problems.append(("licence_first_issued",
                             f"驾龄不足 {years} 年：初次领证 {cn_date(first)}，满 {years} 年为 "
                             f"{cn_date(_add_years(first, years))}；可改为试乘"))
    return problems


def driver_age(f: Facts) -> list[Problem]:
    from .validators import RuleViolation, cn_id_birth_date

    number = f.data.get("driver_id_number")
    if not _drives(f) or not number:
        return []
    try:
        born = cn_id_birth_date(number)
    except RuleViolation:
        return []  # the field's own rule reports it
    start = f.data.get("slot_start")
    day = start.date() if start is not None else f.today
    age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    if age < f.policy.test_drive_min_age:
        return [("driver_id_number", f"驾驶人未满 {f.policy.test_drive_min_age} 周岁"
                                     f"（{age} 岁），不能试驾")]
    return []


def car_insured(f: Facts) -> list[Problem]:
    if f.data.get("car_insured") is not True:
        return [("car_insured", "试驾车须已投保交强险及商业险才能签署协议出车")]
    return []


def return_after_departure(f: Facts) -> list[Problem]:
    problems = []
    out_km, back_km = f.data.get("departure_odometer"), f.data.get("return_odometer")
    if None not in (out_km, back_km) and back_km < out_km:
        problems.append(("return_odometer", f"返回里程 {back_km} 公里小于出发里程 {out_km} 公里"))
    start, end = f.data.get("departure_time"), f.data.get("return_time")
    if None not in (start, end) and end < start:
        problems.append(("return_time", f"返回时间 {end:%Y-%m-%d %H:%M} 早于出发时间 "
                                        f"{start:%Y-%m-%d %H:%M}"))
    return problems


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def deadline_after_inspection(f: Facts) -> list[Problem]:
    inspected, deadline = f.data.get("inspection_date"), f.data.get("deadline")
    problems = []
    if inspected is not None and inspected > f.today:
        problems.append(("inspection_date", f"检查日期 {cn_date(inspected)} 晚于今天"))
    if None not in (inspected, deadline) and deadline <= inspected:
        problems.append(("deadline", f"整改期限 {cn_date(deadline)} 应晚于检查日期 {cn_date(inspected)}"))
    return problems


def overdue_needs_reason(f: Facts) -> list[Problem]:
    deadline = f.data.get("deadline")
    if deadline is not None and f.today > deadline and not f.data.get("overdue_reason"):
        return [("overdue_reason", f"整改期限 {cn_date(deadline)} 已过 {(f.today - deadline).days} 天，"
                                   f"逾期项目销项须填写逾期原因")]
    return []


def completion_not_future(f: Facts) -> list[Problem]:
    done = f.data.get("completion_date")
    if done is not None and done > f.today:
        return [("completion_date", f"完成日期 {cn_date(done)} 晚于今天")]
    return []


def requested_deadline_later(f: Facts) -> list[Problem]:
    deadline, requested = f.data.get("deadline"), f.data.get("requested_deadline")
    if None not in (deadline, requested) and requested <= deadline:
        return [("requested_deadline", f"申请延期至 {cn_date(requested)}，应晚于现期限 {cn_date(deadline)}")]
    return []


CHECKS: dict[str, Check] = {
    "discount_within_list_price": discount_within_list_price,
    "deposit_within_legal_cap": deposit_within_legal_cap,
    "loan_terms_consistent": loan_terms_consistent,
    "valid_until_not_past": valid_until_not_past,
    "discount_within_vehicle_price": discount_within_vehicle_price,
    "contract_dates_in_order": contract_dates_in_order,
    "signed_date_not_future": signed_date_not_future,
    "delivery_date_not_past": delivery_date_not_past,
    "vehicle_matches_contract": vehicle_matches_contract,
    "statutory_documents_handed": statutory_documents_handed,
    "odometer_within_contract": odometer_within_contract,
    "followup_in_time": followup_in_time,
    "test_car_identified": test_car_identified,
    "slot_in_order": slot_in_order,
    "driver_licence_valid": driver_licence_valid,
    "driver_age": driver_age,
    "car_insured": car_insured,
    "return_after_departure": return_after_departure,
    "deadline_after_inspection": deadline_after_inspection,
    "overdue_needs_reason": overdue_needs_reason,
    "completion_not_future": completion_not_future,
    "requested_deadline_later": requested_deadline_later,
}

def discount_within_approval_threshold(f: Facts) -> str | None:
    price, discount = f.data.get("vehicle_price"), f.data.get("discount") or Decimal("0")
    share = f.policy.approval_discount_share
    if price is None or discount <= quantize(price * share):
        return None
    return (f"优惠 {format_money(discount)} 超过车辆价格的 {(share * 100).normalize():f}%"
            f"（{format_money(quantize(price * share))}），需销售经理审批")


def pdi_passed(f: Facts) -> str | None:
    if f.data.get("pdi_result") == "合格":
        return None
    return f"PDI 检查结果为「{f.data.get('pdi_result') or '未填写'}」，不能进入交车"


def slot_started(f: Facts) -> str | None:
    start = f.data.get("slot_start")
    now = (f.now.replace(tzinfo=None) if f.now is not None
           else datetime.combine(f.today, datetime.min.time()))
    if start is not None and now < start:
        return f"预约 {start:%Y-%m-%d %H:%M} 尚未开始，不能记为爽约"
    return None


def before_deadline(f: Facts) -> str | None:
    """Extension and cancellation must be asked for before the deadline has passed."""
    deadline = f.data.get("deadline")
    if deadline is not None and f.today > deadline:
        return (f"整改期限 {cn_date(deadline)} 已过（逾期 {(f.today - deadline).days} 天），"
                f"延期或取消须在期限前申请")
    return None


def extensions_left(f: Facts) -> str | None:
    used, cap = f.data.get("extension_count") or 0, f.policy.rectification_max_extensions
    if used >= cap:
        return f"已延期 {used} 次，达到每项最多 {cap} 次的上限（config.toml policy.rectification_max_extensions）"
    return None


CONDITIONS: dict[str, Condition] = {
    "valid_until_passed": valid_until_passed,
    "valid_until_not_passed": valid_until_not_passed,
    "discount_within_approval_threshold": discount_within_approval_threshold,
    "pdi_passed": pdi_passed,
    "slot_started": slot_started,
    "before_deadline": before_deadline,
    "extensions_left": extensions_left,
}
