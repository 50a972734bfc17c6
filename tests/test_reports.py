"""reports.Table and its writers, without a store: a two-row header (groups over columns)
in the xlsx (merged cells) and the Word table (gridSpan, vMerge), a one-row header left as it
was, and the column widths on a page too narrow for every header."""
from __future__ import annotations

import io

import pytest
from docx import Document
from docx.oxml.ns import qn
from openpyxl import load_workbook

from engine.reports import _EM_CM, Table, _text_cm, column_widths, to_docx, to_xlsx


def grouped(**changes) -> Table:
    """A day's row, two groups of two counts, and two columns in no group."""
    return Table(**{"title": "客流", "subtitle": "统计期间", "rows": [
        ["11月26日", 1, 2, 3, 4, "50.0%", None], ["合计", 1, 2, 3, 4, "50.0%", None]],
        "headers": ["日期", "来店", "留资", "来店", "留资", "成交率", "备注"],
        "groups": [("08:00–10:00", 1, 2), ("10:00–12:00", 3, 2)], **changes})


def test_the_xlsx_has_two_header_rows_with_merged_cells():
    sheet = load_workbook(io.BytesIO(to_xlsx(grouped(chart=("line", {3: "来店"}, "客流"))))).active

    assert {str(r) for r in sheet.merged_cells.ranges} == {"B3:C3", "D3:E3", "A3:A4", "F3:F4",
                                                           "G3:G4"}
    assert [c.value for c in sheet[3]] == ["日期", "08:00–10:00", None, "10:00–12:00", None,
                                           "成交率", "备注"]
    assert [c.value for c in sheet[4]] == [None, "来店", "留资", "来店", "留资", None, None]
    assert [c.value for c in sheet[5]][:3] == ["11月26日", 1, 2]
    assert sheet.freeze_panes == "A5" and sheet.auto_filter.ref == "A4:G6"
    assert all(sheet.cell(4, c).font.b and sheet.cell(4, c).alignment.wrap_text
               for c in range(2, 6))
    [chart] = sheet._charts
    [series] = chart.series
    assert series.tx.v == "来店" and series.val.numRef.f == "'客流'!$D$5"   # not 合计


def test_a_one_row_header_stays_as_it_was():
    table = grouped(groups=[], chart=("bar", {1: "来店"}, "客流"))
    sheet = load_workbook(io.BytesIO(to_xlsx(table))).active

    assert not sheet.merged_cells.ranges and sheet.freeze_panes == "A4"
    assert [c.value for c in sheet[3]] == table.headers and sheet["A4"].value == "11月26日"
    assert sheet._charts[0].series[0].val.numRef.f == "'客流'!$B$4"
    word = Document(io.BytesIO(to_docx(table, "星辰汽车"))).tables[0]
    first = word._tbl.tr_lst[0]
    assert [tc.grid_span for tc in first.tc_lst] == [1] * 7
    assert first.trPr.find(qn("w:tblHeader")) is not None
    assert word._tbl.tr_lst[1].trPr is None and len(word.rows) == 3


def test_the_word_table_merges_groups_across_and_the_rest_down():
    word = Document(io.BytesIO(to_docx(grouped(), "星辰汽车"))).tables[0]
    upper, lower = word._tbl.tr_lst[:2]

    def text(tc) -> str:
        return "".join(t.text or "" for t in tc.iter(qn("w:t")))

    assert [(tc.grid_span, tc.vMerge, text(tc)) for tc in upper.tc_lst] == [
        (1, "restart", "日期"), (2, None, "08:00–10:00"), (2, None, "10:00–12:00"),
        (1, "restart", "成交率"), (1, "restart", "备注")]
    assert [(tc.grid_span, tc.vMerge, text(tc)) for tc in lower.tc_lst] == [
        (1, "continue", ""), (1, None, "来店"), (1, None, "留资"), (1, None, "来店"),
        (1, None, "留资"), (1, "continue", ""), (1, "continue", "")]
    assert all(tr.trPr.find(qn("w:tblHeader")) is not None for tr in (upper, lower))
    # a merged cell is as wide as the grid columns under it
    grid = [int(c.get(qn("w:w"))) for c in word._tbl.tblGrid.iter(qn("w:gridCol"))]
    assert abs(upper.tc_lst[1].width.twips - (grid[1] + grid[2])) <= 2
    assert word.cell(2, 0).text == "11月26日" and word.cell(3, 5).text == "50.0%"


@pytest.mark.parametrize("groups, named", [
    ([("08:00–10:00", 1, 2), ("10:00–12:00", 2, 2)], "10:00–12:00\"（第 3 列起 2 列）"),  # overlapping
    ([("08:00–10:00", 5, 3)], "08:00–10:00\"（第 6 列起 3 列）"),      # past the last column
    ([("08:00–10:00", 1, 0)], "08:00–10:00\"（第 2 列起 0 列）"),      # empty
])
def test_a_group_must_cover_columns_of_its_own(groups, named):
    with pytest.raises(ValueError) as raised:
        grouped(groups=groups)
    assert str(raised.value) == f"表头分组 \"{named}超出表格或与另一组重叠"


def test_on_a_narrow_page_the_headers_wrap_before_the_cells():
    """Thirty narrow counts under long headers: the day keeps one line, each count column
    still holds a character, and an empty column keeps room to write in."""
    table = Table("客流", "", ["日期", *["留有客户资料数"] * 30, "备注"],
                  [["11月26日", *range(30), None]])
    widths = column_widths(table, total_cm=27.2)

    assert sum(widths) == pytest.approx(27.2)
    assert widths[0] >= _text_cm("11月26日") + 0.25
    assert min(widths[1:-1]) >= _EM_CM + 0.25 and widths[-1] >= 3 * _EM_CM + 0.25
    roomy = column_widths(Table("客流", "", ["日期", "来店"], [["11月26日", 1]]), 27.2)
    assert roomy[0] > roomy[1] and sum(roomy) == pytest.approx(27.2)   # spare shared out
