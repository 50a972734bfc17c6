"""Template and workflow lint: find what would go wrong before staff issue a document.

Pure analysis: reads the .docx and .toml files, parses the templates the way docxtpl does,
renders in memory with example data; no LibreOffice, nothing written. Every problem is a
:class:`Finding` with the file, the place (paragraph or table cell with its text, or a TOML
key), what is wrong and how to fix it, in Chinese for the people who edit templates.

Template checks: the file opens; tags are well formed in the text Word shows (after its run
splitting); each part compiles as Jinja after docxtpl's own preprocessing; every variable is a
field of the workflow or a name the engine provides; fonts are ones engine/fonts.conf maps to
Noto CJK and zh-CN is the East Asian language; a test render with example data succeeds.
Workflow checks: the state graph (unreachable, stuck and leaky final states), roles nobody
holds, documents whose template never prints ``{{ doc.number }}``. Templates are checked where
documents are made from them: the store's own copy if it has one (engine/templates.py), and a
copy whose default has changed since it was copied is a warning.
"""
from __future__ import annotations

import dataclasses
import difflib
import html
import json
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from docx import Document
from docxtpl import DocxTemplate
from jinja2 import meta, nodes
from lxml import etree

from . import docxtext, templates as layers
from .config import Config
from .defaults import package_path, product
from .errors import DealerDocsError, TemplateError, WorkflowDefinitionError
from .pdf import signature_bookmarks
from .render import Renderer, make_environment
from .workflow import RESERVED_NAMES, Workflow, load_workflow, load_workflows

FONTS_CONF = package_path("fonts.conf")
W = docxtext.W
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
# Word turns straight quotes into these; docxtpl turns them back inside tags (patch_xml), so
# the template still works, but a quote meant literally inside a string would be changed.
CURLY_QUOTE_SEVERITY = "warning"


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" | "warning"
    file: str
    place: str
    problem: str
    fix: str


def _error(file: str, place: str, problem: str, fix: str) -> Finding:
    return Finding("error", file, place, problem, fix)


def _warning(file: str, place: str, problem: str, fix: str) -> Finding:
    return Finding("warning", file, place, problem, fix)


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width] + "…"


# --- paragraphs as Word shows them ------------------------------------------------------------

def _paragraphs(label: str, root: Any) -> Iterator[docxtext.Paragraph]:
    """docxtext's paragraphs, each placed with the start of its text (what a finding names)."""
    for p in docxtext.paragraphs_of(label, root):
        yield dataclasses.replace(p, where=f"{p.where}：「{_short(p.text)}」")


# --- tags ---------------------------------------------------------------------------------------

_OPEN = re.compile(r"\{[{%#]")
_CLOSE = {"{{": "}}", "{%": "%}", "{#": "#}"}
_STRUCTURAL = re.compile(r"^\{[{%](p|tr|tc)\s")
_BLOCK = re.compile(r"^\{%[-+]?\s*(?:(?:p|tr|tc|r)\s+)?(for|endfor|if|endif)\b")
_FULLWIDTH_OPEN = re.compile(r"[{｛][{｛%％]")
_FULLWIDTH = re.compile("[｛｝％｜（），＂．]")
_CURLY = re.compile("[“”‘’]")
_ENDS = {"endfor": "for", "endif": "if"}


def _tags(text: str) -> tuple[list[str], str | None]:
    """The complete tags of a paragraph, and the start of an unclosed one (or None)."""
    tags, pos = [], 0
    while m := _OPEN.search(text, pos):
        end = text.find(_CLOSE[m.group()], m.end())
        if end < 0:
            return tags, text[m.start():]
        tags.append(text[m.start():end + 2])
        pos = end + 2
    return tags, None


def _check_tag(tag: str, para: docxtext.Paragraph, file: str) -> list[Finding]:
    out = []
    inner = tag[2:-2]
    if tag.startswith("{{") and not (re.match(r"[-+]?(?:p|r|tr|tc)?\s", inner)
                                     and re.search(r"\s-?$", inner)):
        out.append(_warning(file, para.where, f"{tag} 的花括号内侧没有留空格",
                            f"写成 {{{{ {inner.strip(' -')} }}}}（templates/README.md 第 3 节第 1 条）"))
    if _CURLY.search(tag):
        out.append(Finding(CURLY_QUOTE_SEVERITY, file, para.where,
                           f"{tag} 里有弯引号 “ ” ‘ ’（Word 把直引号自动改成了弯引号）",
                           "改回英文直引号 \"，并在 Word“自动更正 → 键入时自动套用格式”中关闭"
                           "“直引号替换为弯引号”"))
    code = re.sub(r'"[^"]*"|\'[^\']*\'', "", _CURLY.sub('"', tag))  # strings may be Chinese
    if wide := sorted(set(_FULLWIDTH.findall(code))):
        out.append(_error(file, para.where, f"{tag} 里有全角符号 {' '.join(wide)}",
                          "切换到英文输入法，重新输入标记中引号以外的部分"))
    if m := _STRUCTURAL.match(tag):
        out += _check_structural(tag, m.group(1), para, file)
    return out


def _check_structural(tag: str, kind: str, para: docxtext.Paragraph, file: str) -> list[Finding]:
    """``{%p``/``{%tr``/``{%tc``: docxtpl replaces the whole paragraph / row / cell with it."""
    out = []
    if re.search(r"[%}]", tag[3:-2]):
        out.append(_error(file, para.where, f"{tag} 的表达式里有 % 或 }}，docxtpl 处理不了",
                          "把这部分计算移到流程的计算器里，或改用普通 {% if %} 写在同一段之内"))
    if kind == "p":
        return out
    if para.cell is None:
        return out + [_error(file, para.where, f"{{%{kind} 标记不在表格里",
                             f"{{%{kind} 只能用在表格中；整段的条件或循环请用 {{%p … %}}")]
    if kind == "tr":
        row = docxtext.nearest(para.cell, W + "tr")
        others = [docxtext.text_of(p) for c in docxtext.own(row, W + "tc", W + "tr")
                  if c is not para.cell for p in c.iter(W + "p")]
        what, fix = "表格行还有其他文字，出具时整行会被删除", "单独占一整行，同一行的其他格子留空或合并"
    else:
        others = [docxtext.text_of(p) for p in docxtext.own(para.cell, W + "p", W + "tc")
                  if p is not para.element]
        what, fix = "单元格还有其他段落文字，出具时整格会被替换", "单独占一个单元格"
    if any(t.strip() for t in others):
        out.append(_error(file, para.where, f"{tag} 所在的{what}", f"让 {{%{kind} … %}} {fix}"))
    return out


def _check_paragraph(para: docxtext.Paragraph, file: str, stack: list[tuple[str, str, str]]) -> list[Finding]:
    out = []
    if any("｛" in m or "％" in m for m in _FULLWIDTH_OPEN.findall(para.text)):
        out.append(_error(file, para.where, "标记的开头用了全角的 ｛ 或 ％，系统不会把它当作标记，"
                          "会原样印出", "切换到英文输入法，重新输入整个标记"))
    tags, unclosed = _tags(para.text)
    if unclosed is not None:
        closer = _CLOSE[unclosed[:2]]
        out.append(_error(file, para.where,
                          f"标记「{_short(unclosed, 20)}」在本段内没有结束（缺少 {closer}）",
                          f"补上 {closer}；一个标记必须写在同一段里。拿不准时删掉整个标记，"
                          "用英文输入法一次性重新输入"))
    for tag in tags:
        out += _check_tag(tag, para, file)
    structural = [t for t in tags if _STRUCTURAL.match(t)]
    if structural and (len(tags) > 1 or para.text.replace(structural[0], "", 1).strip()):
        kind = _STRUCTURAL.match(structural[0]).group(1)
        unit = {"p": "段", "tr": "行", "tc": "格"}[kind]
        out.append(_error(file, para.where, f"{structural[0]} 和其他文字或标记在同一段里",
                          f"让 {{%{kind} … %}} 单独占一{unit}（这一{unit}出具时整{unit}删除），"
                          f"一{unit}最多放一个"))
    return out + _balance(tags, para, file, stack)


def _balance(tags: list[str], para: docxtext.Paragraph, file: str, stack: list[tuple[str, str, str]]
             ) -> list[Finding]:
    """for/endfor and if/endif pairing; ``stack`` holds the open ones of the current part."""
    out = []
    for tag in tags:
        m = _BLOCK.match(tag)
        if not m:
            continue
        word = m.group(1)
        if word in ("for", "if"):
            stack.append((word, para.where, tag))
        elif stack and stack[-1][0] == _ENDS[word]:
            stack.pop()
        elif any(s[0] == _ENDS[word] for s in stack):
            out.append(_error(file, para.where, f"{tag} 与前面的 {stack[-1][2]} 交叉嵌套",
                              f"先结束 {stack[-1][2]}，再写 {tag}"))
            while stack and stack.pop()[0] != _ENDS[word]:
                pass
        else:
            out.append(_error(file, para.where, f"多余的 {tag}：前面没有对应的 {_ENDS[word]}",
                              f"删掉它，或在前面补上对应的 {{% {_ENDS[word]} … %}}"))
    return out


def _unclosed(stack: list[tuple[str, str, str]], file: str) -> list[Finding]:
    return [_error(file, place, f"{tag} 没有对应的 end{word}（同一正文 / 页眉 / 页脚内必须配对）",
                   f"在该结束的位置写上对应的 {{% end{word} %}}（与开头同类：p、tr 或普通标记）")
            for word, place, tag in stack]


# --- Jinja, as docxtpl sees it ----------------------------------------------------------------

def _compile(path: Path, file: str) -> tuple[list[tuple[str, nodes.Template]], list[Finding]]:
    """Each part preprocessed by docxtpl and compiled; (label, AST) pairs and syntax errors."""
    tpl = DocxTemplate(str(path))
    tpl.init_docx()
    sources = [("正文", tpl.patch_xml(tpl.get_xml()))]
    for uri, kind in ((tpl.HEADER_URI, "页眉"), (tpl.FOOTER_URI, "页脚")):
        for _, part in tpl.get_headers_footers(uri):
            sources.append((f"{kind}（{Path(part.partname).name}）",
                            tpl.patch_xml(tpl.get_part_xml(part))))
    env, asts, out = make_environment(), [], []
    for label, xml in sources:
        xml = re.sub(r"<w:p([ >])", r"\n<w:p\1", xml)  # as docxtpl renders: one line a paragraph
        try:
            ast = env.parse(xml)
            env.compile(ast)  # unknown filters are found here
            asts.append((label, ast))
        except jinja2.TemplateSyntaxError as err:
            lines = xml.splitlines()
            line = lines[err.lineno - 1] if err.lineno and err.lineno <= len(lines) else ""
            near = html.unescape(re.sub(r"<[^>]+>", "", line))
            out.append(_error(file, f"{label}：「{_short(near)}」", f"Jinja 语法错误：{err.message}",
                              _syntax_fix(err.message or "", env)))
    return asts, out


def used_names(path: Path) -> set[str]:
    """The names a template reads from its context, with every attribute path written after
    them: ``customer_name``, ``totals``, ``totals.grand_total``, ``doc``, ``doc.issuer.name`` …
    (loop variables and names set inside the template are left out). A TemplateError when a
    part does not parse (``dealerdocs lint`` says where)."""
    path = Path(path)
    asts, syntax = _compile(path, path.name)
    if syntax:
        raise TemplateError(f"模板 {path.name} 有 Jinja 语法错误（{syntax[0].place}：{syntax[0].problem}）；"
                            f"请先运行 dealerdocs lint {path.name}", template=path.name)
    names: set[str] = set()
    for _, ast in asts:
        top = meta.find_undeclared_variables(ast)
        names |= top
        for node in ast.find_all(nodes.Getattr):
            chain = []
            while isinstance(node, nodes.Getattr):
                chain.append(node.attr)
                node = node.node
            if isinstance(node, nodes.Name) and node.name in top:
                parts = [node.name, *reversed(chain)]
                names |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
    return names


def _syntax_fix(message: str, env: jinja2.Environment) -> str:
    m = re.search(r"No filter named '(\w+)'", message)
    if m:
        close = difflib.get_close_matches(m.group(1), list(env.filters), n=1)
        return (f"是否想用过滤器 {close[0]}？" if close else "") + \
            "可用的格式过滤器见 templates/README.md 第 2 节（money、rmb_upper、cn_date、cn_datetime）"
    return "检查这段附近的标记：拼写、for/endfor 与 if/endif 配对、英文半角符号"


def _place_of(tags: list[tuple[str, str]], name: str, default: str) -> str:
    pattern = re.compile(r"(?<![\w.])" + re.escape(name) + r"\b")
    return next((place for place, tag in tags if pattern.search(tag)), default)


def _check_variables(asts, workflows: list[Workflow], tags, file: str) -> list[Finding]:
    if not workflows:
        return []
    used = set().union(*(meta.find_undeclared_variables(ast) for _, ast in asts))
    fields = sorted(set().union(*(wf.fields for wf in workflows)))
    out = []
    for name in sorted(used - RESERVED_NAMES):
        missing = [wf.key for wf in workflows if name not in wf.fields]
        if not missing:
            continue
        close = difflib.get_close_matches(name, fields + sorted(RESERVED_NAMES), n=1)
        out.append(_error(file, _place_of(tags, name, "模板变量"),
                          f"变量 {name} 不是流程 {'、'.join(missing)} 的字段，也不是系统提供的名称",
                          (f"是否想写 {close[0]}？" if close else "")
                          + "可用名称见 templates/README.md 的变量表（区分大小写）"))
    return out


def _check_attributes(asts, context: Mapping[str, Any], tags, file: str) -> list[Finding]:
    """``doc.numbr``-style mistakes: an attribute path into a dict of the context that is not
    there (paths tested with ``is defined`` anywhere in the template are skipped)."""
    def path(node: Any) -> list[str] | None:
        names = []
        while isinstance(node, nodes.Getattr):
            names.append(node.attr)
            node = node.node
        return [node.name, *reversed(names)] if isinstance(node, nodes.Name) else None

    guarded = {".".join(p) for _, ast in asts for t in ast.find_all(nodes.Test)
               if t.name in ("defined", "undefined") and (p := path(t.node))}
    out, seen = [], set()
    for _, ast in asts:
        for node in ast.find_all(nodes.Getattr):
            names = path(node)
            if not names or names[0] not in context:
                continue
            value = context[names[0]]
            for i, attr in enumerate(names[1:], 2):
                dotted = ".".join(names[:i])
                if not isinstance(value, Mapping) or any(dotted == g or dotted.startswith(g + ".")
                                                         for g in guarded):
                    break
                if attr not in value:
                    if dotted not in seen:
                        seen.add(dotted)
                        close = difflib.get_close_matches(attr, [str(k) for k in value], n=1)
                        hint = f"是否想写 {'.'.join(names[:i - 1])}.{close[0]}？" if close else ""
                        out.append(_error(file, _place_of(tags, dotted, "模板变量"),
                                          f"{dotted} 不存在（{'.'.join(names[:i - 1])} 没有 {attr}）",
                                          hint + "可用名称见 templates/README.md 的变量表"))
                    break
                value = value[attr]
    return out


# --- fonts ----------------------------------------------------------------------------------

def mapped_fonts() -> set[str]:
    """The font family names engine/fonts.conf maps to Noto CJK (the first family of each alias)."""
    root = etree.parse(str(FONTS_CONF)).getroot()
    return {a.findtext("family").strip() for a in root.iter("alias") if a.findtext("family")}


_THEME_SLOT = {"Ascii": "latin", "HAnsi": "latin", "EastAsia": "ea", "Bidi": "cs"}


def _theme_font(theme: Any, ref: str) -> str:
    """``minorHAnsi`` → the typeface the theme gives it ('' when none)."""
    m = re.match(r"(major|minor)(Ascii|HAnsi|EastAsia|Bidi)$", ref)
    if theme is None or not m:
        return ""
    group = theme.find(f".//{A}{m.group(1)}Font")
    if group is None:
        return ""
    slot = group.find(A + _THEME_SLOT[m.group(2)])
    face = slot.get("typeface", "") if slot is not None else ""
    if not face and m.group(2) == "EastAsia":
        hans = group.find(f"{A}font[@script='Hans']")
        face = hans.get("typeface", "") if hans is not None else ""
    return face


def _check_fonts(path: Path, file: str) -> list[Finding]:
    named: dict[str, set[str]] = {}
    zh_cn = False
    with zipfile.ZipFile(path) as zf:
        parts = {n: etree.fromstring(zf.read(n)) for n in zf.namelist()
                 if n.startswith("word/") and n.endswith(".xml")}
    theme = next((root for name, root in sorted(parts.items())
                  if name.startswith("word/theme/")), None)
    for name, root in parts.items():
        for rfonts in root.iter(W + "rFonts"):
            for attr in ("ascii", "hAnsi", "eastAsia", "cs"):
                if rfonts.get(W + attr):
                    named.setdefault(rfonts.get(W + attr), set()).add(name)
            for attr in ("asciiTheme", "hAnsiTheme", "eastAsiaTheme", "cstheme"):
                face = _theme_font(theme, rfonts.get(W + attr) or "")
                if face:
                    named.setdefault(face, set()).add(f"{name} 引用的主题字体 {rfonts.get(W + attr)}")
        for font in root.iter(W + "font"):
            if font.get(W + "name"):
                named.setdefault(font.get(W + "name"), set()).add(name)
        if name == "word/styles.xml":
            zh_cn = any(lang.get(W + "eastAsia") == "zh-CN" for lang in root.iter(W + "lang"))
    allowed = mapped_fonts()
    out = [_warning(file, f"字体「{font}」（{'、'.join(sorted(where))}）",
                    f"字体「{font}」不在 engine/fonts.conf 的对应表中，PDF 中会被替换为其他字体，"
                    "行距和换行可能变化",
                    "改用宋体、黑体、仿宋、楷体、微软雅黑或等线，西文字体选“使用中文字体”"
                    "（templates/README.md 第 4 节）")
           for font, where in sorted(named.items()) if font not in allowed]
    if not zh_cn:
        out.append(_warning(file, "word/styles.xml", "样式中没有把东亚语言设为中文（zh-CN），"
                            "PDF 中部分汉字可能显示为日文字形",
                            "Word：审阅 → 语言 → 设置校对语言，选“中文（中国）”并设为默认"))
    return out


# --- test render ------------------------------------------------------------------------------

def _test_render(path: Path, wf: Workflow, example: Mapping[str, Any], config: Config, asts,
                 tags, file: str) -> list[Finding]:
    from .engine import Engine  # engine imports much of the package; only needed here

    place = f"试出具（流程 {wf.key}，样例数据）"
    spec = next((s for s in wf.documents.values() if s.template == path.name),
                next(iter(wf.documents.values()), None))
    actor = next((u.login for u in config.users.values() if set(u.roles) & set(wf.create_roles)),
                 None)
    if spec is None or actor is None:
        return [_warning(file, place, "无法试出具：流程没有文档，或没有用户能新建这个流程的业务单",
                         "检查 workflow.create_roles 与 config.toml 的 [users]")]
    try:
        with Engine(config) as engine:
            context = engine.context_for(wf.key, example, spec.key, actor)
            linked = set(wf.create_from) | {w.key for w in engine.workflows.values()
                                            if wf.key in w.create_from}
            prefixes = {k: engine.workflows[k].case_prefix for k in linked if k in engine.workflows}
    except DealerDocsError as err:
        return [_warning(file, place, f"无法用样例数据生成模板数据，跳过试出具：{err.message}",
                         f"修正 examples/{wf.key}.json")]
    # linked cases (e.g. the contract of a delivery) as the engine would show them
    context["links"] = {**{k: {"id": f"{p}-0", "ids": [f"{p}-0"], "number": "（预览）"}
                           for k, p in prefixes.items()}, **context["links"]}
    out = _check_attributes(asts, context, tags, file)
    renderer = Renderer()
    marks = signature_bookmarks(spec.signatures)
    try:
        rendered = renderer.render(renderer.load(path), context, bookmarks=marks)
    except TemplateError as err:
        if not (out and "has no attribute" in err.message):  # the same mistake, reported above
            out.append(_error(file, place, err.message,
                              "按提示修改模板；可能为空的值要写默认值（templates/README.md 第 2 节）"))
        return out
    return out + _check_signature_labels(rendered, spec.signatures, marks, file)


def _check_signature_labels(rendered: bytes, signatures: Mapping[str, str],
                            marks: Mapping[str, str], file: str) -> list[Finding]:
    """Each signature label must be in the rendered body, where the renderer marks it for
    finishing (engine/bookmarks.py); one only in a header or footer is looked for in the PDF's
    text, page by page (slower), and one nowhere makes the issue fail."""
    import io

    from docx.oxml.ns import qn

    body = Document(io.BytesIO(rendered)).element.body
    marked = {b.get(qn("w:name")) for b in body.iter(qn("w:bookmarkStart"))}
    return [_warning(file, "签名区", f"签名位置文字「{label}」（签名域 {name}）不在模板正文中："
                     "出具时只能在 PDF 中逐页按文字查找；若 PDF 中也没有，出具会失败",
                     "在最后一页的签名表格里原样保留这段文字（括号是全角“（）”），"
                     "见 templates/README.md「签名区」")
            for (name, label), mark in zip(signatures.items(), marks) if mark not in marked]


# --- public API -------------------------------------------------------------------------------

def lint_template(path: Path, workflows: list[Workflow], example: dict | None = None, *,
                  config: Config | None = None) -> list[Finding]:
    """Check one .docx template used by ``workflows``; with ``example`` data (for the first of
    ``workflows``; needs ``config``) also render it in memory."""
    path, file = Path(path), Path(path).name
    try:
        doc = Document(str(path))
    except Exception as err:  # python-docx raises many kinds for a file that is not a .docx
        return [_error(file, "（整个文件）", f"不是有效的 Word（.docx）文档：{err}",
                       "在 Word 中打开后“另存为 → Word 文档（*.docx）”")]
    out: list[Finding] = []
    tags: list[tuple[str, str]] = []
    for label, root in docxtext.parts(doc):
        stack: list[tuple[str, str, str]] = []
        for para in _paragraphs(label, root):
            out += _check_paragraph(para, file, stack)
            tags += [(para.where, t) for t in _tags(para.text)[0]]
        out += _unclosed(stack, file)
    asts, syntax = _compile(path, file)
    out += syntax
    out += _check_variables(asts, workflows, tags, file)
    out += _check_fonts(path, file)
    if example is not None and workflows:
        if config is None:
            raise TypeError("lint_template: example data needs config")
        if not syntax:
            out += _test_render(path, workflows[0], example, config, asts, tags, file)
    return out


def _file_of(wf: Workflow, config: Config) -> str:
    """The workflow's file name. ``wf.source`` is wrong for workflows with [reports] (in
    workflow.load_workflow the reports loop reuses the name ``path``), so find it by key then."""
    if isinstance(wf.source, Path):
        return wf.source.name
    for path in sorted(config.workflows_dir.glob("*.toml")):
        if re.search(rf'^key\s*=\s*"{re.escape(wf.key)}"', path.read_text(encoding="utf-8"), re.M):
            return path.name
    return f"{wf.key}.toml"


def _reachable(wf: Workflow) -> set[str]:
    seen, todo = {wf.initial}, [wf.initial]
    while todo:
        state = todo.pop()
        for t in wf.available(state):
            if t.dest not in seen:
                seen.add(t.dest)
                todo.append(t.dest)
    return seen


def _mentions_doc_number(path: Path) -> bool:
    try:
        doc = Document(str(path))
    except Exception:
        return True  # reported by lint_template
    return any(re.search(r"\{\{[^}]*\bdoc\.number\b", docxtext.text_of(p))
               for _, root in docxtext.parts(doc) for p in root.iter(W + "p"))


def lint_workflow(wf: Workflow, config: Config, linked: frozenset[tuple[str, str]] = frozenset()
                  ) -> list[Finding]:
    """The state graph, roles nobody holds, and documents that never print their number.
    ``linked``: the (workflow, trigger) steps other workflows fire (``fire_linked``): one
    without roles is moved by them, like a timed one by its timer."""
    file, out = _file_of(wf, config), []
    reachable = _reachable(wf)
    for name, state in wf.states.items():
        label = f"「{state.label}」（{name}）"
        leaving = [t for t in wf.available(name) if t.dest != name]
        if name not in reachable:
            out.append(_error(file, f"states.{name}", f"状态{label}从初始状态 {wf.initial} 无法到达",
                              f"增加一个 dest = \"{name}\" 的流转，或删除这个状态"))
        if not state.final and not leaving:
            out.append(_warning(file, f"states.{name}", f"卡死状态：状态{label}不是终态，却没有离开它的流转",
                                "增加从它出发的流转（如取消），或设 final = true"))
        # printing a closed case's record again (a step that stays and writes nothing) is fine
        writing = [t for t in wf.available(name) if t.dest != name or t.edits or t.stamps
                   or t.stamps_once or t.assign or t.increment or t.record_actor or t.append
                   or t.clear]
        if state.final and not state.reopens and writing:
            triggers = "、".join(dict.fromkeys(t.trigger for t in writing))
            out.append(_warning(file, f"states.{name}", f"终态{label}还有流转：{triggers}",
                                "终态应当结束业务单：去掉这些流转的 source 中的它，或设 final = false"
                                "（可重新激活的终态写 reopens = true）"))
    held = {role for user in config.users.values() for role in user.roles}
    if not set(wf.create_roles) & held:
        out.append(_warning(file, "workflow.create_roles", f"没有用户拥有角色 {'、'.join(wf.create_roles)}，"
                            "无人能新建业务单", "在 config.toml 的 [users] 中给用户加上其中一个角色"))
    timed = {x.trigger for x in wf.timers}
    for i, t in enumerate(wf.transitions):
        if not t.roles and (t.trigger in timed or (wf.key, t.trigger) in linked):
            continue  # only its timer (dealerdocs tick) or another case's step fires it
        if not set(t.roles) & held:
            out.append(_warning(file, f"transitions[{i}].roles（{t.trigger}）",
                                f"操作「{t.label}」要求的角色 {'、'.join(t.roles)} 没有任何用户拥有",
                                "在 config.toml 的 [users] 中给某位用户加上其中一个角色"))
    for key, spec in wf.documents.items():
        found = config.template_layers.find(spec.template)
        if found is not None and not _mentions_doc_number(found):
            out.append(_warning(file, f"documents.{key}.template",
                                f"模板 {spec.template} 中没有 {{{{ doc.number }}}}",
                                "在页眉或页脚写上“编号：{{ doc.number }}”，让每页都印文件编号"))
    return out


def _load_workflows(config: Config) -> tuple[dict[str, Workflow], list[Finding]]:
    """Every workflow that loads, and one finding per definition error (file and key)."""
    def finding(err: WorkflowDefinitionError) -> Finding:
        return _error(Path(err.details.get("path", "")).name or "workflows",
                      err.details.get("key", "（整个文件）"), err.message, "按提示修改流程定义文件")

    try:
        return load_workflows(config), []
    except WorkflowDefinitionError as first:
        loaded, out = {}, []
        for path in sorted(config.workflows_dir.glob("*.toml")):
            try:
                wf = load_workflow(path, config)
                loaded[wf.key] = wf
            except WorkflowDefinitionError as err:
                out.append(finding(err))
        return loaded, out or [finding(first)]


def _example(config: Config, key: str) -> tuple[dict | None, list[Finding]]:
    for folder in (config.base_dir / "examples", product().examples):
        path = folder / f"{key}.json"
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal), []
            except (OSError, ValueError) as err:
                return None, [_error(path.name, "（整个文件）", f"样例数据无法读取：{err}",
                                     "修正为有效的 JSON")]
    return None, []


def _resolve(config: Config, workflows: dict[str, Workflow], target: str
             ) -> Workflow | Path | None:
    """A target as a workflow (key or .toml path) or a template path (name or path)."""
    by_file = {_file_of(w, config): w for w in workflows.values()}
    if target in workflows or (target.endswith(".toml") and Path(target).name in by_file):
        return workflows.get(target) or by_file[Path(target).name]
    if not target.endswith(".docx"):
        return None
    path = Path(target)
    return path if path.is_file() else config.template_layers.find(target)


def lint_paths(config: Config, targets: list[str],
               loaded: tuple[dict[str, Workflow], list[Finding]] | None = None) -> list[Finding]:
    """Lint the named templates (file names or paths) and workflows (keys or .toml paths; a
    workflow together with its templates); nothing named means every workflow and template.
    Templates are the ones documents are made from: the store's copy where it has one. A
    store's copy whose default has changed since it was copied is a warning. ``loaded``: the
    workflows as :func:`load_for_lint` gave them (loaded here if not given)."""
    workflows, out = loaded if loaded is not None else _load_workflows(config)
    out = list(out)
    broken = {f.file for f in out}
    chosen: list[Workflow] = list(workflows.values()) if not targets else []
    found_layers = config.template_layers
    templates = [] if targets else [found_layers.path(n) for n in found_layers.names()]
    for target in targets:
        found = _resolve(config, workflows, target)
        if isinstance(found, Path):
            templates.append(found)
        elif found is not None:
            chosen.append(found)
            templates += [p for s in found.documents.values()
                          if (p := found_layers.find(s.template)) is not None]
        elif Path(target).name not in broken:
            out.append(_error(target, "（命令行）", "找不到这个模板或流程",
                              f"模板在{found_layers.describe()}；"
                              f"流程可用：{'、'.join(workflows) or '（无）'}"))
    linked = frozenset((name, trigger) for w in workflows.values() for t in w.transitions
                       for name, trigger in t.fire_linked.items())
    for wf in chosen:
        out += lint_workflow(wf, config, linked)
    if not targets or chosen:
        out += [f for f in lint_stored_cases(config, workflows)
                if not targets or f.file in {_file_of(w, config) for w in chosen}]
    for path in dict.fromkeys(templates):
        users = [w for w in workflows.values()
                 if any(s.template == path.name for s in w.documents.values())]
        if not users and not broken:
            out.append(_warning(path.name, "（整个文件）", "没有任何流程使用这个模板",
                                "在流程定义的 [documents] 中引用它，或把它移出模板目录"))
        example = None
        for w in users:  # the first user with example data renders; it goes first
            example, problems = _example(config, w.key)
            out += problems
            if example is not None:
                users = [w] + [u for u in users if u is not w]
                break
        out += lint_template(path, users, example, config=config)
    out += _lagging(config, {p.name for p in templates})
    return out


def lint_stored_cases(config: Config, workflows: Mapping[str, Workflow]) -> list[Finding]:
    """The store's cases against the current definitions: a case in a state that neither its
    workflow nor its ``[migrations]`` knows would stop dealerdocs from opening the store; cases
    of a workflow no longer defined cannot be read."""
    from .case_migrations import stray, stray_message
    from .store import open_store

    store = open_store(config)
    try:
        if not store.exists():
            return []
        with store.snapshot() as tx:
            rows = tx.find_cases()
    except DealerDocsError as err:
        return [_warning("数据库", store.location, f"无法检查已有案件：{err.message}",
                         "先运行任意 dealerdocs 命令（如 dealerdocs list --as 用户）完成升级，再运行 lint")]
    out = []
    for wf in workflows.values():
        found = stray(wf, rows)
        if found:
            out.append(_error(_file_of(wf, config), "migrations.states",
                              stray_message(wf, found).split(": ", 1)[1],
                              "在 [migrations] states 中把旧状态映射到现有状态，或恢复这些状态"))
    orphans: dict[str, int] = {}
    for row in rows:
        if row["workflow"] not in workflows:
            orphans[row["workflow"]] = orphans.get(row["workflow"], 0) + 1
    for key, count in sorted(orphans.items()):
        out.append(_warning("workflows", key, f"数据库中有 {count} 个 {key} 案件，但没有这个工作流的定义文件",
                            f"恢复 workflows 中的 {key}.toml（案件才能查看和处理）"))
    return out


def load_for_lint(config: Config) -> tuple[dict[str, Workflow], list[Finding]]:
    """Every workflow that loads, and one finding per definition error (for lint_paths and
    functions_report, so that a lint reads the files once)."""
    return _load_workflows(config)


def functions_report(config: Config, workflows: Mapping[str, Workflow],
                     targets: list[str] = ()) -> list[str]:
    """Per workflow, the named Python functions it relies on: only generic ones exist (field
    validation rules, expression functions); a workflow's own rules are in its file."""
    chosen = [w for w in workflows.values() if not targets or w.key in targets
              or _file_of(w, config) in {Path(t).name for t in targets}]
    return [f"流程 {w.key}（{w.title}）用到的 Python 函数：{'、'.join(w.functions_used) or '无'}"
            for w in chosen]


def _lagging(config: Config, names: set[str]) -> list[Finding]:
    """Warnings for the store's copies (among ``names``) whose default changed since."""
    try:
        stale = layers.lagging(config.template_layers)
    except DealerDocsError as err:
        return [_warning(layers.MANIFEST, "（整个文件）", err.message, "按提示处理")]
    return [_warning(s.name, f"本店副本 {s.path}",
                     f"默认模板在本店复制之后已更新{'（复制于 ' + s.copied_at[:10] + '）' if s.copied_at else ''}，"
                     "本店副本没有这些改动",
                     f"运行 dealerdocs templates diff {s.name.removesuffix('.docx')} 查看改动，"
                     f"改进本店副本后运行 dealerdocs templates accept {s.name.removesuffix('.docx')}")
            for s in stale if s.name in names]


def format_findings(findings: list[Finding]) -> str:
    """One line a finding (错误 / 警告 file｜place｜problem → fix) and a summary line."""
    lines = [f"{'错误' if f.severity == 'error' else '警告'} {f.file}｜{f.place}｜{f.problem} → {f.fix}"
             for f in findings]
    errors = sum(f.severity == "error" for f in findings)
    lines.append(f"共 {errors} 个错误、{len(findings) - errors} 个警告" if findings else "未发现问题")
    return "\n".join(lines)
