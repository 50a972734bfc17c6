"""Counting reports defined in workflow files (``[tallies.<name>]``): the showroom traffic table
(展厅客流量统计表: per day and time slot), the consultant's daily check (销售顾问日工作检查表) and
the funnel (per consultant: visits → cards → test drives → quotes → contracts → deliveries).

A tally has rows (each day of the period, with its weekday, each consultant, or each value of
one or more fields: a model by brand, series and model; optionally split by calendar month:
the models quoted and sold per month) and columns;
a column counts the cases of a workflow (or the rows of one of their table fields, e.g. the
follow-ups) whose day falls in the row and for which its expression holds, optionally once per
time slot of the day; a mean column averages an expression over the cases (or rows) it would
count (the hours from receipt to closure), a ratio column divides two others, a cumulative column runs a count's
total down the days (当月销售总量) and a blank column is left for handwriting (备注).

With time slots the table has the paper form's two header rows: a group per slot
(「08:00–10:00」) over the slot's counts side by side (来店客户批数, 留有客户资料数, …), then a
「全天合计」 group over the whole day's; every other column spans both rows. Counting is pure:
callers bring the cases (typed values) and get headers, groups and rows back; the files are
written like any register's. Every number can be recomputed from the cases by hand, which the
tests do.
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
    cumulative: str | None = None     # the running total down the rows of the count so named
    blank: bool = False               # an empty column (备注: written in by hand)
    hidden: bool = False              # counted for a ratio but not shown
    group: str | None = None          # its label in the top header row (with its neighbours')
    mean: rules.Expression | None = None   # averaged over what it would count (None: counts)

    @property
    def counts(self) -> bool:
        """It counts cases (or table rows) itself; the others are worked out from the counts."""
        return self.ratio is None and self.cumulative is None and not self.blank


@dataclass(frozen=True)
class TableColumn:
    """Where one column of the table comes from: a tally column, for one time slot (an index
    into the slot pairs), for the whole day ("all") or neither (None: not a count)."""

    group: str | None                 # the label over it in the top header row (None: none)
    header: str
    column: TallyColumn
    slot: int | str | None


TOTAL_GROUP = "全天合计"


@dataclass(frozen=True)
class TallySpec:
    key: str
    title: str
    rows: str                          # "day", "consultant" or a field of the counted cases
    slots: tuple[time, ...]            # slot bounds: 08:00, 10:00, … (empty: no slots)
    columns: tuple[TallyColumn, ...]
    signatures: tuple[str, ...] = ()   # sign-off lines printed under the table
    by: str | None = None              # the user field naming a case's row (None: its assignee)
    row_labels: tuple[str, ...] = ()   # rows by fields: their labels (the first columns' headers)
    row_fields: tuple[str, ...] = ()   # rows by fields: the fields (rows = the first of them)
    months: bool = False               # a row per calendar month (and per consultant or value)

    @property
    def workflows(self) -> set[str]:
        return {c.workflow for c in self.columns if c.counts}

    @property
    def snapshot(self) -> bool:
        """Every count is of the day the report is made (``date_field = "today"``): the table
        shows things as they stand (截至 a day), not a period."""
        counting = [c for c in self.columns if c.counts]
        return bool(counting) and all(c.date_field == "today" for c in counting)

    def first(self) -> list[str]:
        """The headers of the columns naming the row."""
        if self.rows == "day":
            return ["日期", "星期"]
        return (["月份"] if self.months else []) + list(self.row_labels or ["销售顾问"])

    def layout(self) -> list[TableColumn]:
        """The counted columns in the table's order. The per-slot columns come slot by slot
        (each slot's counts side by side, as on the paper form), then their whole-day totals,
        where the first per-slot column stands; the other columns keep their places."""
        per_slot = [c for c in self.columns if c.per_slot and self.slots and not c.hidden]
        out: list[TableColumn] = []
        for c in self.columns:
            if c.hidden:
                continue
            if c.per_slot and self.slots:
                if c is per_slot[0]:
                    for i, (a, b) in enumerate(self.slot_pairs()):
                        out += [TableColumn(f"{a:%H:%M}–{b:%H:%M}", p.short or p.label, p, i)
                                for p in per_slot]
                    out += [TableColumn(TOTAL_GROUP, p.short or p.label, p, "all")
                            for p in per_slot]
                continue
            out.append(TableColumn(c.group, c.label, c, "all" if c.counts else None))
        return out

    def headers(self) -> list[str]:
        """One header per column: the lower row's label under a group, else the column's."""
        return self.first() + [cell.header for cell in self.layout()]

    def groups(self, offset: int | None = None) -> list[tuple[str, int, int]]:
        """The top header row: (label, first column, span) for each run of columns under the
        same group; empty when no column is in a group (a one-row header). ``offset``: how
        many columns name a row (:meth:`first`'s, unless a group's table names its stores)."""
        out: list[tuple[str, int, int]] = []
        offset = len(self.first()) if offset is None else offset
        for i, cell in enumerate(self.layout()):
            if cell.group is None:
                continue
            if out and out[-1][0] == cell.group and out[-1][1] + out[-1][2] == offset + i:
                out[-1] = (cell.group, out[-1][1], out[-1][2] + 1)
            else:
                out.append((cell.group, offset + i, 1))
        return out

    def totals(self, offset: int | None = None) -> dict[int, str]:
        """Each count's whole-day total: its column index and the count's own label (headers
        under a group may repeat; these are the lines of its chart); ``offset`` as in
        :meth:`groups`."""
        offset = len(self.first()) if offset is None else offset
        return {offset + i: cell.column.label for i, cell in enumerate(self.layout())
                if cell.column.counts and cell.column.mean is None and cell.slot == "all"}

    def slot_pairs(self) -> list[tuple[time, time]]:
        return list(zip(self.slots, self.slots[1:]))


@dataclass
class Item:
    """One case (or one row of its table) as a tally sees it: its workflow, its row's key
    when rows are not days (its consultant, or its value of the rows' field), the names its
    expressions read."""

    workflow: str
    consultant: str | None
    names: Mapping[str, Any]
    table: str | None = None       # a row of this table field (e.g. one follow-up), not a case
    store: str | None = None       # the store of a group it belongs to


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


def _mean(total: Decimal, n: int) -> Decimal | str:
    if not n:
        return "—"
    return (total / n).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def count(spec: TallySpec, items: Iterable[Item], start: date, end: date,
          user_name: Callable[[str], str]) -> tuple[list[str], list[list[Any]]]:
    """The tally's header and rows (and a 合计 row) for the days ``start``…``end``."""
    counts: Counter[tuple[str, Any, int | None]] = Counter()   # (column, row key, slot)
    sums: Counter[tuple[str, Any, int | None]] = Counter()     # a mean column's values added up
    keys: set[Any] = set()
    pairs = spec.slot_pairs()
    for item in items:
        for col in spec.columns:
            if not col.counts or col.workflow != item.workflow or col.table != item.table:
                continue
            moment = _moment(item.names.get(col.date_field))
            if moment is None or not start <= moment[0] <= end:
                continue
            if col.count is not None and not col.count(item.names):
                continue
            key = moment[0] if spec.rows == "day" else item.consultant
            if key is None:
                continue
            if spec.months:
                key = ((moment[0].year, moment[0].month), key)
            keys.add(key)
            slot = None
            if col.per_slot and spec.slots and moment[1] is not None:
                slot = next((i for i, (a, b) in enumerate(pairs) if a <= moment[1] < b), None)
            if col.mean is not None:
                value = col.mean(item.names)
                if value is None:       # nothing to average for this one (a field is empty)
                    continue
                sums[(col.label, key, slot)] += Decimal(value)
            counts[(col.label, key, slot)] += 1
    if spec.rows == "day":
        row_keys: list[Any] = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    else:
        row_keys = sorted(keys, key=lambda k: _order(spec, k))

    totals, summed = _rolled_up(counts), _rolled_up(sums)

    layout = spec.layout()
    running: Counter[str] = Counter()   # the cumulative columns' totals so far, down the rows

    def cells(key: Any | None) -> list[Any]:
        out: list[Any] = []
        for cell in layout:
            col = cell.column
            if col.ratio is not None:
                out.append(_ratio(totals[(col.ratio[0], key, "all")],
                                  totals[(col.ratio[1], key, "all")]))
            elif col.cumulative is not None:
                # rows come in order; the 合计 row (None) shows the period's total
                if key is not None:
                    running[col.label] += totals[(col.cumulative, key, "all")]
                out.append(running[col.label] if key is not None
                           else totals[(col.cumulative, None, "all")])
            elif col.blank:
                out.append(None)
            elif col.mean is not None:
                out.append(_mean(Decimal(summed[(col.label, key, cell.slot)]),
                                 totals[(col.label, key, cell.slot)]))
            else:
                out.append(totals[(col.label, key, cell.slot)])
        return out

    def naming(key: Any) -> list[str]:
        if spec.rows == "day":
            return [f"{key.month}月{key.day}日", WEEKDAYS[key.weekday()]]
        month: list[str] = []
        if spec.months:
            (year, number), key = key
            month = [f"{year}年{number}月"]
        if spec.rows == "consultant":
            return month + [user_name(key)]
        return month + [str(v) for v in (key if isinstance(key, tuple) else (key,))]

    rows = [naming(key) + cells(key) for key in row_keys]
    rows.append(["合计"] + [""] * (len(spec.first()) - 1) + cells(None))
    return spec.headers(), rows


def by_store(spec: TallySpec, items: Iterable[Item], start: date, end: date,
             user_name: Callable[[str], str], stores: list[tuple[str, str]]
             ) -> tuple[list[str], list[list[Any]]]:
    """A group's tally: a row per store (``stores``: code and label, in the group's order,
    each shown even when it counted nothing) with what that store's own 合计 row says, then
    the group's 合计, counted over every store's items together (so its ratios and means are
    the group's, not sums of the stores')."""
    items = list(items)
    naming = len(spec.first())
    rows = []
    for code, label in stores:
        _, own = count(spec, [i for i in items if i.store == code], start, end, user_name)
        rows.append([label] + own[-1][naming:])
    _, whole = count(spec, items, start, end, user_name)
    rows.append(["合计"] + whole[-1][naming:])
    return ["门店"] + spec.headers()[naming:], rows


def _rolled_up(figures: Counter[tuple[str, Any, int | None]]
               ) -> Counter[tuple[str, Any, int | None | str]]:
    """Figures per (column, row key, slot) also summed for the whole day (slot ``"all"``) and
    over all rows (the 合计 row: key None)."""
    out: Counter[tuple[str, Any, int | None | str]] = Counter()
    for (label, key, slot), n in figures.items():
        for k in (key, None):
            for s in {slot, "all"}:
                out[(label, k, s)] += n
    return out


def _order(spec: TallySpec, key: Any) -> tuple:
    """Rows by month first (when there are months), then by the consultant or the values."""
    month: tuple = ()
    if spec.months:
        month, key = key
    return (*month, *(str(v) for v in (key if isinstance(key, tuple) else (key,))))
