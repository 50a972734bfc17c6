"""Build the first version of the delivery (交车) Word templates with tools/templatekit.py.

    python tools/build_delivery_templates.py --out DIR  # writes delivery_booking.docx, delivery.docx

Same rules as tools/build_templates.py: this is only the scaffold for each template's *first*
version. The committed templates/docx/*.docx are the source of truth, edited in Word, WPS or
LibreOffice (templates/README.md); a build writes only into the folder given with ``--out``.

Every ``{{ … }}`` below uses only names of the delivery workflow's template context (dealer,
doc, case, links.contract, the fields of workflows/delivery.toml) and the filters money,
rmb_upper, cn_date and cn_datetime; rendering uses StrictUndefined, so a misspelt name fails.

The tick boxes are □ (not handed / not done) and ■ (done): both are in 宋体/SimSun and in Noto
CJK, so Word, WPS and the PDF draw them from the body font at full CJK width. ☑/☐ are in
neither; LibreOffice would take them from a fallback font (DejaVu, Symbola) with other metrics,
and that font would end up embedded in the PDF.
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

BOX_ON, BOX_OFF = "■", "□"
STATUTORY = "★"  # marks the documents 《汽车销售管理办法》第十六条 requires with the car

# Choice lists exactly as in workflows/delivery.toml. Section 一 carries, per document,
# whether Art. 16 requires it and to which vehicles it applies (printed small after the name).
HANDOVER_DOCUMENTS: list[tuple[str, bool, str]] = [
    ("机动车整车出厂合格证", True, "（国产车适用）"),
    ("底盘出厂合格证", True, "（底盘改装车适用）"),
    ("货物进口证明", True, "（进口车适用）"),
    ("进口机动车检验证明", True, "（进口车适用）"),
    ("车辆一致性证书", True, ""),
    ("中文使用说明书", True, ""),
    ("保修保养手册", True, ""),
    ("三包凭证", True, "（家用汽车）"),
    ("机动车销售统一发票", False, ""),
    ("购车合同", False, ""),
    ("保险单", False, ""),
    ("购置税完税证明", False, "（代办的）"),
    ("行驶证", False, "（已上牌的）"),
    ("贷款资料", False, "（贷款购车的）"),
]
VEHICLE_CHECKS = ["车内外清洁", "漆面完好", "玻璃完好", "轮胎及轮毂", "灯光", "后视镜", "千斤顶",
                  "随车工具", "备胎或补胎工具", "三角警示牌", "燃油或电量充足"]
ACCESSORIES_HANDED = ["两把钥匙", "反光背心", "充电枪或充电线"]
FUNCTIONS_EXPLAINED = ["座椅与方向盘调节", "中控门锁", "后视镜", "灯光", "仪表与警示灯", "雨刮",
                       "空调与除雾", "音响娱乐", "儿童锁", "发动机舱与油液", "加油口或充电口",
                       "磨合期注意事项", "驾驶辅助等特殊配置", "车联网 App 绑定"]
SERVICE_EXPLAINED = ["售后地址与营业时间", "售后服务顾问介绍", "保养计划", "保修条款"]


def box(item: str, field: str) -> str:
    """``■`` when ``item`` is among the chosen strings of the list field ``field``, else ``□``."""
    return f'{{{{ "{BOX_ON}" if "{item}" in {field} else "{BOX_OFF}" }}}}'


def add_small_run(cell, text: str) -> None:
    """Append ``text`` in 小五 to the cell's first paragraph (a note after an item name)."""
    run = cell.paragraphs[0].add_run(text)
    run.font.size = tk.Pt(9)


def add_checklist(doc, items: Sequence[str | tuple[str, bool, str]], field: str,
                  per_row: int) -> None:
    """Items laid out ``per_row`` to a row, each as ``<box> item``; blank cells fill the
    last row. A tuple item is (name, statutory, note): ★ after statutory names, note in 小五."""
    width = tk.text_width_cm(doc) / per_row
    table = tk.add_table(doc, [width] * per_row)
    specs = [i if isinstance(i, tuple) else (i, False, "") for i in items]
    for start in range(0, len(specs), per_row):
        chunk = specs[start:start + per_row]
        cells = tk.add_row(
            table,
            [C(f"{box(name, field)} {name}{STATUTORY if statutory else ''}")
             for name, statutory, _ in chunk] + [C("")] * (per_row - len(chunk)),
            height_cm=0.6)
        for cell, (_, _, note) in zip(cells, chunk):
            if note:
                add_small_run(cell, note)
    tk.keep_together(table)


def add_signature_rows(doc, labels: Sequence[str], *, width_em: int = 19) -> None:
    """One signatory per line, ``label：______`` on the left and ``日期：____年____月____日``
    on the right, without borders: three labels of different lengths side by side would leave
    the longest one too little room to sign. The underscores pad every line to about
    ``width_em`` characters so the blanks end flush (one underscore is half a character)."""
    table = tk.add_table(doc, [10.3, tk.text_width_cm(doc) - 10.3])
    borders = table._tbl.tblPr.find(qn("w:tblBorders"))  # noqa: SLF001
    for side in borders:
        for attr in ("sz", "space", "color"):
            side.attrib.pop(qn(f"w:{attr}"), None)
        side.set(qn("w:val"), "nil")
    for label in labels:
        blank = 2 * (width_em - len(label) - 1)
        cells = tk.add_row(table, [C(f"{label}：" + "_" * blank), C("日期：____年____月____日")],
                           height_cm=None)
        for cell in cells:
            cell.paragraphs[0].style = doc.styles["签字"]


def party_rows(t) -> None:
    """车主 / 电话 / 合同编号 / 销售顾问 — shared by both forms."""
    tk.add_row(t, [C("车主", "label"), C("{{ customer_name }}"),
                   C("联系电话", "label"), C("{{ customer_mobile }}")])
    tk.add_row(t, [C("合同编号", "label"), C(or_dash("links.contract.number")),
                   C("销售顾问", "label"),
                   C('{{ consultant.name if consultant else "—" }}')])


VEHICLE_NAME = '{{ [brand, series, model]|select|join(" ") or "—" }}'


def build_delivery_booking(path: Path) -> None:
    """交车预约登记表 (delivery booking), domain.md §1.6; issued by ``confirm``."""
    doc = tk.numbered_document()

    tk.add_title(doc, "交车预约登记表")
    tk.add_meta_line(doc, "编号：{{ doc.number }}", "登记日期：{{ doc.issued_at|cn_date }}",
                     "版本：第 {{ doc.version }} 版")

    tk.add_heading(doc, "一、车主及车辆信息")
    t = tk.add_table(doc, KV)
    party_rows(t)
    tk.add_row(t, [C("品牌车型", "label"), C(VEHICLE_NAME, span=3)])
    tk.add_row(t, [C("车身颜色", "label"), C("{{ colour }}"),
                   C("产地", "label"), C(or_dash("vehicle_origin"))])
    tk.add_row(t, [C("车辆识别代号", "label"), C("{{ vin }}"),
                   C("发动机号", "label"), C("{{ engine_number }}")])
    tk.keep_together(t)

    tk.add_heading(doc, "二、交车安排")
    t = tk.add_table(doc, KV)
    tk.add_row(t, [C("交车日期", "label"), C("{{ delivery_date|cn_date }}"),
                   C("交车时段", "label"), C(or_dash("time_slot"))])
    tk.add_row(t, [C("交车地点", "label"), C(or_dash("place")),
                   C("门店电话", "label"), C("{{ dealer.phone }}")])
    tk.add_row(t, [C("门店地址", "label"), C("{{ dealer.address }}", span=3)])
    tk.add_row(t, [C("售后服务顾问", "label"), C(or_dash("aftersales_contact")),
                   C("售后顾问电话", "label"), C(or_dash("aftersales_mobile"))])
    tk.add_row(t, [C("备注", "label"), C('{{ remarks if remarks else "无" }}', span=3)],
               height_cm=1.6)
    tk.keep_together(t)

    tk.add_heading(doc, "三、交车须知")
    notes = [
        "请按预约的日期和时段到店提车；如需改期，请提前联系销售顾问。",
        "提车请携带："
        '{% if buyer_type == "company" %}单位介绍信（加盖公章）及经办人身份证原件'
        '{% elif buyer_type == "individual" %}车主本人身份证原件'
        "{% else %}个人购车为车主本人身份证原件；单位购车为单位介绍信（加盖公章）及经办人身份证原件"
        "{% endif %}。委托他人提车的，另带车主签署的授权委托书及代理人身份证原件。",
        "交车前请付清购车尾款；贷款购车的，须待贷款机构放款确认后交车。",
        "由本店代办保险、上牌的，请按销售顾问的告知备齐投保和车辆登记所需资料。",
        "交车前本店将对车辆进行售前检查（PDI），检查合格后方可交车。交车时请与销售顾问、"
        "售后服务顾问一起逐项核对车辆、随车凭证和文件及随车物品，并签署交车确认单。",
        "本登记表一式两份，客户与经销商各执一份。",
    ]
    for i, text in enumerate(notes, 1):
        tk.add_paragraph(doc, f"{i}.\t{text}", "说明")

    tk.add_signature_block(doc, ["客户确认", "销售顾问"])
    tk.save(doc, path)


def build_delivery(path: Path) -> None:
    """交车确认单 (vehicle handover confirmation), domain.md §2; issued by ``deliver``."""
    doc = tk.numbered_document()

    tk.add_title(doc, "交车确认单")
    tk.add_meta_line(doc, "编号：{{ doc.number }}", "出具日期：{{ doc.issued_at|cn_date }}",
                     "版本：第 {{ doc.version }} 版")

    t = tk.add_table(doc, KV)
    party_rows(t)
    tk.add_row(t, [C("品牌车型", "label"), C(VEHICLE_NAME, span=3)])
    tk.add_row(t, [C("车身颜色", "label"), C("{{ colour }}"),
                   C("产地", "label"), C(or_dash("vehicle_origin"))])
    tk.add_row(t, [C("车辆识别代号", "label"), C("{{ vin }}"),
                   C("发动机号", "label"), C("{{ engine_number }}")])
    tk.add_row(t, [C("交车时间", "label"), C("{{ delivered_at|cn_datetime }}"),
                   C("交车里程", "label"),
                   C('{{ odometer_km if odometer_km is not none else "—" }} 公里')])
    tk.add_row(t, [C("PDI 检查", "label"),
                   C('{{ pdi_result if pdi_result else "—" }}（检查日期：{{ pdi_date|cn_date }}；'
                     '检查技师：{{ pdi_inspector if pdi_inspector else "—" }}）', span=3)])
    tk.add_row(t, [C("提车人", "label"), C(or_dash("receiver")),
                   C("售后服务顾问", "label"),
                   C('{{ aftersales_contact if aftersales_contact else "—" }}'
                     '{% if aftersales_mobile %}（{{ aftersales_mobile }}）{% endif %}')])
    tk.keep_together(t)

    p = tk.add_paragraph(doc, "销售顾问和售后服务顾问已向车主逐项讲解并交付下列凭证、文件和物品；"
                              "车主已当面检查车辆，确认车辆的品牌、型号、颜色、车辆识别代号和"
                              "发动机号与购车合同一致。已完成的项目以“■”标示，未交付或不适用的"
                              "以“□”标示。")
    p.paragraph_format.space_before = tk.Pt(6)
    tk.add_tag_paragraph(doc, '{%p if receiver == "委托代理人" %}')
    p = tk.add_paragraph(doc, "本车由车主委托的代理人提车：代理人 {{ agent_name }}，"
                              "身份证号 {{ agent_id_number }}。代理人在交车过程中的检查、确认和"
                              "签字视为车主本人的行为，对车主具有约束力；车辆驶离本店时起，"
                              "车辆毁损、灭失的风险由车主承担。", bold=False)
    p.paragraph_format.space_before = tk.Pt(3)
    tk.add_tag_paragraph(doc, "{%p endif %}")

    tk.add_heading(doc, "一、随车凭证和文件（《汽车销售管理办法》第十六条）")
    add_checklist(doc, HANDOVER_DOCUMENTS, "handover_documents", 2)
    tk.add_paragraph(doc, f"注：标“{STATUTORY}”的为《汽车销售管理办法》第十六条规定应随车交付的"
                          "凭证和文件，按车辆适用：国产车交整车出厂合格证，底盘改装车另交底盘出厂"
                          "合格证，进口车交货物进口证明和进口机动车检验证明；三包凭证适用于家用"
                          "汽车。", "说明")

    tk.add_heading(doc, "二、车辆检查")
    add_checklist(doc, VEHICLE_CHECKS, "vehicle_checks", 4)
    tk.add_heading(doc, "三、随车物品")
    add_checklist(doc, ACCESSORIES_HANDED, "accessories_handed", 4)
    tk.add_heading(doc, "四、功能讲解")
    add_checklist(doc, FUNCTIONS_EXPLAINED, "functions_explained", 4)
    tk.add_heading(doc, "五、保修与服务")
    add_checklist(doc, SERVICE_EXPLAINED, "service_explained", 4)

    tk.add_heading(doc, "六、备注")
    t = tk.add_table(doc, [tk.text_width_cm(doc)])
    tk.add_row(t, [C('{{ remarks if remarks else "无" }}')], height_cm=1.4)

    p = tk.add_paragraph(doc, "1.\t本确认单一式两份，车主与经销商各执一份；经销商一份随客户档案"
                              "保存，保存期限 1 年。", "说明")
    p.paragraph_format.space_before = tk.Pt(6)
    tk.add_paragraph(doc, "2.\t售后服务：{{ dealer.name }}，地址：{{ dealer.address }}，"
                          "电话：{{ dealer.phone }}。", "说明")

    add_signature_rows(doc, ["车主（或代理人）签字", "销售顾问签字", "售后服务顾问签字"])
    tk.save(doc, path)


TEMPLATES = {"delivery_booking.docx": build_delivery_booking, "delivery.docx": build_delivery}


def main(argv: list[str] | None = None) -> int:
    return tk.build_main(TEMPLATES, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
