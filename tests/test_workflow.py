"""Workflow definitions: quote.toml loads, the shared machine stays clean, and every mistake in a
workflow file is a WorkflowDefinitionError naming the file and the key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import load_config
from engine.errors import StateError, WorkflowDefinitionError
from engine.workflow import load_workflow, load_workflows

from helpers import ROOT, make_dealer_dir

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
    for name, text in files.items():
        (workflows / name).write_text(text, encoding="utf-8")
    text = config_path.read_text(encoding="utf-8")
    shipped = f"workflows = {json.dumps(str(ROOT / 'workflows'))}"
    assert text.count(shipped) == 1
    config_path.write_text(text.replace(shipped, 'workflows = "workflows"'), encoding="utf-8")
    return config_path


def load_folder(tmp_path: Path, files: dict[str, str]):
    return load_workflows(load_config(dealer_with_workflows(tmp_path / "dealer", files)))


# --- the shipped definition ------------------------------------------------------------------

def test_quote_loads(quote):
    assert (quote.key, quote.case_prefix, quote.initial) == ("quote", "Q", "draft")
    assert quote.calculator == "quote_totals"
    assert list(quote.states) == ["draft", "issued", "accepted", "expired", "cancelled"]
    assert [s for s, spec in quote.states.items() if spec.final] == [
        "accepted", "expired", "cancelled"]
    assert [t.trigger for t in quote.transitions] == [
        "edit", "issue", "revise", "accept", "expire", "cancel"]
    assert quote.fields["accessories"].columns["quantity"].min == "1"
    assert quote.fields["lender"].required_if == {"payment_method": "分期"}
    assert quote.documents["quote"].template == "quote.docx"
    assert quote.find_transition("cancel", "issued").sources == ("draft", "issued")
    assert quote.find_transition("edit", "draft").may_edit("remarks")
    assert not quote.find_transition("accept", "issued").may_edit("remarks")


def test_the_folder_loads_as_shipped(tmp_path):
    assert list(load_folder(tmp_path, {"quote.toml": QUOTE})) == ["quote"]


def test_machine_has_only_the_defined_triggers(quote):
    machine = quote.machine

    for state in quote.states:
        triggers = machine.get_triggers(state)
        assert not [t for t in triggers if t.startswith("to_")], triggers
        assert sorted(triggers) == sorted(t.trigger for t in quote.available(state))
    assert machine.get_triggers("draft") == ["edit", "issue", "cancel"]
    assert machine.get_triggers("accepted") == []
    assert sorted(machine.events) == ["accept", "cancel", "edit", "expire", "issue", "revise"]
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
    assert engine.case("Q-1")["data"]["brand"] == "吉利"


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
def test_find_transition_says_what_is_possible(quote, trigger, state, words):
    with pytest.raises(StateError) as raised:
        quote.find_transition(trigger, state)

    for word in words:
        assert word in raised.value.message, raised.value.message
    assert raised.value.details == {"trigger": trigger, "state": state}


def test_unknown_trigger_without_a_close_match_gives_no_hint(quote):
    with pytest.raises(StateError) as raised:
        quote.find_transition("zzz", "draft")

    assert "是否想用" not in raised.value.message


# --- mistakes in a workflow file ---------------------------------------------------------------

ACCEPT = 'trigger = "accept"\nlabel = "客户接受报价"\nsource = ["issued"]\ndest = "accepted"'
EDIT_CHECKS = 'edits = ["*"]\nchecks = ["discount_within_list_price"]\n'
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
    ('calculator = "quote_totals"', 'calculator = "quote_sum"', "workflow.calculator",
     ['未知的计算器 "quote_sum"', "quote_totals"]),
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
    ('calculator = "quote_totals"\n', "", "totals",
     ["没有 workflow.calculator 时不能定义 totals 的名称"]),
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
    with pytest.raises(WorkflowDefinitionError) as raised:
        load_folder(tmp_path, {"quote.toml": QUOTE + EXTRA_CANCEL})

    assert raised.value.details["key"] == "transitions[6]"
    assert raised.value.message == ('quote.toml: transitions[6]: 操作 "cancel" 在状态 "issued" '
                                    '下重复定义')


def test_same_trigger_from_different_sources_is_fine(tmp_path):
    extra = EXTRA_CANCEL.replace('source = ["issued"]', 'source = ["expired"]')
    quote = load_folder(tmp_path, {"quote.toml": QUOTE + extra})["quote"]

    assert quote.find_transition("cancel", "expired").label == "再取消"
    assert quote.find_transition("cancel", "issued").label == "取消报价"


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

    assert {k: w.case_prefix for k, w in workflows.items()} == {"quote": "Q", "quote_b": "QB"}


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
