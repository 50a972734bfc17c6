"""The generic functions a workflow's expressions may call (``engine.rules``).

Each says what an expression cannot say well on its own: money rounded to 分, sums over a
table's column, dates moved by years, the age on a resident ID number, what is missing from a
list. None of them knows a workflow, a field name or a message: that is the workflow file's.
Each reads only its arguments; ``lint`` lists the ones a workflow uses.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Mapping

from .money import quantize
from . import validators
from .validators import RuleViolation, cn_id_birth_date


def money(value: Decimal | int | None) -> Decimal | None:
    """``value`` rounded half-up to 分; empty stays empty."""
    return None if value is None else quantize(value)


def dec(text: str | int) -> Decimal:
    """An exact decimal number written as text, e.g. ``dec('0.13')`` (a literal 0.13 would be a
    binary float)."""
    try:
        return Decimal(str(text))
    except InvalidOperation:
        raise ValueError(f"\"{text}\" 不是数字") from None


def total(*values: Decimal | int | None) -> Decimal:
    """The sum of the values that are not empty, rounded to 分."""
    return quantize(sum((v for v in values if v is not None), Decimal("0")))


def sum_of(rows: Iterable[Mapping[str, Any]] | None, column: str) -> Decimal:
    """The sum of ``column`` over a table's rows (empty cells skipped), rounded to 分."""
    return total(*(row.get(column) for row in rows or []))


def rounded(value: Decimal | int | None, step: str) -> Decimal | None:
    """``value`` rounded half-up to ``step`` (e.g. ``'0.0001'``, ``'0.1'``)."""
    if value is None:
        return None
    return Decimal(value).quantize(Decimal(step), rounding=ROUND_HALF_UP)


def add_years(day: date, years: int) -> date:
    """The same day ``years`` later (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def add_days(day: date, days: int) -> date:
    """The day ``days`` after ``day`` (before it when negative)."""
    return day + timedelta(days=int(days))


def add_hours(moment: datetime, hours: int | Decimal) -> datetime:
    """The time ``hours`` after ``moment`` (a response limit: received + 24 h)."""
    return moment + timedelta(hours=float(hours))


def date_of(value: date | datetime | None) -> date | None:
    """The day of a date or a date and time."""
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


def days_between(start: date | datetime, end: date | datetime) -> int:
    """Whole days from ``start`` to ``end`` (negative when ``end`` is earlier)."""
    return (date_of(end) - date_of(start)).days


def minutes_between(start: datetime, end: datetime) -> int:
    """Whole minutes from ``start`` to ``end``."""
    return int((end - start).total_seconds() // 60)


def hours_between(start: datetime, end: datetime) -> Decimal:
    """Hours from ``start`` to ``end``, exactly."""
    return Decimal(int((end - start).total_seconds())) / 3600


def age_on(id_number: str | None, day: date) -> int | None:
    """Full years on ``day`` of the holder of a resident ID number; empty for an invalid number
    (the field's own rule reports it)."""
    if not id_number:
        return None
    try:
        born = cn_id_birth_date(id_number)
    except RuleViolation:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def missing_from(items: Iterable[Any] | None, needed: Iterable[Any]) -> list[Any]:
    """The entries of ``needed`` not in ``items``, in ``needed``'s order."""
    have = set(items or [])
    return [x for x in needed if x not in have]


def mean_score(values: Iterable[Any], scale: Mapping[str, int], step: str) -> Decimal | None:
    """The mean of the answers given, scored on ``scale`` (answers not on it are skipped),
    rounded to ``step``; empty when nothing was answered."""
    scores = [scale[v] for v in values if v in scale]
    if not scores:
        return None
    return rounded(Decimal(sum(scores)) / len(scores), step)


def valid(rule: str, value: str | None) -> bool:
    """Whether ``value`` passes a field validation rule (``'vin'``, ``'cn_id'``, ``'uscc'``,
    ``'mobile'``, ``'plate'``, ``'engine_number'``: check digits included); empty is not."""
    if rule not in validators.RULES:
        raise ValueError(f"没有校验规则 \"{rule}\"（可用：{', '.join(validators.RULES)}）")
    if not value:
        return False
    try:
        validators.RULES[rule](value)
    except RuleViolation as err:
        return isinstance(err, validators.RuleWarning)   # a warning is not a failure
    return True


def joined(items: Iterable[Any], separator: str = "、") -> str:
    """The items as one text, separated by ``separator``."""
    return separator.join(str(x) for x in items)


def in_sample(key: str, share: Decimal | int | str) -> bool:
    """Whether ``key`` (a case number) falls in a sample of ``share`` (0–1) of all keys: the
    same answer every time for the same key, about ``share`` of keys overall (the first 8
    hex digits of its SHA-256 read as a fraction), so a sampled call is reproducible."""
    fraction = Decimal(int(hashlib.sha256(str(key).encode("utf-8")).hexdigest()[:8], 16)) / 2 ** 32
    return fraction < Decimal(str(share))


# the name an expression calls → the function (its docstring says what it reads)
FUNCTIONS: dict[str, Callable[..., Any]] = {fn.__name__: fn for fn in (
    money, dec, total, sum_of, rounded, add_years, add_days, add_hours, date_of, days_between,
    minutes_between, hours_between, age_on, missing_from, mean_score, valid, joined, in_sample)}
