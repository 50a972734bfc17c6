"""Dates: strict ISO parsing and Chinese display (domain.md §7.1: 2026年1月5日, never zero-padded)."""
from __future__ import annotations

import re
from datetime import date, datetime

_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?")


def parse_date(value: date | str) -> date:
    """A `date` (not a datetime) or an ISO `YYYY-MM-DD` string; ValueError with a Chinese reason."""
    if isinstance(value, datetime):
        raise ValueError(f"应为日期，不含时间（收到 {value.isoformat(' ')}）")
    if isinstance(value, date):
        return value
    text = value.strip() if isinstance(value, str) else None
    m = _DATE_RE.fullmatch(text) if text is not None else None
    if not m:
        raise ValueError(f"日期应为 YYYY-MM-DD 格式（收到 {_quote(value)}）")
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as err:
        raise ValueError(f"不是有效日期（收到 \"{text}\"）") from err


def parse_datetime(value: datetime | str) -> datetime:
    """A naive `datetime` or `YYYY-MM-DDTHH:MM[:SS]` (T or space); local time, no time zone."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(f"应为本地时间，不带时区（收到 {value.isoformat()}）")
        return value
    text = value.strip() if isinstance(value, str) else None
    m = _DATETIME_RE.fullmatch(text) if text is not None else None
    if not m:
        raise ValueError(f"时间应为 YYYY-MM-DD HH:MM[:SS] 格式（收到 {_quote(value)}）")
    try:
        day = parse_date(m[1])
    except ValueError as err:
        raise ValueError(f"不是有效日期（收到 \"{text}\"）") from err
    try:
        return datetime(day.year, day.month, day.day, int(m[2]), int(m[3]), int(m[4] or 0))
    except ValueError as err:
        raise ValueError(f"不是有效时间（收到 \"{text}\"）") from err


def cn_date(d: date | str) -> str:
    """2026年11月26日 / 2026年1月5日; accepts date, datetime or an ISO date or datetime string."""
    if isinstance(d, str) and len(d.strip()) > 10:
        d = parse_datetime(d)
    elif not isinstance(d, date):
        d = parse_date(d)
    return f"{d.year}年{d.month}月{d.day}日"


def cn_datetime(dt: datetime | str) -> str:
    """2026年11月26日 14:05 (hours and minutes are two digits)."""
    dt = parse_datetime(dt)
    return f"{cn_date(dt)} {dt:%H:%M}"


def _quote(value: object) -> str:
    return f"\"{value}\"" if isinstance(value, str) else f"{type(value).__name__} {value!r}"
