"""engine.dates: strict ISO parsing, Chinese display without zero padding (domain.md §7.1)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from engine.dates import cn_date, cn_datetime, parse_date, parse_datetime


@pytest.mark.parametrize("value, expected", [
    ("2026-11-26", date(2026, 11, 26)),
    (" 2026-01-05 ", date(2026, 1, 5)),
    ("2000-02-29", date(2000, 2, 29)),
    (date(2026, 1, 5), date(2026, 1, 5)),
])
def test_parse_date_accepts(value: object, expected: date) -> None:
    assert parse_date(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("value, reason, quoted", [
    ("2026-02-30", "不是有效日期", '"2026-02-30"'),
    ("1900-02-29", "不是有效日期", '"1900-02-29"'),
    ("2026-13-01", "不是有效日期", '"2026-13-01"'),
    ("2026/02/03", "日期应为 YYYY-MM-DD 格式", '"2026/02/03"'),
    ("2026-1-5", "日期应为 YYYY-MM-DD 格式", '"2026-1-5"'),
    ("20260105", "日期应为 YYYY-MM-DD 格式", '"20260105"'),
    ("2026-01-05T10:00", "日期应为 YYYY-MM-DD 格式", '"2026-01-05T10:00"'),
    ("", "日期应为 YYYY-MM-DD 格式", '""'),
    (None, "日期应为 YYYY-MM-DD 格式", "None"),
    (datetime(2026, 1, 5, 10, 0), "不含时间", "2026-01-05 10:00"),
])
def test_parse_date_rejects(value: object, reason: str, quoted: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_date(value)  # type: ignore[arg-type]
    assert reason in str(info.value)
    assert quoted in str(info.value)


@pytest.mark.parametrize("value, expected", [
    ("2026-11-26T14:05", datetime(2026, 11, 26, 14, 5)),
    ("2026-11-26 14:05", datetime(2026, 11, 26, 14, 5)),
    ("2026-11-26T14:05:09", datetime(2026, 11, 26, 14, 5, 9)),
    (" 2026-01-05 08:00:00 ", datetime(2026, 1, 5, 8, 0)),
    (datetime(2026, 1, 5, 8, 0), datetime(2026, 1, 5, 8, 0)),
])
def test_parse_datetime_accepts(value: object, expected: datetime) -> None:
    assert parse_datetime(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("value, reason", [
    ("2026-11-26", "时间应为 YYYY-MM-DD HH:MM[:SS] 格式"),
    ("2026-11-26T14:05:09.5", "时间应为 YYYY-MM-DD HH:MM[:SS] 格式"),
    ("2026-11-26T14:05+08:00", "时间应为 YYYY-MM-DD HH:MM[:SS] 格式"),
    ("2026-11-26 9:05", "时间应为 YYYY-MM-DD HH:MM[:SS] 格式"),
    ("2026-11-26 24:00", "不是有效时间"),
    ("2026-11-26 12:60", "不是有效时间"),
    ("2026-02-30 12:00", "不是有效日期"),
    (date(2026, 1, 5), "时间应为 YYYY-MM-DD HH:MM[:SS] 格式"),
    (datetime(2026, 1, 5, 8, 0, tzinfo=timezone(timedelta(hours=8))), "不带时区"),
])
def test_parse_datetime_rejects(value: object, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_datetime(value)  # type: ignore[arg-type]
    assert reason in str(info.value)
    if isinstance(value, str):
        assert f'"{value}"' in str(info.value)


@pytest.mark.parametrize("value, expected", [
    (date(2026, 11, 26), "2026年11月26日"),
    (date(2026, 1, 5), "2026年1月5日"),
    ("2026-01-05", "2026年1月5日"),
    (datetime(2026, 1, 5, 23, 59), "2026年1月5日"),
    ("2026-01-05T23:59", "2026年1月5日"),
    (date(999, 1, 1), "999年1月1日"),
])
def test_cn_date_no_zero_padding(value: object, expected: str) -> None:
    assert cn_date(value) == expected  # type: ignore[arg-type]


def test_cn_date_rejects_bad_string() -> None:
    with pytest.raises(ValueError, match="不是有效日期"):
        cn_date("2026-02-30")


@pytest.mark.parametrize("value, expected", [
    (datetime(2026, 11, 26, 14, 5), "2026年11月26日 14:05"),
    (datetime(2026, 1, 5, 9, 5, 59), "2026年1月5日 09:05"),
    ("2026-01-05 00:00", "2026年1月5日 00:00"),
])
def test_cn_datetime(value: object, expected: str) -> None:
    assert cn_datetime(value) == expected  # type: ignore[arg-type]
