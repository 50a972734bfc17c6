"""Workflow definitions: quote.toml loads, the shared machine stays clean, and every mistake in a
workflow file is a WorkflowDefinitionError naming the file and the key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import load_config
from engine.errors import PermissionDenied, StateError, WorkflowDefinitionError
from engine.workflow import load_workflow, load_workflows

from helpers import ROOT, make_dealer_dir, point_at_workflows, with_customers

QUOTE = (ROOT / "workflows" / "quote.toml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def quote():
    return load_workflow(ROOT / "workflows" / "quote.toml", load_config(ROOT / "config.toml"))


def edited(old: str, new: str, text: str = QUOTE) -> str:
    """quote.toml with exactly one occurrence of ``old`` replaced."""
    assert text.count(old) == 1, f"{old!r} must occur once in quote.toml"
    return text.replace(old, new)


def dealer_with_workflows(directory: Path, files: dict[str, str]) -> Path:
    """A dealership folder (as make_dealer_dir makes it) whose workflows folder holds ``files``."""
    config_path = make_dealer_dir(directory)
    workflows = directory / "workflows"
    workflows.mkdir()
    for name, text in with_customers(files).items():   # quote.toml joins customer.toml
        (workflows / name).write_text(text, encoding="utf-8")
    return point_at_workflows(config_path, "workflows")


def load_folder(tmp_path: Path, files: dict[str, str]):
    return load_workflows(load_config(dealer_with_workflows(tmp_path / "dealer", files)))


# --- the shipped definition ------------------------------------------------------------------

def test_quote_loads(quote):
    assert (quote.key, quote.case_prefix, quote.initial) == ("quote", "Q", "draft")
    assert quote.total == "grand_total"
    assert list(quote.computed) == [
        "vehicle_price", "net_vehicle_price", "accessories_total", "insurance_total", "fees_total",
        "purchase_tax_invoice_price", "purchase_tax_taxable_price", "purchase_tax_full",
        "purchase_tax_relief_kind", "purchase_tax_relief_cap", "purchase_tax_relief",
        "purchase_tax_computed", "purchase_tax", "purchase_tax_basis",
        "taxes_and_fees_total", "grand_total", "balance_due", "loan_amount"]
    assert list(quote.checks) == ["discount_within_list_price", "deposit_within_legal_cap",
                                  "loan_terms_consistent", "valid_until_not_past",
                                  "purchase_tax_override_reasoned"]
    assert quote.functions_used == ("functions.money", "functions.sum_of", "functions.total",
                                    "validators.mobile")
    assert list(quote.states) == ["draft", "issued", "accepted", "expired", "cancelled",
                                  "pending_approval"]   # a list price other than the catalogue's
    assert [s for s, spec in quote.states.items() if spec.final] == [
        "accepted", "expired", "cancelled"]
    assert [t.trigger for t in quote.transitions] == [
        "edit", "issue", "revise", "accept", "expire", "cancel", "issue", "approve", "reject",
        "revise"]
    assert quote.fields["accessories"].columns["quantity"].min == "1"
    assert quote.fields["lender"].required_if == {"payment_method": "分期"}
    assert quote.documents["quote"].template == "quote.docx"
    [cancel] = quote.candidates("cancel", "issued")
    assert cancel.sources == ("draft", "issued") and cancel.route == 0
    [edit] = quote.candidates("edit", "draft")
    assert edit.may_edit("remarks")
    [accept] = quote.candidates("accept", "issued")
    assert not accept.may_edit("remarks")
    assert accept.conditions == ("valid_until_not_passed",)


def test_the_folder_loads_as_shipped(tmp_path):
    assert list(load_folder(tmp_path, {"quote.toml": QUOTE})) == ["customer", "quote",
                                                                    "vehicle_model"]


def test_machine_has_only_the_defined_triggers(quote):
    machine = quote.machine

    for state in quote.states:
        triggers = machine.get_triggers(state)
        assert not [t for t in triggers if t.startswith("to_")], triggers
        assert sorted(triggers) == sorted({t.trigger for t in quote.available(state)})
    assert machine.get_triggers("draft") == ["edit", "issue", "cancel"]
    assert machine.get_triggers("accepted") == []
    assert sorted(machine.events) == ["accept", "approve", "cancel", "edit", "expire", "issue",
                                      "reject", "revise"]
    assert machine.models == []


def test_fire_leaves_no_model_on_the_shared_machine(engine):
    engine.create("quote", {"customer_name": "王芳", "customer_mobile": "13900139000"}, "li")
    machine = engine.workflow("quote").machine

    for brand in ("奇瑞", "吉利"):
        result = engine.fire("Q-1", "edit", "li", {"brand": brand})
        assert result.state == "draft" and result.documents == []
        assert machine.models == []
    with pytest.raises(StateError):
        engine.fire("Q-1", "accept", "li")

    assert machine.models == []
    assert engine.fire("Q-1", "cancel", "li").state == "cancelled"
    assert machine.models == []
    assert engine.case("Q-1", actor="wang")["data"]["brand"] == "吉利"


@pytest.mark.parametrize("trigger, state, words", [
    ("isue", "draft", ['没有操作 "isue"', '是否想用 "issue"', "「草稿」",
                       "edit（修改草稿）、issue（出具报价单）、cancel（取消报价）"]),
    ("acept", "issued", ['是否想用 "accept"', "「已出具」", "revise（修订报价单）"]),
    ("zzz", "draft", ['没有操作 "zzz"', "可执行：edit"]),
    ("accept", "draft", ['在「草稿」状态下不能执行 "accept"',
                         "可执行：edit（修改草稿）、issue（出具报价单）、cancel（取消报价）"]),
    ("issue", "issued", ['在「已出具」状态下不能执行 "issue"', "accept（客户接受报价）",
                         "expire（报价过期）"]),
    ("edit", "accepted", ['在「客户已接受」状态下不能执行 "edit"', "可执行：无（终态）"]),
])
def test_candidates_says_what_is_possible(quote, trigger, state, words):
    with pytest.raises(StateError) as raised:
        quote.candidates(trigger, state)

    for word in words:
        assert word in raised.value.message, raised.value.message
    assert raised.value.details == {"trigger": trigger, "state": state}


def test_unknown_trigger_without_a_close_match_gives_no_hint(quote):
    with pytest.raises(StateError) as raised:
        quote.candidates("zzz", "draft")

    assert "是否想用" not in raised.value.message


# --- mistakes in a workflow file ---------------------------------------------------------------

ACCEPT = 'trigger = "accept"\nlabel = "客户接受报价"\nsource = ["issued"]\ndest = "accepted"'
EDIT_CHECKS = 'edits = ["*"]\nchecks = ["discount_within_list_price", "purchase_tax_override_reasoned"]\n'
ISSUE = QUOTE[QUOTE.index('trigger = "issue"'):QUOTE.index('[[transitions]]\ntrigger = "revise"')]
EXTRA_CANCEL = ('\n[[transitions]]\ntrigger = "cancel"\nlabel = "再取消"\nsource = ["issued"]\n'
                'dest = "cancelled"\nroles = ["sales"]\n')


@pytest.mark.parametrize("old, new, key, words", [
    (ACCEPT, ACCEPT.replace('dest = "accepted"', 'dest = "acepted"'), "transitions[3].dest",
     ['"acepted" 不是已定义的状态']),
    (ACCEPT, ACCEPT.replace('["issued"]', '["isued"]'), "transitions[3].source[0]",
     ['"isued" 不是已定义的状态']),
    ('initial = "draft"', 'initial = "drafts"', "workflow.initial", ['"drafts" 不是已定义的状态']),
    ('template = "quote.docx"', 'template = "quote_v2.docx"', "documents.quote.template",
     ["模板文件不存在", "quote_v2.docx"]),
    ('series = "quote"', 'series = "invoice"', "documents.quote.series",
     ['编号序列 "invoice" 未在 config.toml 的 [series] 中定义']),
    ('roles = ["sales", "sales_manager"]\nconditions = ["valid_until_passed"]',
     'roles = ["sales", "boss"]\nconditions = ["valid_until_passed"]', "transitions[4].roles[1]",
     ['角色 "boss" 未在 config.toml 的 [roles] 中定义']),
    ('create_roles = ["sales", "sales_manager"]', 'create_roles = ["salez"]',
     "workflow.create_roles[0]", ['角色 "salez"']),
    ('roles = ["sales", "sales_manager"]\ndefault = "actor"', 'roles = ["seller"]\ndefault = "actor"',
     "fields.consultant.roles[0]", ['角色 "seller"']),
    ('rule = "mobile"', 'rule = "mobil"', "fields.customer_mobile.rule",
     ['未知的校验规则 "mobil"', "mobile, cn_id"]),
    (EDIT_CHECKS, EDIT_CHECKS.replace("discount_within_list_price", "discount_ok"),
     "transitions[0].checks[0]", ['未知的检查 "discount_ok"', "discount_within_list_price"]),
    ('create_checks = ["discount_within_list_price"]', 'create_checks = ["discount_ok"]',
     "workflow.create_checks[0]", ['未知的检查 "discount_ok"']),
    ('conditions = ["valid_until_passed"]', 'conditions = ["valid_until_gone"]',
     "transitions[4].conditions[0]", ['未知的条件 "valid_until_gone"', "valid_until_passed"]),
    ('total = "grand_total"', 'calculator = "quote_totals"', "workflow.calculator",
     ["不再支持", "[computed.<名称>]"]),
    ('fails_when = "discount > list_price"', 'fails_when = "discount > list_prise"',
     "checks.discount_within_list_price.fails_when", ["引用了未定义的名称 list_prise"]),
    ('fails_when = "valid_until < today"', 'fails_when = "discount > 0.2"',
     "checks.valid_until_not_past.fails_when", ["dec('0.2')", "二进制误差"]),
    ("policy.deposit_cap)\"", "policy.deposit_limit)\"",
     "checks.deposit_within_legal_cap.fails_when", ["policy.deposit_limit"]),
    ("value = \"sum_of(insurance, 'premium')\"", "value = \"sum_of(insurance, 'premium'\"",
     "computed.insurance_total.value", ["语法错误", "sum_of(insurance, 'premium'"]),
    ("value = \"vehicle_price\"", "value = \"grand_total\"", "computed.net_vehicle_price.value",
     ["引用了未定义的名称 grand_total"]),  # computed in order: grand_total comes later
    ('message = "优惠 {{ discount|money }} 超过指导价 {{ list_price|money }}"',
     'message = "优惠 {{ discount|money }} 超过指导价 {{ list_price|money }"',
     "checks.discount_within_list_price.message", ["模板有语法错误"]),
    ('message = "报价有效期 {{ valid_until|cn_date }} 已早于今天 {{ today|cn_date }}"',
     'message = "报价有效期 {{ valid_untill|cn_date }}"', "checks.valid_until_not_past.message",
     ["引用了未定义的名称 valid_untill"]),
    ('field = "discount"\nfails_when', 'field = "discont"\nfails_when',
     "checks.discount_within_list_price.field", ['"discont" 不是已定义的字段']),
    ('blocks_when = "valid_until >= today"', 'blocks_when = "valid_until >= tomorrow"',
     "conditions.valid_until_passed.blocks_when", ["tomorrow"]),
    ('type = "decimal"\ndefault = "0.20"', 'type = "decimal"\ndefault = 0.2',
     "policy.deposit_cap", ["default", "应为字符串"]),
    ('else purchase_tax_computed"\nrequires = []', 'else purchase_tax_computed"\nrequires = ["tax"]',
     "computed.purchase_tax.requires[0]", ['"tax" 不是字段、计算值或 let 中的名称']),
    ("[fields.deposit]", "[fields.totals]", "fields.totals",
     ['字段名 "totals" 无效或与模板保留名冲突', "dealer, doc"]),
    ("[fields.other_fees.columns.amount]", "[fields.other_fees.columns.loop]",
     "fields.other_fees.columns.loop", ['字段名 "loop"']),
    ("[fields.deposit]", "[fields.Deposit]", "fields.Deposit", ['字段名 "Deposit"']),
    (ISSUE, ISSUE.replace('"valid_until"]', '"valid_til"]'),
     "transitions[1].requires[11]", ['"valid_til" 不是已定义的字段']),
    (EDIT_CHECKS, EDIT_CHECKS.replace('["*"]', '["remark"]'), "transitions[0].edits[0]",
     ['"remark" 不是已定义的字段']),
    (ISSUE, ISSUE.replace('documents = ["quote"]', 'documents = ["quotes"]'),
     "transitions[1].documents[0]", ['"quotes" 不是 [documents] 中定义的文档']),
    ('label = "客户已接受"', 'lable = "客户已接受"', "states.accepted.lable",
     ["未知的配置项 states.accepted.lable", "label, final"]),
    ('label = "客户接受报价"', 'lable = "客户接受报价"', "transitions[3].lable",
     ["未知的配置项 transitions[3].lable"]),
    ('label = "客户姓名"', 'label = "客户姓名"\nmaxlength = 50', "fields.customer_name.maxlength",
     ["未知的配置项 fields.customer_name.maxlength", "max_length"]),
    ('title = "商谈报价单"\ncase_prefix', 'titel = "商谈报价单"\ncase_prefix', "workflow.titel",
     ["未知的配置项 workflow.titel"]),
    ('choices = ["全款", "分期"]\n', "", "fields.payment_method.choices",
     ["choice 类型的字段需要 choices"]),
    ('type = "money"\nlabel = "已付定金"', 'type = "table"\nlabel = "已付定金"', "fields.deposit.columns",
     ["table 类型的字段需要 columns"]),
    ('type = "money"\nlabel = "已付定金"', 'type = "currency"\nlabel = "已付定金"',
     "fields.deposit.type", ['未知的字段类型 "currency"', "money"]),
    ('min = "0.01"', 'min = "abc"', "fields.list_price.min", ['"abc" 不是数字']),
    ('required = true\nmax_length = 50', 'required = "yes"\nmax_length = 50',
     "fields.customer_name.required", ["fields.customer_name.required 应为true/false", "'yes'"]),
    ('required_if = { payment_method = "分期" }\n\n[fields.down_payment]',
     'required_if = { pay_method = "分期" }\n\n[fields.down_payment]', "fields.lender.required_if",
     ['引用了未定义的字段 "pay_method"']),
    ('[computed.vehicle_price]', '[totals]\nvehicle_price = "车辆成交价"\n\n[computed.vehicle_price]',
     "totals", ["不再支持", "[computed.<名称>]"]),
    ('key = "quote"', 'key = "Quote"', "workflow.key", ['"Quote" 应为小写字母、数字和下划线']),
    ("[states.draft]", "[states.Draft]", "states.Draft", ["状态名应为小写字母、数字和下划线"]),
    ('trigger = "cancel"', 'trigger = "state"', "transitions[5].trigger", ['"state" 不能用作操作名']),
    ('[[transitions]]\ntrigger = "edit"', '[transition]\ntrigger = "edit"', "transition",
     ["未知的配置项 transition"]),
])
def test_mistake_names_file_and_key(tmp_path, old, new, key, words):
    with pytest.raises(WorkflowDefinitionError) as raised:
        load_folder(tmp_path, {"quote.toml": edited(old, new)})

    err = raised.value
    assert err.details["key"] == key
    assert err.message.startswith("quote.toml: ")
    assert key in err.message
    assert err.details["path"].endswith(str(Path("workflows") / "quote.toml"))
    for word in words:
        assert word in err.message, err.message
    assert err.exit_code == 2


def test_duplicate_trigger_for_the_same_source(tmp_path):
    # the earlier "cancel" (draft, issued) has no conditions: a second one could never be taken
    with pytest.raises(WorkflowDefinitionError) as raised:
        load_folder(tmp_path, {"quote.toml": QUOTE + EXTRA_CANCEL})

    err = raised.value
    assert err.details["key"] == "transitions[10]"
    assert err.details["path"].endswith(str(Path("workflows") / "quote.toml"))
    assert err.message == ('quote.toml: transitions[10]: 操作 "cancel" 在状态 "issued" 下已有一个'
                           '无条件的定义；同名操作只有前面的带 conditions 时才能再定义')


# "accept" (issued → accepted) has conditions = ["valid_until_not_passed"] and no edits
EXTRA_ACCEPT = ('\n[[transitions]]\ntrigger = "accept"\nlabel = "过期后经理特批接受"\n'
                'source = ["issued"]\ndest = "accepted"\nroles = ["sales_manager"]\n')


def test_a_second_route_after_a_conditional_transition_is_fine(tmp_path):
    quote = load_folder(tmp_path, {"quote.toml": QUOTE + EXTRA_ACCEPT})["quote"]

    first, second = quote.candidates("accept", "issued")
    assert (first.label, first.route, first.conditions) == (
        "客户接受报价", 0, ("valid_until_not_passed",))
    assert (second.label, second.route, second.conditions) == ("过期后经理特批接受", 1, ())
    assert quote.machine.get_triggers("issued").count("accept") >= 1


def test_a_second_route_must_edit_the_same_fields(tmp_path):
    extra = EXTRA_ACCEPT + 'edits = ["remarks"]\n'

    with pytest.raises(WorkflowDefinitionError) as raised:
        load_folder(tmp_path, {"quote.toml": QUOTE + extra})

    err = raised.value
    assert err.details["key"] == "transitions[10].edits"
    assert err.message == 'quote.toml: transitions[10].edits: 同名操作 "accept" 的 edits 应相同'


def test_same_trigger_from_different_sources_is_fine(tmp_path):
    extra = EXTRA_CANCEL.replace('source = ["issued"]', 'source = ["expired"]')
    quote = load_folder(tmp_path, {"quote.toml": QUOTE + extra})["quote"]

    assert [t.label for t in quote.candidates("cancel", "expired")] == ["再取消"]
    assert [t.label for t in quote.candidates("cancel", "issued")] == ["取消报价"]


def test_columns_only_on_tables(tmp_path):
    text = QUOTE + '\n[fields.deposit.columns.x]\ntype = "string"\nlabel = "x"\n'

    with pytest.raises(WorkflowDefinitionError) as raised:
        load_folder(tmp_path, {"quote.toml": text})

    assert raised.value.details["key"] == "fields.deposit.columns"
    assert "只有 table 类型的字段可以有 columns" in raised.value.message


def test_invalid_toml_names_the_file(tmp_path):
    with pytest.raises(WorkflowDefinitionError) as raised:
        load_folder(tmp_path, {"quote.toml": QUOTE + "\n[[transitions]\n"})

    assert raised.value.message.startswith("quote.toml: 无法读取：")
    assert "line " in raised.value.message
    assert raised.value.details["path"].endswith("quote.toml")


def test_duplicate_case_prefix_across_files(tmp_path):
    other = edited('key = "quote"', 'key = "quote_b"')

    with pytest.raises(WorkflowDefinitionError) as raised:
        load_folder(tmp_path, {"a_quote.toml": QUOTE, "b_quote.toml": other})

    assert 'workflow.case_prefix "Q" 被多个工作流使用' in raised.value.message
    assert raised.value.message.split(":")[0] in ("a_quote.toml", "b_quote.toml")


def test_duplicate_workflow_key_across_files(tmp_path):
    other = edited('case_prefix = "Q"', 'case_prefix = "QB"')

    with pytest.raises(WorkflowDefinitionError) as raised:
        load_folder(tmp_path, {"a.toml": QUOTE, "b.toml": other})

    assert raised.value.message == 'b.toml: workflow.key "quote" 与 a.toml 重复'


def test_two_distinct_workflows_load(tmp_path):
    other = edited('key = "quote"', 'key = "quote_b"').replace('case_prefix = "Q"',
                                                              'case_prefix = "QB"')

    workflows = load_folder(tmp_path, {"a.toml": QUOTE, "b.toml": other})

    assert {k: w.case_prefix for k, w in workflows.items()} == {
        "customer": "K", "quote": "Q", "quote_b": "QB", "vehicle_model": "CX"}


def test_missing_workflows_folder(tmp_path):
    config_path = dealer_with_workflows(tmp_path / "dealer", {})
    (tmp_path / "dealer" / "workflows").rmdir()

    with pytest.raises(WorkflowDefinitionError) as raised:
        load_workflows(load_config(config_path))

    assert "工作流目录不存在" in raised.value.message and "paths.workflows" in raised.value.message


def test_column_required_if_naming_an_unknown_column(tmp_path):
    old = '[fields.other_fees.columns.amount]\ntype = "money"\nlabel = "金额"\nrequired = true'
    new = old.replace("required = true", 'required_if = { nmae = "上牌费" }')

    with pytest.raises(WorkflowDefinitionError) as raised:
        load_folder(tmp_path, {"quote.toml": edited(old, new)})

    assert raised.value.details["key"] == "fields.other_fees.columns.amount.required_if"


# --- the sales chain: links between workflows and the newer options ------------------------------

CONTRACT = (ROOT / "workflows" / "contract.toml").read_text(encoding="utf-8")
DELIVERY = (ROOT / "workflows" / "delivery.toml").read_text(encoding="utf-8")
CHAIN = {"quote.toml": QUOTE, "contract.toml": CONTRACT, "delivery.toml": DELIVERY}
APPROVE = 'roles = ["sales_manager"]\nnot_actor_of = ["create", "submit"]\n\n[[transitions]]\ntrigger = "reject"'
BUYER_ID_RULE = 'rule_field = "buyer_type"\nrule_map = { individual = "cn_id", company = "uscc" }'


def chain_edited(file: str, old: str, new: str) -> dict[str, str]:
    """The three shipped sales-chain workflows with one edit in ``file``."""
    return {**CHAIN, file: edited(old, new, CHAIN[file])}


def test_the_sales_chain_loads_as_shipped(tmp_path):
    workflows = load_folder(tmp_path, CHAIN)

    # with the files they name: the customer's file, the calls a delivery makes, complaints
    # and the stock a contract and a delivery name their car in ([joins.stock])
    assert sorted(workflows) == ["care_call", "complaint", "contract", "customer", "delivery",
                                 "quote", "stock", "vehicle_model"]
    contract, delivery = workflows["contract"], workflows["delivery"]
    assert contract.create_from["quote"].states == ("accepted",)
    assert contract.create_from["quote"].fields["vehicle_price"] == "list_price"
    assert not contract.create_from["quote"].required
    assert delivery.create_from["contract"].required
    [deliver] = delivery.candidates("deliver", "pdi_passed")
    assert deliver.fire_linked == {"contract": "fulfil", "customer": "deliver", "stock": "deliver"}
    assert deliver.stamps == ("delivered_at",)
    [approve] = contract.candidates("approve", "pending_approval")
    assert approve.not_actor_of == ("create", "submit")
    [cancel] = contract.candidates("cancel", "issued")
    assert cancel.void_documents
    assert contract.documents["contract"].signatures == {
        "seller_signature": "甲方（盖章）", "buyer_signature": "乙方（签字或盖章）"}
    assert contract.fields["buyer_type"].choice_label("company") == "单位"
    assert contract.fields["buyer_id_number"].rule_map == {"individual": "cn_id",
                                                          "company": "uscc"}
    assert contract.fields["vin"].override == "vin_check_override"
    assert contract.fields["agency_services"].type == "multichoice"
    assert contract.fields["deposit_date"].required_if_set == ("deposit",)


@pytest.mark.parametrize("file, old, new, key, words", [
    # create_from names another workflow, its states and its fields
    ("contract.toml", "[create_from.quote]", "[create_from.quotes]", "create_from.quotes",
     ['没有名为 "quotes" 的工作流']),
    ("contract.toml", 'states = ["accepted"]', 'states = ["acepted"]', "create_from.quote.states[0]",
     ['"acepted" 不是 quote 的状态']),
    ("contract.toml", "fields = { customer_name = ", "fields = { customer_nmae = ",
     "create_from.quote.fields.customer_nmae", ["不是本工作流的字段"]),
    ("contract.toml", 'vehicle_price = "list_price"', 'vehicle_price = "list_prise"',
     "create_from.quote.fields.vehicle_price", ['"list_prise" 不是 quote 的字段']),
    ("contract.toml", 'vehicle_price = "list_price"', 'vehicle_price = "customer_name"',
     "create_from.quote.fields.vehicle_price",
     ["类型 money 与 quote.customer_name 的 string 不同"]),
    ("delivery.toml", 'states = ["signed"]', 'states = ["signed", "sealed"]',
     "create_from.contract.states[1]", ['"sealed" 不是 contract 的状态']),
    # fire_linked only to a linked workflow, an existing trigger, and never one issuing documents
    ("delivery.toml", 'fire_linked = { contract = "fulfil",', 'fire_linked = { quote = "expire",',
     "transitions[3].fire_linked.quote", ['与工作流 "quote" 没有关联（create_from）']),
    ("delivery.toml", 'fire_linked = { contract = "fulfil",', 'fire_linked = { contract = "fulfill",',
     "transitions[3].fire_linked.contract", ['"fulfill" 不是 contract 的操作']),
    ("delivery.toml", 'fire_linked = { contract = "fulfil",', 'fire_linked = { contract = "issue",',
     "transitions[3].fire_linked.contract", ['contract 的 "issue" 会出具文档，不能被联动触发']),
    # transition options
    ("contract.toml", APPROVE, APPROVE.replace('"submit"]', '"sumbit"]'),
     "transitions[3].not_actor_of[1]", ['"sumbit" 不是本工作流的操作（或 create）']),
    ("delivery.toml", 'stamps = ["delivered_at"]', 'stamps = ["odometer_km"]',
     "transitions[3].stamps[0]", ['"odometer_km" 应为 date 或 datetime 类型的字段']),
    ("delivery.toml", 'stamps = ["delivered_at"]', 'stamps = ["delivered_on"]',
     "transitions[3].stamps[0]", ['"delivered_on" 应为 date 或 datetime 类型的字段']),
    # field options
    ("contract.toml", BUYER_ID_RULE, BUYER_ID_RULE.replace('"buyer_type"', '"customer_name"'),
     "fields.buyer_id_number.rule_field", ['"customer_name" 应为本工作流的 choice 字段']),
    ("contract.toml", BUYER_ID_RULE, BUYER_ID_RULE.replace('"buyer_type"', '"buyer_kind"'),
     "fields.buyer_id_number.rule_field", ['"buyer_kind" 应为本工作流的 choice 字段']),
    ("contract.toml", BUYER_ID_RULE, BUYER_ID_RULE.replace("company =", "firm ="),
     "fields.buyer_id_number.rule_map.firm", ['"firm" 不是 buyer_type 的可选值']),
    ("contract.toml", BUYER_ID_RULE, BUYER_ID_RULE.replace('"uscc"', '"usc"'),
     "fields.buyer_id_number.rule_map.company", ['未知的校验规则 "usc"']),
    ("contract.toml", BUYER_ID_RULE, 'rule_field = "buyer_type"', "fields.buyer_id_number.rule_field",
     ["rule_field 与 rule_map 须同时给出，且不能再写 rule"]),
    ("contract.toml", BUYER_ID_RULE, BUYER_ID_RULE + '\nrule = "cn_id"',
     "fields.buyer_id_number.rule_field", ["rule_field 与 rule_map 须同时给出，且不能再写 rule"]),
    ("contract.toml", 'override = "vin_check_override"', 'override = "engine_number"',
     "fields.vin.override", ['"engine_number" 应为本工作流的 boolean 字段']),
    ("contract.toml", 'override = "vin_check_override"', 'override = "vin_override"',
     "fields.vin.override", ['"vin_override" 应为本工作流的 boolean 字段']),
    ("contract.toml", 'choice_labels = { individual = "个人", company = "单位" }',
     'choice_labels = { individual = "个人", corporate = "单位" }',
     "fields.buyer_type.choice_labels.corporate", ['"corporate" 不在 choices 中']),
    ("contract.toml", 'choices = ["车辆上牌", "车辆保险", "按揭贷款", "购置税缴纳"]\n', "",
     "fields.agency_services.choices", ["multichoice 类型的字段需要 choices"]),
    ("contract.toml", 'label = "签订地点"', 'label = "签订地点"\ndefault = "actor"',
     "fields.signing_place.default", ["目前只支持 user 类型字段的 default"]),
    ("contract.toml", 'roles = ["sales", "sales_manager"]\ndefault = "actor"',
     'roles = ["sales", "sales_manager"]\ndefault = "zhang"', "fields.consultant.default",
     ["目前只支持 user 类型字段的 default"]),
    ("contract.toml", 'required_if = { buyer_type = "company" }',
     'required_if = { buyer_kind = "company" }', "fields.buyer_legal_representative.required_if",
     ['引用了未定义的字段 "buyer_kind"']),
    ("contract.toml", 'required_if_set = ["deposit"]', 'required_if_set = ["deposits"]',
     "fields.deposit_date.required_if_set", ['引用了未定义的字段 "deposits"']),
    ("delivery.toml", 'title = "交车确认单"', 'title = "交车确认单"\nsignatures = ["乙方"]',
     "documents.handover.signatures", ["documents.handover.signatures"]),
])
def test_sales_chain_mistake_names_file_and_key(tmp_path, file, old, new, key, words):
    with pytest.raises(WorkflowDefinitionError) as raised:
        load_folder(tmp_path, chain_edited(file, old, new))

    err = raised.value
    assert err.details["key"] == key
    assert err.message.startswith(f"{file}: ")
    assert key in err.message
    assert err.details["path"].endswith(str(Path("workflows") / file))
    for word in words:
        assert word in err.message, err.message
    assert err.exit_code == 2


def test_fire_linked_may_go_to_the_source_workflow_too(tmp_path):
    # quote is linked to contract (contract.create_from.quote), so either may name the other
    release = 'fire_linked = { stock = "release" }'
    files = chain_edited("contract.toml", release, 'fire_linked = { stock = "release", quote = "expire" }')

    contract = load_folder(tmp_path, files)["contract"]

    [t] = contract.candidates("cancel", "draft")
    assert t.fire_linked == {"stock": "release", "quote": "expire"}


# --- the shared machine: several transitions per trigger and source (conditional routing) -------

@pytest.fixture(scope="module")
def contract():
    return load_workflow(ROOT / "workflows" / "contract.toml", load_config(ROOT / "config.toml"))


def test_candidates_keep_definition_order(contract):
    within, above = contract.candidates("submit", "draft")

    assert (within.dest, within.route, within.conditions) == (
        "approved", 0, ("discount_within_approval_threshold", "vehicle_price_as_catalogue"))
    assert (above.dest, above.route, above.conditions) == ("pending_approval", 1, ())
    assert within.edits == above.edits == ("*",)
    assert within.requires == above.requires and within.checks == above.checks


@pytest.mark.parametrize("discount, state, refused", [
    ("1000.00", "approved", []),
    ("90000.00", "pending_approval", ["优惠 ¥90,000.00 超过车辆价格的 5%（¥7,500.00），需销售经理审批"]),
])
def test_machine_takes_the_first_route_whose_conditions_hold(contract, discount, state, refused):
    """The workflow's conditions are the machine's: it tries the routes of a trigger in
    definition order, and ``may_trigger`` asks the same conditions without moving."""
    from datetime import date
    from decimal import Decimal

    from engine import rules
    from engine.workflow import Model

    config = load_config(ROOT / "config.toml")
    facts = rules.namespace({"vehicle_price": Decimal("150000.00"), "discount": Decimal(discount)},
                            {}, today=date(2026, 11, 26), now=None, policy=config.policy,
                            linked={})
    machine, case = contract.machine, Model(facts)
    assert machine.get_triggers("draft").count("submit") >= 1
    assert sorted(set(machine.get_triggers("draft"))) == ["cancel", "edit", "submit"]
    with contract.attached(case, "draft"):
        assert case.may_trigger("submit") and case.state == "draft"
        case.refusals.clear()
        assert case.trigger("submit") is True
        assert case.state == state and case.refusals == refused
    assert machine.models == []


def test_machine_refuses_when_no_route_holds_with_every_reason(quote):
    """``expire`` holds only after the quote's validity: refused, with the condition's reason,
    and the model stays where it was."""
    from datetime import date

    from engine import rules
    from engine.workflow import Model

    facts = rules.namespace({"valid_until": date(2026, 12, 5)}, {}, today=date(2026, 11, 26),
                            now=None, policy={}, linked={})
    case = Model(facts)
    with quote.attached(case, "issued"):
        assert not case.may_trigger("expire")
        assert case.trigger("expire") is False
        assert case.state == "issued" and case.refusals and all(
            "尚未过期" in reason for reason in case.refusals)
    assert quote.machine.models == []


def test_machine_does_not_route_from_other_states(contract):
    from transitions import MachineError

    class Case:
        state = None

    machine, case = contract.machine, Case()
    machine.add_model(case, initial="approved")
    try:
        with pytest.raises(MachineError):
            case.trigger("submit", route=1)
        assert case.state == "approved"
    finally:
        machine.remove_model(case)


# --- routing through the Engine (submit issues no documents: no LibreOffice) ---------------------

def contract_data(clock, **changes) -> dict:
    """examples/contract.json with its dates moved relative to the test clock."""
    from datetime import timedelta
    from decimal import Decimal

    today = clock().date()
    data = json.loads((ROOT / "examples" / "contract.json").read_text(encoding="utf-8"),
                      parse_float=Decimal)
    data.update(deposit_date=today.isoformat(),
                payment_deadline=(today + timedelta(days=10)).isoformat(),
                delivery_deadline=(today + timedelta(days=20)).isoformat())
    data.update(changes)
    return data


@pytest.mark.parametrize("discount, state", [
    ("0.00", "approved"),
    ("6000.00", "approved"),  # the example
    ("6995.00", "approved"),  # exactly 5 % of 139,900.00
    ("6995.01", "pending_approval"),
    ("9000.00", "pending_approval"),
])
def test_submit_routes_by_the_discount(engine, clock, discount, state):
    case = engine.create("contract", contract_data(clock, discount=discount), "zhang").id

    result = engine.fire(case, "submit", "zhang")

    assert (result.state, result.documents) == (state, [])
    assert engine.case(case, actor="wang")["state"] == state
    assert engine.workflow("contract").machine.models == []


def test_routing_sees_the_data_sent_with_the_trigger(engine, clock):
    case = engine.create("contract", contract_data(clock), "zhang").id

    assert engine.fire(case, "submit", "zhang", {"discount": "9000.00"}).state == "pending_approval"
    assert engine.case(case, actor="wang")["data"]["discount"] == "9000.00"


def test_after_approval_routing_the_approver_is_not_the_submitter(engine, clock):
    case = engine.create("contract", contract_data(clock, discount="9000.00"), "wang").id
    assert engine.fire(case, "submit", "wang").state == "pending_approval"

    with pytest.raises(PermissionDenied) as raised:
        engine.fire(case, "approve", "wang")
    assert "职责分离" in raised.value.message and raised.value.details["rule"] == "not_actor_of"
    assert engine.case(case, actor="wang")["state"] == "pending_approval"
    assert engine.fire(case, "approve", "qian").state == "approved"


def test_the_threshold_is_the_stores_policy(config_path, converter, clock):
    from engine import Engine

    text = config_path.read_text(encoding="utf-8")
    old = 'contract_approval_discount_share = "0.05"'
    assert text.count(old) == 1
    config_path.write_text(text.replace(old, 'contract_approval_discount_share = "0.10"'),
                           encoding="utf-8")

    with Engine(load_config(config_path), converter=converter, clock=clock) as eng:
        low = eng.create("contract", contract_data(clock, discount="13990.00"), "zhang").id
        high = eng.create("contract", contract_data(clock, discount="13990.01",   # another car
                                                    vin="LSJA24U64JG269226"), "zhang").id
        assert eng.fire(low, "submit", "zhang").state == "approved"
        assert eng.fire(high, "submit", "zhang").state == "pending_approval"


def test_a_mistake_after_the_reports_block_still_names_its_file(tmp_path):
    """The loader once reused its path variable for report columns and lost the file name."""
    text = (ROOT / "workflows" / "rectification.toml").read_text(encoding="utf-8")
    broken = edited('dest = "closure_review"', 'dest = "closure_reveiw"', text)
    with pytest.raises(WorkflowDefinitionError) as raised:
        load_folder(tmp_path, {"rectification.toml": broken})
    assert raised.value.message.startswith("rectification.toml: transitions[4].dest")
    assert raised.value.details["path"].endswith("rectification.toml")


def test_a_step_only_another_workflow_fires_needs_no_roles(tmp_path):
    """contract's fulfil is fired by delivery's deliver (fire_linked): it may have no roles;
    without that link (and no timer) nobody could ever fire it, which is refused."""
    fulfil = 'label = "合同履行完毕"\nsource = ["signed"]\ndest = "fulfilled"\nroles = ["sales_manager"]'
    nobody = fulfil.replace('roles = ["sales_manager"]', "roles = []")
    contract = load_folder(tmp_path / "a", chain_edited("contract.toml", fulfil, nobody))["contract"]
    [t] = contract.candidates("fulfil", "signed")
    assert t.roles == ()
    files = chain_edited("contract.toml", fulfil, nobody)
    files["delivery.toml"] = edited('fire_linked = { contract = "fulfil", ',
                                    'fire_linked = { ', files["delivery.toml"])
    with pytest.raises(WorkflowDefinitionError) as raised:
        load_folder(tmp_path / "b", files)
    assert raised.value.details["key"].endswith(".roles")
    assert "由其他流程联动（fire_linked）" in raised.value.message


@pytest.mark.parametrize("file, old, new, named, key", [
    # a join finds one case by a value: the other workflow's field must be unique
    ("stock.toml", "unique = true                 #", "#", "contract.toml", "joins.stock.match"),
    ("contract.toml", 'leave = "release"', 'leave = "relase"', "contract.toml", "joins.stock.leave"),
    ("contract.toml", 'states = ["in_transit", "in_stock", "reserved"]',
     'states = ["in_stock", "sold"]', "contract.toml", "joins.stock.states[1]"),
    # unique is for a plain value; a customer's mobile is kept one per file by [party]
    ("stock.toml", 'rule = "vin"  ', 'personal = "text"\nrule = "vin"  ', "stock.toml", "fields.vin.unique"),
    ("stock.toml", 'rows = "model"', 'rows = "arrival_date"', "stock.toml", "tallies.stock_by_model.rows"),
])
def test_joins_unique_and_field_rows_mistakes_name_file_and_key(tmp_path, file, old, new, named,
                                                               key):
    files = {**CHAIN, "stock.toml": (ROOT / "workflows" / "stock.toml").read_text(encoding="utf-8")}
    files[file] = edited(old, new, files[file])
    with pytest.raises(WorkflowDefinitionError) as raised:
        load_folder(tmp_path, files)
    assert raised.value.details["key"] == key, raised.value.message
    assert raised.value.message.startswith(f"{named}: {key}")
