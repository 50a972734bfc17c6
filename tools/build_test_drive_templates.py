"""Build the first version of the test-drive (试乘试驾) Word templates with tools/templatekit.py.

    python tools/build_test_drive_templates.py --out DIR  # writes test_drive_agreement.docx,
                                                          # test_drive_evaluation.docx

Same rules as tools/build_templates.py: this is only the scaffold for each template's *first*
version. The committed templates/docx/*.docx are the source of truth, edited in Word, WPS or
LibreOffice (templates/README.md); a build writes only into the folder given with ``--out``.

Every ``{{ … }}`` below uses only names of the test-drive workflow's template context (dealer,
doc, case, totals and the workflow's fields) and the filters cn_date and cn_datetime; rendering
uses StrictUndefined, so a misspelt name fails. ``links`` is empty for this workflow. The
driver's minimum age and licence years come from the store's ``[policy]`` (the same figures the
checks apply); the other limits (市区 60 公里/小时 …) are plain text the store edits in Word.

Tick boxes are ■ (chosen) and □ (not chosen), as on the handover form: both are in 宋体 and in
Noto CJK at full CJK width, ☑/☐ are in neither (see tools/build_delivery_templates.py).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from docx.oxml.ns import qn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import templatekit as tk  # noqa: E402
from templatekit import C  # noqa: E402

KV, or_dash = tk.KV, tk.or_dash
SIGN = [8.25, 8.25]          # 乙方 | 甲方 signature columns

BOX_ON, BOX_OFF = "■", "□"
EXPERIENCE_TYPES = ["试乘", "试驾", "试乘试驾"]   # choices of experience_type
RATING_LEVELS = ["不满意", "基本满意", "很满意"]  # choices of every rating_* field
# (group, [(field, label)]) as on the evaluation form, domain.md §1.3
RATING_GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    ("车型", [("rating_power", "动力性"), ("rating_handling", "操控性"),
              ("rating_braking", "制动性"), ("rating_comfort", "舒适性"),
              ("rating_space", "内部空间")]),
    ("服务", [("rating_service", "销售顾问试驾服务")]),
    ("流程", [("rating_car_condition", "车况及清洁"), ("rating_route_length", "路线长度"),
              ("rating_route_items", "路线试驾项目"), ("rating_overall", "总体评价")]),
]
def box_eq(field: str, value: str) -> str:
    """``■`` when the choice field ``field`` equals ``value``, else ``□``."""
    return f'{{{{ "{BOX_ON}" if {field} == "{value}" else "{BOX_OFF}" }}}}'


def clause(doc, text: str, style: str = "条款"):
    """One clause paragraph; ``**…**`` marks bold runs. The markers sit outside tags, so a
    ``{{ … }}`` is never split over runs."""
    p = doc.add_paragraph(style=doc.styles[style])
    for i, part in enumerate(text.split("**")):
        if part:
            p.add_run(part).bold = True if i % 2 else None
    return p


def no_borders(table) -> None:
    """Borderless table whose border elements carry no size or colour either (a later edit
    that switches one border on gets Word's default line, not a leftover setting)."""
    borders = table._tbl.tblPr.find(qn("w:tblBorders"))  # noqa: SLF001
    for side in borders:
        for attr in ("sz", "space", "color"):
            side.attrib.pop(qn(f"w:{attr}"), None)
        side.set(qn("w:val"), "nil")


def sign_style(cells, *, data: bool = False) -> None:
    """签字 style on each cell; ``data`` rows (printed values, nobody writes above them) get a
    small gap instead of the signature style's room for handwriting."""
    for cell in cells:
        p = cell.paragraphs[0]
        p.style = p.part.document.styles["签字"]
        if data:
            p.paragraph_format.space_before = tk.Pt(4)


def merge_down(table, col: int, first: int, last: int) -> None:
    """Merge the cells of column ``col`` from row ``first`` to ``last`` (vertical merge); the
    text of the first cell stays, the others must be empty."""
    if last > first:
        table.cell(first, col).merge(table.cell(last, col))


def new_form(title: str, number_label: str = "编号"):
    doc = tk.numbered_document(number_label)
    tk.add_title(doc, title)
    tk.add_meta_line(doc, f"{number_label}：{{{{ doc.number }}}}",
                     "出具日期：{{ doc.issued_at|cn_date }}", "版本：第 {{ doc.version }} 版")
    return doc


CONSULTANT = '{{ consultant.name if consultant else "—" }}'
SLOT = ("{{ slot_start|cn_datetime }} 至 "
        '{{ slot_end.strftime("%H:%M") if slot_end.date() == slot_start.date() '
        "else slot_end|cn_datetime }}")


# --------------------------------------------------------------------------- agreement


def build_agreement(path: Path) -> None:
    """试乘试驾协议书 (test-drive agreement), domain.md §1.2; issued by ``sign_agreement``.

    甲方 is the dealer, 乙方 the customer throughout. The driver block is printed only when the
    customer drives (试驾 / 试乘试驾); the clauses cover the eleven subjects of §1.2 (the staff
    member's instructions, part of subject 5 there, get a clause of their own)."""
    doc = new_form("试乘试驾协议书")

    row = tk.add_line_row

    tk.add_heading(doc, "一、协议双方")
    t = tk.add_table(doc, KV)
    row(t, [C("甲方", "label"), C("{{ dealer.name }}"),
            C("经销商代码", "label"), C("{{ dealer.code }}")])
    row(t, [C("地址", "label"), C("{{ dealer.address }}"),
            C("电话", "label"), C("{{ dealer.phone }}")])
    row(t, [C("乙方（客户）", "label"), C("{{ customer_name }}"),
            C("手机号", "label"), C("{{ customer_mobile }}")])
    tk.keep_together(t)

    tk.add_heading(doc, "二、试乘试驾安排")
    t = tk.add_table(doc, KV)
    row(t, [C("体验方式", "label"),
            C("\u3000\u3000".join(f"{box_eq('experience_type', e)} {e}"
                                  for e in EXPERIENCE_TYPES), span=3)])
    row(t, [C("试驾车型", "label"), C("{{ car_model }}", span=3)])
    row(t, [C("号牌", "label"), C(or_dash("car_plate")),
            C("车辆识别代号", "label"), C(or_dash("car_vin"))])
    row(t, [C("预约时段", "label"), C(SLOT, span=3)])
    row(t, [C("试驾路线", "label"), C("{{ route }}", span=3)])
    row(t, [C("陪同销售顾问", "label"), C(CONSULTANT),
            C("意向车型", "label"), C(or_dash("intended_model"))])
    row(t, [C("车辆保险", "label"),
            C(f'{{{{ "{BOX_ON}" if car_insured else "{BOX_OFF}" }}}} 已投保机动车交通事故责任'
              f'强制保险（交强险）及商业保险\u3000{{{{ "{BOX_OFF}" if car_insured else '
              f'"{BOX_ON}" }}}} 未投保', span=3)])
    row(t, [C("备注", "label"), C('{{ remarks if remarks else "无" }}', span=3)])
    tk.keep_together(t)

    tk.add_heading(doc, "三、驾驶人信息")
    tk.add_tag_paragraph(doc, '{%p if experience_type != "试乘" %}')
    t = tk.add_table(doc, KV)
    row(t, [C("驾驶人", "label"), C(or_dash("driver_name")),
            C("身份证号", "label"), C(or_dash("driver_id_number"))])
    row(t, [C("驾驶证号", "label"), C(or_dash("licence_number")),
            C("准驾车型", "label"), C(or_dash("licence_class"))])
    row(t, [C("初次领证日期", "label"), C("{{ licence_first_issued|cn_date }}"),
            C("有效期至", "label"), C("{{ licence_valid_until|cn_date }}")])
    tk.keep_together(t)
    tk.add_tag_paragraph(doc, "{%p else %}")
    clause(doc, "本次为试乘，乙方不驾驶车辆：车辆全程由甲方工作人员驾驶，乙方作为乘客适用本协议"
                "第 10 条。", "正文首行缩进")
    tk.add_tag_paragraph(doc, "{%p endif %}")

    tk.add_heading(doc, "四、双方约定")
    clause(doc, "为保障试乘试驾安全、明确双方责任，甲乙双方在平等自愿的基础上约定如下：",
           "正文首行缩进")
    clause(doc, "1.\t**体验内容。**乙方自愿参加甲方安排的试乘试驾，体验方式、车辆、时段和路线以"
                "本协议第二部分为准。试驾车归甲方所有，仅供本次体验使用；乙方不得将车辆交给第三部分"
                "所列驾驶人以外的任何人驾驶，也不得用于载货、营运、练车、竞速或其他与试乘试驾无关的"
                "用途。")
    clause(doc, "2.\t**驾驶人条件。**驾驶人应年满 {{ policy.test_drive_min_age }} 周岁，持有有效的"
                "机动车驾驶证，准驾车型与试驾车相符，驾龄满 {{ policy.test_drive_min_licence_years }}"
                " 年并有实际驾驶经验；驾驶证处于实习期、被暂扣或记满 12 分的，"
                "不得试驾。驾驶人应在出发前出示驾驶证原件供甲方核验，驾驶证复印件或照片作为本协议"
                "附件。**乙方保证所填信息真实，因信息不实产生的后果由乙方承担。**")
    clause(doc, "3.\t**身体状况。**驾驶人保证未饮酒，未服用毒品、管制药品或其他影响安全驾驶的药物，"
                "身体健康、精神状态良好、没有过度疲劳。甲方工作人员认为驾驶人不适宜驾驶的，有权"
                "拒绝试驾或者随时终止试驾。")
    clause(doc, "4.\t**路线和时间。**试驾只能在第二部分所列的路线上、在预约时段内进行。未经陪同人员"
                "同意，不得偏离路线、延长时间或中途停车办理私事，不得驶入高速公路、非铺装道路等"
                "未指定的道路；因路况、天气等原因需要调整的，以陪同人员的安排为准。")
    clause(doc, "5.\t**驾驶行为和车速。**驾驶人应遵守《中华人民共和国道路交通安全法》等规定，全车"
                "人员系好安全带，按交通信号、标志标线行驶。**车速在市区道路不超过 60 公里/小时，在"
                "其他道路不超过 80 公里/小时且不超过限速标志；**不得急加速、急减速、连续变道、蛇行、"
                "漂移、竞速，不得在驾驶时使用手机，不得关闭车辆的安全辅助功能。")
    clause(doc, "6.\t**听从陪同人员指示。**甲方陪同人员全程随车。驾驶人应听从陪同人员关于路线、车速、"
                "操作和停车的指示；陪同人员认为存在安全隐患的，有权要求驾驶人立即靠边停车、交换"
                "驾驶或者结束试驾，乙方应当服从。")
    clause(doc, "7.\t**损害责任。**试乘试驾期间，**因驾驶人违反本协议、违反交通法规或者操作不当等"
                "过错造成车辆损坏、人身伤亡或第三方财产损失的，由乙方依法承担赔偿责任，甲方保留就"
                "车辆损失向乙方追偿的权利；**因车辆本身的质量缺陷或者甲方维护保养不当造成损失的，由"
                "甲方承担；因第三方原因造成的，由第三方承担，双方相互配合处理。")
    clause(doc, "8.\t**保险。**试驾车的投保情况见第二部分，未投保交强险的车辆不得用于试乘试驾。发生"
                "事故时，双方应保护现场、及时报警并通知保险公司，乙方应配合处理并提供驾驶证等资料。"
                "**保险赔偿以外的损失，包括免赔额、车辆贬值、维修期间的停用损失，以及因饮酒驾驶、"
                "无证驾驶、故意行为等保险不予赔偿的损失，按第 7 条确定的责任承担。**")
    clause(doc, "9.\t**交通违法。**自出发至车辆交回甲方期间发生的交通违法行为，**罚款和记分由驾驶人"
                "承担**，但按照陪同人员的指示行驶所致的除外；驾驶人应在接到甲方通知之日起 7 日内"
                "配合办理处理手续。")
    clause(doc, "10.\t**仅乘坐的约定。**选择试乘，以及试乘试驾中由甲方工作人员驾驶的路段，乙方及"
                "同行人员仅作为乘客：不操作方向盘、踏板、挡位及其他驾驶功能，系好安全带，听从甲方"
                "工作人员的安排，不妨碍驾驶。乘坐期间发生事故的，按保险合同约定和有关法律规定处理。")
    clause(doc, "11.\t**个人信息。**乙方同意甲方依照《中华人民共和国个人信息保护法》，为核验驾驶"
                "资格、安排本次试乘试驾以及处理可能发生的事故、保险理赔和交通违法，收集和保存乙方"
                "及驾驶人的姓名、手机号、身份证号、驾驶证信息（含复印件或照片）和出车还车记录。"
                "甲方仅在上述范围内使用这些信息，只在必要时提供给保险公司和公安机关交通管理部门，"
                "保存至试乘试驾结束后 {{ privacy.retention.test_drive }}（法律另有规定的除外）；用于营销推广须另行取得乙方同意。"
                "乙方可以依法查阅、复制、更正或要求删除其个人信息。")
    last = [clause(doc, "12.\t**争议解决及其他。**本协议履行中发生争议的，双方本着合理、合法的原则"
                        "友好协商解决；协商不成的，可以请求消费者协会调解，或者依法向有管辖权的人民"
                        "法院起诉。本协议一式两份，双方各执一份，自双方签字之日起生效。**乙方已阅读"
                        "并理解本协议全部条款，甲方已就第 2、5、7、8、9 条作了说明。**")]
    tk.keep_with_next(*last)

    t = tk.add_table(doc, SIGN)
    no_borders(t)
    rows = [
        ([C('{% if experience_type == "试乘" %}试乘人{% else %}试驾人{% endif %}（签字）：'
            + "_" * 18),
          C("陪同销售顾问（签字）：" + "_" * 12)], False),
        ([C("驾驶证号：" + or_dash("licence_number")), C("甲方：{{ dealer.name }}")], True),
        ([C("电话：{{ customer_mobile }}"), C("电话：{{ dealer.phone }}")], True),
        ([C("日期：____年____月____日"), C("日期：____年____月____日")], False),
    ]
    for i, (cells, data) in enumerate(rows):
        sign_style(tk.add_row(t, cells, height_cm=None, valign="top"), data=data)
        if i == 2:
            # a driver who is not the customer signs above; the customer signs here as well
            tk.add_tag_row(t, "{%tr if driver_name and driver_name != customer_name %}")
            sign_style(tk.add_row(t, [C("乙方（客户）签字：" + "_" * 16), C("")],
                                  height_cm=None, valign="top"))
            tk.add_tag_row(t, "{%tr endif %}")
    tk.keep_together(t)
    tk.save(doc, path)


# --------------------------------------------------------------------------- evaluation


RATINGS = [2.2, 6.4, 2.63, 2.64, 2.63]  # 类别 | 评价项目 | 不满意 | 基本满意 | 很满意


def build_evaluation(path: Path) -> None:
    """试乘试驾满意度评估表 (satisfaction evaluation), domain.md §1.3; issued by ``evaluate``."""
    doc = new_form("试乘试驾满意度评估表")

    t = tk.add_table(doc, KV)
    tk.add_row(t, [C("客户姓名", "label"), C("{{ customer_name }}"),
                   C("联系电话", "label"), C("{{ customer_mobile }}")])
    tk.add_row(t, [C("试驾车型", "label"), C("{{ car_model }}", span=3)])
    tk.add_row(t, [C("试驾日期", "label"), C("{{ slot_start|cn_date }}"),
                   C("体验方式", "label"), C("{{ experience_type }}")])
    tk.add_row(t, [C("陪同销售顾问", "label"), C(CONSULTANT),
                   C("试驾车号牌", "label"), C(or_dash("car_plate"))])
    tk.add_row(t, [C("行驶里程", "label"),
                   C("{% if totals.km_driven is not none %}{{ totals.km_driven }} 公里"
                     "{% else %}—{% endif %}"),
                   C("试驾时长", "label"),
                   C("{% if totals.minutes_on_road is not none %}{{ totals.minutes_on_road }} "
                     "分钟{% else %}—{% endif %}")])
    tk.keep_together(t)

    p = tk.add_paragraph(doc, "感谢您参加本店的试乘试驾。以下是您对本次体验的评价，所选等级以“■”"
                              "标示，请核对无误后签字。", "正文首行缩进")
    p.paragraph_format.space_before = tk.Pt(6)

    tk.add_heading(doc, "一、试乘试驾感受（三个印象）")
    t = tk.add_table(doc, [tk.text_width_cm(doc)])
    tk.add_row(t, [C('{{ impressions if impressions else "—" }}')], height_cm=1.7,
               valign="top")

    tk.add_heading(doc, "二、满意度评价")
    t = tk.add_table(doc, RATINGS)
    tk.add_row(t, [C("类别", "header"), C("评价项目", "header")]
               + [C(level, "header") for level in RATING_LEVELS], header=True)
    for group, items in RATING_GROUPS:
        first = len(t.rows)
        for i, (field, label) in enumerate(items):
            tk.add_row(t, [C(group if i == 0 else "", "label"), C(label)]
                       + [C(box_eq(field, level), "center") for level in RATING_LEVELS],
                       height_cm=0.6)
        merge_down(t, 0, first, len(t.rows) - 1)
    tk.add_row(t, [C("满意度得分", "label", span=2),
                   C("{% if totals.rating_score is not none %}{{ totals.rating_score }} / 3"
                     "{% else %}—{% endif %}", "center", bold=True, span=3)])
    tk.keep_together(t)

    tk.add_heading(doc, "三、本次试驾是否有助于您的购车决定")
    t = tk.add_table(doc, [tk.text_width_cm(doc)])
    tk.add_row(t, [C(f'{{{{ "{BOX_ON}" if helped_decision else "{BOX_OFF}" }}}} 是\u3000\u3000'
                     f'{{{{ "{BOX_ON}" if helped_decision is sameas false else "{BOX_OFF}" }}}}'
                     " 否")])

    tk.add_heading(doc, "四、意见与建议")
    t = tk.add_table(doc, [tk.text_width_cm(doc)])
    tk.add_row(t, [C('{{ comments if comments else "无" }}')], height_cm=1.7, valign="top")

    p = tk.add_paragraph(doc, "注：本表由本店留存，仅用于改进试乘试驾服务，不作他用。服务监督电话："
                              "{{ dealer.phone }}。", "说明")
    p.paragraph_format.space_before = tk.Pt(6)

    t = tk.add_table(doc, [10.3, tk.text_width_cm(doc) - 10.3])
    no_borders(t)
    sign_style(tk.add_row(t, [C("客户签字：" + "_" * 24), C("日期：____年____月____日")],
                          height_cm=None))
    tk.save(doc, path)


TEMPLATES = {"test_drive_agreement.docx": build_agreement,
             "test_drive_evaluation.docx": build_evaluation}


def main(argv: Sequence[str] | None = None) -> int:
    return tk.build_main(TEMPLATES, __doc__, list(argv or []) or None)


if __name__ == "__main__":
    raise SystemExit(main())
