"""Workflow diagrams (engine/diagram.py): the DOT source names every state, trigger, role and
document of each shipped workflow; `dot` turns it into SVG that parses and carries the Chinese
text, and into a PNG of a sensible size; labels are escaped; a missing or failing `dot` is a
ConversionError that says what to do."""
from __future__ import annotations

import html
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine import load_config
from engine.diagram import render, to_dot, write_diagram
from engine.errors import ConversionError, InputError
from engine.workflow import load_workflows

from helpers import ROOT, make_dealer_dir, point_at_workflows, with_customers

SHIPPED = sorted(p.stem for p in (ROOT / "workflows").glob("*.toml"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def config():
    return load_config(ROOT / "config.toml")


@pytest.fixture(scope="module")
def workflows(config):
    return load_workflows(config)


def svg_text(svg: bytes) -> str:
    """All text of an SVG (parsed as XML, so it must be well-formed)."""
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    return "\n".join(t.strip() for t in root.itertext() if t.strip())


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def node_line(dot: str, state: str) -> str:
    [line] = [ln for ln in dot.splitlines() if ln.strip().startswith(f'"{state}" [')]
    return line


def label_text(dot: str) -> str:
    """The words of the labels as a reader sees them: wrapped lines (table rows) joined
    again, markup removed, entities decoded, spaces dropped (a line may break at one)."""
    joined = re.sub(r"</td></tr><tr><td>", "", dot)
    return html.unescape(re.sub(r"<[^>]+>", "", joined)).replace(" ", "")


def edges(dot: str) -> list[tuple[str, str]]:
    return re.findall(r'^\s*"([^"]+)" -> "([^"]+)"', dot, flags=re.M)


# --- DOT source ------------------------------------------------------------------------------

def test_shipped_workflows_are_all_covered(workflows):
    assert set(workflows) == set(SHIPPED) and len(SHIPPED) >= 5


@pytest.mark.parametrize("key", SHIPPED)
def test_dot_names_every_state_trigger_role_and_document(key, workflows, config):
    wf = workflows[key]
    dot = to_dot(wf, config)
    assert dot.startswith(f'digraph "{key}" {{') and dot.rstrip().endswith("}")
    assert "rankdir=LR" in dot
    assert dot.count('fontname="Noto Sans CJK SC"') == 3  # graph, node and edge defaults
    assert wf.title in dot
    for name, state in wf.states.items():
        assert state.label in node_line(dot, name)
        assert f">{name}</font>" in node_line(dot, name)  # the key, small and grey
    text = label_text(dot)
    for t in wf.transitions:
        assert f"({t.trigger})" in dot  # never wrapped
        assert t.label.replace(" ", "") in text
        for role in t.roles:
            assert config.role_label(role) != role
            assert config.role_label(role) in text
        for doc in t.documents:
            assert f"出具：{wf.documents[doc].title}" in text
    # no role key leaks into a label where its Chinese name belongs
    for role in {r for t in wf.transitions for r in t.roles}:
        assert f"[{role}" not in dot and f"、{role}" not in dot


@pytest.mark.parametrize("key", SHIPPED)
def test_initial_and_final_states_are_marked(key, workflows, config):
    wf = workflows[key]
    dot = to_dot(wf, config)
    assert f'"__start__" -> "{wf.initial}"' in dot
    assert "penwidth" in node_line(dot, wf.initial)
    for name, state in wf.states.items():
        assert ("peripheries=2" in node_line(dot, name)) == state.final, name
        if name != wf.initial:
            assert "penwidth" not in node_line(dot, name)


@pytest.mark.parametrize("key", SHIPPED)
def test_every_transition_and_source_has_an_arrow(key, workflows, config):
    """One arrow per (transition, source); a transition from many states (cancel) runs its
    arrows through a junction dot that carries the label once."""
    wf = workflows[key]
    drawn = edges(to_dot(wf, config))
    junction_of = {}
    for src, dst in drawn:
        if dst.startswith("__junction_"):
            junction_of.setdefault(dst, set()).add(src)
    for i, t in enumerate(wf.transitions):
        junction = f"__junction_{i}__"
        if junction in junction_of:
            assert junction_of[junction] == set(t.sources)
            assert (junction, t.dest) in drawn
        else:
            for source in t.sources:
                assert (source, t.dest) in drawn, (t.trigger, source)
    states = set(wf.states) | {"__start__"} | set(junction_of)
    assert {n for pair in drawn for n in pair} <= states


def test_quote_arrows_exactly(workflows, config):
    drawn = edges(to_dot(workflows["quote"], config))
    assert sorted(drawn) == sorted([
        ("__start__", "draft"), ("draft", "draft"), ("draft", "issued"), ("issued", "issued"),
        ("issued", "accepted"), ("issued", "expired"), ("draft", "cancelled"),
        ("issued", "cancelled"),
        # a list price off the catalogue's waits for a sales manager, who issues or sends back
        ("draft", "pending_approval"), ("issued", "pending_approval"),
        ("pending_approval", "issued"), ("pending_approval", "draft")])


def test_conditions_routes_and_separation_of_duties(workflows, config):
    contract = label_text(to_dot(workflows["contract"], config))
    # submit routes by the discount: the first route's condition, and "otherwise" on the second
    assert "条件：优惠不超过审批阈值" in contract
    assert "条件：不满足「优惠不超过审批阈值」「车辆价格与车型库指导价一致」时" in contract
    # approve/reject: not by whoever created or submitted the contract
    assert contract.count("不得由「创建」「提交合同」者本人") == 2
    assert "作废已出具文档" in contract  # cancel voids the issued contract
    rect = label_text(to_dot(workflows["rectification"], config))
    assert "不得由「提交整改计划」者本人" in rect
    assert "条件：整改期限未过；延期次数未用完" in rect
    delivery = label_text(to_dot(workflows["delivery"], config))
    assert "条件：PDI检查合格" in delivery and "条件：不满足「PDI检查合格」时" in delivery
    quote = to_dot(workflows["quote"], config)
    assert "条件：报价仍在有效期内" in quote and "条件：报价已过有效期" in quote
    # exits to a final state other than the normal end are dashed
    [expire] = [ln for ln in quote.splitlines() if '"issued" -> "expired"' in ln]
    [accept] = [ln for ln in quote.splitlines() if '"issued" -> "accepted"' in ln]
    assert "style=dashed" in expire and "dashed" not in accept


def test_long_labels_are_wrapped_without_losing_text(workflows, config):
    """Arrow labels are broken into short lines (each a table row) so a left-to-right picture
    stays narrow; the words themselves survive."""
    dot = to_dot(workflows["rectification"], config)
    rows = re.findall(r"<td>(.*?)</td>", dot)
    plain = [re.sub(r"<[^>]+>", "", row) for row in rows]
    assert plain and max(len(p) for p in plain) <= 20
    assert "出具：整改项目延期申请书" in plain


# --- escaping --------------------------------------------------------------------------------

def edited_quote_workflow(tmp_path: Path, replacements: dict[str, str]):
    """A dealership whose only workflow is quote.toml with ``replacements`` applied."""
    text = (ROOT / "workflows" / "quote.toml").read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    config_path = make_dealer_dir(tmp_path / "dealer")
    folder = tmp_path / "dealer" / "workflows"
    folder.mkdir()
    for name, content in with_customers({"quote.toml": text}).items():
        (folder / name).write_text(content, encoding="utf-8")
    config = load_config(point_at_workflows(config_path, "workflows"))
    return load_workflows(config)["quote"], config


def test_markup_characters_in_labels_are_escaped(tmp_path):
    wf, config = edited_quote_workflow(tmp_path, {
        'label = "草稿"': 'label = "A&B <审批>"',
        'label = "修改草稿"': 'label = "改\\"引号\\" & <b>x</b>"',
        'key = "quote"\ntitle = "商谈报价单"': 'key = "quote"\ntitle = "报价 <R&D>"',
    })
    assert wf.states["draft"].label == "A&B <审批>"
    dot = to_dot(wf, config)
    assert "A&amp;B &lt;审批&gt;" in dot
    assert "改&quot;引号&quot; &amp; &lt;b&gt;x&lt;/b&gt;" in dot
    assert "报价 &lt;R&amp;D&gt;" in dot
    for raw in ("A&B", "<审批>", '"引号"', "<b>x</b>", "<R&D>"):
        assert raw not in dot
    text = svg_text(render(dot, "svg"))
    assert "A&B <审批>" in text
    assert '改"引号" & <b>x</b>' in text
    assert "报价 <R&D>" in text


# --- rendering -------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["quote", "rectification"])
def test_svg_is_valid_xml_with_the_chinese_labels(key, workflows, config):
    wf = workflows[key]
    svg = render(to_dot(wf, config), "svg")
    text = svg_text(svg)
    assert wf.title in text
    for name, state in wf.states.items():
        assert state.label in text and name in text
    for t in wf.transitions:
        assert t.label in text and f"({t.trigger})" in text
    for role in {r for t in wf.transitions for r in t.roles}:
        assert config.role_label(role) in text
    # the CJK font was asked for, so the text is drawn with it rather than a fallback
    assert "Noto Sans CJK SC" in svg.decode("utf-8")


@pytest.mark.parametrize("key", ["contract", "rectification"])
def test_png_has_the_signature_and_a_sensible_size(key, workflows, config):
    data = render(to_dot(workflows[key], config), "png")
    width, height = png_size(data)
    assert 600 <= width <= 3000 and 300 <= height <= 2000, (width, height)
    assert width / height < 4.5  # not a long thin strip
    assert len(data) > 20_000  # actually drawn, not an empty canvas


def test_write_diagram_picks_the_format_from_the_suffix(tmp_path, workflows, config):
    wf = workflows["quote"]
    svg = write_diagram(wf, config, tmp_path / "out" / "quote.svg")
    png = write_diagram(wf, config, tmp_path / "out" / "quote.PNG")
    assert svg == tmp_path / "out" / "quote.svg"
    assert "草稿" in svg_text(svg.read_bytes())
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(InputError, match=r"\.svg 或 \.png"):
        write_diagram(wf, config, tmp_path / "out" / "quote.pdf")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["quote.PNG", "quote.svg"]


def test_unknown_format_is_refused(workflows, config):
    with pytest.raises(InputError, match="pdf"):
        render(to_dot(workflows["quote"], config), "pdf")


def test_missing_dot_says_to_install_graphviz(tmp_path, monkeypatch, workflows, config):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ConversionError) as err:
        render(to_dot(workflows["quote"], config), "svg")
    assert "graphviz" in err.value.message and "make setup" in err.value.message
    with pytest.raises(ConversionError):
        write_diagram(workflows["quote"], config, tmp_path / "quote.svg")
    assert not (tmp_path / "quote.svg").exists()


def test_failing_dot_reports_its_stderr():
    with pytest.raises(ConversionError) as err:
        render("digraph { a -> }", "svg")
    assert "syntax error" in err.value.message
    assert err.value.details["returncode"] != 0 and "syntax error" in err.value.details["stderr"]
