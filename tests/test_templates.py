"""Every template a shipped workflow issues: variables declared, fonts the PDF step maps,
Chinese as the East Asian language (so LibreOffice picks simplified-Chinese glyph forms)."""
from __future__ import annotations

import re
import zipfile

import pytest
from docxtpl import DocxTemplate

from engine import load_config
from engine.render import make_environment
from engine.workflow import RESERVED_NAMES, load_workflows

from helpers import ROOT, edit_paragraph

CONFIG = load_config(ROOT / "config.toml")
WORKFLOWS = load_workflows(CONFIG)
DOCUMENTS = [(wf, doc) for wf in WORKFLOWS.values() for doc in wf.documents.values()]
# Names engine/fonts.conf maps to Noto CJK; anything else would be substituted or not embedded.
MAPPED_FONTS = {"宋体", "SimSun", "NSimSun", "新宋体", "仿宋", "FangSong", "仿宋_GB2312", "楷体",
                "KaiTi", "黑体", "SimHei", "微软雅黑", "Microsoft YaHei", "等线", "DengXian"}


def _ids(item):
    wf, doc = item
    return f"{wf.key}-{doc.key}"


@pytest.mark.parametrize("item", DOCUMENTS, ids=[_ids(i) for i in DOCUMENTS])
def test_template_uses_only_declared_names(item):
    wf, doc = item
    template = DocxTemplate(str(CONFIG.template_path(doc.template)))
    used = template.get_undeclared_template_variables(jinja_env=make_environment())
    assert used - set(wf.fields) - RESERVED_NAMES == set()


@pytest.mark.parametrize("item", DOCUMENTS, ids=[_ids(i) for i in DOCUMENTS])
def test_template_fonts_are_mapped_and_language_is_chinese(item):
    _, doc = item
    with zipfile.ZipFile(CONFIG.template_path(doc.template)) as zf:
        xml = "".join(zf.read(n).decode("utf-8") for n in zf.namelist()
                      if n.startswith("word/") and n.endswith(".xml"))
    named = {font for element in re.findall(r"<w:rFonts [^>]*>", xml)
             for font in re.findall(r'w:(?:ascii|hAnsi|eastAsia|cs)="([^"]+)"', element)}
    named |= set(re.findall(r'<w:font w:name="([^"]+)"', xml))  # the font table
    assert named and named <= MAPPED_FONTS, named - MAPPED_FONTS
    assert 'w:eastAsia="zh-CN"' in xml


# --- templates in layers: the store's own copies first, then the defaults (engine/templates.py) --

import hashlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import docx  # noqa: E402

from engine.errors import ConfigError, InputError, NotFoundError, TemplateError  # noqa: E402
from engine.templates import (MANIFEST, TemplateLayers, accept, changes, copy, diff,  # noqa: E402
                              format_diff, resolve_name, status, statuses)

from helpers import CST  # noqa: E402

NOW = datetime(2026, 11, 26, 10, 30, tzinfo=CST)
SHIPPED = ROOT / "templates" / "docx"


@pytest.fixture
def layers(tmp_path) -> TemplateLayers:
    """A store folder of its own and a copy of the product's defaults (so a test may change
    the defaults the way an upgrade does)."""
    default = tmp_path / "product"
    shutil.copytree(SHIPPED, default)
    return TemplateLayers(own=tmp_path / "store" / "templates", default=default)



def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_lookup_takes_the_stores_copy_first(layers):
    assert layers.find("quote.docx") == layers.default / "quote.docx"
    copy(layers, "quote", now=NOW)
    assert layers.find("quote.docx") == layers.own / "quote.docx"
    assert layers.find("contract.docx") == layers.default / "contract.docx"
    (layers.own / "visit.docx").write_bytes((SHIPPED / "quote.docx").read_bytes())
    assert layers.find("visit.docx") == layers.own / "visit.docx"  # the store's own template
    assert "visit.docx" in layers.names() and "quote.docx" in layers.names()
    assert layers.find("../product/quote.docx") is None and layers.find("") is None
    with pytest.raises(TemplateError) as raised:
        layers.path("missing.docx")
    assert raised.value.message == (f"找不到模板 missing.docx：本店模板目录 {layers.own} 与默认模板目录 "
                                    f"{layers.default} 中都没有")


def test_a_config_naming_the_defaults_folder_has_no_layer_of_its_own(tmp_path):
    config = load_config(ROOT / "config.toml")  # the project's own: templates = "templates/docx"
    assert config.template_layers.own is None
    assert config.template_path("quote.docx") == SHIPPED / "quote.docx"
    with pytest.raises(ConfigError) as raised:
        copy(config.template_layers, "quote", now=NOW)
    assert "本店还没有自己的模板目录" in raised.value.message
    assert raised.value.details["key"] == "paths.templates"
    assert {s.state for s in statuses(config.template_layers)} == {"default"}


def test_copy_records_the_default_and_refuses_to_overwrite(layers):
    result = copy(layers, "quote", now=NOW)
    target = layers.own / "quote.docx"
    assert result == {"name": "quote.docx", "path": str(target), "default": str(layers.default / "quote.docx"),
                      "backup": None, "default_sha256": sha(layers.default / "quote.docx")}
    assert target.read_bytes() == (layers.default / "quote.docx").read_bytes()
    record = json.loads((layers.own / MANIFEST).read_text(encoding="utf-8"))
    assert record["schema_version"] == 1
    entry = record["copies"]["quote.docx"]
    assert entry["default_sha256"] == sha(target) and entry["copied_at"] == NOW.isoformat()
    assert ["段落 1", "商谈报价单"] in entry["paragraphs"]

    edit_paragraph(target, "商谈报价单", "本店商谈报价单")
    with pytest.raises(InputError) as raised:
        copy(layers, "quote.docx", now=NOW)
    assert raised.value.message.startswith(f"本店已有 quote.docx 的副本（{target}）；要用默认模板重新复制请加 --force")
    assert "本店商谈报价单" in docx_paragraphs(target)  # untouched

    again = copy(layers, "quote", now=NOW, force=True)
    backup = Path(again["backup"])
    assert backup.name == "quote.docx.20261126-103000.bak"
    assert "本店商谈报价单" in docx_paragraphs(backup)  # the edits are kept, never lost
    assert target.read_bytes() == (layers.default / "quote.docx").read_bytes()
    assert "quote.docx.20261126-103000.bak" not in layers.names()


def docx_paragraphs(path: Path) -> list[str]:
    return [p.text for p in docx.Document(str(path)).paragraphs]


@pytest.mark.parametrize("name, error, words", [
    ("quot", NotFoundError, "没有名为 \"quot\" 的模板；是否想写 quote？可用：complaint_record、contract、"),
    ("../quote", NotFoundError, "没有名为 \"../quote\" 的模板"),
    ("visit", NotFoundError, "visit.docx 是本店自有的模板，没有同名的默认模板可以复制"),
])
def test_copy_errors(layers, name, error, words):
    layers.own.mkdir(parents=True)
    (layers.own / "visit.docx").write_bytes((SHIPPED / "quote.docx").read_bytes())
    with pytest.raises(error) as raised:
        copy(layers, name, now=NOW)
    assert raised.value.message.startswith(words), raised.value.message


def test_states_default_current_lagging_untracked_own_only(layers):
    copy(layers, "quote", now=NOW)
    edit_paragraph(layers.own / "quote.docx", "商谈报价单", "本店商谈报价单")
    layers.own.joinpath("contract.docx").write_bytes((layers.default / "contract.docx").read_bytes())
    layers.own.joinpath("delivery.docx").write_bytes((layers.default / "quote.docx").read_bytes())
    layers.own.joinpath("visit.docx").write_bytes((layers.default / "quote.docx").read_bytes())
    states = {s.name: s.state for s in statuses(layers)}
    assert states == {**{n: "default" for n in states}, "quote.docx": "current",
                      "contract.docx": "current",     # by hand, identical to the default
                      "delivery.docx": "untracked",   # by hand, different: nothing to say it lags
                      "visit.docx": "own_only"}
    quote = status(layers, "quote.docx")
    assert quote.path == layers.own / "quote.docx" and quote.recorded_sha256 == quote.default_sha256

    edit_paragraph(layers.default / "quote.docx", "一、客户及车辆信息", "一、客户与车辆")  # an upgrade
    stale = status(layers, "quote.docx")
    assert stale.state == "lagging" and stale.label == "本店副本，默认模板已更新"
    assert stale.recorded_sha256 != stale.default_sha256 == sha(layers.default / "quote.docx")

    accept(layers, "quote", now=NOW)
    assert status(layers, "quote.docx").state == "current"
    assert "本店商谈报价单" in docx_paragraphs(layers.own / "quote.docx")  # accept changes no file


def test_diff_shows_the_defaults_changes_and_the_stores_own(layers):
    copy(layers, "quote", now=NOW)
    edit_paragraph(layers.own / "quote.docx", "商谈报价单", "本店商谈报价单")
    edit_paragraph(layers.default / "quote.docx", "一、客户及车辆信息", "一、客户与车辆")
    found = diff(layers, "quote")
    assert found.status.state == "lagging"
    assert [(c.where, c.old, c.new) for c in found.product] == [
        ("段落 3", "一、客户及车辆信息", "一、客户与车辆")]
    assert [(c.where, c.old, c.new) for c in found.store] == [("段落 1", "商谈报价单", "本店商谈报价单")]
    assert found.store_base == "recorded"
    lines = format_diff(found)
    assert lines[0] == (f"quote.docx：默认模板在本店复制之后已更新（复制于 2026-11-26 10:30），本店副本 "
                        f"{layers.own / 'quote.docx'} 没有这些改动")
    assert lines[1:5] == ["  默认模板的改动（复制时 → 现在，1 处）：", "    段落 3：",
                          "      − 一、客户及车辆信息", "      + 一、客户与车辆"]
    assert "dealerdocs templates accept quote" in lines[5]
    assert lines[-3:] == ["    段落 1：", "      − 商谈报价单", "      + 本店商谈报价单"]
    assert format_diff(diff(layers, "contract")) == ["contract.docx：使用默认模板（本店没有副本），无需比较"]


def test_diff_of_a_copy_without_record_compares_with_the_current_default(layers):
    layers.own.mkdir(parents=True)
    shutil.copyfile(layers.default / "quote.docx", layers.own / "quote.docx")
    edit_paragraph(layers.own / "quote.docx", "商谈报价单", "本店报价单")
    found = diff(layers, "quote")
    assert found.status.state == "untracked" and found.product == []
    assert found.store_base == "current default"
    assert [(c.old, c.new) for c in found.store] == [("商谈报价单", "本店报价单")]


def test_changes_pairs_replacements_and_lists_additions_and_removals():
    old = [("段落 1", "甲"), ("段落 2", "乙"), ("段落 3", "丙")]
    new = [("段落 1", "甲"), ("段落 2", "乙二"), ("段落 3", "丙"), ("段落 4", "丁")]
    assert [(c.where, c.old, c.new) for c in changes(old, new)] == [
        ("段落 2", "乙", "乙二"), ("段落 4", None, "丁")]
    assert [(c.where, c.old, c.new) for c in changes(new, old)] == [
        ("段落 2", "乙二", "乙"), ("段落 4", "丁", None)]


def test_a_broken_record_is_a_template_error(layers):
    layers.own.mkdir(parents=True)
    (layers.own / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(TemplateError) as raised:
        statuses(layers)
    assert raised.value.message.startswith(f"无法读取副本记录 {layers.own / MANIFEST}")
    (layers.own / MANIFEST).write_text('{"copies": []}', encoding="utf-8")
    with pytest.raises(TemplateError) as raised:
        statuses(layers)
    assert "格式不对" in raised.value.message


def test_resolve_name():
    layers = TemplateLayers(own=None, default=SHIPPED)
    assert resolve_name(layers, "quote") == resolve_name(layers, "quote.docx") == "quote.docx"


@pytest.mark.slow
def test_a_stores_copy_wins_over_the_default_and_survives_a_new_default(dealer, tmp_path):
    """Through the CLI: copy, edit in "Word", issue; then the product's file is replaced (an
    upgrade) and the next issue still prints the store's edit, while lint and diff say the
    copy lags the new default."""
    from engine.pdf import read_metadata

    from helpers import cli_json, example, pdf_text, refused, run_cli

    product = tmp_path / "product"  # the product's defaults, in a folder this test may replace
    shutil.copytree(SHIPPED, product)
    config = dealer / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert text.count('default_templates = ""') == 1
    config.write_text(text.replace('default_templates = ""',
                                   f"default_templates = {json.dumps(str(product))}"), encoding="utf-8")

    copied = cli_json(dealer, "templates", "copy", "quote")
    own = dealer / "templates" / "quote.docx"
    assert copied["path"] == str(own) and copied["backup"] is None
    assert refused(dealer, "templates", "copy", "quote") == (
        f"错误：本店已有 quote.docx 的副本（{own}）；要用默认模板重新复制请加 --force"
        f"（原副本改名保留为 quote.docx.<时间>.bak）")
    edit_paragraph(own, "一、客户及车辆信息", "一、尊贵客户及车辆信息")
    listed = {row["name"]: row for row in cli_json(dealer, "templates", "list")}
    assert listed["quote.docx"]["state"] == "current" and listed["quote.docx"]["path"] == str(own)
    assert listed["contract.docx"]["state"] == "default"
    assert listed["contract.docx"]["path"] == str(product / "contract.docx")

    cli_json(dealer, "new", "quote", "--as", "zhang", data=example("quote"))
    [issued] = cli_json(dealer, "fire", "Q-1", "issue", "--as", "zhang")["documents"]
    assert "一、尊贵客户及车辆信息" in pdf_text(Path(issued["pdf"]))
    meta = read_metadata(Path(issued["pdf"]).read_bytes())
    assert meta["DealerDocsTemplate"] == "quote.docx" and meta["DealerDocsTemplateSHA256"] == sha(own)

    # an upgrade replaces the product's quote.docx with a newer one
    newer = tmp_path / "newer.docx"
    shutil.copyfile(SHIPPED / "quote.docx", newer)
    edit_paragraph(newer, "商谈报价单", "商谈报价单（新版）")
    shutil.copyfile(newer, product / "quote.docx")
    [revised] = cli_json(dealer, "fire", "Q-1", "revise", "--as", "zhang",
                         data=example("revision"))["documents"]
    printed = pdf_text(Path(revised["pdf"]))
    assert "一、尊贵客户及车辆信息" in printed and "新版" not in printed
    assert read_metadata(Path(revised["pdf"]).read_bytes())["DealerDocsTemplateSHA256"] == sha(own)

    listed = {row["name"]: row for row in cli_json(dealer, "templates", "list")}
    assert listed["quote.docx"]["state"] == "lagging"
    shown = run_cli("templates", "diff", "quote", cwd=dealer).stdout.splitlines()
    assert shown[1:5] == ["  默认模板的改动（复制时 → 现在，1 处）：", "    段落 1：",
                          "      − 商谈报价单", "      + 商谈报价单（新版）"]
    assert "      + 一、尊贵客户及车辆信息" in shown
    linted = run_cli("lint", "quote", cwd=dealer)  # a warning: exit 0
    assert f"警告 quote.docx｜本店副本 {own}｜默认模板在本店复制之后已更新" in linted.stdout
    assert linted.stdout.splitlines()[-1] == "共 0 个错误、1 个警告"
    assert run_cli("templates", "accept", "quote", cwd=dealer).returncode == 0
    assert run_cli("lint", "quote", cwd=dealer).stdout.splitlines() == [
        "流程 quote（商谈报价单）用到的 Python 函数：functions.money、functions.sum_of、"
        "functions.total、validators.mobile", "未发现问题"]
