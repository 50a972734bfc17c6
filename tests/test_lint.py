"""engine/lint.py: the shipped templates and workflows are clean; broken templates made with
python-docx and broken workflow variants are reported with their place; a template that went
through LibreOffice (tags split across runs) still lints clean and renders."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from decimal import Decimal
from pathlib import Path

import docx
import pytest

from engine import load_config
from engine.engine import Engine
from engine.lint import (CURLY_QUOTE_SEVERITY, Finding, format_findings, lint_paths, lint_template,
                         lint_workflow, mapped_fonts)
from engine.render import Renderer
from engine.workflow import load_workflows

from helpers import ROOT, docx_text, make_dealer_dir, point_at_workflows, with_customers

QUOTE_DATA = json.loads((ROOT / "examples" / "quote.json").read_text(encoding="utf-8"),
                        parse_float=Decimal)


@pytest.fixture
def config(config_path):
    return load_config(config_path)


@pytest.fixture
def quote(config):
    return load_workflows(config)["quote"]


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def make_docx(path: Path, *paragraphs: str, table: list[list[str]] | None = None,
              header: str | None = None, font: str | None = None) -> Path:
    """A template made with python-docx: paragraphs, then an optional table, a header line,
    and ``font`` set on the first run."""
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        t = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, text in enumerate(row):
                t.cell(r, c).text = text
    if header is not None:
        document.sections[0].header.paragraphs[0].text = header
    if font is not None:
        document.paragraphs[0].runs[0].font.name = font
    document.save(path)
    return path


# --- (a) what ships is clean ----------------------------------------------------------------------

def test_shipped_templates_and_workflows_have_no_errors(config):
    findings = lint_paths(config, [])
    assert errors(findings) == [], format_findings(findings)


def test_fonts_are_read_from_fonts_conf():
    assert {"宋体", "SimSun", "黑体", "Microsoft YaHei", "仿宋_GB2312", "DengXian"} <= mapped_fonts()
    assert "Noto Serif CJK SC" not in mapped_fonts()


# --- (b) broken templates ---------------------------------------------------------------------

def only(findings: list[Finding], word: str) -> Finding:
    hits = [f for f in findings if word in f.problem]
    assert len(hits) == 1, format_findings(findings)
    return hits[0]


def test_misspelt_names_are_errors_with_a_suggestion(tmp_path, quote, config):
    path = make_docx(tmp_path / "bad.docx", "报价单编号：{{ doc.numbr }}", "客户：{{ custmer_name }}")
    findings = lint_template(path, [quote], QUOTE_DATA, config=config)
    top = only(findings, "custmer_name")
    assert (top.severity, top.file) == ("error", "bad.docx")
    assert top.place == "段落 2：「客户：{{ custmer_name }}」" and "customer_name" in top.fix
    attr = only(findings, "doc.numbr")
    assert attr.severity == "error" and attr.place == "段落 1：「报价单编号：{{ doc.numbr }}」"
    assert "doc.number" in attr.fix
    # without example data only the top-level name can be checked
    assert [f.problem for f in errors(lint_template(path, [quote]))] == [top.problem]


@pytest.mark.parametrize("texts, severity, place, problem, fix", [
    (["备注：{{ remarks if remarks else “无” }}"], CURLY_QUOTE_SEVERITY, "段落 1", "弯引号",
     "改回英文直引号"),
    (["{%tr for x in accessories %}", "{{ x.name }}", "{%tr endfor %}"], "error", "段落 1",
     "{%tr 标记不在表格里", "整段的条件或循环请用 {%p … %}"),
    (["客户：{{ customer_name", "下一段 }}"], "error", "段落 1：「客户：{{ customer_name」", "没有结束",
     "补上 }}"),
    (["{%p if customer_name %} 分期付款", "{%p endif %}"], "error", "段落 1", "在同一段里",
     "让 {%p … %} 单独占一段"),
    (["{{customer_name}}"], "warning", "段落 1", "没有留空格", "写成 {{ customer_name }}"),
    (["{% for a in accessories %}{{ a.name }}"], "error", "段落 1", "没有对应的 endfor",
     "写上对应的 {% endfor %}"),
    (["{% if gifts %}有赠品", "{% endif %}{% endif %}"], "error", "段落 2", "多余的 {% endif %}",
     "删掉它，或在前面补上对应的 {% if … %}"),
    (["金额：{{ list_price|mony }}"], "error", "正文：「金额：{{ list_price|mony }}」", "No filter",
     "是否想用过滤器 money？"),
    (["客户：｛｛ customer_name ｝｝"], "error", "段落 1", "全角", "切换到英文输入法"),
    (["{%p if \"%.0f\"|format(list_price) == \"1\" %}", "{%p endif %}"], "error", "段落 1", "% 或 }",
     "把这部分计算移到流程的计算器里"),
], ids=["curly-quotes", "tr-outside-table", "unclosed", "p-with-text", "no-spaces",
        "for-without-endfor", "extra-endif", "unknown-filter", "full-width",
        "percent-in-p-tag"])
def test_broken_tags_are_reported_with_their_place(tmp_path, quote, texts, severity, place,
                                                   problem, fix):
    findings = lint_template(make_docx(tmp_path / "t.docx", *texts), [quote])
    hits = [f for f in findings if problem in f.problem]
    assert hits, format_findings(findings)
    assert hits[0].severity == severity and hits[0].place.startswith(place), format_findings(hits)
    assert fix in hits[0].fix, hits[0].fix


def test_places_in_tables_and_headers(tmp_path, quote):
    path = make_docx(tmp_path / "t.docx", "正文", header="编号：{{ doc.numbr }}{{ custmer_name }}",
                     table=[["项目", "金额"], ["{%tr for a in accessories %}", "多余"],
                            ["{{ a.name }}", "{{ a.amont }}"], ["{%tr endfor %}", ""]])
    findings = lint_template(path, [quote])
    place = only(findings, "整行会被删除").place
    assert place == "表格 1 第 2 行第 1 格：「{%tr for a in accessories %}」"
    assert only(findings, "custmer_name").place.startswith("页眉（header1.xml）段落 1：")


def test_latin_font_is_a_warning(tmp_path, quote):
    path = make_docx(tmp_path / "font.docx", "客户：{{ customer_name }}", font="Calibri")
    findings = lint_template(path, [quote])
    calibri = [f for f in findings if "Calibri" in f.problem]
    assert calibri and {f.severity for f in calibri} == {"warning"}
    assert "word/document.xml" in calibri[0].place and "PDF 中会被替换" in calibri[0].problem
    assert any("zh-CN" in f.problem for f in findings)  # python-docx's default styles are en-US


def test_a_file_that_is_not_a_docx_is_one_error(tmp_path, quote):
    path = tmp_path / "notes.docx"
    path.write_text("not a word file")
    [finding] = lint_template(path, [quote])
    assert finding.severity == "error" and "不是有效的 Word" in finding.problem


def test_a_failing_test_render_is_an_error(tmp_path, quote, config):
    path = make_docx(tmp_path / "t.docx", "首付：{{ down_payment|money }}{{ loan_term_months + 1 }}")
    data = {**QUOTE_DATA, "payment_method": "全款", "lender": None, "down_payment": None,
            "loan_term_months": None, "monthly_payment": None}
    [finding] = errors(lint_template(path, [quote], data, config=config))
    assert finding.place == "试出具（流程 quote，样例数据）" and "t.docx" in finding.problem


def test_a_signature_label_missing_from_the_body_is_a_warning(tmp_path, config):
    """The contract's labels are where finishing looks for them (marked in the rendered body);
    one edited away is named, with its field, before any customer's contract fails."""
    from helpers import contract_data, edit_paragraph

    contract = load_workflows(config)["contract"]
    data = contract_data()
    path = shutil.copy(ROOT / "templates" / "docx" / "contract.docx", tmp_path / "contract.docx")
    assert [f for f in lint_template(path, [contract], data, config=config)
            if f.place == "签名区"] == []
    edit_paragraph(path, "乙方（签字或盖章）：", "乙方签字：")

    [finding] = [f for f in lint_template(path, [contract], data, config=config)
                 if f.place == "签名区"]
    assert finding.severity == "warning"
    assert finding.problem.startswith("签名位置文字「乙方（签字或盖章）」（签名域 buyer_signature）"
                                      "不在模板正文中")


# --- (c) a template that went through LibreOffice ---------------------------------------------

@pytest.fixture(scope="module")
def roundtripped(tmp_path_factory) -> Path:
    if not shutil.which("soffice"):
        pytest.fail("LibreOffice (soffice) is not installed: run `make setup` first")
    out = tmp_path_factory.mktemp("lo")
    profile = tmp_path_factory.mktemp("lo-profile")  # a private profile, as the converter's
    env = {**os.environ, "FONTCONFIG_FILE": str(ROOT / "engine" / "fonts.conf"),
           "SAL_USE_VCLPLUGIN": "svp"}
    subprocess.run(["soffice", f"-env:UserInstallation={profile.as_uri()}", "--headless",
                    "--norestore", "--convert-to", 'docx:MS Word 2007 XML', "--outdir", str(out),
                    str(ROOT / "templates" / "docx" / "quote.docx")],
                   env=env, capture_output=True, timeout=180, check=True)
    assert (out / "quote.docx").is_file()
    return out / "quote.docx"


@pytest.mark.slow
def test_libreoffice_roundtrip_still_lints_and_renders(roundtripped, config_path, quote):
    xml = zipfile.ZipFile(roundtripped).read("word/document.xml").decode("utf-8")
    assert re.search(r"\{[{%][^}%]*</w:t>", xml), "LibreOffice no longer splits tags across runs"
    config = load_config(config_path)
    findings = lint_template(roundtripped, [quote], QUOTE_DATA, config=config)
    assert errors(findings) == [], format_findings(findings)
    with Engine(config) as engine:
        context = engine.context_for("quote", QUOTE_DATA, "quote", "zhang")
    renderer = Renderer()
    text = docx_text(renderer.render(renderer.load(roundtripped), context))
    assert "刘晓明" in text and "奇瑞徽银汽车金融股份有限公司" in text and "{{" not in text


# --- (d) workflow graph -------------------------------------------------------------------------

def variant_config(tmp_path: Path, edit, config_edit=lambda text: text) -> Path:
    """A dealership whose workflows folder holds quote.toml changed by ``edit`` (text → text)."""
    folder = tmp_path / "workflows"
    folder.mkdir(parents=True)
    source = (ROOT / "workflows" / "quote.toml").read_text(encoding="utf-8")
    for name, text in with_customers({"quote.toml": edit(source)}).items():
        (folder / name).write_text(text, encoding="utf-8")
    path = point_at_workflows(make_dealer_dir(tmp_path / "dealer"), str(folder))
    path.write_text(config_edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    return path


def add_states(text: str) -> str:
    states = ('[states.orphan]\nlabel = "孤立"\n\n[states.on_hold]\nlabel = "暂缓"\n\n'
              '# --- documents')
    hold = ('[[transitions]]\ntrigger = "hold"\nlabel = "暂缓"\nsource = ["draft"]\n'
            'dest = "on_hold"\nroles = ["sales"]\n\n')
    return text.replace("# --- documents", states).replace("# --- computed values", hold
                                                           + "# --- computed values")


def test_unreachable_and_stuck_states(tmp_path):
    config = load_config(variant_config(tmp_path, add_states))
    findings = lint_workflow(load_workflows(config)["quote"], config)
    by_place = {(f.severity, f.place, f.problem[:4]) for f in findings}
    assert ("error", "states.orphan", "状态「孤") in by_place
    assert ("warning", "states.orphan", "卡死状态") in by_place
    assert ("warning", "states.on_hold", "卡死状态") in by_place
    assert all(f.file == "quote.toml" for f in findings)
    assert len(findings) == 3, format_findings(findings)


def test_final_state_with_exits_and_roles_nobody_holds(tmp_path):
    def edit(text):
        cancel = 'source = ["draft", "issued"]\ndest = "cancelled"\nroles = ["sales", "sales_manager"]'
        assert cancel in text
        return text.replace(cancel, 'source = ["draft", "issued", "accepted"]\ndest = "cancelled"\n'
                                    'roles = ["regional_manager"]')

    path = variant_config(tmp_path, edit, lambda t: t.replace('roles = ["regional_manager"]',
                                                              'roles = ["sales"]'))
    config = load_config(path)
    findings = lint_workflow(load_workflows(config)["quote"], config)
    assert [f.place for f in findings] == ["states.accepted", "transitions[5].roles（cancel）"]
    assert "终态" in findings[0].problem and "regional_manager" in findings[1].problem


def test_template_without_document_number(tmp_path):
    path = variant_config(tmp_path, lambda t: t)
    own = path.parent / "templates"  # the store's own copy wins over the default
    own.mkdir()
    make_docx(own / "quote.docx", "客户：{{ customer_name }}")
    config = load_config(path)
    [finding] = lint_workflow(load_workflows(config)["quote"], config)
    assert finding.place == "documents.quote.template" and "doc.number" in finding.problem


def test_definition_errors_and_unused_templates_via_lint_paths(tmp_path):
    config = load_config(variant_config(tmp_path, lambda t: t.replace('dest = "accepted"',
                                                                      'dest = "acepted"')))
    findings = lint_paths(config, [])
    [broken] = errors(findings)
    assert broken.file == "quote.toml" and broken.place == "transitions[3].dest"
    assert "acepted" in broken.problem
    assert lint_paths(config, ["nothing.docx"])[-1].problem == "找不到这个模板或流程"
    fine = load_config(variant_config(tmp_path / "ok", lambda t: t))
    findings = lint_paths(fine, [])
    assert errors(findings) == [], format_findings(findings)
    unused = {f.file for f in findings if "没有任何流程使用" in f.problem}
    assert unused == {"complaint_record.docx", "contract.docx", "delivery.docx", "delivery_booking.docx",
                      "rectification_cancellation.docx", "rectification_closure.docx",
                      "rectification_extension.docx", "rectification_plan.docx",
                      "test_drive_agreement.docx", "test_drive_evaluation.docx"}
    only_quote = lint_paths(fine, ["quote"])
    assert errors(only_quote) == [] and {f.file for f in only_quote} <= {"quote.toml", "quote.docx"}


def test_format_findings():
    findings = [Finding("error", "a.docx", "段落 1：「x」", "问题", "改法"),
                Finding("warning", "quote.toml", "states.x", "卡死状态", "加流转")]
    assert format_findings(findings).splitlines() == [
        "错误 a.docx｜段落 1：「x」｜问题 → 改法", "警告 quote.toml｜states.x｜卡死状态 → 加流转",
        "共 1 个错误、1 个警告"]
    assert format_findings([]) == "未发现问题"


def test_a_broken_record_of_copies_is_a_warning(config_path):
    own = config_path.parent / "templates"
    own.mkdir()
    (own / ".copies.json").write_text("[]", encoding="utf-8")
    findings = lint_paths(load_config(config_path), ["quote"])
    [warning] = [f for f in findings if f.file == ".copies.json"]
    assert warning.severity == "warning" and "格式不对" in warning.problem
    assert errors(findings) == []
