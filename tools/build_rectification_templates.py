"""Build the first version of the rectification (整改) Word templates with tools/templatekit.py.

    python tools/build_rectification_templates.py --out DIR  # writes rectification_plan.docx,
                                                              # rectification_closure.docx,
                                                              # rectification_extension.docx,
                                                              # rectification_cancellation.docx

Same rules as tools/build_templates.py: this is only the scaffold for each template's *first*
version. The committed templates/docx/*.docx are the source of truth, edited in Word, WPS or
LibreOffice (templates/README.md); a build writes only into the folder given with ``--out``.

Every ``{{ … }}`` below uses only names of the rectification workflow's template context
(dealer, doc, case, totals and the workflow's fields) and the filter cn_date; rendering uses
StrictUndefined, so a misspelt name fails. ``links`` is empty for this workflow.

Not printed on purpose: ``review_opinion`` holds the *last* reviewer's opinion (a rejected plan
goes back to the store with it and is then resubmitted), so on a newly issued request it would
be stale; every form has blank lines for the reviewer to write on instead. The review result
boxes are all □ for hand-ticking. The applicant is the person who submitted the request
(``doc.issuer``); the carmaker's reviewer signs by hand.

Tick boxes are ■ (chosen) and □ (not chosen), as on the handover form: both are in 宋体 and in
Noto CJK at full CJK width, ☑/☐ are in neither (see tools/build_delivery_templates.py).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from docx.enum.text import WD_TAB_ALIGNMENT, WD_TAB_LEADER
from docx.oxml.ns import qn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import templatekit as tk  # noqa: E402
from templatekit import C  # noqa: E402

KV, or_dash = tk.KV, tk.or_dash
EVIDENCE = [1.2, 9.2, 3.6, 2.5]    # 序号 | 文件名 | SHA-256 | 大小（KB）
SIGN = [8.25, 8.25]                # 申请单位 | 厂家审核 / 审批
# A signature line is "label：<tab>" with a right tab stop at the cell's inner edge and an
# underscore leader, so the lines to write on end flush however long the label is.
LINE_END_CM = SIGN[0] - 0.35

BOX_ON, BOX_OFF = "■", "□"
# Choice lists exactly as in the rectification workflow definition (its choices = [...]).
SOURCES = ["现场督导", "神秘客检查", "客户投诉", "系统稽核"]
SEVERITIES = ["一般", "严重", "重大"]
CANCEL_GROUNDS = ["问题不成立", "标准已变更", "重复问题", "其他"]

BLANK_DATE = "____年____月____日"


def boxes(field: str, choices: Sequence[str], sep: str = "\u3000") -> str:
    """``■ a　□ b　□ c``: ■ before the choice ``field`` holds, □ before the others."""
    return sep.join(f'{{{{ "{BOX_ON}" if {field} == "{c}" else "{BOX_OFF}" }}}} {c}'
                    for c in choices)


def no_borders(table) -> None:
    """Borderless table whose border elements carry no size or colour either."""
    borders = table._tbl.tblPr.find(qn("w:tblBorders"))  # noqa: SLF001
    for side in borders:
        for attr in ("sz", "space", "color"):
            side.attrib.pop(qn(f"w:{attr}"), None)
        side.set(qn("w:val"), "nil")


def center_label(cells) -> None:
    """Label cells centred vertically in a row whose text sits at the top."""
    for cell in cells:
        tc_pr = cell._tc.get_or_add_tcPr()  # noqa: SLF001
        tc_pr.find(qn("w:vAlign")).set(qn("w:val"), "center")


def may_split(cells) -> None:
    """Let the row of ``cells`` break across pages: add_row keeps every row whole, but a long
    free text (up to 2000 characters) would otherwise leave half a page empty before it."""
    tr_pr = cells[0]._tc.getparent().trPr  # noqa: SLF001
    for el in tr_pr.findall(qn("w:cantSplit")):
        tr_pr.remove(el)


def text_row(t, label: str, expr: str, height_cm: float = 1.2) -> None:
    """A label and one free-text value across the rest of the row; long texts grow the row
    (and may continue on the next page), short ones keep ``height_cm``."""
    cells = tk.add_row(t, [C(label, "label"), C(expr, span=3)], height_cm=height_cm,
                       valign="top")
    center_label(cells[:1])
    may_split(cells)


def small(cell, size_pt: float = 9) -> None:
    for run in cell.paragraphs[0].runs:
        run.font.size = tk.Pt(size_pt)


def new_form(title: str, number_label: str, date_label: str):
    doc = tk.numbered_document()
    tk.add_title(doc, title)
    tk.add_meta_line(doc, f"{number_label}：{{{{ doc.number }}}}",
                     f"{date_label}：{{{{ doc.issued_at|cn_date }}}}",
                     "版本：第 {{ doc.version }} 版")
    return doc


def intro(doc, text: str):
    p = tk.add_paragraph(doc, text, "正文首行缩进")
    p.paragraph_format.space_before = tk.Pt(3)
    p.paragraph_format.space_after = tk.Pt(3)
    return p


def item_rows(t, *, deadline_label: str | None, source_row: bool = True) -> None:
    """项目编号 / 检查日期 / (问题来源 / 严重程度) / 检查标准条款 / 问题描述 / 责任部门 / 责任人
    (and the deadline): the finding as the requests after the plan repeat it."""
    tk.add_row(t, [C("项目编号", "label"), C("{{ case.id }}"),
                   C("检查日期", "label"), C("{{ inspection_date|cn_date }}")])
    if source_row:
        tk.add_row(t, [C("问题来源", "label"), C(or_dash("source")),
                       C("严重程度", "label"), C(or_dash("severity"))])
    tk.add_row(t, [C("检查标准条款", "label"), C(or_dash("checklist_clause"), span=3)])
    text_row(t, "问题描述", or_dash("finding"), 1.0)
    tk.add_row(t, [C("责任部门", "label"), C(or_dash("department")),
                   C("责任人", "label"), C(or_dash("owner"))])
    if deadline_label:
        tk.add_row(t, [C(deadline_label, "label"), C("{{ deadline|cn_date }}"),
                       C("已延期次数", "label"), C("{{ totals.extensions }} 次")])


# --------------------------------------------------------------------------- signatures


def _lines(cell, lines: Sequence[tuple[str, str, float]]) -> None:
    """Fill ``cell`` with paragraphs (text, align, space before in pt); the first reuses the
    cell's paragraph. Style 签字 keeps them together; the space is room to write or stamp. A
    text ending in a tab gets the underscore leader up to the cell's inner edge."""
    doc = cell.part.document
    for i, (text, align, before) in enumerate(lines):
        p = cell.paragraphs[0] if i == 0 else cell.add_paragraph()
        p.style = doc.styles["签字"]
        if text:
            p.add_run(text)
        if text.endswith("\t"):
            p.paragraph_format.tab_stops.add_tab_stop(tk.Cm(LINE_END_CM), WD_TAB_ALIGNMENT.RIGHT,
                                                      WD_TAB_LEADER.LINES)
        p.paragraph_format.space_before = tk.Pt(before)
        if align != "left":
            p.alignment = {"right": 2, "center": 1}[align]


def add_sign_table(doc, left_title: str, left: Sequence[tuple[str, str, float]],
                   right_title: str, right: Sequence[tuple[str, str, float]]):
    """Two bordered halves side by side: the store (signatures, seal, date) on the left, the
    carmaker's reviewer on the right. One row each, never split over pages, kept with the
    heading above."""
    t = tk.add_table(doc, SIGN)
    tk.add_row(t, [C(left_title, "header"), C(right_title, "header")], height_cm=0.7)
    cells = tk.add_row(t, [C(""), C("")], height_cm=4.0, valign="top")
    _lines(cells[0], left)
    _lines(cells[1], right)
    tk.keep_together(t)
    return t


APPLICANT_LINES = [
    # the applicant is printed (the person who submitted the request) and signs next to it
    ("申请人：{{ doc.issuer.name }}\u3000签字：\t", "left", 6),
    ("部门负责人（签字）：\t", "left", 12),
    ("总经理（签字）：\t", "left", 12),
    ("（公司盖章）", "right", 12),
    ("日期：" + BLANK_DATE, "right", 6),   # the seal goes over the date (骑年压月)
]


def approval_lines(signer: str, boxes_text: str) -> list[tuple[str, str, float]]:
    return [
        ("审批结果：" + boxes_text, "left", 6),
        ("审批意见：\t", "left", 12),
        ("\t", "left", 12),
        (f"{signer}：\t", "left", 12),
        ("日期：" + BLANK_DATE, "right", 6),
    ]


# --------------------------------------------------------------------------- plan


def build_plan(path: Path) -> None:
    """销售服务商立项整改计划书 (rectification plan), domain.md §3.3; issued by ``submit_plan``."""
    doc = new_form("销售服务商立项整改计划书", "计划书编号", "提交日期")

    tk.add_heading(doc, "一、基本信息")
    t = tk.add_table(doc, KV)
    tk.add_row(t, [C("经销商名称", "label"), C("{{ dealer.name }}"),
                   C("经销商代码", "label"), C("{{ dealer.code }}")])
    tk.add_row(t, [C("厂家督导", "label"),
                   C('{{ supervisor.name if supervisor else "—" }}'),
                   C("检查日期", "label"), C("{{ inspection_date|cn_date }}")])
    tk.add_row(t, [C("问题来源", "label"), C(boxes("source", SOURCES, "\u3000\u3000"), span=3)])
    tk.keep_together(t)

    intro(doc, "针对厂家督导于 {{ inspection_date|cn_date }} 检查发现的下列问题，本店已分析原因、"
               "制定整改措施并明确责任人和完成日期，现提交整改计划，请审核。本计划书一式两份，"
               "厂家督导与经销商各执一份。")

    tk.add_heading(doc, "二、整改项目")
    t = tk.add_table(doc, KV)
    tk.add_row(t, [C("项目编号", "label"), C("{{ case.id }}"),
                   C("严重程度", "label"), C(boxes("severity", SEVERITIES))])
    tk.add_row(t, [C("检查标准条款", "label"), C(or_dash("checklist_clause"), span=3)])
    text_row(t, "问题描述", or_dash("finding"), 1.3)
    text_row(t, "问题证据", or_dash("finding_evidence"), 0.9)
    tk.add_row(t, [C("责任部门", "label"), C(or_dash("department")),
                   C("责任人", "label"), C(or_dash("owner"))])
    text_row(t, "原因分析", or_dash("root_cause"), 1.6)
    text_row(t, "整改措施", or_dash("corrective_action"), 2.2)
    tk.add_row(t, [C("计划完成日期", "label"), C("{{ deadline|cn_date }}", bold=True),
                   C("验证方式", "label"), C(or_dash("verification_method"))])

    tk.add_heading(doc, "三、确认与审核")
    add_sign_table(
        doc,
        "经销商确认", [
            ("本店确认上述问题属实，将按本计划落实整改，并在计划完成日期前提交书面销项申请。",
             "left", 6),
            ("总经理（签字）：\t", "left", 14),
            ("（公司盖章）", "right", 12),
            ("日期：" + BLANK_DATE, "right", 6),
        ],
        "厂家督导审核", [
            ("审核结论：" + f"{BOX_OFF} 同意本计划\u3000{BOX_OFF} 退回修改", "left", 6),
            ("审核意见：\t", "left", 12),
            ("\t", "left", 12),
            ("厂家督导确认（签字）：\t", "left", 12),
            ("日期：" + BLANK_DATE, "right", 6),
        ])
    tk.save(doc, path)


# --------------------------------------------------------------------------- closure


def build_closure(path: Path) -> None:
    """书面销项申请书 (closure request), domain.md §3.3; issued by ``request_closure``."""
    doc = new_form("书面销项申请书", "申请编号", "申请日期")
    intro(doc, "{{ dealer.name }}（经销商代码：{{ dealer.code }}）已按整改计划完成下列整改项目，"
               "现提交整改证据，申请销项，请审核。")

    tk.add_heading(doc, "一、整改项目")
    t = tk.add_table(doc, KV)
    item_rows(t, deadline_label=None, source_row=False)
    tk.add_row(t, [C("整改期限", "label"), C("{{ deadline|cn_date }}"),
                   C("完成日期", "label"), C("{{ completion_date|cn_date }}", bold=True)])
    tk.add_tag_row(t, "{%tr if original_deadline and original_deadline != deadline %}")
    tk.add_row(t, [C("原定期限", "label"), C("{{ original_deadline|cn_date }}"),
                   C("已延期次数", "label"), C("{{ totals.extensions }} 次")])
    tk.add_tag_row(t, "{%tr endif %}")
    tk.add_tag_row(t, "{%tr if overdue_reason %}")
    text_row(t, "逾期原因", "{{ overdue_reason }}", 0.9)
    tk.add_tag_row(t, "{%tr endif %}")

    tk.add_heading(doc, "二、整改完成情况")
    t = tk.add_table(doc, [tk.text_width_cm(doc)])
    may_split(tk.add_row(t, [C(or_dash("completion_summary"))], height_cm=1.8, valign="top"))

    tk.add_heading(doc, "三、证据清单")
    t = tk.add_table(doc, EVIDENCE)
    tk.add_row(t, [C("序号", "header"), C("文件名", "header"),
                   C("SHA-256 校验值", "header"), C("大小（KB）", "header")],
               header=True, height_cm=0.6)
    tk.add_tag_row(t, "{%tr for e in evidence %}")
    cells = tk.add_row(t, [C("{{ loop.index }}", "center"), C("{{ e.name }}"),
                           C("{{ e.sha256[:16] }}…", "center"),
                           C('{{ "{:,.1f}".format(e.size / 1024) }}', "amount")], height_cm=0.6)
    small(cells[2])
    tk.add_tag_row(t, "{%tr endfor %}")
    tk.add_tag_row(t, "{%tr if not evidence %}")
    tk.add_row(t, [C("无", "center"), C("（未附证据文件）", span=3)], height_cm=0.6)
    tk.add_tag_row(t, "{%tr endif %}")
    tk.add_row(t, [C("合计", "label", span=2),
                   C("{{ evidence|length }} 个文件", span=2)], height_cm=0.6)
    tk.add_paragraph(doc, "注：证据文件以电子文件随本申请提交；校验值印 SHA-256 的前 16 位，可据此核对"
                          "收到的文件未经改动。", "说明")

    tk.add_heading(doc, "四、申请与审核")
    add_sign_table(
        doc,
        "申请单位", APPLICANT_LINES,
        "厂家督导审核", [
            (f"审核意见：{BOX_OFF} 同意销项", "left", 6),
            (f"\u3000\u3000\u3000\u3000\u3000{BOX_OFF} 不同意，原因：\t", "left", 12),
            ("\t", "left", 12),
            ("审核人（签字）：\t", "left", 12),
            ("日期：" + BLANK_DATE, "right", 6),
        ])
    tk.save(doc, path)


# --------------------------------------------------------------------------- extension


def build_extension(path: Path) -> None:
    """整改项目延期申请书 (extension request), domain.md §3.3; issued by ``request_extension``."""
    doc = new_form("整改项目延期申请书", "申请编号", "申请日期")
    intro(doc, "{{ dealer.name }}（经销商代码：{{ dealer.code }}）因下述原因，不能在整改期限内完成"
               "下列整改项目，现申请将整改期限延至 {{ requested_deadline|cn_date }}，请审批。")

    tk.add_heading(doc, "一、整改项目")
    t = tk.add_table(doc, KV)
    item_rows(t, deadline_label=None)
    tk.keep_together(t)

    tk.add_heading(doc, "二、延期申请")
    t = tk.add_table(doc, KV)
    tk.add_row(t, [C("原定期限", "label"), C("{{ deadline|cn_date }}"),
                   C("申请延期至", "label"), C("{{ requested_deadline|cn_date }}", bold=True)])
    tk.add_row(t, [C("延期天数", "label"),
                   C("{% if totals.extension_days is not none %}{{ totals.extension_days }} 天"
                     "{% else %}—{% endif %}"),
                   C("已延期次数", "label"), C("{{ totals.extensions }} 次")])
    text_row(t, "延期原因", or_dash("extension_reason"), 2.4)
    text_row(t, "临时措施", '{{ interim_measures if interim_measures else "无" }}', 1.6)
    tk.add_paragraph(doc, "注：延期申请须在整改期限届满前提出。批准后，整改期限改为“申请延期至”的"
                          "日期；不批准的，仍按原定期限完成整改。“已延期次数”为本次申请前已获批准的"
                          "延期次数。", "说明").paragraph_format.space_before = tk.Pt(4)

    tk.add_heading(doc, "三、申请与审批")
    add_sign_table(doc, "申请单位", APPLICANT_LINES,
                   "区域经理审批",
                   approval_lines("审批人（区域经理）签字",
                                  f"{BOX_OFF} 批准\u3000\u3000{BOX_OFF} 不批准"))
    tk.save(doc, path)


# --------------------------------------------------------------------------- cancellation


def build_cancellation(path: Path) -> None:
    """整改项目取消申请书 (cancellation request), domain.md §3.3; issued by ``request_cancel``."""
    doc = new_form("整改项目取消申请书", "申请编号", "申请日期")
    intro(doc, "{{ dealer.name }}（经销商代码：{{ dealer.code }}）认为下列整改项目应予取消，"
               "现说明理由如下，请审批。")

    tk.add_heading(doc, "一、整改项目")
    t = tk.add_table(doc, KV)
    item_rows(t, deadline_label="整改期限")
    tk.keep_together(t)

    tk.add_heading(doc, "二、取消理由")
    t = tk.add_table(doc, KV)
    tk.add_row(t, [C("取消理由类别", "label"),
                   C(boxes("cancel_ground", CANCEL_GROUNDS, "\u3000\u3000"), span=3)])
    text_row(t, "取消说明", or_dash("cancel_reason"), 3.2)
    tk.add_paragraph(doc, "注：取消申请须在整改期限届满前提出；取消说明应写明依据（如问题复核情况、"
                          "变更后的检查标准条款、重复问题的项目编号）。批准后本项目不再整改；不批准"
                          "的，仍按整改期限完成整改。", "说明").paragraph_format.space_before = tk.Pt(4)

    tk.add_heading(doc, "三、申请与审批")
    add_sign_table(doc, "申请单位", APPLICANT_LINES,
                   "区域经理审批",
                   approval_lines("审批人（区域经理）签字",
                                  f"{BOX_OFF} 批准取消\u3000{BOX_OFF} 不批准"))
    tk.save(doc, path)


TEMPLATES = {"rectification_plan.docx": build_plan,
             "rectification_closure.docx": build_closure,
             "rectification_extension.docx": build_extension,
             "rectification_cancellation.docx": build_cancellation}


def main(argv: Sequence[str] | None = None) -> int:
    return tk.build_main(TEMPLATES, __doc__, list(argv or []) or None)


if __name__ == "__main__":
    raise SystemExit(main())
