"""A workflow's state machine as a picture, for the people who approve the workflow.

:func:`to_dot` turns a :class:`~engine.workflow.Workflow` into Graphviz DOT source: one box per
state (Chinese label, the state key small and grey underneath), the initial state behind a
start dot and bold, final states double-bordered, and one arrow per transition and source,
labelled with what a reviewer has to check: the Chinese name and trigger, who may do it, which
documents it issues, its conditions and the separation-of-duties rule. :func:`render` runs the
``dot`` executable (Debian package ``graphviz``; ``make setup`` installs it) to get SVG or PNG,
and :func:`write_diagram` writes the file atomically.

The diagram is built from the same workflow definition the engine runs, never from a
``transitions`` ``GraphMachine`` (see pitfalls B2): no graph packages at runtime, only ``dot``
when a picture is asked for.
"""
from __future__ import annotations

import html
import os
import shutil
import subprocess
import unicodedata
from pathlib import Path

from .config import Config
from .errors import ConversionError, InputError
from .files import atomic_write_bytes
from .workflow import TransitionSpec, Workflow

FONT = "Noto Sans CJK SC"
FORMATS = ("svg", "png")
TIMEOUT_SECONDS = 60
PNG_DPI = 110
LABEL_WIDTH = 26  # half-width units per line of an arrow's label
JUNCTION_FROM = 3  # transitions from this many sources meet in a junction dot


_GREY = "grey40"
_LEGEND = ("●→ 粗框：起始状态　　双线框：终态　　虚线：取消、过期等非正常结束",
           "箭头：操作 (trigger)　[可执行角色]　出具：文档　条件：…　不得由「某操作」者本人")
_ROLE_COLOUR = "#1f4e8c"
_DOC_COLOUR = "#2e7d32"
_RULE_COLOUR = "#b23c17"
# a state's loops go above the box, then below it (alternating), clear of the other arrows
_LOOP_PORTS = (", tailport=n, headport=n", ", tailport=s, headport=s")
# line breaking of arrow labels
_NO_LINE_START = "」）)、，；。：！？"
_NO_LINE_END = "「（("
_BREAK_AFTER = "、；， "
_BREAK_BEFORE = "「（"
_SLACK = 4  # half-width units a line may run over rather than break off a stub


def _text(value: str) -> str:
    """Text for inside an HTML-like label: markup characters escaped, no raw line breaks."""
    return html.escape(" ".join(str(value).split()), quote=True)


def _styled(markup: str, colour: str | None = None, bold: bool = False,
            size: int | None = None) -> str:
    """``markup`` in <b>/<font> tags; Graphviz refuses empty ones, so empty text stays bare."""
    if not markup:
        return markup
    if bold:
        markup = f"<b>{markup}</b>"
    if colour or size:
        attrs = (f' point-size="{size}"' if size else "") + (f' color="{colour}"' if colour else "")
        markup = f"<font{attrs}>{markup}</font>"
    return markup


def _id(value: str) -> str:
    """A quoted DOT identifier."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _condition_label(wf: Workflow, name: str) -> str:
    """The condition's own wording (``label`` in the workflow file)."""
    condition = wf.conditions.get(name)
    return condition.label if condition is not None and condition.label else name


def _trigger_label(wf: Workflow, trigger: str) -> str:
    if trigger == "create":
        return "创建"
    return next((t.label for t in wf.transitions if t.trigger == trigger), trigger)


def _earlier_routes(wf: Workflow, t: TransitionSpec,
                    sources: tuple[str, ...]) -> list[TransitionSpec]:
    """Transitions of the same trigger from one of ``sources`` tried before ``t`` (the first
    whose conditions hold wins), so ``t`` is only taken when their conditions do not hold."""
    earlier = []
    for other in wf.transitions:
        if other is t:
            break
        if (other.trigger == t.trigger and other.conditions
                and any(s in other.sources for s in sources)):
            earlier.append(other)
    return earlier


def _width(text: str) -> int:
    """Display width in half-width units (a Chinese character counts two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _wrap(text: str, width: int) -> list[str]:
    """Break ``text`` into lines of about ``width`` half-width units, so labels stay narrow
    (in a left-to-right layout an arrow's label adds to the width of the whole picture).

    Breaks after 、；， or a space, or before 「（, unless that leaves a stub of a line; else
    between characters, never putting closing punctuation first on a line or opening
    punctuation last, nor splitting a Latin word. A line may run a little over rather than
    leave one or two characters on their own."""
    text = " ".join(str(text).split())
    lines: list[str] = []
    while _width(text) > width + _SLACK:
        cut = 1
        while cut < len(text) and _width(text[:cut + 1]) <= width:
            cut += 1
        best = None
        for i in range(cut, 0, -1):
            if _width(text[:i]) < width // 3:
                break
            if text[i - 1] in _BREAK_AFTER or text[i] in _BREAK_BEFORE:
                best = i
                break
        if best is None:
            best = cut
            while best > 1 and (text[best] in _NO_LINE_START or text[best - 1] in _NO_LINE_END
                                or (_latin(text[best - 1]) and _latin(text[best]))):
                best -= 1
            if best <= 1:
                best = cut
        lines.append(text[:best].rstrip())
        text = text[best:].lstrip()
    lines.append(text)
    return lines


def _latin(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def _lines(text: str, colour: str | None = None, bold: bool = False,
           wrap: bool = True) -> list[str]:
    """``text`` wrapped to ``LABEL_WIDTH``, each line escaped and styled as HTML-like markup."""
    return [_styled(_text(line), colour, bold)
            for line in (_wrap(text, LABEL_WIDTH) if wrap else [text])]


def edge_lines(wf: Workflow, config: Config, t: TransitionSpec,
               sources: tuple[str, ...] | None = None) -> list[str]:
    """The lines of the label of ``t``'s arrow(s) from ``sources`` (default: all of them), as
    HTML-like markup (already escaped): the Chinese label and (trigger), [roles], documents
    issued, conditions (including "the earlier route's did not hold"), duty separation."""
    lines = _lines(t.label, bold=True) + _lines(f"({t.trigger})", _GREY, wrap=False)
    if t.roles:
        lines += _lines("[" + "、".join(config.role_label(r) for r in t.roles) + "]",
                        _ROLE_COLOUR)
    timers = [x for x in wf.timers if x.trigger == t.trigger]
    if timers:
        lines += _lines("定时：" + "；".join(x.describe() for x in timers), _RULE_COLOUR)
    if t.documents:
        titles = "、".join(wf.documents[d].title if d in wf.documents else d
                          for d in t.documents)
        lines += _lines(f"出具：{titles}", _DOC_COLOUR)
    conditions = [_condition_label(wf, c) for c in t.conditions]
    otherwise = [c for other in _earlier_routes(wf, t, sources or t.sources)
                 for c in other.conditions]
    if otherwise:
        names = "」「".join(dict.fromkeys(_condition_label(wf, c) for c in otherwise))
        conditions.insert(0, f"不满足「{names}」时")
    if conditions:
        lines += _lines("条件：" + "；".join(conditions))
    if t.not_actor_of:
        who = "」「".join(dict.fromkeys(_trigger_label(wf, x) for x in t.not_actor_of))
        lines += _lines(f"不得由「{who}」者本人", _RULE_COLOUR)
    if t.void_documents:
        lines += _lines("作废已出具文档", _RULE_COLOUR)
    return lines


def _edge_label(lines: list[str]) -> str:
    """One line per row of a borderless table: even line spacing, and the padding keeps
    neighbouring labels apart."""
    return ('<table border="0" cellborder="0" cellspacing="0" cellpadding="1">'
            + "".join(f"<tr><td>{line}</td></tr>" for line in lines) + "</table>")


def _title(wf: Workflow) -> str:
    """The picture's heading: workflow title and key, then the legend."""
    rows = [_styled(_text(wf.title), bold=True) + " "
            + _styled(f"{_text(wf.key)} · 状态流转图", _GREY, size=11)]
    rows += [_styled(html.escape(line), _GREY, size=9) for line in _LEGEND]
    return ('<table border="0" cellborder="0" cellspacing="0" cellpadding="1">'
            + "".join(f'<tr><td align="left">{row}</td></tr>' for row in rows)
            + '<tr><td> </td></tr></table>')


def to_dot(wf: Workflow, config: Config) -> str:
    """Graphviz DOT source of ``wf``'s states and transitions (left to right)."""
    font = _id(FONT)
    out = [
        f"digraph {_id(wf.key)} {{",
        f"  graph [rankdir=LR, fontname={font}, fontsize=16, labelloc=t, labeljust=l,"
        f" nodesep=0.5, ranksep=0.5, pad=0.3, newrank=true, splines=true,"
        f' bgcolor="white", label=<{_title(wf)}>];',
        f'  node [fontname={font}, fontsize=12, shape=box, style="rounded,filled",'
        f' fillcolor="#f7f7f7", color="#555555", margin="0.18,0.08"];',
        f'  edge [fontname={font}, fontsize=9, color="#666666", arrowsize=0.7];',
        '  "__start__" [shape=circle, style=filled, fillcolor=black, color=black,'
        ' label="", width=0.18, fixedsize=true];',
    ]
    for name, state in wf.states.items():
        attrs = [f"label=<{_styled(_text(state.label), bold=True)}<br/>"
                 f"{_styled(_text(name), _GREY, size=9)}>"]
        if name == wf.initial:
            attrs += ["penwidth=2.2", 'fillcolor="#e8f0fb"']
        if state.final:
            attrs += ["peripheries=2", 'fillcolor="#eeeeee"']
        out.append(f"  {_id(name)} [{', '.join(attrs)}];")
    out.append(f'  "__start__" -> {_id(wf.initial)} [label=<<font color="{_GREY}">新建</font>>,'
               f" penwidth=1.2];")
    loops: dict[str, int] = {}
    for i, t in enumerate(wf.transitions):
        style = ", style=dashed" if _is_exit(wf, t) else ""
        if len(t.sources) >= JUNCTION_FROM:
            # Many sources (e.g. "cancel from anywhere"): one arrow from each source into a
            # junction dot and one labelled arrow on to the destination, instead of the same
            # label repeated on every arrow.
            junction = _id(f"__junction_{i}__")
            out.append(f'  {junction} [shape=point, width=0.07, color="#666666", label=""];')
            for source in t.sources:
                # constraint=false: the junction does not pull the states out of line,
                # so the normal course stays a straight row and the exits run below it
                out.append(f"  {_id(source)} -> {junction} [arrowhead=none, constraint=false"
                           f"{style}];")
            label = _edge_label(edge_lines(wf, config, t))
            out.append(f"  {junction} -> {_id(t.dest)} [label=<{label}>{style}];")
            continue
        for source in t.sources:
            label = _edge_label(edge_lines(wf, config, t, (source,)))
            ports = ""
            if source == t.dest:
                # two loops on one state would stack their labels on each other
                k = loops.get(source, 0)
                loops[source] = k + 1
                ports = _LOOP_PORTS[k % len(_LOOP_PORTS)]
            out.append(f"  {_id(source)} -> {_id(t.dest)} [label=<{label}>{ports}{style}];")
    # final states side by side at the far right
    finals = [n for n, s in wf.states.items() if s.final]
    if len(finals) > 1:
        out.append(f"  {{ rank=same; {'; '.join(_id(n) for n in finals)}; }}")
    out.append("}")
    return "\n".join(out) + "\n"


def _is_exit(wf: Workflow, t: TransitionSpec) -> bool:
    """Drawn dashed: a way out of the normal course (voids documents, or ends the case in a
    final state other than the first one in the file, e.g. cancelled or expired)."""
    finals = [n for n, s in wf.states.items() if s.final]
    return t.void_documents or (t.dest in finals and t.dest != finals[0])


def render(dot_source: str, fmt: str) -> bytes:
    """Run ``dot -T{fmt}`` on ``dot_source`` (``svg`` or ``png``) and return the picture."""
    if fmt not in FORMATS:
        raise InputError(f"不支持的图形格式 \"{fmt}\"（可用：{', '.join(FORMATS)}）", format=fmt)
    exe = shutil.which("dot")
    if exe is None:
        raise ConversionError("找不到 Graphviz 的 dot 程序，无法绘制流程图；请安装 graphviz"
                              "（运行 make setup，或 apt-get install graphviz）",
                              path=os.environ.get("PATH", ""))
    args = [exe, f"-T{fmt}"]
    if fmt == "png":
        args.append(f"-Gdpi={PNG_DPI}")
    try:
        proc = subprocess.run(args, input=dot_source.encode("utf-8"), capture_output=True,
                              timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise ConversionError(f"dot 绘制流程图超时（{TIMEOUT_SECONDS} 秒）",
                              timeout=TIMEOUT_SECONDS) from None
    except OSError as err:
        raise ConversionError(f"无法运行 dot（{err}）；请安装 graphviz（运行 make setup）",
                              stderr=str(err)) from err
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or not proc.stdout:
        raise ConversionError(f"dot 绘制流程图失败（退出码 {proc.returncode}）：{stderr}",
                              returncode=proc.returncode, stderr=stderr)
    return proc.stdout


def write_diagram(wf: Workflow, config: Config, out: Path) -> Path:
    """Draw ``wf`` into ``out``; the format follows the suffix (.svg or .png)."""
    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputError(f"流程图文件名须以 .svg 或 .png 结尾：{out.name}", path=str(out))
    atomic_write_bytes(out, render(to_dot(wf, config), fmt))
    return out
