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


class RuleCompiler:
    """Compiles one workflow file's expressions and messages, checking every name they read
    against what the file defines (``known``), its ``[policy]`` keys and the functions; notes
    the ``linked.<x>`` they read (checked with the other workflows, in ``_check_links``)."""

    def __init__(self, policy_specs: dict[str, PolicySpec], fail) -> None:
        self.policy_specs = policy_specs
        self.fail = fail
        self.linked: set[str] = set()

    def _compiled(self, kind, source: str, key: str, known: set[str]):
        try:
            done = kind.compile(source)
        except rules.RuleError as err:
            raise self.fail(key, str(err)) from None
        unknown = rules.unknown_names(done.names, known, self.policy_specs,
                                      linked=done.names.linked)
        if unknown:
            raise self.fail(key, f"引用了未定义的名称 {', '.join(unknown)}（可用：本工作流的字段、"
                                 f"[computed] 计算值、policy.<[policy] 中的项>、today、now、"
                                 f"linked.<关联工作流>、函数 {', '.join(functions.FUNCTIONS)}）")
        self.linked.update(done.names.linked)
        return done

    def expression(self, source: str, key: str, known: set[str]) -> rules.Expression:
        return self._compiled(rules.Expression, source, key, known)

    def message(self, source: str, key: str, known: set[str]) -> rules.Message:
        return self._compiled(rules.Message, source, key, known)

    def requires(self, names: list[str] | None, expr: rules.Expression | None, key: str,
                 known: set[str], data_names: set[str]) -> tuple[str, ...]:
        """The names a rule needs filled: those written, else what ``expr`` reads."""
        if names is None:
            return rules.default_requires(expr, data_names) if expr is not None else ()
        for j, name in enumerate(names):
            if name not in known:
                raise self.fail(f"{key}.requires[{j}]", f"\"{name}\" 不是字段、计算值或 let 中的名称")
        return tuple(names)

    def lets(self, defs: dict[str, str], key: str, known: set[str]
             ) -> tuple[tuple[tuple[str, rules.Expression], ...], set[str]]:
        out, scope = [], set(known)
        for name, source in defs.items():
            if not NAME.match(name) or name in scope:
                raise self.fail(f"{key}.let.{name}",
                                f"\"{name}\" 与字段、计算值或其他名称重名，或不是合法名称")
            out.append((name, self.expression(source, f"{key}.let.{name}", scope)))
            scope.add(name)
        return tuple(out), scope

    def rule(self, key: str, test: tuple[str, str], message: str, required: list[str] | None,
             scope: set[str], data_names: set[str], lets=(), field: str | None = None
             ) -> rules.Rule:
        """A check's or condition's rule: ``test`` is (its key in the file, its source)."""
        expr = self.expression(test[1], f"{key}.{test[0]}", scope)
        return rules.Rule(expr, self.message(message, f"{key}.message", scope),
                          self.requires(required, expr, key, scope, data_names), field, lets)


def compile_rules(wf: Any, fields: dict[str, FieldSpec], policy_specs: dict[str, PolicySpec],
                  fail) -> dict[str, Any]:
    """The file's computed values, checks and conditions compiled (``compiler``: the
    :class:`RuleCompiler`, for the file's other expressions)."""
    compiler = RuleCompiler(policy_specs, fail)

    def named(key: str, name: str) -> None:
        if not NAME.match(name):
            raise fail(key, f"\"{name}\" 不是合法名称")

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
            value = compiler.expression(c.value, f"{key}.value", scope)
            cols[col] = rules.Computed(col, c.label or "", value,
                                       compiler.requires(c.requires, value, key, scope, scope))
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
        value = compiler.expression(c.value, f"{key}.value", known)
        if value.names.linked:
            raise fail(f"{key}.value", "计算值不能读取关联案件（linked）")
        computed[name] = rules.Computed(name, c.label or "", value,
                                        compiler.requires(c.requires, value, key, known, known))
    values_known = data_names | set(computed)

    checks: dict[str, rules.Check] = {}
    for name, c in wf.checks.items():
        key = f"checks.{name}"
        named(key, name)
        let_pairs, scope = compiler.lets(c.let, key, values_known)
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
            compiled_rules.append(compiler.rule(rkey, ("fails_when", r.fails_when), r.message,
                                                r.requires, scope, values_known, let_pairs,
                                                r.field))
        checks[name] = rules.Check(name, tuple(compiled_rules))

    conditions: dict[str, rules.Condition] = {}
    for name, c in wf.conditions.items():
        key = f"conditions.{name}"
        named(key, name)
        let_pairs, scope = compiler.lets(c.let, key, values_known)
        conditions[name] = rules.Condition(name, c.label, compiler.rule(
            key, ("blocks_when", c.blocks_when), c.message, c.requires, scope, values_known,
            let_pairs))
    return {"computed": computed, "row_computed": row_computed, "checks": checks,
            "conditions": conditions, "compiler": compiler}
