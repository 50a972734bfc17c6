"""Build the first version of the dealerdocs Word templates with tools/templatekit.py.

    python tools/build_templates.py --out DIR  # writes quote.docx and contract.docx into DIR

This script is only the scaffold for each template's *first* version. The committed
templates/docx/*.docx are the source of truth: they are edited in Word, WPS or LibreOffice
(rules in templates/README.md), and a build never writes there (``--out`` is required and may
not be templates/docx). To start a template over, build into another folder and copy the file
over by hand, on purpose.

Every ``{{ … }}`` below uses only names from the template context that the engine provides
(dealer, doc, case, links, the workflow's data fields, totals) and the filters money,
rmb_upper, cn_date and cn_datetime; rendering uses StrictUndefined, so a misspelt name fails
loudly.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import templatekit as tk  # noqa: E402
from templatekit import C  # noqa: E402

# Column grids (cm). Text width is 16.5 cm; every money column is 3.05 cm wide and flush with
# the right margin, so amounts line up down the whole page.
KV = tk.KV                             # label | value | label | value
ITEM_AMOUNT = [13.45, 3.05]            # 项目 | 金额
NO_ITEM_AMOUNT = [1.4, 12.05, 3.05]    # 序号 | 项目 | 金额
INSURANCE = [1.4, 1.4, 10.65, 3.05]    # 序号 | 险种 (2 cols) | 保费; 保险公司 label spans 2
ACCESSORIES = [1.4, 7.4, 1.6, 3.05, 3.05]  # 序号 | 项目 | 数量 | 单价 | 金额

NONE = tk.DASH  # what an absent optional value prints as


def money_or_dash(expr: str) -> str:
    return f"{{{{ {expr}|money if {expr} is not none else {NONE} }}}}"


def build_quote(path: Path) -> None:
    """商谈报价单 (sales quotation), domain.md §1.4."""
    doc = tk.numbered_document()

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
    tk.add_row(t, [C("1", "center"), C("车辆购置税"), C("{{ totals.purchase_tax|money }}", "amount")])
    tk.add_row(t, [C("2", "center"), C("上牌服务费"),
                   C("{{ registration_fee|money }}", "amount")])
    tk.add_tag_row(t, "{%tr for f in other_fees %}")
    tk.add_row(t, [C("{{ loop.index + 2 }}", "center"), C("{{ f.name }}"),
                   C("{{ f.amount|money }}", "amount")])
    tk.add_tag_row(t, "{%tr endfor %}")
    # totals.fees_total excludes the purchase tax, the table shows both
    subtotal = tk.add_row(t, [C("小计", "label", span=2),
                              C("{{ totals.taxes_and_fees_total|money }}", "amount",
                                bold=True)])
    # how the purchase tax was computed (issue 19: the rule's figure, or the override's reason),
    # a row of the table kept with the subtotal; the table itself may break before them (kept
    # whole, it pushes the notes and signatures of a full quote onto a third page)
    tk.keep_with_next(*(c.paragraphs[0] for c in subtotal))
    taxes = t._tbl  # noqa: SLF001
    tk.add_row(t, [C("车辆购置税：{{ totals.purchase_tax|money }}（{{ totals.purchase_tax_basis }}）"
                     "；以税务机关核定为准。", span=3)])

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
        if table._tbl is not taxes:  # noqa: SLF001
            tk.keep_together(table)
    tk.add_signature_block(doc, ["客户签字", "销售顾问签字"])
    tk.save(doc, path)


# 合同 grids: labels 3.3 cm wide so that 统一社会信用代码 (8 characters) fits on one line.
PARTY = [3.3, 4.95, 3.3, 4.95]         # label | value | label | value
SIGN = [8.25, 8.25]                    # 甲方 | 乙方 signature areas
CN_NUM = "一二三四五六七八九十"


def article_title(n: int, title: str) -> str:
    """第一条 … 第十九条 plus the clause's subject, separated by an ideographic space."""
    tens, ones = divmod(n, 10)
    num = (("" if tens == 1 else CN_NUM[tens - 1]) + "十" if tens else "") + \
        (CN_NUM[ones - 1] if ones else "")
    return f"第{num}条\u3000{title}"


def clause(doc, text: str, style: str = "条款"):
    """One clause paragraph; ``**…**`` marks bold runs (the terms a consumer must be
    pointed to). Tags are never split: the markers sit outside ``{{ … }}``/``{% … %}``."""
    p = doc.add_paragraph(style=doc.styles[style])
    for i, part in enumerate(text.split("**")):
        if part:
            p.add_run(part).bold = True if i % 2 else None
    return p


def date_or_blank(expr: str) -> str:
    return f'{{{{ {expr}|cn_date if {expr} is not none else "____年____月____日" }}}}'


def build_contract(path: Path) -> None:
    """汽车买卖合同 (vehicle purchase contract), domain.md §1.5 and §7.4.

    甲方（出卖人）is the dealer, 乙方（买受人）the customer throughout. The engine puts empty
    signature fields at the texts 甲方（盖章） and 乙方（签字或盖章） on the last page, so each
    occurs exactly once, in the signature table, with a blank area after it; the final clause
    is kept on the same page as that table.
    """
    doc = tk.numbered_document("合同编号")
    row = tk.add_line_row   # a little denser than the quote's 0.7 cm rows

    tk.add_title(doc, "汽车买卖合同")
    tk.add_meta_line(doc, "合同编号：{{ doc.number }}", "",
                     "{% if links.quote is defined and links.quote.number %}"
                     "报价单编号：{{ links.quote.number }}{% endif %}")

    # --- parties ---------------------------------------------------------------------------
    t = tk.add_table(doc, PARTY)
    row(t, [C("甲方（出卖人）", "header", span=4)])
    row(t, [C("名称", "label"), C("{{ dealer.name }}", span=3)])
    row(t, [C("统一社会信用代码", "label"), C("{{ dealer.uscc }}"),
                   C("法定代表人", "label"), C("{{ dealer.legal_representative }}")])
    row(t, [C("住所", "label"), C("{{ dealer.address }}", span=3)])
    row(t, [C("联系电话", "label"), C("{{ dealer.phone }}"),
                   C("销售顾问", "label"), C("{{ consultant.name }}")])
    row(t, [C("开户行及账号", "label"),
                   C("{{ dealer.bank }}\u3000{{ dealer.account }}", span=3)])
    tk.keep_together(t)
    tk.add_paragraph(doc, "").paragraph_format.line_spacing = tk.Pt(8)

    t = tk.add_table(doc, PARTY)
    row(t, [C("乙方（买受人）", "header", span=4)])
    tk.add_tag_row(t, '{%tr if buyer_type == "company" %}')
    row(t, [C("名称", "label"), C("{{ customer_name }}", span=3)])
    row(t, [C("统一社会信用代码", "label"), C("{{ buyer_id_number }}"),
                   C("法定代表人", "label"),
                   C('{{ buyer_legal_representative if buyer_legal_representative else "—" }}')])
    row(t, [C("住所", "label"), C("{{ buyer_address }}", span=3)])
    tk.add_tag_row(t, "{%tr else %}")
    row(t, [C("姓名", "label"), C("{{ customer_name }}"),
                   C("身份证号码", "label"), C("{{ buyer_id_number }}")])
    row(t, [C("住址", "label"), C("{{ buyer_address }}", span=3)])
    tk.add_tag_row(t, "{%tr endif %}")
    row(t, [C("联系电话", "label"), C("{{ customer_mobile }}", span=3)])
    tk.add_tag_row(t, "{%tr if agent_name %}")
    row(t, [C("委托代理人", "label"), C("{{ agent_name }}"),
                   C("身份证号码", "label"),
                   C('{{ agent_id_number if agent_id_number else "—" }}')])
    row(t, [C("代理人电话", "label"),
                   C('{{ agent_mobile if agent_mobile else "—" }}', span=3)])
    tk.add_tag_row(t, "{%tr endif %}")
    tk.keep_together(t)

    p = clause(doc, "根据《中华人民共和国民法典》《中华人民共和国消费者权益保护法》《汽车销售管理办法》"
                    "等法律法规，甲乙双方本着平等、自愿、公平、诚信的原则，经充分协商，就乙方向甲方"
                    "购买汽车一事达成一致，订立本合同，双方共同遵守。", "正文首行缩进")
    p.paragraph_format.space_before = tk.Pt(8)

    n = iter(range(1, 40))

    # --- 标的物 ------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "车辆基本信息"))
    t = tk.add_table(doc, PARTY)
    row(t, [C("品牌", "label"), C("{{ brand }}"), C("车系", "label"), C("{{ series }}")])
    row(t, [C("车型（版本）", "label"), C("{{ model }}", span=3)])
    row(t, [C("车身颜色", "label"), C("{{ colour }}"), C("内饰颜色", "label"),
                   C('{{ interior_colour if interior_colour else "—" }}')])
    row(t, [C("产地", "label"), C("{{ vehicle_origin }}"), C("数量", "label"), C("1 辆")])
    # 车源 (issue 19): a contract without a car yet (无车订单) names none; the VIN and engine
    # number are written at 配车 (allocate), so the buyer reads why they are not here
    row(t, [C("车源", "label"),
            C('{{ car_source if car_source else "库存车" }}'
              '{% if car_source == "无车订单" %}（签订时尚无现车，由甲方配车）'
              '{% elif car_source == "调车" %}（甲方自其他经销商调入）{% endif %}', span=3)])
    tk.add_tag_row(t, "{%tr if vin %}")
    row(t, [C("车辆识别代号", "label"), C("{{ vin }}"),
                   C("发动机（电机）号", "label"),
                   C('{{ engine_number if engine_number else "配车时填写" }}')])
    tk.add_tag_row(t, "{%tr else %}")
    row(t, [C("车辆识别代号", "label"),
            C('{{ "无车订单：" if car_source == "无车订单" else "" }}车辆识别代号、发动机（电机）号'
              '于配车时填写', span=3)])
    tk.add_tag_row(t, "{%tr endif %}")
    row(t, [C("合格证编号", "label"),
                   C('{{ certificate_number if certificate_number else '
                     '"以随车交付的合格证明文件为准" }}', span=3)])
    tk.keep_together(t)
    clause(doc, "1.\t车辆的具体配置以生产厂家公布的该车型配置表为准；配置表经双方签字确认后作为本合同"
                "附件，是本合同的组成部分。")
    clause(doc, "2.\t上述车辆为未在我国办理过注册登记的新车；车辆识别代号、发动机（电机）号以实车及"
                "随车文件记载为准，三者应当一致。")

    # --- 价款 --------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "车辆价款"))
    t = tk.add_table(doc, ITEM_AMOUNT)
    row(t, [C("项目", "header"), C("金额（元）", "header")], header=True)
    row(t, [C("车辆价格"), C("{{ vehicle_price|money }}", "amount")])
    row(t, [C("减：优惠金额"), C("{{ discount|money }}", "amount")])
    row(t, [C("车辆成交价（车辆价格 − 优惠金额）", bold=True),
                   C("{{ totals.net_vehicle_price|money }}", "amount", bold=True)])
    row(t, [C('加装精品{{ "（明细见下表）" if accessories else "（无）" }}'),
                   C("{{ totals.accessories_total|money }}", "amount")])
    row(t, [C("上牌服务费"), C("{{ registration_fee|money }}", "amount")])
    tk.add_tag_row(t, "{%tr for f in other_fees %}")
    row(t, [C("{{ f.name }}"), C("{{ f.amount|money }}", "amount")])
    tk.add_tag_row(t, "{%tr endfor %}")
    row(t, [C("合同总价款", bold=True, shade=True),
                   C("{{ totals.grand_total|money }}", "amount", bold=True, shade=True)])
    row(t, [C("人民币（大写）：{{ totals.grand_total|rmb_upper }}", bold=True,
                     shade=True, span=2)])
    tk.keep_together(t)
    tk.add_tag_paragraph(doc, "{%p if accessories %}")
    p = tk.add_paragraph(doc, "加装精品明细：", "Normal")
    p.paragraph_format.keep_with_next = True
    p.paragraph_format.space_before = tk.Pt(4)
    t = tk.add_table(doc, ACCESSORIES)
    row(t, [C("序号", "header"), C("项目", "header"), C("数量", "header"),
                   C("单价（元）", "header"), C("金额（元）", "header")], header=True)
    tk.add_tag_row(t, "{%tr for a in accessories %}")
    row(t, [C("{{ loop.index }}", "center"), C("{{ a.name }}"),
                   C("{{ a.quantity }}", "center"), C("{{ a.unit_price|money }}", "amount"),
                   C("{{ a.amount|money }}", "amount")])
    tk.add_tag_row(t, "{%tr endfor %}")
    row(t, [C("合计", "label", span=4),
                   C("{{ totals.accessories_total|money }}", "amount", bold=True)])
    tk.keep_together(t)
    tk.add_tag_paragraph(doc, "{%p endif %}")
    clause(doc, "1.\t合同总价款由车辆成交价、加装精品费用及上表所列服务费用组成，均已含增值税。甲方"
                "应按国家规定向乙方开具机动车销售统一发票及其他合法票据。")
    clause(doc, "2.\t除上表已列明的项目外，合同总价款**不包含**车辆购置税、机动车保险费、车船税、"
                "车辆登记（号牌、行驶证）规费，以及贷款产生的利息和贷款机构收取的费用。上述税费由"
                "乙方依法承担；委托甲方代办的，按实际发生额凭合法票据另行结算。")
    clause(doc, "3.\t车辆购置税不含在合同总价款内，由乙方依法缴纳{% if agency_services and "
                "\"购置税缴纳\" in agency_services %}（乙方已委托甲方代办）{% endif %}：按车辆成交价计为 "
                "{{ totals.purchase_tax|money }}（{{ totals.purchase_tax_basis }}），以税务机关核定为准。")
    clause(doc, "4.\t除本合同列明的款项外，甲方不得以任何名义向乙方收取其他费用，双方另有书面约定"
                "的除外。本合同签订后，合同总价款不因厂家指导价或市场行情变化而调整。")

    # --- 定金 --------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "定金"))
    tk.add_tag_paragraph(doc, "{%p if deposit %}")
    clause(doc, "1.\t乙方{% if deposit_date is not none %}已于{{ deposit_date|cn_date }}"
                "{% else %}应于本合同签订当日{% endif %}向甲方支付定金人民币（大写）"
                "{{ deposit|rmb_upper }}（{{ deposit|money }}），甲方收到后应出具收款凭证。")
    clause(doc, "2.\t定金数额不得超过本合同标的额的百分之二十，超过部分不产生定金的效力（《中华人民"
                "共和国民法典》第五百八十六条）"
                "{% if totals.deposit_share is not none %}；本合同定金占车辆成交价的 "
                '{{ "%.2f"|format(totals.deposit_share * 100) }}%{% endif %}。')
    clause(doc, "3.\t本合同履行时，定金抵作价款。定金抵扣后，乙方尚应支付人民币（大写）"
                "{{ totals.balance_due|rmb_upper }}（{{ totals.balance_due|money }}）。")
    clause(doc, "4.\t**乙方不履行本合同或者履行不符合约定，致使不能实现合同目的的，无权请求返还定金；"
                "甲方不履行本合同或者履行不符合约定，致使不能实现合同目的的，应当双倍返还定金"
                "（《中华人民共和国民法典》第五百八十七条）。**")
    clause(doc, "5.\t乙方支付的订金、意向金、预付款等其他款项不具有定金性质，不适用定金罚则。")
    tk.add_tag_paragraph(doc, "{%p else %}")
    clause(doc, "本合同不约定定金。", "正文首行缩进")
    tk.add_tag_paragraph(doc, "{%p endif %}")

    # --- 付款 --------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "付款方式及期限"))
    tk.add_tag_paragraph(doc, '{%p if payment_method == "分期" %}')
    clause(doc, "1.\t付款方式：分期付款（贷款）。乙方自主选择向贷款机构申请汽车消费贷款，贷款信息如下"
                "（以贷款机构最终审批结果及乙方与其签订的借款合同为准）：")
    t = tk.add_table(doc, PARTY)
    row(t, [C("贷款机构", "label"), C('{{ lender if lender else "—" }}', span=3)])
    row(t, [C("首付款", "label"), C(money_or_dash("down_payment"), "amount"),
                   C("贷款金额", "label"), C(money_or_dash("totals.loan_amount"), "amount")])
    row(t, [C("贷款期限（月）", "label"),
                   C(f"{{{{ loan_term_months if loan_term_months is not none else {NONE} }}}}",
                     "amount"),
                   C("月供（参考）", "label"), C(money_or_dash("monthly_payment"), "amount")])
    tk.keep_together(t)
    clause(doc, "（1）\t乙方应于{{ payment_deadline|cn_date }}前（含当日）付清首付款及合同总价款中"
                "贷款以外的其余款项（已付定金可抵作首付款）；贷款由贷款机构按借款合同直接支付至"
                "甲方账户。", "条款子项")
    clause(doc, "（2）\t因乙方原因（如资信不符合贷款机构要求、未按要求提供资料）导致贷款未获批准或者"
                "未能按期放款的，乙方应自收到甲方书面通知之日起七日内以自有资金付清余款，或与甲方"
                "协商变更付款方式；逾期未付清的，按乙方逾期付款处理。", "条款子项")
    clause(doc, "（3）\t因甲方原因导致贷款未能按期办理的，由甲方承担相应责任；非因双方原因贷款未获"
                "批准的，双方均有权解除本合同，甲方应自解除之日起七日内全额退还乙方已付款项（含"
                "定金），双方互不承担违约责任。", "条款子项")
    tk.add_tag_paragraph(doc, "{%p else %}")
    clause(doc, "1.\t付款方式：全款。乙方应于{{ payment_deadline|cn_date }}前（含当日）一次性付清"
                "合同总价款{% if deposit %}扣除定金后的余款{% endif %}，即人民币（大写）"
                "{{ totals.balance_due|rmb_upper }}（{{ totals.balance_due|money }}）。")
    tk.add_tag_paragraph(doc, "{%p endif %}")
    clause(doc, "2.\t乙方应以银行转账或刷卡方式将款项支付至甲方账户（户名：{{ dealer.name }}；开户"
                "银行：{{ dealer.bank }}；账号：{{ dealer.account }}），甲方收款后应出具加盖财务"
                "专用章的收款凭证。**甲方工作人员（包括销售顾问）无权以个人名义收取任何款项；"
                "乙方向个人账户付款或将现金交予个人的，不视为向甲方付款。**")

    # --- 交付 --------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "车辆交付"))
    clause(doc, "1.\t交车期限：甲方应于{{ delivery_deadline|cn_date }}前（含当日）向乙方交付车辆。"
                "乙方未按本合同约定付清应付款项的，交车期限相应顺延。")
    clause(doc, "2.\t交车地点：{{ delivery_place }}。交付方式：{{ delivery_method }}。"
                '{% if delivery_method == "出卖人送车" %}甲方负责将车辆送至上述地点，送车费用及'
                "送达前的风险由甲方承担。{% else %}乙方到上述地点自行提车。{% endif %}")
    clause(doc, "3.\t车辆具备交付条件后，甲方应及时以电话或短信通知乙方；乙方应自接到通知之日起"
                "三个工作日内提车。")
    clause(doc, "4.\t交车时，车辆里程表读数不得超过 {{ max_odometer_km }} 公里。")
    clause(doc, "5.\t车辆毁损、灭失的风险，交付之前由甲方承担，交付之后由乙方承担（《中华人民共和国"
                "民法典》第六百零四条）；因乙方原因未按期提车的，自约定提车期限届满之日起由乙方"
                "承担。车辆所有权自交付时转移给乙方。")

    # --- 随车文件 ----------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "随车凭证和文件"))
    clause(doc, "1.\t依照《汽车销售管理办法》第十六条，甲方交付车辆时应同时向乙方交付下列随车凭证和"
                "文件，且其记载的配置应与实车一致：")
    for i, item in enumerate([
            "机动车整车出厂合格证（国产车辆）；",
            "使用国产底盘改装的车辆，另附底盘出厂合格证；",
            "进口车辆的货物进口证明和进口机动车检验证明；",
            "车辆一致性证书，或者进口车辆的特殊认证模式检验报告；",
            "产品中文使用说明书；",
            "产品保修、保养手册；",
            "家用汽车产品的三包凭证（加盖甲方印章）。"], start=1):
        clause(doc, f"（{i}）\t{item}", "条款子项")
    clause(doc, "2.\t甲方还应交付机动车销售统一发票（乙方付清全部车款后开具）、车辆钥匙及生产厂家"
                "随车配备的工具和备品。")
    clause(doc, "3.\t因乙方办理贷款等原因，上述凭证须由贷款机构保管或者延后交付的，甲方应向乙方"
                "出具书面说明，并最迟于交车之日起十五日内交付乙方或其指定的贷款机构。")

    # --- 质量 --------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "车辆质量"))
    clause(doc, "1.\t甲方保证车辆符合国家有关机动车安全、环保、节能等强制性标准及生产厂家的出厂检验"
                "标准；"
                '{% if vehicle_origin == "进口" %}车辆为合法进口的车辆，{% else %}车辆为列入'
                "国家机动车产品公告的产品，{% endif %}能够依法办理注册登记。")
    clause(doc, "2.\t甲方已在交车前按生产厂家的规定对车辆进行售前检查（PDI）和清洁。")
    clause(doc, "3.\t**车辆在交付前发生损伤并经过修复的，甲方应在本合同签订前书面告知乙方；未告知"
                "的，乙方有权按本合同违约责任的约定拒收车辆或解除合同。**")
    clause(doc, "4.\t甲方应向乙方如实说明车辆的配置、性能、使用方法和注意事项。")

    # --- 验收 --------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "车辆验收"))
    clause(doc, "1.\t交车时，双方应共同对车辆外观、内饰、配置、里程表读数、车辆识别代号及随车凭证"
                "进行查验；乙方确认无误后签署交车确认单。")
    clause(doc, "2.\t乙方对验收时能够发现的外观、配置、数量等问题，应当在验收时提出；未提出的，视为"
                "上述事项符合约定，但车辆存在验收时难以发现的瑕疵或者质量问题的除外。")
    clause(doc, "3.\t验收时发现车辆不符合约定的，乙方有权拒收，并要求甲方按本合同违约责任的约定"
                "处理。")

    # --- 三包 --------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "三包及保修"))
    clause(doc, "1.\t车辆属于家用汽车产品的，甲方按照《家用汽车产品修理更换退货责任规定》承担修理、"
                "更换、退货（三包）责任；三包有效期和包修期以三包凭证为准，且不低于该规定的标准。"
                "生产厂家的保修条件优于上述规定的，按厂家保修条件执行。")
    clause(doc, "2.\t乙方应按保修、保养手册的要求使用和定期保养车辆，并在生产厂家授权的服务网点"
                "维修；因乙方使用不当、自行改装或者在非授权网点维修造成的损坏，不属于三包及保修"
                "范围。")

    # --- 代办服务 ------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "代办服务"))
    clause(doc, "1.\t乙方有权自主决定是否委托甲方代办车辆上牌、保险、贷款、购置税缴纳等事项，并有权"
                "自主选择保险公司和贷款机构。甲方不得以乙方购买保险、办理贷款、加装精品或者接受"
                "其他服务作为销售车辆的条件。")
    tk.add_tag_paragraph(doc, "{%p if agency_services %}")
    clause(doc, "2.\t乙方自愿委托甲方代办以下事项：{{ agency_services|join(\"、\") }}。双方另行签订"
                "代办服务委托书，约定委托权限、办理期限及费用；代办过程中实际发生的税费、保险费、"
                "规费等由乙方承担，甲方应提供合法票据。")
    clause(doc, "3.\t乙方应按甲方要求及时提供办理所需的证件和资料；因乙方资料不全或者不实导致无法"
                "办理或者迟延办理的，甲方不承担责任。")
    tk.add_tag_paragraph(doc, "{%p else %}")
    clause(doc, "2.\t乙方未委托甲方代办任何事项，相关手续由乙方自行办理；甲方应按乙方要求及时提供"
                "办理所需的随车凭证、发票及其他资料。")
    tk.add_tag_paragraph(doc, "{%p endif %}")

    # --- 违约责任 ------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "违约责任"))
    clause(doc, "1.\t**甲方逾期交车的，每逾期一日，按车辆成交价的万分之五（0.05%）向乙方支付违约金；"
                "逾期超过十五日的，乙方有权解除本合同，甲方应自收到解除通知之日起七日内退还乙方已"
                "支付的除定金以外的全部款项，并双倍返还定金。**")
    clause(doc, "2.\t**乙方逾期付款的，每逾期一日，按逾期未付金额的万分之五（0.05%）向甲方支付违约金；"
                "逾期超过十五日的，甲方有权解除本合同，乙方已付的定金不予返还，甲方应自解除之日起"
                "七日内退还乙方已支付的其他款项。**")
    clause(doc, "3.\t乙方未在接到提车通知之日起三个工作日内提车的，自第四个工作日起按每日人民币五十元"
                "向甲方支付车辆保管费；逾期超过三十日且经甲方书面催告后仍不提车的，甲方有权解除"
                "本合同，并按本条第2款处理。")
    clause(doc, "4.\t甲方交付的车辆品牌、型号、配置或颜色与本合同约定不符，车辆不是新车或者存在交车前"
                "未书面告知的修复，或者随车凭证不全致使乙方无法办理注册登记的，乙方有权拒收车辆并"
                "要求甲方在十五日内更换符合约定的车辆；甲方无法更换或者逾期未更换的，乙方有权解除"
                "本合同，甲方应退还乙方已支付的除定金以外的全部款项，并双倍返还定金。")
    clause(doc, "5.\t**本合同既约定违约金又约定定金的，一方违约时，守约方可以选择适用违约金或者定金"
                "条款，二者不得同时适用（《中华人民共和国民法典》第五百八十八条）；定金不足以弥补"
                "违约造成的损失的，守约方可以请求赔偿超过定金数额的损失。**")

    # --- 不可抗力 ------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "不可抗力及厂家原因"))
    clause(doc, "1.\t因不可抗力不能履行本合同的，根据不可抗力的影响，部分或者全部免除责任，但法律另有"
                "规定的除外；一方迟延履行后发生不可抗力的，不免除其违约责任（《中华人民共和国民法典》"
                "第五百九十条）。受影响的一方应及时通知对方，并在合理期限内提供证明。")
    clause(doc, "2.\t因生产厂家停产、调整生产或发运计划等非甲方原因致使甲方不能按期交车的，甲方应自"
                "知道该情况之日起三日内书面通知乙方。乙方可以选择与甲方协商延期交车，或者解除本"
                "合同；乙方解除合同的，甲方应自解除之日起七日内全额退还乙方已付款项（含定金），"
                "双方互不承担违约责任。")

    # --- 转让 --------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "合同权利义务的转让"))
    clause(doc, "未经对方书面同意，任何一方不得将本合同的全部或者部分权利义务转让给第三人。",
           "正文首行缩进")

    # --- 个人信息 ------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "个人信息保护"))
    clause(doc, "1.\t甲方依照《中华人民共和国个人信息保护法》，仅为订立和履行本合同及履行法定义务所"
                "必需（核验身份、开具发票、交付车辆、代办委托事项、三包及保修服务、缺陷汽车产品召回"
                "通知）处理乙方及其法定代表人、委托代理人的姓名、证件号码、联系方式、住址等个人"
                "信息。")
    clause(doc, "2.\t甲方仅在上述必需范围内向生产厂家、贷款机构、保险公司、车辆登记机关等提供相关"
                "信息；用于营销推广等其他目的的，应另行取得乙方同意，乙方可以随时撤回。")
    clause(doc, "3.\t甲方应采取必要措施保障个人信息安全，防止泄露、篡改和丢失；发生或者可能发生泄露"
                "的，应立即采取补救措施并通知乙方。乙方依法享有查阅、复制、更正、删除其个人信息"
                "等权利。")

    # --- 争议解决 ------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "争议解决"))
    clause(doc, "本合同履行中发生争议的，双方应协商解决；协商不成的，乙方可以请求消费者协会或者依法"
                "成立的其他调解组织调解。协商、调解不成的，按下列方式解决：", "正文首行缩进")
    tk.add_tag_paragraph(doc, '{%p if dispute_resolution == "仲裁" %}')
    clause(doc, "**提交{{ arbitration_commission if arbitration_commission else "
                '"________仲裁委员会" }}，按照申请仲裁时该会现行有效的仲裁规则进行仲裁。'
                "仲裁裁决是终局的，对双方均有约束力。**", "正文首行缩进")
    tk.add_tag_paragraph(doc, "{%p else %}")
    clause(doc, "**依法向甲方所在地有管辖权的人民法院提起诉讼。**", "正文首行缩进")
    tk.add_tag_paragraph(doc, "{%p endif %}")

    # --- 补充条款 ------------------------------------------------------------------------------
    tk.add_heading(doc, article_title(next(n), "补充条款"))
    clause(doc, "1.\t双方约定的补充条款：{{ supplementary_terms if supplementary_terms else \"无\" }}")
    clause(doc, "2.\t本合同未尽事宜，双方可以另行签订书面补充协议。补充条款、补充协议与本合同具有同等"
                "法律效力；与本合同正文不一致的，以补充条款、补充协议为准。")

    # --- 生效 (final clause: kept on the signature page) --------------------------------------
    final = [tk.add_heading(doc, article_title(next(n), "合同生效及其他"))]
    final.append(clause(doc, "1.\t本合同自甲乙双方签字或者盖章之日起生效。"))
    final.append(clause(doc, "2.\t本合同一式两份，甲乙双方各执一份，具有同等法律效力。"))
    final.append(clause(doc, "3.\t本合同附件：车辆配置表{% if agency_services %}、代办服务委托书"
                             '{% endif %}{% if payment_method == "分期" %}、贷款相关文件{% endif %}'
                             "、交车确认单。附件是本合同的组成部分，与本合同具有同等法律效力。"))
    final.append(clause(doc, "4.\t**甲方已提请乙方注意本合同中定金、付款、违约责任、争议解决、个人"
                             "信息处理等与乙方有重大利害关系的条款，并按乙方要求作了说明；乙方已"
                             "仔细阅读并理解本合同全部条款。**"))
    final.append(tk.add_paragraph(doc, "（以下无正文）", align="center"))
    tk.keep_with_next(*final)

    # --- signatures: anchors 甲方（盖章） / 乙方（签字或盖章）, each exactly once ----------------
    t = tk.borderless(tk.add_table(doc, SIGN))
    sign_rows = [
        [C("甲方：{{ dealer.name }}"), C("乙方：{{ customer_name }}")],
        [C("统一社会信用代码：{{ dealer.uscc }}"), C("证件号码：{{ buyer_id_number }}")],
        # the seal / signature goes into the blank area right of and under the anchor text
        [C("甲方（盖章）："), C("乙方（签字或盖章）：")],
        [C("法定代表人或委托代理人（签字）："),
         C('{% if buyer_type == "company" %}法定代表人或委托代理人（签字）：'
           "{% elif agent_name %}委托代理人（签字）：{% endif %}")],
        [C("日期：" + date_or_blank("signed_date")), C("日期：" + date_or_blank("signed_date"))],
        [C("签订地点：{{ signing_place }}", span=2)],
    ]
    for i, spec in enumerate(sign_rows):
        cells = row(t, spec, height_cm=3.0 if i == 2 else None, valign="top")
        for cell in cells:
            cell.paragraphs[0].style = doc.styles["签字"]
            if i < 2:  # printed data, no handwriting above it
                cell.paragraphs[0].paragraph_format.space_before = tk.Pt(6)
    tk.keep_together(t)
    tk.save(doc, path)


TEMPLATES = {"quote.docx": build_quote, "contract.docx": build_contract}


def main(argv: list[str] | None = None) -> int:
    return tk.build_main(TEMPLATES, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
