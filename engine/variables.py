"""The variable tables of a workflow's templates, made from its definition (``dealerdocs
fields WORKFLOW``): each field as a template writes it, with its label, type, choices, table
columns and whether it can be empty when a document is issued; the computed values
(``totals.*``) and the linked cases (``links.*``); and which template prints each of them.

``templates/README.md`` carries these tables between markers and a test compares them with
what this module makes, so the authoring guide cannot drift from the definitions (regenerate
with ``python tools/update_template_tables.py``). Pure except for reading the templates, which
:func:`template_names` does once per workflow.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .fields import FieldSpec
from .workflow import Workflow

#: The names the engine puts into every template (section 1 of templates/README.md).
ENGINE_NAMES = ("dealer", "doc", "case", "policy", "privacy")

TYPE_LABELS = {
    "string": "文字", "text": "多行文字", "money": "金额", "integer": "整数", "date": "日期",
    "datetime": "日期时间", "choice": "选项", "multichoice": "多选（列表）", "boolean": "是 / 否",
    "user": "用户", "table": "表格（列表）", "attachments": "附件（列表）",
}
# How a value of the type is printed (the filters of templates/README.md section 2).
TYPE_HINTS = {
    "money": "用 `|money`", "date": "用 `|cn_date`", "datetime": "用 `|cn_datetime`",
    "boolean": "`true` / `false`", "attachments": "每项有 `name` `sha256` `size`（字节）",
}


@dataclass(frozen=True)
class Variable:
    """One row of a variable table."""

    written: tuple[str, ...]  # how a template writes it: ("consultant.name", "consultant.login")
    label: str
    kind: str  # the type, in Chinese
    note: str
    used_by: tuple[str, ...]  # template file names that print it

    def to_dict(self) -> dict[str, Any]:
        return {"written": list(self.written), "label": self.label, "type": self.kind,
                "note": self.note, "used_by": list(self.used_by)}


@dataclass(frozen=True)
class Document:
    key: str
    title: str
    template: str
    series: str
    issued_by: tuple[str, ...]  # "出具报价单（issue）" …
    engine_names: tuple[str, ...]  # "dealer（name、phone）" … the engine's names it uses

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "template": self.template,
                "series": self.series, "issued_by": list(self.issued_by),
                "engine_names": list(self.engine_names)}


# --- what is certain to have a value ----------------------------------------------------------

def filled_at_issue(wf: Workflow) -> dict[str, set[str]]:
    """Document key → the fields certain to have a value whenever it is issued.

    A "must" analysis over the state graph: a field is certain in a state when every way into
    it leaves it filled (required outright, required or stamped by the transition, or certain
    before and not editable by it). Conservative: a field it cannot prove filled may be empty.
    """
    every = set(wf.fields)
    always = {name for name, spec in wf.fields.items() if spec.required}

    def after(t, before: set[str]) -> set[str]:
        kept = before - (every if "*" in t.edits else set(t.edits))
        moved = {target for target, origin in t.assign.items() if origin in before}
        return (kept | moved | set(t.requires) | set(t.stamps) | set(t.record_actor)
                | set(t.increment) | always)

    start = always | {target for target, origin in wf.create_assign.items() if origin in always}
    certain = {state: set(every) for state in wf.states}
    certain[wf.initial] = set(start)
    changed = True
    while changed:
        changed = False
        for t in wf.transitions:
            for source in t.sources:
                narrowed = certain[t.dest] & after(t, certain[source])
                if narrowed != certain[t.dest]:
                    certain[t.dest], changed = narrowed, True
    out: dict[str, set[str]] = {}
    for t in wf.transitions:
        for key in t.documents:
            for source in t.sources:
                filled = after(t, certain[source])
                out[key] = out[key] & filled if key in out else filled
    return out


# --- the rows -------------------------------------------------------------------------------

def _choices(spec: FieldSpec) -> str:
    return " ".join(f"`{c}`" + (f"（{spec.choice_labels[c]}）" if c in spec.choice_labels else "")
                    for c in spec.choices)


def _columns(spec: FieldSpec) -> str:
    return " ".join(f"`{name}`（{col.label}，{TYPE_LABELS.get(col.type, col.type)}）"
                    for name, col in spec.columns.items())


def _condition(wf: Workflow, spec: FieldSpec) -> str:
    parts = []
    for other, values in spec.required_if.items():
        ruler = wf.fields.get(other)
        words = {"true": "是", "false": "否"} if ruler and ruler.type == "boolean" else {}
        shown = "、".join(f"“{words.get(v, v)}”"
                         for v in ([values] if isinstance(values, str) else values))
        label = ruler.label if ruler else other
        parts.append(f"{label}为{shown}")
    parts += [f"填写了{wf.fields[o].label if o in wf.fields else o}" for o in spec.required_if_set]
    return "且".join(parts)


def _emptiness(wf: Workflow, spec: FieldSpec, filled: dict[str, set[str]]) -> str:
    if spec.required:
        return "必填"
    where = [wf.documents[k].title for k in wf.documents if spec.name in filled.get(k, set())]
    condition = _condition(wf, spec)
    if where and len(where) == len(wf.documents):
        return "出具时总有值"
    if where:
        return f"出具{'、'.join(where)}时总有值，其他时候**可能为空**"
    return f"{condition}时必填，否则**可能为空**" if condition else "**可能为空**"


def _field_row(wf: Workflow, spec: FieldSpec, filled, used: Callable[[str], tuple[str, ...]]
               ) -> Variable:
    notes = []
    if spec.type in ("choice", "multichoice") and spec.choices:
        notes.append(f"取值：{_choices(spec)}")
    if spec.type == "multichoice":
        notes.append(f"写法 `{{{{ {spec.name}|join(\"、\") }}}}`，或 `\"…\" in {spec.name}`")
    if spec.type == "table" and spec.columns:
        notes.append(f"每行有 {_columns(spec)}")
        derived = wf.row_computed.get(spec.name, {})
        if derived:
            notes.append("以及算好的 " + " ".join(f"`{name}`（{c.label or name}，`{c.value.source}`）"
                                               for name, c in derived.items()))
    if spec.type in TYPE_HINTS:
        notes.append(TYPE_HINTS[spec.type])
    notes.append(_emptiness(wf, spec, filled))
    if spec.type in ("table", "multichoice", "attachments") and not spec.required:
        notes[-1] = notes[-1].replace("**可能为空**", "**可能为空列表**")
    written = ((f"{spec.name}.name", f"{spec.name}.login") if spec.type == "user"
               else (spec.name,))
    return Variable(written, spec.label, TYPE_LABELS.get(spec.type, spec.type), "；".join(notes),
                    used(spec.name))


def _link_rows(wf: Workflow, workflows: dict[str, Workflow], used) -> list[Variable]:
    rows = []
    for key, other in sorted(workflows.items()):
        if key == wf.key:
            continue
        if key in wf.create_from:
            note = ("总有（只能由它转来）" if wf.create_from[key].required
                    else f"只有由{other.title}转来时才有：先判断 `links.{key} is defined`")
        elif wf.key in other.create_from:
            note = f"只有已由本单转出{other.title}时才有：先判断 `links.{key} is defined`"
        else:
            continue
        rows.append(Variable((f"links.{key}.number", f"links.{key}.id"),
                             f"关联的{other.title}：当前有效文件的编号（未出具时为空字符串）/ 业务单号",
                             "关联", note, used(f"links.{key}")))
    return rows


def variables(wf: Workflow, workflows: dict[str, Workflow],
              names: dict[str, set[str]]) -> list[Variable]:
    """The rows of ``wf``'s variable table; ``names``: template file → :func:`template_names`."""
    def used(name: str) -> tuple[str, ...]:
        return tuple(sorted(t for t, found in names.items() if name in found))

    filled = filled_at_issue(wf)
    rows = [_field_row(wf, spec, filled, used) for spec in wf.fields.values()]
    rows += [Variable((f"totals.{name}",), c.label or "（不在页面显示）", "计算值",
                      f"`{' '.join(c.value.source.split())}`"
                      + ("；" + "、".join(c.requires) + " 为空时为空" if c.requires else ""),
                      used(f"totals.{name}"))
             for name, c in wf.computed.items()]
    return rows + _link_rows(wf, workflows, used)


def documents(wf: Workflow, names: dict[str, set[str]]) -> list[Document]:
    out = []
    for key, spec in wf.documents.items():
        issued = tuple(dict.fromkeys(f"{t.label}（{t.trigger}）" for t in wf.transitions
                                     if key in t.documents))
        found = names.get(spec.template, set())
        engine = []
        for top in ENGINE_NAMES:
            paths = {n[len(top) + 1:] for n in found if n.startswith(top + ".")}
            subs = sorted(p for p in paths if not any(q.startswith(p + ".") for q in paths))
            if top in found:
                engine.append(f"{top}（{'、'.join(subs)}）" if subs else top)
        out.append(Document(key, spec.title, spec.template, spec.series, issued, tuple(engine)))
    return out


def template_names(wf: Workflow, find: Callable[[str], Path | None]) -> dict[str, set[str]]:
    """Template file → the names it reads (``lint.used_names``), for ``wf``'s templates that
    ``find`` (the store's template lookup) locates."""
    from .lint import used_names  # lint reads .docx files; only needed here

    out = {}
    for spec in wf.documents.values():
        path = find(spec.template)
        if path is not None and spec.template not in out:
            out[spec.template] = used_names(path)
    return out


# --- as markdown --------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(wf: Workflow, workflows: dict[str, Workflow], names: dict[str, set[str]]) -> str:
    """The tables of ``templates/README.md`` for one workflow (no trailing newline)."""
    docs = documents(wf, names)
    lines = [f"流程 `{wf.key}`（{wf.title}，`{wf.source.name}`）出具的文件：", "",
             "| 模板 | 文件 | 何时出具 | 编号序列 | 用到的系统名称 |", "|---|---|---|---|---|"]
    lines += [f"| `{d.template}` | {d.title} | {'、'.join(d.issued_by) or '—'} | `{d.series}` | "
              f"{_cell('；'.join(d.engine_names)) or '—'} |" for d in docs]
    lines += ["", "| 写法 | 含义 | 类型 | 备注 | 用于 |", "|---|---|---|---|---|"]
    for v in variables(wf, workflows, names):
        written = " / ".join(f"`{w}`" for w in v.written)
        used = "、".join(f"`{u}`" for u in v.used_by) or "—"
        lines.append(f"| {_cell(written)} | {_cell(v.label)} | {v.kind} | {_cell(v.note) or '—'} | "
                     f"{used} |")
    return "\n".join(lines)


def text_rows(wf: Workflow, workflows: dict[str, Workflow], names: dict[str, set[str]]
              ) -> list[list[str]]:
    """The variable table as plain rows for the terminal (written, label, type, note, used by)."""
    return [[" / ".join(v.written), v.label, v.kind, v.note.replace("**", "").replace("`", ""),
             "、".join(v.used_by) or "—"] for v in variables(wf, workflows, names)]
