"""Money: `Decimal` rounded to 分 everywhere; strict parsing, display and 人民币大写.

rmb_upper wraps cn2an 0.5.24 (`an2cn(s, "rmb")`): checked here against all 13 rmb_upper vectors,
0.50/0.05/0/1.01/107000.53/100001000 and the PBOC examples of domain.md §6 — it agrees everywhere
except -0.00 (负零元整). It truncates rather than rounds and mishandles floats, so we quantize
(ROUND_HALF_UP) first, pass a string, and normalise -0 to 0; tests cross-check it on random amounts.
"""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
_MAX_UPPER = Decimal("1000000000000")  # 1万亿: cn2an switches to a 万亿 style we don't want
_MONEY_RE = re.compile(r"(-?)[¥￥]?(-?)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.([0-9]+))?")

Money = Decimal | int | str


def quantize(d: Decimal | int) -> Decimal:
    """Round a computed amount half-up to 分; -0.00 becomes 0.00."""
    if isinstance(d, bool) or not isinstance(d, (Decimal, int)):
        raise TypeError(f"quantize expects Decimal or int, got {type(d).__name__}")
    if isinstance(d, Decimal) and not d.is_finite():
        raise ValueError(f"不是有效金额（收到 {d}）")
    try:
        q = Decimal(d).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as err:  # more digits than the context precision (28)
        raise ValueError(f"金额过大（收到 {d}）") from err
    return q.copy_abs() if q.is_zero() else q


def parse_money(value: Money) -> Decimal:
    """Parse user/stored money strictly: Decimal, int or str with at most two decimals.

    Strings may carry surrounding spaces, a leading ¥/￥, a leading '-' and correct ',' grouping.
    Raises ValueError with a short Chinese reason that quotes the value.
    """
    if isinstance(value, (bool, float)):  # bool is an int; float carries binary error
        raise ValueError(f"不接受{'布尔值' if isinstance(value, bool) else '浮点数'}，"
                         f"请用字符串或 Decimal（收到 {value!r}）")
    if isinstance(value, int):
        return quantize(value)
    if isinstance(value, Decimal):
        q = quantize(value)
        if q != value:
            raise ValueError(f"最多两位小数（收到 {value}）")
        return q
    if not isinstance(value, str):
        raise ValueError(f"不是有效金额（收到 {type(value).__name__}）")
    text = value.strip()
    if not text:
        raise ValueError("金额为空")
    m = _MONEY_RE.fullmatch(text)
    if not m or (m[1] and m[2]):
        raise ValueError(f"不是有效金额（收到 \"{text}\"）")
    if m[4] is not None and len(m[4]) > 2:
        raise ValueError(f"最多两位小数（收到 \"{text}\"）")
    number = f"{m[1] or m[2]}{m[3].replace(',', '')}" + (f".{m[4]}" if m[4] else "")
    return quantize(Decimal(number))


def format_money(d: Money) -> str:
    """Display form: ¥128,800.00, -¥1,234.56, ¥0.00 (Decimals are rounded, others parsed)."""
    q = quantize(d) if isinstance(d, Decimal) else parse_money(d)
    return f"{'-' if q < 0 else ''}¥{abs(q):,.2f}"


def rmb_upper(d: Money) -> str:
    """人民币大写 without the 人民币 prefix, canonical style of domain.md §6.1.

    Decimals are rounded half-up to 分 first; str/int go through parse_money. |d| >= 1万亿 raises.
    """
    q = quantize(d) if isinstance(d, Decimal) else parse_money(d)
    if abs(q) >= _MAX_UPPER:
        raise ValueError(f"金额过大，大写只支持一万亿以下（收到 {q}）")
    import cn2an  # lazy: importing cn2an costs ~0.1 s, only templates need it

    return cn2an.an2cn(str(q), "rmb")
