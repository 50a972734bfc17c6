"""Compiling a workflow file's rules: its computed values (and a table's derived columns),
checks and conditions, as expressions (``engine.rules``) whose every name is checked against
the file's fields, computed values, ``[policy]`` keys and the generic functions. The parsed
shapes of those tables live here too; ``engine.workflow`` reads the rest of the file."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import functions, rules
from .fields import FieldSpec
from .policy import PolicySpec

# Names the renderer puts into every template context; a field may not shadow them.
RESERVED_NAMES = frozenset({"dealer", "doc", "case", "totals", "links", "policy", "privacy", "now",
                            "loop"})
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ComputedDef:
    value: str                     # an expression (engine.rules)
    label: str | None = None       # shown by `show` and the case page; none: not shown
    requires: list[str] | None = None  # empty while one of these is empty (default: all it reads)


@dataclass(frozen=True)
class CheckRuleDef:
    field: str
    fails_when: str
    message: str
    requires: list[str] | None = None


@dataclass(frozen=True)
class CheckDef:
    let: dict[str, str] = field(default_factory=dict)   # local names, in order
    rules: list[CheckRuleDef] = field(default_factory=list)
    field: str | None = None  # (after the two above: it shadows dataclasses.field here)
    fails_when: str | None = None
    message: str | None = None
    requires: list[str] | None = None


@dataclass(frozen=True)
class ConditionDef:
    label: str                     # what must hold, for the diagram ("报价已过有效期")
    blocks_when: str
    message: str
    requires: list[str] | None = None
    let: dict[str, str] = field(default_factory=dict)


def compile_rules(wf: Any, fields: dict[str, FieldSpec],
                   policy_specs: dict[str, PolicySpec], fail) -> dict[str, Any]:
    """The file's computed values, checks and conditions compiled, every name they read
    checked against the fields, computed values, policy keys and functions (``linked.<x>``
    is checked with the other workflows, in ``_check_links``)."""
    linked: set[str] = set()

    def compiled(kind, source: str, key: str, known: set[str]):
        """``kind`` (rules.Expression or rules.Message) compiled, its names checked."""
        try:
            done = kind.compile(source)
        except rules.RuleError as err:
            raise fail(key, str(err)) from None
        _names_known(done.names, key, known)
        return done

    def expression(source: str, key: str, known: set[str]) -> rules.Expression:
        return compiled(rules.Expression, source, key, known)

    def message(source: str, key: str, known: set[str]) -> rules.Message:
        return compiled(rules.Message, source, key, known)

    def _names_known(names: rules.Names, key: str, known: set[str]) -> None:
        unknown = rules.unknown_names(names, known, policy_specs, linked=names.linked)
        if unknown:
            raise fail(key, f"引用了未定义的名称 {', '.join(unknown)}（可用：本工作流的字段、"
                            f"[computed] 计算值、policy.<[policy] 中的项>、today、now、linked.<关联工作流>、"
                            f"函数 {', '.join(functions.FUNCTIONS)}）")
        linked.update(names.linked)

    def requires(names: list[str] | None, expr: rules.Expression, key: str,
                 known: set[str], data_names: set[str]) -> tuple[str, ...]:
        if names is None:
            return rules.default_requires(expr, data_names)
        for j, name in enumerate(names):
            if name not in known:
                raise fail(f"{key}.requires[{j}]", f"\"{name}\" 不是字段、计算值或 let 中的名称")
        return tuple(names)

    def lets(defs: dict[str, str], key: str, known: set[str]
             ) -> tuple[tuple[tuple[str, rules.Expression], ...], set[str]]:
        out, scope = [], set(known)
        for name, source in defs.items():
            if not NAME.match(name) or name in scope:
                raise fail(f"{key}.let.{name}", f"\"{name}\" 与字段、计算值或其他名称重名，或不是合法名称")
            out.append((name, expression(source, f"{key}.let.{name}", scope)))
            scope.add(name)
        return tuple(out), scope

    row_computed: dict[str, dict[str, rules.Computed]] = {}
    for name, spec in fields.items():
        d = wf.fields[name]
        if d.computed and spec.type != "table":
            raise fail(f"fields.{name}.computed", "只有 table 类型的字段可以有计算列")
        scope = set(spec.columns)
        cols = {}
        for col, c in d.computed.items():
            key = f"fields.{name}.computed.{col}"
            if col in spec.columns or not NAME.match(col):
                raise fail(key, f"\"{col}\" 与本表的列重名，或不是合法名称")
            value = expression(c.value, f"{key}.value", scope)
            cols[col] = rules.Computed(col, c.label or "", value,
                                       requires(c.requires, value, key, scope, scope))
            scope.add(col)
        if cols:
            row_computed[name] = cols

    data_names = set(fields)
    computed: dict[str, rules.Computed] = {}
    for name, c in wf.computed.items():
        key = f"computed.{name}"
        if not NAME.match(name) or name in RESERVED_NAMES:
            raise fail(key, f"\"{name}\" 不是合法名称或与模板保留名冲突")
        known = data_names | set(computed)
        value = expression(c.value, f"{key}.value", known)
        if value.names.linked:
            raise fail(f"{key}.value", "计算值不能读取关联案件（linked）")
        computed[name] = rules.Computed(name, c.label or "", value,
                                        requires(c.requires, value, key, known, known))
    values_known = data_names | set(computed)

    checks: dict[str, rules.Check] = {}
    for name, c in wf.checks.items():
        key = f"checks.{name}"
        if not NAME.match(name):
            raise fail(key, f"\"{name}\" 不是合法名称")
        let_pairs, scope = lets(c.let, key, values_known)
        single = [c.field, c.fails_when, c.message]
        if c.rules and any(x is not None for x in single):
            raise fail(key, "要么直接写 field、fails_when、message，要么写 rules 列表，不能同时写")
        if not c.rules and any(x is None for x in single):
            raise fail(key, "需要 field、fails_when 与 message（或一个 rules 列表）")
        defs = c.rules or [CheckRuleDef(c.field, c.fails_when, c.message, c.requires)]
        compiled_rules = []
        for j, r in enumerate(defs):
            rkey = f"{key}.rules[{j}]" if c.rules else key
            if r.field not in fields:
                raise fail(f"{rkey}.field", f"\"{r.field}\" 不是已定义的字段")
            test = expression(r.fails_when, f"{rkey}.fails_when", scope)
            msg = message(r.message, f"{rkey}.message", scope)
            compiled_rules.append(rules.Rule(test, msg, requires(r.requires, test, rkey, scope,
                                                                 values_known),
                                             r.field, let_pairs))
        checks[name] = rules.Check(name, tuple(compiled_rules))

    conditions: dict[str, rules.Condition] = {}
    for name, c in wf.conditions.items():
        key = f"conditions.{name}"
        if not NAME.match(name):
            raise fail(key, f"\"{name}\" 不是合法名称")
        let_pairs, scope = lets(c.let, key, values_known)
        test = expression(c.blocks_when, f"{key}.blocks_when", scope)
        msg = message(c.message, f"{key}.message", scope)
        conditions[name] = rules.Condition(name, c.label, rules.Rule(
            test, msg, requires(c.requires, test, key, scope, values_known), None, let_pairs))
    return {"computed": computed, "row_computed": row_computed, "checks": checks,
            "conditions": conditions, "linked": frozenset(linked)}
