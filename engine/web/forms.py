"""Forms made from the workflow definitions, and submitted forms turned back into engine data.

No form is written per workflow: the fields a page asks for come from ``workflows/*.toml``
(type, Chinese label, required, choices, table columns), so a new workflow file brings its
pages with it. Values are sent to the engine as text, the way a JSON data file would carry
them; the engine normalises and checks them and its errors are shown next to the field.

Field names in a form: ``name`` for a single value (several for a multichoice), ``name.3.col``
for row 3 of a table, ``name`` file parts for new attachments and ``name.keep`` for attachments
already on the case that stay.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..config import Config
from ..errors import InputError
from ..fields import FieldSpec, is_empty
from ..workflow import TransitionSpec, Workflow

BLANK_ROWS = 2  # empty rows offered under a table's existing rows
# Evidence files a store attaches: photos, scans, office files, plain text.
UPLOAD_TYPES = {".pdf": "application/pdf", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".png": "image/png", ".webp": "image/webp", ".txt": "text/plain",
                ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
UPLOAD_MAX_BYTES = 20 * 1024 * 1024
UPLOAD_MAX_FILES = 20
_MAGIC = {".pdf": (b"%PDF-",), ".png": (b"\x89PNG\r\n\x1a\n",), ".jpg": (b"\xff\xd8\xff",),
          ".jpeg": (b"\xff\xd8\xff",), ".webp": (b"RIFF",), ".docx": (b"PK\x03\x04",),
          ".xlsx": (b"PK\x03\x04",)}


@dataclass
class Widget:
    """One field as the template draws it."""

    name: str
    label: str
    type: str
    required: bool
    value: Any = None            # display value: text, list (multichoice), rows (table)
    choices: list[tuple[str, str]] = field(default_factory=list)
    columns: list["Widget"] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    row_errors: dict[int, list[str]] = field(default_factory=dict)
    hint: str = ""
    phone: bool = False          # a mobile number: the phone's number pad (type="tel")
    # a lookup field (picked from a catalogue): where app.js searches as the user types, the
    # catalogue's field the input takes, and the form's fields it fills (target → origin)
    lookup: dict[str, Any] | None = None
    # a field whose values a lookup field's pick lists (a colour among the model's colours):
    # the lookup field, the picked case's field app.js reads, and the values known already
    choices_from: dict[str, Any] | None = None


def auto_fields(wf: Workflow) -> set[str]:
    """Fields the engine fills itself (time stamps, the reviewer, counters, copied values)."""
    out = set(wf.create_assign)
    for t in wf.transitions:
        out |= set(t.stamps) | set(t.record_actor) | set(t.assign) | set(t.increment)
    return out


def general_fields(wf: Workflow) -> list[str]:
    """The fields of the new-case and edit forms: all but those filled by the engine and those
    that belong to later steps only (a rejection reason, a signing date, a review). A field an
    editing step changes (one that leaves the case in its state: 更正登记, 修改客户档案) is the
    case's own data, asked for from the start."""
    def editing(t: TransitionSpec) -> bool:
        return all(source == t.dest for source in t.sources)

    later = {name for t in wf.transitions if "*" not in t.edits and not editing(t)
             for name in t.edits}
    later -= {name for t in wf.transitions if "*" not in t.edits and editing(t)
              for name in t.edits}
    auto = auto_fields(wf)
    return [name for name, spec in wf.fields.items()
            if name not in auto and (name not in later or spec.required)]


def transition_fields(wf: Workflow, t: TransitionSpec, data: Mapping[str, Any]
                      ) -> tuple[list[str], list[str]]:
    """(fields asked for, further fields that may be changed) for firing ``t``.

    A step with its own ``edits`` asks for exactly those. A step that may edit everything asks
    for the required fields still empty, and offers the rest folded away; the plain edit step
    (no requirements) shows them all.
    """
    auto = auto_fields(wf)
    if "*" not in t.edits:
        return [n for n in t.edits if n not in auto], []
    editable = general_fields(wf)
    if not t.requires and not t.documents:
        return editable, []
    needed = [n for n in editable
              if (n in t.requires or wf.fields[n].is_required(dict(data))) and is_empty(data.get(n))]
    return needed, [n for n in editable if n not in needed]


def uploads_on_create(wf: Workflow) -> bool:
    """Does the new-case form of ``wf`` take files?"""
    return any(wf.fields[n].type == "attachments" for n in general_fields(wf))


def uploads_on_step(wf: Workflow, trigger: str) -> bool:
    """Does the form of step ``trigger`` take files (an attachments field it may edit)?"""
    for t in wf.transitions:
        if t.trigger != trigger:
            continue
        names = general_fields(wf) if "*" in t.edits else t.edits
        if any(n in wf.fields and wf.fields[n].type == "attachments" for n in names):
            return True
    return False


def required_for(wf: Workflow, t: TransitionSpec | None, name: str, data: Mapping[str, Any]) -> bool:
    spec = wf.fields[name]
    return spec.required or (t is not None and name in t.requires) or bool(
        spec.required_if or spec.required_if_set) and spec.is_required(dict(data))


def widgets(wf: Workflow, names: Iterable[str], values: Mapping[str, Any], config: Config,
            *, transition: TransitionSpec | None = None,
            errors: Mapping[str, list[str]] | None = None,
            row_errors: Mapping[str, dict[int, list[str]]] | None = None,
            actor: str | None = None, now: datetime | None = None,
            options: Mapping[str, list[str]] | None = None) -> list[Widget]:
    """The form's widgets; a new case's (``now`` given) start from the fields' defaults: the
    user, or this moment (default = "now": a visit registered as it happens). ``options``:
    the values a ``choices_from`` field may take, as the case's pick lists them (a form
    picking anew gets them from app.js)."""
    errors = errors or {}
    row_errors = row_errors or {}
    out = []
    for name in names:
        spec = wf.fields[name]
        value = values.get(name)
        if value is None and spec.type == "user" and spec.default == "actor":
            value = actor
        elif value is None and now is not None and spec.default in ("now", "today"):
            value = (now.date().isoformat() if spec.default == "today"
                     else now.strftime("%Y-%m-%dT%H:%M"))
        elif value is None and spec.type == "choice" and spec.default:
            value = spec.default
        w = _widget(spec, value, config, required=required_for(wf, transition, name, values),
                    labels={n: s.label for n, s in wf.fields.items()})
        w.errors = list(errors.get(name, []))
        w.row_errors = dict(row_errors.get(name, {}))
        if w.choices_from is not None:
            w.choices_from["options"] = list((options or {}).get(name, []))
        out.append(w)
    return out


def _widget(spec: FieldSpec, value: Any, config: Config, *, required: bool,
            labels: Mapping[str, str] | None = None) -> Widget:
    choices: list[tuple[str, str]] = []
    hints: list[str] = []
    if spec.type in ("choice", "multichoice"):
        choices = [(c, spec.choice_label(c)) for c in spec.choices]
    elif spec.type == "user":
        choices = [(u.login, f"{u.name}（{'、'.join(config.role_label(r) for r in u.roles)}）")
                   for u in config.users.values()
                   if not spec.roles or set(spec.roles) & set(u.roles)]
    elif spec.type == "boolean":
        choices = [("是", "是"), ("否", "否")]
    elif spec.type == "attachments":
        hints.append(f"PDF、图片、Word/Excel 或文本，单个不超过 {UPLOAD_MAX_BYTES // 1048576} MB")
    if spec.required_if:
        cond = "，".join(f"{(labels or {}).get(k, k)}为「{v if isinstance(v, str) else '/'.join(v)}」"
                        for k, v in spec.required_if.items())
        hints.append(f"{cond}时必填")
    lookup = choices_from = None
    if spec.lookup is not None:
        hints.append("输入名称的一部分，从列表中选择；所选案件的内容会自动带出")
        lookup = {"url": f"/lookup/{spec.lookup.workflow}", "match": spec.lookup.match,
                  "fill": {t: o for t, o in spec.lookup.fill.items() if t != spec.name},
                  "workflow": spec.lookup.workflow}
    if spec.choices_from is not None:
        picker, origin = spec.choices_from
        hints.append(f"从{(labels or {}).get(picker, picker)}所选案件的可选值中选择")
        choices_from = {"from": picker, "field": origin, "options": []}
    w = Widget(spec.name, spec.label, spec.type, required, display(spec, value), choices,
               hint="；".join(hints), phone=spec.rule == "mobile" or spec.personal == "mobile",
               lookup=lookup, choices_from=choices_from)
    if spec.type == "table":
        w.columns = [_widget(col, None, config, required=col.required)
                     for col in spec.columns.values()]
        rows = [{k: display(spec.columns[k], v) for k, v in row.items() if k in spec.columns}
                for row in (value or []) if isinstance(row, Mapping)]
        w.value = rows + [{} for _ in range(BLANK_ROWS)]
    return w


def display(spec: FieldSpec, value: Any) -> Any:
    """A stored (or submitted) value as a form shows it."""
    if value is None:
        return [] if spec.type in ("multichoice", "table", "attachments") else ""
    if spec.type == "boolean":
        return "是" if value is True else "否" if value is False else str(value)
    if spec.type == "datetime" and isinstance(value, str):
        return value[:16]
    if spec.type in ("multichoice", "table", "attachments"):
        return value
    return str(value)


def read_form(wf: Workflow, form: Any, *, drop_empty: bool) -> dict[str, Any]:
    """The workflow data in a submitted form (a starlette ``FormData``), as text values.

    Keys that are not fields of the workflow are ignored (the CSRF token, buttons). Empty
    values become None (clearing a field) unless ``drop_empty`` (a new case: nothing to clear,
    and values carried over from a source case must not be blanked).
    """
    items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    data: dict[str, Any] = {}
    for lookup in wf.lookups.values():   # the case a lookup field's pick names (app.js)
        picked = [v.strip() for k, v in items if k == lookup.workflow and v.strip()]
        if picked:
            data[lookup.workflow] = picked[-1]
    for name, spec in wf.fields.items():
        if spec.type == "attachments":
            continue  # see read_uploads
        if spec.type == "table":
            rows: dict[int, dict[str, Any]] = {}
            seen = False
            for key, value in items:
                m = re.fullmatch(rf"{re.escape(name)}\.(\d{{1,3}})\.([a-z][a-z0-9_]*)", key)
                if key == f"{name}.present":
                    seen = True
                if m and m.group(2) in spec.columns:
                    seen = True
                    rows.setdefault(int(m.group(1)), {})[m.group(2)] = value.strip() or None
            if not seen:
                continue
            table = [row for _, row in sorted(rows.items())
                     if any(v is not None for v in row.values())]
            if table or not drop_empty:
                data[name] = table
            continue
        values = [v for k, v in items if k == name]
        if not values:
            continue
        if spec.type == "multichoice":
            chosen = [v for v in values if v]
            if chosen or not drop_empty:
                data[name] = chosen
            continue
        value = values[-1].strip()
        if value:
            data[name] = value
        elif not drop_empty:
            data[name] = None
    return data


def read_uploads(wf: Workflow, form: Any, current: Mapping[str, Any], folder: Path
                 ) -> dict[str, Any]:
    """Attachment fields: kept records plus new files saved in ``folder`` (checked for size
    and type here; the engine hashes and stores them). Raises InputError naming the field."""
    data: dict[str, Any] = {}
    problems: list[InputError] = []
    for name, spec in wf.fields.items():
        if spec.type != "attachments":
            continue
        uploads = [v for k, v in form.multi_items() if k == name and not isinstance(v, str)
                   and getattr(v, "filename", "")]
        keep_marker = f"{name}.keep" in form or f"{name}.present" in form
        if not uploads and not keep_marker:
            continue
        keep = set(form.getlist(f"{name}.keep"))
        kept = [a for a in (current.get(name) or []) if a.get("sha256") in keep]
        new: list[str] = []
        if len(uploads) + len(kept) > min(spec.max_rows, UPLOAD_MAX_FILES):
            problems.append(InputError(f"{spec.label}最多 {min(spec.max_rows, UPLOAD_MAX_FILES)} 个文件",
                                       field=name, label=spec.label))
            continue
        for upload in uploads:
            try:
                new.append(save_upload(upload, folder, len(new)))
            except InputError as err:
                problems.append(InputError(f"{spec.label}：{err.message}", field=name,
                                           label=spec.label))
        if uploads or kept or keep_marker:
            data[name] = [*kept, *new]
    if problems:
        raise InputError.combine(problems)
    return data


def save_upload(upload: Any, folder: Path, index: int) -> str:
    """Save one uploaded file under a safe name in ``folder``; returns the name relative to it."""
    original = Path(str(upload.filename).replace("\\", "/")).name.strip()
    original = re.sub(r"[\x00-\x1f]", "", original)[:120]
    suffix = Path(original).suffix.lower()
    if not original or original in (".", "..") or suffix not in UPLOAD_TYPES:
        raise InputError(f"不接受文件 \"{original or '（无名）'}\"：只接受 "
                         f"{'、'.join(sorted(UPLOAD_TYPES))} 文件")
    data = upload.file.read(UPLOAD_MAX_BYTES + 1)
    if len(data) > UPLOAD_MAX_BYTES:
        raise InputError(f"文件 {original} 超过 {UPLOAD_MAX_BYTES // 1048576} MB")
    if not data:
        raise InputError(f"文件 {original} 是空的")
    magic = _MAGIC.get(suffix)
    if magic and not data.startswith(magic):
        raise InputError(f"文件 {original} 的内容不是 {suffix[1:].upper()} 格式")
    if suffix == ".txt":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"文本文件 {original} 不是 UTF-8 编码") from None
    sub = folder / str(index)
    sub.mkdir(parents=True, exist_ok=True)
    (sub / original).write_bytes(data)
    return f"{index}/{original}"


def upload_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="dealerdocs-upload-")


def error_map(err: InputError, shown: Iterable[str] | None = None
              ) -> tuple[dict[str, list[str]], dict[str, dict[int, list[str]]], list[str]]:
    """(messages by field, messages by table field and row, messages without a field). With
    ``shown`` (the fields the form has), a message about any other field goes with those
    without one: said above the form, never lost."""
    by_field: dict[str, list[str]] = {}
    by_row: dict[str, dict[int, list[str]]] = {}
    general: list[str] = []
    for p in err.problems:
        name = p.field or p.details.get("field")
        row = p.details.get("row")
        if name and isinstance(row, int):
            by_row.setdefault(name, {}).setdefault(row, []).append(p.message)
        elif name:
            by_field.setdefault(name, []).append(p.message)
        else:
            general.append(p.message)
    if shown is not None:
        shown = set(shown)
        for name in [n for n in by_field if n not in shown]:
            general += by_field.pop(name)
        for name in [n for n in by_row if n not in shown]:
            general += [m for messages in by_row.pop(name).values() for m in messages]
    if len(err.problems) > 1 or not (by_field or by_row or general):
        general.insert(0, err.message)  # the summary above the form; details at each field
    return by_field, by_row, general
