"""Build the first version of the customer Word template with tools/templatekit.py.

    python tools/build_customer_templates.py --out DIR   # writes customer_card.docx

The 意向客户跟踪卡 (Chery 三表一卡, ../shared/reference/funnel.md A3: the card of a Chery
dealer CRM's print page): the customer's profile, the needs assessment and the first reception,
then one row per follow-up (the workflow appends them), the close (结案情形) and the
signatures of the consultant and the showroom supervisor. Same rules as
tools/build_templates.py: only the scaffold of the template's *first* version; the committed
templates/docx/customer_card.docx is the source of truth, edited in Word or WPS.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import templatekit as tk  # noqa: E402
from templatekit import C  # noqa: E402

ROWS = [0.8, 1.9, 1.1, 3.4, 2.6, 2.6, 2.2, 1.9]        # the follow-up rows (16.5 cm)
KV, or_dash = tk.KV, tk.or_dash


def build_card(path: Path) -> None:
    doc = tk.numbered_document()
    tk.add_title(doc, "意向客户跟踪卡")
    tk.add_meta_line(doc, "档案号：{{ case.id }}", "制卡日期：{{ card_opened_on|cn_date }}",
                     "当前级别：{{ case.state_label }}")

    row = tk.add_line_row

    tk.add_heading(doc, "一、客户基本资料")
    t = tk.add_table(doc, KV)
    row(t, [C("姓名", "label"), C("{{ name }}"), C("性别", "label"), C(or_dash("gender"))])
    row(t, [C("联系电话", "label"), C("{{ mobile }}"),
            C("客户类型", "label"), C(or_dash("customer_type"))])
    row(t, [C("单位", "label"), C(or_dash("company")),
            C("信息来源", "label"), C(or_dash("source"))])
    row(t, [C("地址", "label"), C(or_dash("address"), span=3)])
    row(t, [C("销售顾问", "label"), C('{{ consultant.name if consultant else "—" }}'),
            C("推荐人", "label"), C(or_dash("referrer"))])
    row(t, [C("个人信息", "label"),
            C('{{ "■" if consent_processing else "□" }} 同意为购车服务处理个人信息\u3000'
              '{{ "■" if consent_marketing else "□" }} 同意接收营销信息\u3000'
              '{{ ("日期：" ~ (consent_date|cn_date)) if consent_date else "" }}', span=3)])
    tk.keep_together(t)

    tk.add_heading(doc, "二、初次需求评估")
    t = tk.add_table(doc, KV)
    row(t, [C("意向车型", "label"), C(or_dash("intended_model")),
            C("购车预算", "label"), C(or_dash("budget"))])
    row(t, [C("购车目的", "label"), C(or_dash("purchase_purpose")),
            C("主要使用者", "label"), C(or_dash("main_user"))])
    row(t, [C("购车关注点", "label"), C(or_dash("purchase_focus"), span=3)])
    row(t, [C("关注竞品", "label"), C(or_dash("competitors"), span=3)])
    row(t, [C("第一次接待结果", "label"), C(or_dash("first_reception"), span=3)],
        height_cm=1.2, valign="top")
    tk.keep_together(t)

    tk.add_heading(doc, "三、客户跟进内容")
    t = tk.add_table(doc, ROWS)
    tk.add_row(t, [C("序号", "header"), C("跟进日期", "header"), C("方法", "header"),
                   C("跟进内容", "header"), C("客户反馈问题", "header"), C("应对措施", "header"),
                   C("级别变化", "header"), C("下次预约", "header")], header=True)
    tk.add_tag_row(t, "{%tr for r in follow_ups %}")
    tk.add_row(t, [C("{{ loop.index }}", "center"), C("{{ r.date|cn_date }}", "center"),
                   C("{{ r.method }}", "center"), C("{{ r.content }}"),
                   C('{{ r.feedback if r.feedback else "—" }}'),
                   C('{{ r.response if r.response else "—" }}'),
                   C("{{ r.level_before }} → {{ r.level_after }}"),
                   C('{{ r.next_date|cn_date if r.next_date else "—" }}', "center")],
               height_cm=None)
    tk.add_tag_row(t, "{%tr endfor %}")
    tk.add_tag_row(t, "{%tr if not follow_ups %}")
    tk.add_row(t, [C("尚无跟进记录", "center", span=8)])
    tk.add_tag_row(t, "{%tr endif %}")

    tk.add_heading(doc, "四、结案情形")
    t = tk.add_table(doc, KV)
    row(t, [C("结案情形", "label"),
            C('{{ "■" if ordered_on else "□" }} 成交-购车\u3000'
              '{{ "■" if lost_reason == "购买其它品牌" else "□" }} 流失-购买其它品牌产品\u3000'
              '{{ "■" if lost_reason and lost_reason != "购买其它品牌" else "□" }} 流失-其他原因'
              '（暂缓购车等）', span=3)])
    row(t, [C("订车日期", "label"), C('{{ ordered_on|cn_date if ordered_on else "—" }}'),
            C("交车日期", "label"), C('{{ delivered_on|cn_date if delivered_on else "—" }}')])
    row(t, [C("战败原因", "label"), C(or_dash("lost_reason")),
            C("竞品", "label"), C('{{ (lost_brand ~ " " ~ (lost_model or "")) if lost_brand else "—" }}')])
    row(t, [C("说明", "label"), C(or_dash("lost_note"), span=3)])
    tk.keep_together(t)

    tk.add_signature_block(doc, ["销售顾问", "展厅主管"])
    tk.save(doc, path)


TEMPLATES = {"customer_card.docx": build_card}


def main(argv: Sequence[str] | None = None) -> int:
    return tk.build_main(TEMPLATES, __doc__, list(argv or []) or None)


if __name__ == "__main__":
    raise SystemExit(main())
