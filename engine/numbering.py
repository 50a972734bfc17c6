"""Document numbers: which counter a series uses in a year, and how a number is spelt. Pure."""
from __future__ import annotations

from .config import Series


def counter_key(series_key: str, series: Series, year: int, store: str = "") -> str:
    """Yearly series restart at 1 each year; others count forever. Each store of a dealer
    group (``store``, its code) counts its own series; a one-store config has no code."""
    key = f"series:{store}/{series_key}" if store else f"series:{series_key}"
    return f"{key}:{year}" if series.reset == "yearly" else key


def format_number(series: Series, year: int, sequence: int) -> str:
    """``BJ-2026-000001`` (yearly) or ``BJ-000001``; wider sequences are never truncated."""
    seq = f"{sequence:0{series.width}d}"
    return f"{series.prefix}-{year}-{seq}" if series.reset == "yearly" else f"{series.prefix}-{seq}"
