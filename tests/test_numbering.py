"""Document numbers: how a number is spelt and which counter a series uses. Pure."""
from __future__ import annotations

import pytest

from engine.config import Series
from engine.numbering import counter_key, format_number

YEARLY = Series(prefix="BJ", width=6, reset="yearly")
NEVER = Series(prefix="BJ", width=6, reset="never")


@pytest.mark.parametrize("series, year, sequence, number", [
    (YEARLY, 2026, 1, "BJ-2026-000001"),
    (YEARLY, 2027, 42, "BJ-2027-000042"),
    (YEARLY, 2026, 999999, "BJ-2026-999999"),
    (YEARLY, 2026, 1000000, "BJ-2026-1000000"),  # wider than width: never truncated
    (NEVER, 2026, 1, "BJ-000001"),
    (NEVER, 2030, 1234567, "BJ-1234567"),
    (Series(prefix="HT", width=3), 2026, 7, "HT-2026-007"),
    (Series(prefix="HT", width=3), 2026, 12345, "HT-2026-12345"),
    (Series(prefix="SQ", width=1, reset="never"), 2026, 9, "SQ-9"),
    (Series(prefix="SQ", width=1, reset="never"), 2026, 10, "SQ-10"),
    (Series(prefix="BJ-XS", width=12), 2026, 5, "BJ-XS-2026-000000000005"),
])
def test_format_number(series, year, sequence, number):
    assert format_number(series, year, sequence) == number


def test_default_series_is_yearly_six_digits():
    assert format_number(Series(prefix="BJ"), 2026, 3) == "BJ-2026-000003"


@pytest.mark.parametrize("series, year, key", [
    (YEARLY, 2026, "series:quote:2026"),
    (YEARLY, 2027, "series:quote:2027"),
    (NEVER, 2026, "series:quote"),
    (NEVER, 2027, "series:quote"),
])
def test_counter_key(series, year, key):
    assert counter_key("quote", series, year) == key


def test_yearly_counters_differ_by_year_and_series():
    keys = {counter_key(name, YEARLY, year) for name in ("quote", "contract")
            for year in (2026, 2027)}
    assert len(keys) == 4
