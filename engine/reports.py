"""Period reports (registers) defined in workflow files: rows out of cases, then an .xlsx
workbook (openpyxl) and a Word table document (python-docx) that the converter turns into PDF.

Building rows is pure; the writers return bytes, so the engine decides where files go. The
Word document is generated rather than templated: a register can hold thousands of rows and
docxtpl's cost grows fast with loop size (pitfalls B1), and its columns come from the
workflow file, not from a hand-made layout.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Iterable

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_ALIGN_VERTICAL, WD_TABLE_ALIGNMENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from .dates import cn_date
from .text import clean_line

Cell = str | int | Decimal | date | datetime | None


MAX_CELL = 500   # characters a cell shows; more is cut with "…"


@dataclass(frozen=True)
class Table:
    """A register's rows. Text cells are cleaned (one line, no control or direction-override
    characters) and cut to ``MAX_CELL`` characters here, so that no value written into the
    store in the past, however bad, can make an export fail."""

    title: str
    subtitle: str
    headers: list[str]
    rows: list[list[Cell]]
    signatures: list[str] = field(default_factory=list)   # sign-off lines under the table
    # a native Excel chart under the table: ("line" | "bar", {column index: series name},
    # title); the last row (合计) is left out of it
    chart: tuple[str, dict[int, str], str] | None = None
    # a second header row above ``headers``: (label, first column, span) for each group of
    # adjacent columns (「08:00–10:00」 over its counts); a column in no group spans both rows.
    groups: list[tuple[str, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", [[_printable(c) for c in row] for row in self.rows])
        taken: set[int] = set()
        for label, first, span in self.groups:
            columns = set(range(first, first + span))
            if span < 1 or first < 0 or first + span > len(self.headers) or columns & taken:
                raise ValueError(f"表头分组 \"{label}\"（第 {first + 1} 列起 {span} 列）超出表格"
                                 f"或与另一组重叠")
            taken |= columns

    @property
    def header_rows(self) -> int:
        """How many rows the header takes: two with groups, else one."""
        return 2 if self.groups else 1

    def group_of(self, column: int) -> tuple[str, int, int] | None:
        return next((g for g in self.groups if g[1] <= column < g[1] + g[2]), None)


def _printable(cell: Cell) -> Cell:
    if not isinstance(cell, str):
        return cell
    text = clean_line(cell)
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def select_rows(cases: Iterable[dict[str, Any]], date_field: str, start: date | None,
                end: date | None) -> list[dict[str, Any]]:
    """Cases whose ``date_field`` falls within [start, end] (open ends allowed), oldest first."""
    chosen = []
    for case in cases:
        value = case["data"].get(date_field)
        if value is None:
            continue
        day = date.fromisoformat(value[:10])
        if (start is None or start <= day) and (end is None or day <= end):
            chosen.append(case)
    return sorted(chosen, key=lambda c: (c["data"][date_field], c["id"]))


def cell_value(path: str, case: dict[str, Any], values: dict[str, Any], totals: dict[str, Any],
               state_label: Callable[[str], str], extra: dict[str, Any] | None = None) -> Cell:
    if extra and path in extra:
        return extra[path]
    if path == "state_label":
        return state_label(case["state"])
    if path in ("id", "state", "created_at", "created_by"):
        return case[path]
    value = totals.get(path[7:]) if path.startswith("totals.") else values.get(path)
    if isinstance(value, dict) and "name" in value:  # a user
        return value["name"]
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return value


def _text(value: Cell, *, narrow: bool = False) -> str:
    """Cell text; ``narrow`` puts a time under its date (for the printed table)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d\n%H:%M" if narrow else "%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def to_xlsx(table: Table) -> bytes:
    wb = Workbook()
    ws = wb.active
    # Excel forbids \ / ? * [ ] : in a sheet's name (展厅来电/店登记表) and allows 31 characters
    ws.title = re.sub(r"[\\/?*\[\]:]", "、", table.title)[:31]
    ws.append([table.title])
    ws.append([table.subtitle])
    ws["A1"].font = Font(bold=True, size=14)
    thin = Side(style="thin", color="999999")
    top, last = 3, 2 + table.header_rows           # the header's first and last rows
    if table.groups:
        upper: list[Any] = [None] * len(table.headers)
        lower: list[Any] = [None] * len(table.headers)
        for i, header in enumerate(table.headers):
            if table.group_of(i) is None:
                upper[i] = header
            else:
                lower[i] = header
        for label, first, _ in table.groups:
            upper[first] = label
        ws.append(upper)
        ws.append(lower)
        for i in range(len(table.headers)):
            if table.group_of(i) is None:
                ws.merge_cells(start_row=top, end_row=last, start_column=i + 1, end_column=i + 1)
        for _, first, span in table.groups:
            if span > 1:
                ws.merge_cells(start_row=top, end_row=top, start_column=first + 1,
                               end_column=first + span)
    else:
        ws.append(table.headers)
    for r in range(top, last + 1):
        for cell in ws[r]:
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="DDDDDD")
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            cell.border = Border(top=thin, bottom=thin, left=thin, right=thin)
    for row in table.rows:
        ws.append([float(v) if isinstance(v, Decimal) else v for v in row])
    for row in ws.iter_rows(min_row=last + 1):
        for cell in row:
            cell.border = Border(top=thin, bottom=thin, left=thin, right=thin)
            if isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            elif isinstance(cell.value, date):
                cell.number_format = "yyyy-mm-dd"
    lines = 1
    for i, header in enumerate(table.headers, start=1):
        # under a group many narrow columns share the sheet: their headers wrap after 4
        # characters, and the lower header row is made tall enough for them
        said = min(len(header), 4) if table.groups else len(header)
        width = max([said * 2] + [len(_text(r[i - 1])) * 1.6 for r in table.rows] + [8])
        ws.column_dimensions[get_column_letter(i)].width = min(width + 2, 40)
        if table.group_of(i - 1) is not None:
            lines = max(lines, -(-len(header) * 2 // int(min(width, 38))))
    if table.groups:
        ws.row_dimensions[last].height = 15 * lines + 4
    ws.freeze_panes = f"A{last + 1}"
    ws.auto_filter.ref = (f"A{last}:{get_column_letter(len(table.headers))}"
                          f"{last + len(table.rows)}")
    if table.chart is not None and len(table.rows) > 1:
        _chart(ws, table, last + 1)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _chart(ws, table: Table, first_row: int) -> None:
    """The chart of a counting report (openpyxl's native chart: Excel and WPS draw it), from
    the data rows starting at ``first_row``."""
    from openpyxl.chart import BarChart, LineChart, Reference, Series

    kind, columns, title = table.chart or ("bar", {}, "")
    chart = LineChart() if kind == "line" else BarChart()
    chart.title = title
    chart.height, chart.width = 9, 24
    last = first_row + len(table.rows) - 2            # the 合计 row is not plotted
    for index, name in columns.items():
        data = Reference(ws, min_col=index + 1, min_row=first_row, max_row=last)
        chart.series.append(Series(data, title=name))
    chart.set_categories(Reference(ws, min_col=1, min_row=first_row, max_row=last))
    ws.add_chart(chart, f"A{last + 4}")


def _fonts(run_or_style, name: str) -> None:
    rpr = run_or_style.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.append(fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), name)


def _field(paragraph, instruction: str) -> None:
    run = paragraph.add_run()
    for kind, text in (("begin", None), (None, instruction), ("separate", None), (None, "1"),
                       ("end", None)):
        if kind:
            el = OxmlElement("w:fldChar")
            el.set(qn("w:fldCharType"), kind)
        else:
            el = OxmlElement("w:instrText" if text == instruction else "w:t")
            el.set(qn("xml:space"), "preserve")
            el.text = text
        run._r.append(el)


FONT_PT = 7.5
_EM_CM = FONT_PT * 2.54 / 72  # one CJK character


def _text_cm(text: str) -> float:
    """Printed width of ``text`` at FONT_PT: CJK characters one em, Latin about two thirds."""
    import unicodedata

    return sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.66 for c in text) * _EM_CM


def column_widths(table: Table, total_cm: float, padding_cm: float = 0.25) -> list[float]:
    """Widths that keep codes, names, phone numbers and times on one line where the page
    allows: each column gets what its longest text needs (long texts capped, so they wrap),
    any spare width is shared out. If the page is too narrow the headers wrap first (each
    column shrinks towards what its cells need, a character at least), and only if that is
    not enough does everything shrink alike. A column empty in every row (备注) keeps room for
    three handwritten characters."""
    need, least = [], []
    for i, header in enumerate(table.headers):
        longest = max([_text_cm(line) for r in table.rows
                       for line in _text(r[i], narrow=True).splitlines()] + [0.0])
        blank = bool(table.rows) and longest == 0.0
        header_cm = min(_text_cm(header), 4 * _EM_CM)  # headers may wrap after 4 characters
        need.append(min(max(longest, header_cm, (3 if blank else 2) * _EM_CM), 8 * _EM_CM)
                    + padding_cm)
        least.append(min(max(longest, (3 if blank else 1) * _EM_CM), 8 * _EM_CM) + padding_cm)
    for label, first, span in table.groups:    # a group's label fits on one line over its columns
        short = _text_cm(label) + padding_cm - sum(need[first:first + span])
        for i in range(first, first + span):
            need[i] += max(short, 0.0) / span
    if sum(least) < total_cm < sum(need):
        part = (total_cm - sum(least)) / (sum(need) - sum(least))
        return [a + (n - a) * part for n, a in zip(need, least)]
    scale = total_cm / sum(need)
    return [n * scale for n in need]


def _header(grid, table: Table) -> None:
    """The table's header rows, repeated on every page: with groups, a group's label over its
    columns (merged across, ``gridSpan``) and a column in no group merged down both rows
    (``vMerge``), as on a paper form."""
    rows = grid.rows[:table.header_rows]
    for row in rows:
        trpr = row._tr.get_or_add_trPr()
        for tag in ("w:cantSplit", "w:tblHeader"):   # repeat the header rows on every page
            el = OxmlElement(tag)
            el.set(qn("w:val"), "true")
            trpr.append(el)
    cells = [[row.cells[i] for i in range(len(table.headers))] for row in rows]
    texts: list[tuple[Any, str]] = []
    if table.groups:
        upper, lower = cells
        for i, header in enumerate(table.headers):
            if table.group_of(i) is None:
                texts.append((upper[i].merge(lower[i]), header))
            else:
                texts.append((lower[i], header))
        for label, first, span in table.groups:
            merged = upper[first].merge(upper[first + span - 1]) if span > 1 else upper[first]
            texts.append((merged, label))
    else:
        texts = list(zip(cells[0], table.headers))
    for row in rows:
        for tc in row._tr.tc_lst:
            shade = OxmlElement("w:shd")
            shade.set(qn("w:val"), "clear")
            shade.set(qn("w:fill"), "DDDDDD")
            tc.get_or_add_tcPr().append(shade)
    for cell, text in texts:
        cell.text = ""
        paragraph = cell.paragraphs[0]
        paragraph.alignment = 1
        r = paragraph.add_run(text)
        r.bold = True
        _fonts(r, "黑体")
        cell.vertical_alignment = WD_ALIGN_VERTICAL.CENTER   # after w:shd, as the schema orders


def to_docx(table: Table, dealer_name: str) -> bytes:
    """A landscape A4 table document in the house fonts (宋体/黑体, mapped to Noto CJK)."""
    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Cm(29.7), Cm(21.0)
    for side in ("left_margin", "right_margin"):
        setattr(section, side, Cm(1.2))
    section.top_margin = section.bottom_margin = Cm(1.6)
    normal = doc.styles["Normal"]
    normal.font.size = Pt(FONT_PT)
    _fonts(normal, "宋体")
    lang = OxmlElement("w:lang")
    lang.set(qn("w:eastAsia"), "zh-CN")
    normal.element.get_or_add_rPr().append(lang)
    header = section.header.paragraphs[0]
    header.text = dealer_name
    footer = section.footer.paragraphs[0]
    footer.alignment = 1
    footer.add_run("第 ")
    _field(footer, "PAGE")
    footer.add_run(" 页 共 ")
    _field(footer, "NUMPAGES")
    footer.add_run(" 页")
    title = doc.add_paragraph()
    title.alignment = 1
    run = title.add_run(table.title)
    run.bold = True
    run.font.size = Pt(16)
    _fonts(run, "黑体")
    sub = doc.add_paragraph(table.subtitle)
    sub.alignment = 1
    grid = doc.add_table(rows=table.header_rows, cols=len(table.headers))
    grid.style = "Table Grid"
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    _header(grid, table)
    for row in table.rows:
        cells = grid.add_row().cells
        for cell, value in zip(cells, row):
            cell.text = _text(value, narrow=True)
    widths = column_widths(table, total_cm=27.2)
    grid.autofit = False
    margins = OxmlElement("w:tblCellMar")  # narrow cell padding: many columns share the page
    for side in ("left", "right"):
        m = OxmlElement(f"w:{side}")
        m.set(qn("w:w"), "68")  # 0.12 cm, matching column_widths' padding
        m.set(qn("w:type"), "dxa")
        margins.append(m)
    grid._tbl.tblPr.append(margins)
    for column, width in zip(grid.columns, widths):
        column.width = Cm(width)  # the grid LibreOffice lays out by
    for row in grid.rows:
        at = 0
        for tc in row._tr.tc_lst:     # a merged cell is as wide as the columns it spans
            tc.width = Cm(sum(widths[at:at + tc.grid_span]))
            at += tc.grid_span
    if not table.rows:
        doc.add_paragraph("本期间没有记录。")
    for line in table.signatures:    # e.g. 销售经理签字：________  日期：____年__月__日
        sign = doc.add_paragraph(f"{line}：" + "_" * 16 + "\u3000\u3000日期：____年____月____日")
        sign.paragraph_format.space_before = Pt(18)
    doc.core_properties.title = table.title
    doc.core_properties.author = dealer_name
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def period_label(start: date | None, end: date | None, today: date) -> str:
    if start is None and end is None:
        return f"全部记录（截至 {cn_date(today)}）"
    return (f"统计期间：{cn_date(start) if start else '最早'} 至 "
            f"{cn_date(end) if end else cn_date(today)}")


def as_of_label(day: date) -> str:
    """A snapshot's subtitle: the things as they stand on ``day`` (no period)."""
    return f"截至 {cn_date(day)}"
