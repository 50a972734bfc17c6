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

from helpers import ROOT

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
    template = DocxTemplate(str(CONFIG.templates_dir / doc.template))
    used = template.get_undeclared_template_variables(jinja_env=make_environment())
    assert used - set(wf.fields) - RESERVED_NAMES == set()


@pytest.mark.parametrize("item", DOCUMENTS, ids=[_ids(i) for i in DOCUMENTS])
def test_template_fonts_are_mapped_and_language_is_chinese(item):
    _, doc = item
    with zipfile.ZipFile(CONFIG.templates_dir / doc.template) as zf:
        xml = "".join(zf.read(n).decode("utf-8") for n in zf.namelist()
                      if n.startswith("word/") and n.endswith(".xml"))
    named = {font for element in re.findall(r"<w:rFonts [^>]*>", xml)
             for font in re.findall(r'w:(?:ascii|hAnsi|eastAsia|cs)="([^"]+)"', element)}
    named |= set(re.findall(r'<w:font w:name="([^"]+)"', xml))  # the font table
    assert named and named <= MAPPED_FONTS, named - MAPPED_FONTS
    assert 'w:eastAsia="zh-CN"' in xml
