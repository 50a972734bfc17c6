"""The store's policy: settings a workflow's rules read as ``policy.<key>``.

Each workflow file declares the keys it reads with their type, default and bounds
(``[policy.<key>]``); config.toml's ``[policy]`` overrides them for one store. The values are
typed by the declaration (a ``decimal`` is written as text, ``"0.05"``, so that it stays exact;
a ``date`` as a TOML date, ``2026-01-01``, or its ISO text: the first day of a tax relief).
Two workflows may read the same key only if they declare it alike.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError, WorkflowDefinitionError
from .typedtoml import read_toml

TYPES = ("decimal", "integer", "string", "boolean", "date")


@dataclass(frozen=True)
class PolicySpec:
    key: str
    type: str
    default: Any
    label: str = ""
    min: Any = None
    max: Any = None
    choices: tuple[str, ...] = ()      # a string policy: one of these (e.g. a level, a scope)

    def describe_range(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{_plain(self.min)}–{_plain(self.max)} 之间"
        if self.min is not None:
            return f"至少为 {_plain(self.min)}"
        if self.max is not None:
            return f"至多为 {_plain(self.max)}"
        return ""


def _plain(value: Any) -> str:
    return f"{value.normalize():f}" if isinstance(value, Decimal) else str(value)


class _Bad(ValueError):
    pass


def _typed(kind: str, value: Any) -> Any:
    """``value`` as ``kind``; raises _Bad naming what was expected."""
    if kind == "decimal":
        if not isinstance(value, str):
            raise _Bad("应为字符串（如 \"0.05\"，写成文字以免二进制误差）")
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise _Bad("decimal") from None
        if not number.is_finite():
            raise _Bad("decimal")
        return number
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad("应为整数")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _Bad("应为 true 或 false")
        return value
    if kind == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if not isinstance(value, str):
            raise _Bad("应为日期（如 2026-01-01）")
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise _Bad("应为日期（如 2026-01-01）") from None
    if not isinstance(value, str):
        raise _Bad("应为字符串")
    return value


def check_value(spec: PolicySpec, value: Any, where: str) -> Any:
    """``value`` typed and within bounds, or a ConfigError that says what is expected."""
    key = f"policy.{spec.key}"
    bounds = spec.describe_range()
    decimal_words = f"应为 {bounds}的小数" if bounds else "应为小数"
    try:
        typed = _typed(spec.type, value)
    except _Bad as err:
        words = decimal_words if str(err) == "decimal" else str(err)
        shown = f"\"{value}\"" if isinstance(value, str) else repr(value)
        raise ConfigError(f"{where}: {key} {words}，收到 {shown}", key=key) from None
    if (spec.min is not None and typed < spec.min) or (spec.max is not None and typed > spec.max):
        if spec.type == "decimal":
            words = decimal_words
        else:
            words = f"应在 {bounds}" if spec.min is not None and spec.max is not None \
                else f"应{bounds}"
        raise ConfigError(f"{where}: {key} {words}，收到 {value!r}", key=key)
    if spec.choices and typed not in spec.choices:
        raise ConfigError(f"{where}: {key} 应为 {' / '.join(spec.choices)} 之一，收到 \"{typed}\"",
                          key=key)
    return typed


def declare(key: str, raw: Any, where: str, path: str | None = None) -> PolicySpec:
    """A ``[policy.<key>]`` table of a workflow file as a spec (its default checked)."""
    def fail(message: str) -> WorkflowDefinitionError:
        return WorkflowDefinitionError(f"{where}: policy.{key}: {message}", key=f"policy.{key}",
                                       path=path)

    if not isinstance(raw, dict):
        raise fail("应为一个表：type、default，可选 label、min、max、choices")
    unknown = set(raw) - {"type", "default", "label", "min", "max", "choices"}
    if unknown:
        raise fail(f"未知的键 {', '.join(sorted(unknown))}（可用：type、default、label、min、max、"
                   f"choices）")
    kind = raw.get("type")
    if kind not in TYPES:
        raise fail(f"type 应为 {' / '.join(TYPES)} 之一，收到 {kind!r}")
    if "default" not in raw:
        raise fail("缺少 default")
    bounds = {}
    for bound in ("min", "max"):
        if bound in raw:
            if kind not in ("decimal", "integer"):
                raise fail(f"{bound} 只适用于 decimal 与 integer")
            try:
                bounds[bound] = _typed(kind, raw[bound])
            except _Bad as err:
                raise fail(f"{bound}: {err if str(err) != 'decimal' else '不是数字'}") from None
    choices = raw.get("choices", [])
    if choices and (kind != "string" or not isinstance(choices, list)
                    or not all(isinstance(c, str) and c for c in choices)):
        raise fail("choices 只适用于 string，应为非空字符串的列表")
    spec = PolicySpec(key, kind, None, str(raw.get("label", "")), bounds.get("min"),
                      bounds.get("max"), tuple(choices))
    try:
        default = check_value(spec, raw["default"], where)
    except ConfigError as err:
        raise fail(f"default: {err.message.split(': ', 1)[-1]}") from None
    return replace(spec, default=default)


def declared_in(folder: Path) -> dict[str, PolicySpec]:
    """Every policy key the workflow files in ``folder`` declare. A file that cannot be read is
    skipped here (loading the workflows reports it with its key)."""
    out: dict[str, PolicySpec] = {}
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        try:
            raw = read_toml(path).get("policy", {})
            specs = {k: declare(k, v, path.name) for k, v in raw.items()} \
                if isinstance(raw, dict) else {}
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, WorkflowDefinitionError):
            continue
        for key, spec in specs.items():
            out.setdefault(key, spec)
    return out


def resolve(specs: Mapping[str, PolicySpec], overrides: Mapping[str, Any],
            where: str) -> dict[str, Any]:
    """The store's policy: every declared key, overridden by config.toml where it says so."""
    for key in overrides:
        if key not in specs:
            known = "、".join(sorted(specs)) or "无"
            raise ConfigError(f"{where}: 未知的配置项 policy.{key}（工作流声明的策略项：{known}）",
                              key=f"policy.{key}")
    return {key: (check_value(spec, overrides[key], where) if key in overrides else spec.default)
            for key, spec in specs.items()}
