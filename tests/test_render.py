"""The renderer on its own: small .docx templates made with python-docx, real docxtpl."""
from __future__ import annotations

import hashlib
import io
import os
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import docx
import pytest
from lxml import etree

from engine.errors import TemplateError
from engine.render import Renderer

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@pytest.fixture
def renderer() -> Renderer:
    return Renderer()


def make_template(path: Path, *paragraphs: str, header: str | None = None) -> Path:
    doc = docx.Document()
    for text in paragraphs:
        doc.add_paragraph(text)
    if header is not None:
        doc.sections[0].header.paragraphs[0].text = header
    doc.save(path)
    return path


def strict_parts(data: bytes) -> dict[str, etree._Element]:
    """Every XML part, parsed strictly (no recovery)."""
    parser = etree.XMLParser(recover=False, resolve_entities=False)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: etree.fromstring(zf.read(name), parser) for name in zf.namelist()
                if name.endswith((".xml", ".rels"))}


def paragraphs(data: bytes) -> list[str]:
    return [p.text for p in docx.Document(io.BytesIO(data)).paragraphs]


@pytest.mark.parametrize("value, shown", [
    ('A&B <C> "D" \'E\'', 'A&B <C> "D" \'E\''),
    ("</w:t></w:r></w:p><w:p><w:r><w:t>x", "</w:t></w:r></w:p><w:p><w:r><w:t>x"),
    ("{{ 7*7 }}", "{{ 7*7 }}"),
    ("{% for x in range(3) %}x{% endfor %}", "{% for x in range(3) %}x{% endfor %}"),
    ("a\x0bb\x0c\x07c\x00d", "abcd"),
    ("刘晓明 🚗", "刘晓明 🚗"),
])
def test_values_render_literally(renderer, tmp_path, value, shown):
    template = renderer.load(make_template(tmp_path / "t.docx", "客户：{{ name }}。"))

    out = renderer.render(template, {"name": value})

    strict_parts(out)
    assert paragraphs(out) == [f"客户：{shown}。"]


def test_newline_becomes_a_line_break_in_the_same_paragraph(renderer, tmp_path):
    template = renderer.load(make_template(tmp_path / "t.docx", "备注：{{ remarks }}"))

    out = renderer.render(template, {"remarks": "第一行\n第二行\r\n第三行"})

    body = strict_parts(out)["word/document.xml"]
    [para] = body.iter(f"{W}p")
    assert len(list(para.iter(f"{W}br"))) == 2
    assert [t.text for t in para.iter(f"{W}t")] == ["备注：第一行", "第二行", "第三行"]


def test_undefined_variable_names_template_and_variable(renderer, tmp_path):
    template = renderer.load(make_template(tmp_path / "offer.docx", "{{ name }} {{ mobile }}"))

    with pytest.raises(TemplateError) as raised:
        renderer.render(template, {"name": "刘晓明"})

    assert raised.value.message == "模板 offer.docx 使用了未提供的变量：'mobile' is undefined"
    assert raised.value.details == {"template": "offer.docx"}


def test_undefined_attribute_is_an_error_too(renderer, tmp_path):
    template = renderer.load(make_template(tmp_path / "t.docx", "{{ dealer.fax }}"))

    with pytest.raises(TemplateError) as raised:
        renderer.render(template, {"dealer": {"name": "星辰"}})

    assert raised.value.message == ("模板 t.docx 使用了未提供的变量："
                                    "'dict object' has no attribute 'fax'")


@pytest.mark.parametrize("text, words", [
    ("客户：{{ name ", ["标签写法有误", "附近文字：客户：{{ name"]),
    ("{% if %}x{% endif %}", ["标签写法有误", "Expected an expression"]),
    ("{% for x in items %}", ["标签写法有误", "endfor"]),
    ("{{ name | no_such_filter }}", ["标签写法有误", "no_such_filter"]),
])
def test_malformed_tags(renderer, tmp_path, text, words):
    template = renderer.load(make_template(tmp_path / "bad.docx", text))

    with pytest.raises(TemplateError) as raised:
        renderer.render(template, {"name": "x", "items": []})

    assert raised.value.message.startswith("模板 bad.docx ")
    for word in words:
        assert word in raised.value.message, raised.value.message


@pytest.mark.parametrize("content", [
    b"this is plain text, not a zip",
    b"",
])
def test_not_a_docx(renderer, tmp_path, content):
    path = tmp_path / "fake.docx"
    path.write_bytes(content)

    with pytest.raises(TemplateError) as raised:
        renderer.render(renderer.load(path), {})

    assert raised.value.message == "模板 fake.docx 不是有效的 Word 文档：File is not a zip file"


def test_a_zip_without_word_parts(renderer, tmp_path):
    path = tmp_path / "fake.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "hi")

    with pytest.raises(TemplateError) as raised:
        renderer.render(renderer.load(path), {})

    assert raised.value.message == ("模板 fake.docx 不是有效的 Word 文档：\"There is no item named "
                                    "'[Content_Types].xml' in the archive\"")


def test_missing_template(renderer, tmp_path):
    with pytest.raises(TemplateError) as raised:
        renderer.load(tmp_path / "gone.docx")

    assert raised.value.message.startswith(f"无法读取模板 {tmp_path / 'gone.docx'}")
    assert raised.value.details == {"template": str(tmp_path / "gone.docx")}


@pytest.mark.parametrize("expression, context, shown", [
    ("{{ v|money }}", {"v": Decimal("152669.57")}, "¥152,669.57"),
    ("{{ v|money }}", {"v": "1234.5"}, "¥1,234.50"),
    ("{{ v|money }}", {"v": Decimal("-0.004")}, "¥0.00"),
    ("{{ v|money }}", {"v": None}, "—"),
    ("{{ v|rmb_upper }}", {"v": Decimal("152669.57")}, "壹拾伍万贰仟陆佰陆拾玖元伍角柒分"),
    ("{{ v|rmb_upper }}", {"v": "100"}, "壹佰元整"),
    ("{{ v|rmb_upper }}", {"v": None}, "—"),
    ("{{ v|cn_date }}", {"v": date(2026, 1, 5)}, "2026年1月5日"),
    ("{{ v|cn_date }}", {"v": "2026-11-26"}, "2026年11月26日"),
    ("{{ v|cn_date }}", {"v": datetime(2026, 11, 26, 14, 5)}, "2026年11月26日"),
    ("{{ v|cn_date }}", {"v": None}, "—"),
    ("{{ v|cn_datetime }}", {"v": datetime(2026, 11, 26, 9, 5)}, "2026年11月26日 09:05"),
    ("合计 {{ v|money }}（{{ v|rmb_upper }}）", {"v": Decimal("0.5")}, "合计 ¥0.50（伍角）"),
])
def test_filters(renderer, tmp_path, expression, context, shown):
    template = renderer.load(make_template(tmp_path / "f.docx", expression))

    assert paragraphs(renderer.render(template, context)) == [shown]


def test_filter_error_does_not_blame_the_document(renderer, tmp_path):
    template = renderer.load(make_template(tmp_path / "f.docx", "{{ v|money }}"))

    with pytest.raises(TemplateError) as raised:
        renderer.render(template, {"v": "abc"})

    assert raised.value.message == '模板 f.docx 中的表达式或过滤器出错：不是有效金额（收到 "abc"）'


def test_template_bytes_are_cached_until_the_file_changes(renderer, tmp_path):
    path = make_template(tmp_path / "t.docx", "第一版 {{ name }}")
    first = renderer.load(path)

    assert renderer.load(path) is first
    assert first.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    make_template(path, "第二版，更长的文字 {{ name }}")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = renderer.load(path)

    assert second is not first
    assert second.data == path.read_bytes()
    assert second.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() != first.sha256
    assert paragraphs(renderer.render(second, {"name": "x"})) == ["第二版，更长的文字 x"]
    assert renderer.load(path) is second


def test_same_size_rewrite_is_seen_through_the_mtime(renderer, tmp_path):
    path = make_template(tmp_path / "t.docx", "AAAA {{ name }}")
    first = renderer.load(path)
    original = path.read_bytes()
    make_template(path, "BBBB {{ name }}")
    assert len(path.read_bytes()) == len(original)  # same size: only the mtime tells
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    second = renderer.load(path)

    assert second is not first
    assert paragraphs(renderer.render(second, {"name": "x"})) == ["BBBB x"]


def test_core_properties_are_set(renderer, tmp_path):
    template = renderer.load(make_template(tmp_path / "t.docx", "{{ name }}"))

    out = renderer.render(template, {"name": "x"}, {
        "title": "商谈报价单 BJ-2026-000001", "author": "北京星辰汽车销售服务有限公司",
        "subject": "商谈报价单", "identifier": "BJ-2026-000001", "keywords": "Q-1 BJ-2026-000001",
        "comments": "dealerdocs quote/issue\x0b case Q-1"})

    props = docx.Document(io.BytesIO(out)).core_properties
    assert props.title == "商谈报价单 BJ-2026-000001"
    assert props.author == "北京星辰汽车销售服务有限公司"
    assert props.subject == "商谈报价单"
    assert props.identifier == "BJ-2026-000001"
    assert props.keywords == "Q-1 BJ-2026-000001"
    assert props.comments == "dealerdocs quote/issue case Q-1"
    strict_parts(out)


def test_rendering_twice_leaks_nothing(renderer, tmp_path):
    template = renderer.load(make_template(
        tmp_path / "t.docx", "客户：{{ name }}", "{%p for item in items %}", "- {{ item }}",
        "{%p endfor %}", "完"))
    original = template.data

    first = renderer.render(template, {"name": "甲", "items": ["一", "二", "三"]})
    second = renderer.render(template, {"name": "乙", "items": ["四"]})

    assert paragraphs(first) == ["客户：甲", "- 一", "- 二", "- 三", "完"]
    assert paragraphs(second) == ["客户：乙", "- 四", "完"]
    assert template.data == original


def test_headers_are_rendered_with_the_same_context(renderer, tmp_path):
    template = renderer.load(make_template(tmp_path / "t.docx", "正文 {{ number }}",
                                           header="编号 {{ number }} & {{ name }}"))

    out = renderer.render(template, {"number": "BJ-2026-000001", "name": "A&B"})

    strict_parts(out)
    header = docx.Document(io.BytesIO(out)).sections[0].header.paragraphs[0].text
    assert header == "编号 BJ-2026-000001 & A&B"


def test_broken_header_xml_is_a_template_error(renderer, tmp_path):
    template = renderer.load(make_template(tmp_path / "t.docx", "正文", header="{{ v|safe }}"))

    with pytest.raises(TemplateError) as raised:
        renderer.render(template, {"v": "<b>粗体"})

    # then lxml's own words for the fault, which change with its version
    assert raised.value.message.startswith("模板 t.docx 渲染后不是有效的 XML（是否用了 |safe？）：")
    assert raised.value.details == {"template": "t.docx"}


def test_broken_body_xml_is_a_template_error(renderer, tmp_path):
    template = renderer.load(make_template(tmp_path / "t.docx", "客户：{{ v|safe }}"))

    with pytest.raises(TemplateError) as raised:
        renderer.render(template, {"v": "<b>粗体"})

    # then lxml's own words for the fault, which change with its version
    assert raised.value.message.startswith("模板 t.docx 渲染后不是有效的 XML（是否用了 |safe？）：")
    assert raised.value.details == {"template": "t.docx"}
