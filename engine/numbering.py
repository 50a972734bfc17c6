"""Document numbers: which counter a series uses in a year, and how a number is spelt. Pure."""
from __future__ import annotations

from .config import Series


def counter_key(series_key: str, series: Series, year: int) -> str:
    """Yearly series restart at 1 each year; others count forever."""
    return f"series:{series_key}:{year}" if series.reset == "yearly" else f"series:{series_key}"


def format_number(series: Series, year: int, sequence: int) -> str:
    """``BJ-2026-000001`` (yearly) or ``BJ-000001``; wider sequences are never truncated."""
    seq = f"{sequence:0{series.width}d}"
    return f"{series.prefix}-{year}-{seq}" if series.reset == "yearly" else f"{series.prefix}-{seq}"
