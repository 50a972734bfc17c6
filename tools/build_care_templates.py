"""Build the first version of the customer-care Word templates with tools/templatekit.py.

    python tools/build_care_templates.py --out DIR   # writes complaint_record.docx

The SSI抱怨记录表 (Chery 客户关怀, ../shared/reference/funnel.md A7): no Chery layout is public,
so it follows the fields A7 lists from a 4S store's complaint slip: who complained and about
which car, the source, category and level, what happened and what the customer asks, the
dispatch and its time limit, the cause, solution, responsible person and corrective action,
every call-back and the customer's confirmation, whether the loop is closed, and the
signatures of the handler, the sales manager and (for 升级/重大) the carmaker's regional
manager. Same rules as tools/build_templates.py: only the scaffold of the template's *first*
version; the committed templates/docx/complaint_record.docx is the source of truth, edited in
Word or WPS.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import templatekit as tk  # noqa: E402
from templatekit import C  # noqa: E402

CALLS = [1.2, 4.6, 1.5, 6.7, 2.5]              # the call-back rows (a date and time on one line)
DASH, KV, or_dash = tk.DASH, tk.KV, tk.or_dash


def when(expr: str) -> str:
    return f"{{{{ {expr}|cn_datetime if {expr} else {DASH} }}}}"


def user(expr: str) -> str:
    return f"{{{{ {expr}.name if {expr} else {DASH} }}}}"


def boxes(field: str, choices: Sequence[str]) -> str:
    return "\u3000".join(f'{{{{ "■" if {field} == "{c}" else "□" }}}} {c}' for c in choices)


def build_record(path: Path) -> None:
    doc = tk.numbered_document()
    tk.add_title(doc, "SSI抱怨记录表")
    tk.add_meta_line(doc, "抱怨编号：{{ case.id }}", "受理日期：{{ received_at|cn_date }}",
                     "当前阶段：{{ case.state_label }}")

    row = tk.add_line_row

    tk.add_heading(doc, "一、客户与车辆")
    t = tk.add_table(doc, KV)
    row(t, [C("客户姓名", "label"), C("{{ customer_name }}"),
            C("联系电话", "label"), C("{{ customer_mobile }}")])
    row(t, [C("车型", "label"), C(or_dash("vehicle_model")),
            C("销售顾问", "label"), C(user("consultant"))])
    row(t, [C("车架号", "label"), C(or_dash("vin")), C("车牌号", "label"), C(or_dash("plate_number"))])
    tk.keep_together(t)

    tk.add_heading(doc, "二、抱怨受理")
    t = tk.add_table(doc, KV)
    row(t, [C("受理时间", "label"), C("{{ received_at|cn_datetime }}"),
            C("受理人", "label"), C(user("receiver"))])
    row(t, [C("抱怨来源", "label"), C("{{ source }}"), C("抱怨类别", "label"), C("{{ category }}")])
    row(t, [C("抱怨级别", "label"), C(boxes("level", ["一般", "升级", "重大"]), span=3)])
    row(t, [C("问题描述", "label"), C("{{ description }}", span=3)], height_cm=1.0, valign="top")
    row(t, [C("用户要求", "label"), C(or_dash("customer_ask"), span=3)], valign="top")
    tk.keep_together(t)

    tk.add_heading(doc, "三、派单与处理")
    t = tk.add_table(doc, KV)
    row(t, [C("派单时间", "label"), C(when("assigned_at")),
            C("派单人", "label"), C(user("assigned_by"))])
    row(t, [C("处理人", "label"), C(user("handler")), C("责任部门", "label"), C(or_dash("department"))])
    row(t, [C("处理时限", "label"),
            C('{{ totals.respond_by|cn_datetime if totals.respond_by else "—" }}'),
            C("是否按时", "label"), C('{{ totals.in_time if totals.in_time else "—" }}')])
    row(t, [C("原因分析", "label"), C(or_dash("cause"), span=3)], height_cm=0.8, valign="top")
    row(t, [C("解决方案", "label"), C(or_dash("solution"), span=3)], height_cm=0.8, valign="top")
    row(t, [C("责任人", "label"), C(or_dash("responsible_person")),
            C("处理完成", "label"), C(when("handled_at"))])
    row(t, [C("纠正措施", "label"), C(or_dash("corrective_action"), span=3)], valign="top")
    tk.keep_together(t)

    tk.add_tag_paragraph(doc, "{%p if escalations %}")
    tk.add_heading(doc, "升级记录")
    t = tk.add_table(doc, [4.6, 1.6, 3.6, 4.2, 2.5])
    tk.add_row(t, [C("升级时间", "header"), C("升级为", "header"), C("原因", "header"),
                   C("说明", "header"), C("升级人", "header")], header=True)
    tk.add_tag_row(t, "{%tr for e in escalations %}")
    tk.add_row(t, [C("{{ e.at|cn_datetime }}", "center"), C("{{ e.level }}", "center"),
                   C("{{ e.reason }}"), C('{{ e.note if e.note else "—" }}'),
                   C("{{ e.by.name }}", "center")], height_cm=None)
    tk.add_tag_row(t, "{%tr endfor %}")
    tk.add_tag_paragraph(doc, "{%p endif %}")

    tk.add_heading(doc, "四、客户确认（回访）")
    t = tk.add_table(doc, CALLS)
    tk.add_row(t, [C("次数", "header"), C("回访时间", "header"), C("结果", "header"),
                   C("回访记录", "header"), C("回访人", "header")], header=True)
    tk.add_tag_row(t, "{%tr for r in callbacks %}")
    tk.add_row(t, [C("{{ loop.index }}", "center"), C("{{ r.at|cn_datetime }}", "center"),
                   C("{{ r.verdict }}", "center"), C('{{ r.note if r.note else "—" }}'),
                   C("{{ r.by.name }}", "center")], height_cm=None)
    tk.add_tag_row(t, "{%tr endfor %}")
    tk.add_tag_row(t, "{%tr if not callbacks %}")
    tk.add_row(t, [C("尚未回访", "center", span=5)])
    tk.add_tag_row(t, "{%tr endif %}")

    tk.add_heading(doc, "五、闭环")
    t = tk.add_table(doc, KV)
    row(t, [C("客户确认", "label"), C(or_dash("final_verdict")),
            C("确认时间", "label"), C(when("confirmed_at"))])
    row(t, [C("处理次数", "label"), C("{{ rounds or 0 }} 次"),
            C("回访次数", "label"), C("{{ callback_count or 0 }} 次")])
    row(t, [C("是否闭环", "label"),
            C('{{ "■" if closed_at else "□" }} 是\u3000{{ "□" if closed_at else "■" }} 否'),
            C("关闭时间", "label"), C(when("closed_at"))])
    row(t, [C("关闭经理", "label"), C(user("manager_closer")),
            C("区域经理", "label"),
            C('{{ oem_approver.name if oem_approver else ("待审批" if totals.needs_oem else "不适用") }}')])
    row(t, [C("经理意见", "label"), C(or_dash("close_note"), span=3)])
    row(t, [C("区域经理意见", "label"), C(or_dash("oem_opinion"), span=3)])
    # the closing table stays with the signatures (never a page of signatures alone)
    tk.keep_with_next(t, tk.add_paragraph(doc))   # the paragraph keeps the tables apart

    tk.add_tag_paragraph(doc, "{%p if totals.needs_oem %}")
    tk.add_signature_block(doc, ["处理人", "销售经理", "区域经理"], blank=10)
    tk.add_tag_paragraph(doc, "{%p else %}")
    tk.add_signature_block(doc, ["处理人", "销售经理"])
    tk.add_tag_paragraph(doc, "{%p endif %}")
    tk.save(doc, path)


TEMPLATES = {"complaint_record.docx": build_record}


def main(argv: Sequence[str] | None = None) -> int:
    return tk.build_main(TEMPLATES, __doc__, list(argv or []) or None)


if __name__ == "__main__":
    raise SystemExit(main())
