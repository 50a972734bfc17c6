"""Build the first version of the dealerdocs Word templates with tools/templatekit.py.

    python tools/build_templates.py            # writes templates/docx/quote.docx
    python tools/build_templates.py --out DIR  # writes into DIR instead

This script is only the scaffold for each template's *first* version. Once a template is in
templates/docx/, the .docx file is the source of truth: dealership staff edit it in Word, WPS
or LibreOffice (rules in templates/README.md). Re-running this script overwrites their edits,
so do it only for a template nobody has edited yet, or on purpose.

Every ``{{ … }}`` below uses only names from the template context that the engine provides
(dealer, doc, case, the quote's data fields, totals) and the filters money, rmb_upper, cn_date
and cn_datetime; rendering uses StrictUndefined, so a misspelt name fails loudly.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import templatekit as tk  # noqa: E402
from templatekit import C  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# Column grids (cm). Text width is 16.5 cm; every money column is 3.05 cm wide and flush with
# the right margin, so amounts line up down the whole page.
KV = [2.6, 5.65, 2.6, 5.65]            # label | value | label | value
ITEM_AMOUNT = [13.45, 3.05]            # 项目 | 金额
NO_ITEM_AMOUNT = [1.4, 12.05, 3.05]    # 序号 | 项目 | 金额
INSURANCE = [1.4, 1.4, 10.65, 3.05]    # 序号 | 险种 (2 cols) | 保费; 保险公司 label spans 2
ACCESSORIES = [1.4, 7.4, 1.6, 3.05, 3.05]  # 序号 | 项目 | 数量 | 单价 | 金额

NONE = '"—"'  # what an absent optional value prints as


def money_or_dash(expr: str) -> str:
    return f"{{{{ {expr}|money if {expr} is not none else {NONE} }}}}"


def build_quote(path: Path) -> None:
    """商谈报价单 (sales quotation), domain.md §1.4."""
    doc = tk.new_document(title="{{ doc.title }} {{ doc.number }}")
    doc.core_properties.identifier = "{{ doc.number }}"
    tk.set_header(doc, "{{ dealer.name }}", "编号：{{ doc.number }}")
    tk.set_footer(doc, "编号：{{ doc.number }}    ")

    tk.add_title(doc, "商谈报价单")
    tk.add_meta_line(doc, "报价单编号：{{ doc.number }}",
                     "报价日期：{{ doc.issued_at|cn_date }}",
                     "版本：第 {{ doc.version }} 版")

    # 一、客户及车辆信息
    tk.add_heading(doc, "一、客户及车辆信息")
    t = tk.add_table(doc, KV)
    # the quote workflow does not require these two before issuing: blank, not "None"
    tk.add_row(t, [C("客户姓名", "label"), C('{{ customer_name if customer_name else "" }}'),
                   C("联系电话", "label"),
                   C('{{ customer_mobile if customer_mobile else "" }}')])
    tk.add_row(t, [C("销售顾问", "label"), C("{{ consultant.name }}"),
                   C("品牌", "label"), C("{{ brand }}")])
    tk.add_row(t, [C("车系", "label"), C("{{ series }}"),
                   C("颜色", "label"), C("{{ colour }}")])
    tk.add_row(t, [C("车型", "label"), C("{{ model }}", span=3)])

    # 二、车辆价格
    tk.add_heading(doc, "二、车辆价格")
    t = tk.add_table(doc, ITEM_AMOUNT)
    tk.add_row(t, [C("项目", "header"), C("金额（元）", "header")], header=True)
    tk.add_row(t, [C("厂家指导价"), C("{{ list_price|money }}", "amount")])
    tk.add_row(t, [C("店面优惠"), C("{{ discount|money }}", "amount")])
    tk.add_row(t, [C("车辆成交价（厂家指导价 − 店面优惠）", bold=True),
                   C("{{ totals.vehicle_price|money }}", "amount", bold=True)])
    tk.add_row(t, [C('赠送装潢 / 其他赠送：{{ gifts if gifts else "无" }}', span=2)])

    # 三、精品附件
    tk.add_heading(doc, "三、精品附件")
    t = tk.add_table(doc, ACCESSORIES)
    tk.add_row(t, [C("序号", "header"), C("项目", "header"), C("数量", "header"),
                   C("单价（元）", "header"), C("金额（元）", "header")], header=True)
    tk.add_tag_row(t, "{%tr for a in accessories %}")
    tk.add_row(t, [C("{{ loop.index }}", "center"), C("{{ a.name }}"),
                   C("{{ a.quantity }}", "center"), C("{{ a.unit_price|money }}", "amount"),
                   C("{{ a.amount|money }}", "amount")])
    tk.add_tag_row(t, "{%tr endfor %}")
    tk.add_tag_row(t, "{%tr if not accessories %}")
    tk.add_row(t, [C("无", "center", span=5)])
    tk.add_tag_row(t, "{%tr endif %}")
    tk.add_row(t, [C("小计", "label", span=4),
                   C("{{ totals.accessories_total|money }}", "amount", bold=True)])

    # 四、保险
    tk.add_heading(doc, "四、保险")
    t = tk.add_table(doc, INSURANCE)
    tk.add_row(t, [C("保险公司", "label", span=2),
                   C('{{ insurer if insurer else "—" }}', span=2)])
    tk.add_row(t, [C("序号", "header"), C("险种", "header", span=2), C("保费（元）", "header")])
    tk.add_tag_row(t, "{%tr for i in insurance %}")
    tk.add_row(t, [C("{{ loop.index }}", "center"), C("{{ i.name }}", span=2),
                   C("{{ i.premium|money }}", "amount")])
    tk.add_tag_row(t, "{%tr endfor %}")
    tk.add_tag_row(t, "{%tr if not insurance %}")
    tk.add_row(t, [C("无", "center", span=4)])
    tk.add_tag_row(t, "{%tr endif %}")
    tk.add_row(t, [C("小计", "label", span=3),
                   C("{{ totals.insurance_total|money }}", "amount", bold=True)])

    # 五、税费
    tk.add_heading(doc, "五、税费")
    t = tk.add_table(doc, NO_ITEM_AMOUNT)
    tk.add_row(t, [C("序号", "header"), C("项目", "header"), C("金额（元）", "header")],
               header=True)
    tk.add_row(t, [C("1", "center"), C("车辆购置税"), C("{{ purchase_tax|money }}", "amount")])
    tk.add_row(t, [C("2", "center"), C("上牌服务费"),
                   C("{{ registration_fee|money }}", "amount")])
    tk.add_tag_row(t, "{%tr for f in other_fees %}")
    tk.add_row(t, [C("{{ loop.index + 2 }}", "center"), C("{{ f.name }}"),
                   C("{{ f.amount|money }}", "amount")])
    tk.add_tag_row(t, "{%tr endfor %}")
    # totals.fees_total excludes the purchase tax, the table shows both
    tk.add_row(t, [C("小计", "label", span=2),
                   C("{{ totals.taxes_and_fees_total|money }}", "amount",
                     bold=True)])

    # 六、付款方式
    tk.add_heading(doc, "六、付款方式")
    t = tk.add_table(doc, KV)
    tk.add_row(t, [C("付款方式", "label"), C("{{ payment_method }}", span=3)])
    tk.add_tag_paragraph(doc, '{%p if payment_method == "分期" %}')
    t = tk.add_table(doc, KV)
    tk.add_row(t, [C("贷款机构", "label"), C('{{ lender if lender else "—" }}', span=3)])
    tk.add_row(t, [C("首付款", "label"), C(money_or_dash("down_payment"), "amount"),
                   C("贷款金额", "label"), C(money_or_dash("totals.loan_amount"), "amount")])
    tk.add_row(t, [C("期限（月）", "label"),
                   C(f"{{{{ loan_term_months if loan_term_months is not none else {NONE} }}}}",
                     "amount"),
                   C("月供", "label"), C(money_or_dash("monthly_payment"), "amount")])
    tk.add_tag_paragraph(doc, "{%p endif %}")

    # 七、费用合计
    tk.add_heading(doc, "七、费用合计")
    t = tk.add_table(doc, ITEM_AMOUNT)
    tk.add_row(t, [C("车辆成交价"), C("{{ totals.vehicle_price|money }}", "amount")])
    tk.add_row(t, [C("精品附件"), C("{{ totals.accessories_total|money }}", "amount")])
    tk.add_row(t, [C("保险费"), C("{{ totals.insurance_total|money }}", "amount")])
    tk.add_row(t, [C("车辆购置税"), C("{{ totals.purchase_tax|money }}", "amount")])
    tk.add_row(t, [C("上牌服务费及其他费用"), C("{{ totals.fees_total|money }}", "amount")])
    tk.add_row(t, [C("购车应付款总额", bold=True, shade=True),
                   C("{{ totals.grand_total|money }}", "amount", bold=True, shade=True)])
    tk.add_row(t, [C("人民币（大写）：{{ totals.grand_total|rmb_upper }}", bold=True,
                     shade=True, span=2)])
    tk.add_row(t, [C("已付定金"), C("{{ deposit|money }}", "amount")])
    tk.add_row(t, [C("尚需支付", bold=True, shade=True),
                   C("{{ totals.balance_due|money }}", "amount", bold=True, shade=True)])

    # 八、其他事项
    tk.add_heading(doc, "八、其他事项")
    t = tk.add_table(doc, KV)
    tk.add_row(t, [C("报价有效期至", "label"), C("{{ valid_until|cn_date }}"),
                   C("预计交车日期", "label"),
                   C('{{ delivery_estimate|cn_date if delivery_estimate is not none '
                     'else "待定" }}')])
    tk.add_row(t, [C("备注", "label"), C('{{ remarks if remarks else "无" }}', span=3)],
               height_cm=1.6)

    # 说明
    tk.add_paragraph(doc, "说明：", "说明").paragraph_format.space_before = tk.Pt(6)
    tk.add_paragraph(doc, "1.\t本报价依据当前市场行情制定，价格随市场行情变化；本报价有效期至"
                          "{{ valid_until|cn_date }}，逾期请重新询价。", "说明")
    tk.add_paragraph(doc, "2.\t本报价单一式两份，客户与经销商各执一份。", "说明")
    tk.add_paragraph(doc, "3.\t购车款项请仅汇入本公司对公账户（户名：{{ dealer.name }}；"
                          "开户行：{{ dealer.bank }}；账号：{{ dealer.account }}），"
                          "请勿向任何个人账户付款。", "说明")
    tk.add_paragraph(doc, "4.\t经销商地址：{{ dealer.address }}；联系电话：{{ dealer.phone }}。",
                     "说明")

    for table in doc.tables:
        tk.keep_together(table)
    tk.add_signature_block(doc, ["客户签字", "销售顾问签字"])
    tk.save(doc, path)


TEMPLATES = {"quote.docx": build_quote}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "templates" / "docx",
                        help="output directory (default: templates/docx)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, build in TEMPLATES.items():
        target = args.out / name
        build(target)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
