"""Field specifications of a workflow and the normalisation of user data against them.

Data arrives as JSON (numbers parsed as Decimal) or from a form. :func:`normalize` turns one raw
value into its stored form (money and dates as strings, users as logins) or raises
:class:`InputError` naming the field by its Chinese label; :func:`to_python` turns a stored
value back into what templates and calculators use (Decimal, date, user dict).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from . import dates, money, rules, validators
from .config import Config
from .errors import InputError
from .text import clean_line, clean_text

FIELD_TYPES = ("string", "text", "money", "integer", "date", "datetime", "choice", "multichoice",
               "boolean", "user", "table", "attachments")
ATTACHMENT_KEYS = ("name", "sha256", "size", "file")
_DEFAULT_MAX_LENGTH = {"string": 200, "text": 5000}


@dataclass(frozen=True)
class TableTimeline:
    """A table field whose rows are lines of its case's timeline (``timeline`` in the workflow
    file): the column with the row's date, the column naming who (a login), and the words."""

    date: str
    text: rules.Message
    by: str | None = None


@dataclass(frozen=True)
class FieldSpec:
    """One data field. ``columns`` describes the rows of a ``table`` field."""

    name: str
    type: str
    label: str
    required: bool = False
    required_if: dict[str, str | list[str]] = field(default_factory=dict)  # field → value(s)
    required_if_set: tuple[str, ...] = ()
    rule: str | None = None
    rule_field: str | None = None  # the rule depends on this field's value …
    rule_map: dict[str, str] = field(default_factory=dict)  # … value → rule name
    override: str | None = None  # a boolean field that, when true, accepts a rule's warning
    choices: tuple[str, ...] = ()
    choice_labels: dict[str, str] = field(default_factory=dict)
    min: str | None = None
    max: str | None = None
    max_length: int | None = None
    max_rows: int = 200
    roles: tuple[str, ...] = ()
    default: str | None = None
    columns: dict[str, "FieldSpec"] = field(default_factory=dict)
    personal: str | None = None  # personal data it holds (engine.privacy): masked, hashed, purged
    search: bool = False  # its exact value finds the case (dealerdocs find; a keyed-hash index)
    unique: bool = False  # no two cases of the workflow hold the same value (a VIN)
    timeline: "TableTimeline | None" = None  # a table whose rows are lines of the timeline
    lookup: Any = None  # workflow.Lookup: picked from another workflow's cases (a catalogue)
    # (lookup field, its workflow's field): the values allowed are those the picked case lists
    # in that field (a quote's colour among its catalogue model's colours); see services.lookups
    choices_from: tuple[str, str] | None = None

    def is_required(self, data: dict[str, Any]) -> bool:
        """Required outright, or because another field has a given value (``required_if``)."""
        if self.required:
            return True
        if any(not is_empty(data.get(k)) for k in self.required_if_set):
            return True
        return bool(self.required_if) and all(
            _as_text(data.get(k)) in ([v] if isinstance(v, str) else v)
            for k, v in self.required_if.items())

    def choice_label(self, value: str) -> str:
        return self.choice_labels.get(value, value)


def _as_text(value: Any) -> str:
    """How a stored value compares with a ``required_if`` value written in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def normalize(spec: FieldSpec, raw: Any, config: Config, *, where: str = "",
              rule: str | None = None, warnings: list[str] | None = None) -> Any:
    """Check one raw value and return its stored (JSON-safe) form; ``None`` for empty.

    ``rule`` replaces ``spec.rule`` (for fields whose rule depends on another field). A rule's
    *warning* is accepted when ``warnings`` is a list (the caller's override is on); the message
    is appended to it so the caller can record what was accepted.
    """
    label = f"{where}{spec.label}"
    rule = rule or spec.rule

    def bad(reason: str) -> InputError:
        return InputError(f"{label}（{spec.name}）{reason}", field=spec.name, label=label)

    if is_empty(raw):
        return [] if spec.type in ("table", "multichoice", "attachments") else None
    kind = spec.type
    if kind in ("string", "text", "choice"):
        if not isinstance(raw, str):
            if isinstance(raw, (int, Decimal)) and not isinstance(raw, bool) and kind != "choice":
                raw = str(raw)
            else:
                raise bad(f"应为文字，收到 {_show(raw)}")
        # a one-line field: no newlines or tab runs
        value = clean_line(raw) if kind in ("string", "choice") else clean_text(raw).strip()
        limit = spec.max_length or _DEFAULT_MAX_LENGTH.get(kind, 200)
        if len(value) > limit:
            raise bad(f"过长：{len(value)} 个字符，最多 {limit} 个")
        if kind == "choice" and value not in spec.choices:
            raise bad(f"\"{value}\" 不是可选值；可选：{_choices(spec)}")
        if rule:
            try:
                value = validators.check(rule, value)
            except validators.RuleWarning as warning:
                if warnings is None:
                    raise bad(f"\"{value}\" 存疑：{warning}") from None
                warnings.append(f"{label}（{spec.name}）\"{value}\"：{warning}（已按例外接受）")
                value = warning.normalized
            except validators.RuleViolation as err:
                raise bad(f"\"{value}\" 无效：{err}") from None
        return value
    if kind == "multichoice":
        items = raw if isinstance(raw, list) else None
        if items is None or not all(isinstance(i, str) for i in items):
            raise bad(f"应为可选值的列表，收到 {_show(raw)}")
        unknown = [i for i in items if i.strip() not in spec.choices]
        if unknown:
            raise bad(f"\"{unknown[0]}\" 不是可选值；可选：{_choices(spec)}")
        chosen = {i.strip() for i in items}
        return [c for c in spec.choices if c in chosen]
    if kind == "money":
        try:
            amount = money.parse_money(raw)
        except ValueError as err:
            raise bad(str(err)) from None
        low = Decimal(spec.min) if spec.min is not None else Decimal("0")
        if amount < low:
            raise bad(f"不能小于 {money.format_money(low)}（收到 {money.format_money(amount)}）")
        if spec.max is not None and amount > Decimal(spec.max):
            raise bad(f"不能大于 {money.format_money(Decimal(spec.max))}"
                      f"（收到 {money.format_money(amount)}）")
        return str(amount)
    if kind == "integer":
        number = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            number = raw
        elif isinstance(raw, Decimal) and raw.is_finite() and raw == raw.to_integral_value():
            number = int(raw)
        elif isinstance(raw, str) and re.fullmatch(r"-?[0-9]{1,15}", raw.strip()):
            number = int(raw.strip())
        if number is None:
            raise bad(f"应为整数，收到 {_show(raw)}")
        if spec.min is not None and number < int(spec.min):
            raise bad(f"不能小于 {spec.min}（收到 {number}）")
        if spec.max is not None and number > int(spec.max):
            raise bad(f"不能大于 {spec.max}（收到 {number}）")
        return number
    if kind == "date":
        try:
            return dates.parse_date(raw).isoformat()
        except ValueError as err:
            raise bad(str(err)) from None
    if kind == "datetime":
        try:
            return dates.parse_datetime(raw).isoformat(timespec="minutes")
        except ValueError as err:
            raise bad(str(err)) from None
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        if raw in ("是", "true", "yes", "1", 1):
            return True
        if raw in ("否", "false", "no", "0", 0):
            return False
        raise bad(f"应为 是/否，收到 {_show(raw)}")
    if kind == "user":
        login = str(raw).strip()
        user = config.users.get(login)
        if user is None:
            raise bad(f"\"{login}\" 不是已配置的用户")
        if spec.roles and not set(spec.roles) & set(user.roles):
            need = "、".join(config.role_label(r) for r in spec.roles)
            raise bad(f"\"{login}\"（{user.name}）不是{need}")
        return login
    if kind == "table":
        return _normalize_table(spec, raw, config, label)
    if kind == "attachments":
        # The engine has stored the files and passes their records (``ATTACHMENT_KEYS``).
        if not isinstance(raw, list) or not all(isinstance(a, dict) and set(ATTACHMENT_KEYS)
                                                <= set(a) for a in raw):
            raise bad(f"应为附件文件路径的列表，收到 {_show(raw)}")
        if len(raw) > spec.max_rows:
            raise bad(f"最多 {spec.max_rows} 个附件，收到 {len(raw)} 个")
        unique = {a["sha256"]: {k: a[k] for k in ATTACHMENT_KEYS} for a in raw}
        return list(unique.values())
    raise AssertionError(f"unknown field type {kind}")  # prevented by the workflow loader


def _normalize_table(spec: FieldSpec, raw: Any, config: Config, label: str) -> list[dict]:
    if not isinstance(raw, list):
        raise InputError(f"{label}（{spec.name}）应为列表，收到 {_show(raw)}",
                         field=spec.name, label=label)
    if len(raw) > spec.max_rows:
        raise InputError(f"{label}（{spec.name}）最多 {spec.max_rows} 行，收到 {len(raw)} 行",
                         field=spec.name, label=label)
    rows, problems = [], []
    for i, row in enumerate(raw, start=1):
        where = f"{label}第 {i} 行的"
        if not isinstance(row, dict):
            problems.append(InputError(f"{where}数据应为对象（键值表），收到 {_show(row)}",
                                       field=spec.name, label=label, row=i))
            continue
        for key in row:
            if key not in spec.columns:
                problems.append(InputError(
                    f"{where}\"{key}\" 不是已定义的列（可用：{'、'.join(spec.columns)}）",
                    field=spec.name, label=label, row=i, column=key))
        out: dict[str, Any] = {}
        for name, col in spec.columns.items():
            try:
                out[name] = normalize(col, row.get(name), config, where=where)
            except InputError as err:
                problems.extend(InputError(e.message, field=spec.name, label=label, row=i,
                                           column=name) for e in err.problems)
                out[name] = None
        for name, col in spec.columns.items():  # required_if sees the cleaned-up row
            if is_empty(row.get(name)) and col.is_required(out):
                problems.append(InputError(f"{where}{col.label}（{name}）必填",
                                           field=spec.name, label=label, row=i, column=name))
        rows.append(out)
    if problems:
        raise InputError.combine(problems)
    return rows


def to_python(spec: FieldSpec, stored: Any, config: Config) -> Any:
    """The stored form turned into the value templates and calculators work with."""
    if stored is None:
        return [] if spec.type in ("table", "multichoice", "attachments") else None
    if spec.type == "attachments":
        return [{k: a[k] for k in ("name", "sha256", "size")} for a in stored]
    if spec.type == "money":
        return Decimal(stored)
    if spec.type == "date":
        return date.fromisoformat(stored)
    if spec.type == "datetime":
        return datetime.fromisoformat(stored)
    if spec.type == "user":
        user = config.users.get(stored)
        return {"login": stored, "name": user.name if user else stored}
    if spec.type == "table":
        return [{name: to_python(col, row.get(name), config) for name, col in spec.columns.items()}
                for row in stored]
    return stored


# the field types a computed value may be written into (``assign`` from a ``[computed]`` value)
ASSIGNABLE = ("string", "text", "money", "integer", "date", "datetime", "choice")


def from_python(spec: FieldSpec, value: Any) -> Any:
    """A computed value in the stored form of field ``spec`` (the inverse of :func:`to_python`
    for the :data:`ASSIGNABLE` types): a date field takes a datetime's day, a datetime is kept
    to the minute, money is rounded to 分 and written as text."""
    if value is None:
        return None
    if spec.type == "date":
        return (value.date() if isinstance(value, datetime) else value).isoformat()
    if spec.type == "datetime":
        return value.replace(tzinfo=None).isoformat(timespec="minutes")
    if spec.type == "money":
        return str(money.quantize(value))
    if spec.type == "integer":
        return int(value)
    return str(value)


def _choices(spec: FieldSpec) -> str:
    return "、".join(f"{c}（{spec.choice_labels[c]}）" if c in spec.choice_labels else c
                    for c in spec.choices)


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return f"\"{text[:40]}…\"" if len(text) > 40 else (f"\"{text}\"" if isinstance(value, str)
                                                         else text)
