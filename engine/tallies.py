"""Counting reports defined in workflow files (``[tallies.<name>]``): the showroom traffic table
(展厅客流量统计表: per day and time slot), the consultant's daily check (销售顾问日工作检查表) and
the funnel (per consultant: visits → cards → test drives → quotes → contracts → deliveries).

A tally has rows (each day of the period, with its weekday, or each consultant) and columns;
a column counts the cases of a workflow (or the rows of one of their table fields, e.g. the
follow-ups) whose day falls in the row and for which its expression holds, optionally once per
time slot of the day; a ratio column divides two others. Counting is pure: callers bring the
cases (typed values) and get a :class:`reports.Table` back; the files are written like any
register's. Every number can be recomputed from the cases by hand, which the tests do.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable, Iterable, Mapping

from . import rules

WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class TallyColumn:
    label: str
    workflow: str                     # whose cases it counts
    date_field: str                   # the day (and time) a case or row counts on
    count: rules.Expression | None    # counted when it holds (None: every one)
    table: str | None = None          # count this table field's rows, not the cases
    per_slot: bool = False            # once per time slot of the tally
    ratio: tuple[str, str] | None = None   # (numerator, denominator) column labels
    short: str | None = None          # its name under each time slot (a narrow column)


@dataclass(frozen=True)
class TallySpec:
    key: str
    title: str
    rows: str                          # "day" or "consultant"
    slots: tuple[time, ...]            # slot bounds: 08:00, 10:00, … (empty: no slots)
    columns: tuple[TallyColumn, ...]
    signatures: tuple[str, ...] = ()   # sign-off lines printed under the table

    @property
    def workflows(self) -> set[str]:
        return {c.workflow for c in self.columns if c.ratio is None}

    def headers(self) -> list[str]:
        first = ["日期", "星期"] if self.rows == "day" else ["销售顾问"]
        out = list(first)
        for c in self.columns:
            if c.per_slot and self.slots:
                out += [f"{a:%H}–{b:%H}时{c.short or c.label}" for a, b in self.slot_pairs()]
            out.append(f"{c.label}（合计）" if c.per_slot and self.slots else c.label)
        return out

    def slot_pairs(self) -> list[tuple[time, time]]:
        return list(zip(self.slots, self.slots[1:]))


@dataclass
class Item:
    """One case (or one row of its table) as a tally sees it: its workflow, its consultant,
    the names its expressions read."""

    workflow: str
    consultant: str | None
    names: Mapping[str, Any]
    table: str | None = None       # a row of this table field (e.g. one follow-up), not a case


def _moment(value: Any) -> tuple[date, time | None] | None:
    if isinstance(value, datetime):
        return value.date(), value.time()
    if isinstance(value, date):
        return value, None
    return None


def _ratio(a: int, b: int) -> str:
    if not b:
        return "—"
    share = (Decimal(a) * 100 / Decimal(b)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{share}%"


def count(spec: TallySpec, items: Iterable[Item], start: date, end: date,
          user_name: Callable[[str], str]) -> tuple[list[str], list[list[Any]]]:
    """The tally's header and rows (and a 合计 row) for the days ``start``…``end``."""
    counts: Counter[tuple[str, Any, int | None]] = Counter()   # (column, row key, slot)
    keys: set[Any] = set()
    for item in items:
        for col in spec.columns:
            if col.ratio is not None or col.workflow != item.workflow or col.table != item.table:
                continue
            moment = _moment(item.names.get(col.date_field))
            if moment is None or not start <= moment[0] <= end:
                continue
            if col.count is not None and not col.count(item.names):
                continue
            key = moment[0] if spec.rows == "day" else item.consultant
            if key is None:
                continue
            keys.add(key)
            slot = None
            if col.per_slot and spec.slots and moment[1] is not None:
                slot = next((i for i, (a, b) in enumerate(spec.slot_pairs()) if a <= moment[1] < b),
                            None)
            counts[(col.label, key, slot)] += 1
    if spec.rows == "day":
        row_keys: list[Any] = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    else:
        row_keys = sorted(keys, key=lambda k: str(k))

    # the same counts summed per row and over all rows (the 合计 row: key None)
    totals: Counter[tuple[str, Any, int | None | str]] = Counter()
    for (label, key, slot), n in counts.items():
        for k in (key, None):
            totals[(label, k, "all")] += n
            totals[(label, k, slot)] += n

    def cells(key: Any | None) -> list[Any]:
        out: list[Any] = []
        for col in spec.columns:
            if col.ratio is not None:
                out.append(_ratio(totals[(col.ratio[0], key, "all")],
                                  totals[(col.ratio[1], key, "all")]))
                continue
            if col.per_slot and spec.slots:
                out += [totals[(col.label, key, i)] for i in range(len(spec.slot_pairs()))]
            out.append(totals[(col.label, key, "all")])
        return out

    rows = []
    for key in row_keys:
        first = ([f"{key.month}月{key.day}日", WEEKDAYS[key.weekday()]]
                 if spec.rows == "day" else [user_name(key)])
        rows.append(first + cells(key))
    rows.append((["合计", ""] if spec.rows == "day" else ["合计"]) + cells(None))
    return spec.headers(), rows

