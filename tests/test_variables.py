"""engine/variables.py: the variable tables made from the workflow definitions, the same tables
in templates/README.md (so the authoring guide cannot drift), and ``dealerdocs fields``."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import docx
import pytest

from engine import load_config
from engine.errors import TemplateError
from engine.lint import used_names
from engine.variables import filled_at_issue, markdown, template_names, variables
from engine.workflow import load_workflows

from helpers import ROOT, run_cli

CONFIG = load_config(ROOT / "config.toml")
WORKFLOWS = load_workflows(CONFIG)


def tool():
    """tools/update_template_tables.py as a module."""
    spec = importlib.util.spec_from_file_location("update_template_tables",
                                                  ROOT / "tools" / "update_template_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tables(key: str) -> str:
    wf = WORKFLOWS[key]
    return markdown(wf, WORKFLOWS, template_names(wf, CONFIG.template_layers.find))


def test_the_committed_readme_has_the_generated_tables_of_every_workflow():
    """CI's check: after a change to a workflow file or a default template, run
    ``python tools/update_template_tables.py`` and commit templates/README.md."""
    committed = tool().blocks((ROOT / "templates" / "README.md").read_text(encoding="utf-8"))
    assert sorted(committed) == sorted(WORKFLOWS)
    for key in WORKFLOWS:
        assert committed[key] == tables(key), (
            f"templates/README.md: the tables of {key} are out of date; "
            f"run python tools/update_template_tables.py")


def test_the_tool_finds_drift_and_rewrites_only_the_marked_blocks(tmp_path):
    readme = tmp_path / "README.md"
    text = (ROOT / "templates" / "README.md").read_text(encoding="utf-8")
    stale = text.replace("| `customer_name` | 客户姓名 |", "| `customer_name` | 顾客姓名 |", 1)
    assert stale != text
    readme.write_text(stale + "\n手写的结尾。\n", encoding="utf-8")
    script = [sys.executable, str(ROOT / "tools" / "update_template_tables.py"), "--readme", str(readme)]
    check = subprocess.run([*script, "--check"], capture_output=True, text=True)
    assert check.returncode == 1 and "out of date" in check.stderr
    assert subprocess.run(script, capture_output=True, text=True).returncode == 0
    assert readme.read_text(encoding="utf-8") == text + "\n手写的结尾。\n"
    assert subprocess.run([*script, "--check"], capture_output=True, text=True).returncode == 0


def test_a_workflow_without_markers_is_an_error():
    with pytest.raises(SystemExit) as raised:
        tool().updated("no markers here", {"quote": "…"})
    assert "markers missing for ['quote']" in str(raised.value)


def test_fields_md_prints_the_same_tables(tmp_path):
    shown = run_cli("fields", "delivery", "--format", "md", "--config", str(ROOT / "config.toml"),
                    cwd=tmp_path)
    assert shown.stdout == tables("delivery") + "\n"
    as_json = json.loads(run_cli("fields", "quote", "--json", "--config",
                                 str(ROOT / "config.toml"), cwd=tmp_path).stdout)
    [doc] = as_json["documents"]
    assert doc["template"] == "quote.docx" and doc["issued_by"] == [
        "出具报价单（issue）", "修订报价单（revise）", "经理批准指导价并出具（approve）"]
    rows = {v["written"][0]: v for v in as_json["variables"]}
    assert rows["accessories"]["type"] == "表格（列表）"
    assert "`quantity`（数量，整数）" in rows["accessories"]["note"]
    assert rows["lender"]["note"] == "付款方式为“分期”时必填，否则**可能为空**"
    assert rows["totals.grand_total"]["used_by"] == ["quote.docx"]
    wrong = run_cli("fields", "qoute", "--config", str(ROOT / "config.toml"), cwd=tmp_path,
                    check=False)
    assert wrong.returncode == 4 and wrong.stderr == (
        "错误：没有名为 \"qoute\" 的流程（可用：care_call、complaint、contract、customer、delivery、duty、quote、reception、"
        "rectification、stock、test_drive、vehicle_model）\n")


@pytest.mark.parametrize("workflow, document, certain, maybe_empty", [
    ("quote", "quote", {"brand", "valid_until", "customer_name"}, {"lender", "remarks"}),
    ("delivery", "handover", {"pdi_result", "odometer_km", "delivered_at", "vin"},
     {"followup_date", "agent_name"}),
    ("delivery", "booking", {"delivery_date", "vin"}, {"pdi_result", "delivered_at"}),
    ("rectification", "closure", {"completion_summary", "root_cause", "evidence"},
     {"requested_deadline", "closed_at"}),
    # an order without a car (无车订单) is issued with no VIN yet
    ("contract", "contract", {"payment_deadline", "brand"}, {"signed_date", "lender", "vin"}),
])
def test_what_is_certain_to_have_a_value_when_a_document_is_issued(workflow, document, certain,
                                                                   maybe_empty):
    filled = filled_at_issue(WORKFLOWS[workflow])[document]
    assert certain <= filled and not maybe_empty & filled


def test_rows_say_which_template_prints_what():
    wf = WORKFLOWS["delivery"]
    rows = {v.written[0]: v for v in variables(wf, WORKFLOWS, template_names(
        wf, CONFIG.template_layers.find))}
    assert rows["time_slot"].used_by == ("delivery_booking.docx",)
    assert rows["pdi_result"].used_by == ("delivery.docx",)
    assert rows["pdi_notes"].used_by == ()
    assert rows["consultant.name"].written == ("consultant.name", "consultant.login")
    assert rows["links.contract.number"].note == "总有（只能由它转来）"
    assert rows["pdi_result"].note == "取值：`合格` `不合格`；出具交车确认单时总有值，其他时候**可能为空**"


def test_used_names_keeps_paths_and_leaves_out_loop_variables(tmp_path):
    path = tmp_path / "t.docx"
    document = docx.Document()
    for text in ("{{ totals.grand_total|money }} {{ doc.issuer.name }}",
                 "{% for a in accessories %}{{ a.name }}{% endfor %}",
                 "{% if links.quote is defined %}{{ links.quote.number }}{% endif %}"):
        document.add_paragraph(text)
    document.save(str(path))
    assert used_names(path) == {"totals", "totals.grand_total", "doc", "doc.issuer",
                                "doc.issuer.name", "accessories", "links", "links.quote",
                                "links.quote.number"}
    document.add_paragraph("{{ broken ")
    document.add_paragraph("}} {% endif %}")
    document.save(str(path))
    with pytest.raises(TemplateError) as raised:
        used_names(path)
    assert raised.value.message.startswith("模板 t.docx 有 Jinja 语法错误")
