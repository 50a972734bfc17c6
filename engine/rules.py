"""Rules as data: the checks, conditions and computed values of a workflow file.

Each is a jinja2 expression (``SandboxedEnvironment.compile_expression``) over the case's typed
data (money stays ``Decimal``, dates stay dates), the computed values, the store's ``policy``,
``today`` and ``now`` from the engine's clock, ``linked`` (the data of linked cases by workflow)
and the generic functions of :mod:`engine.functions`. Messages are jinja2 templates over the same
names. Expressions are compiled and their names checked when the definitions load, so a typo
fails at start-up with the file and key named, never in front of a customer.

Missing values: a rule reads the names in ``requires`` (by default every field and computed
value its expression names); when one of them is empty the rule does not apply (a check
reports nothing, a condition does not block, a computed value is empty). ``requires = []``
makes the expression see empty values itself (``none``).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import cached_property
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from . import functions
from .errors import WorkflowDefinitionError
from .dates import cn_date, cn_datetime
from .money import format_money

# names an expression may use besides fields, computed values and functions
CONTEXT_NAMES = ("policy", "today", "now", "linked")


class RuleError(WorkflowDefinitionError):
    """A rule that cannot be compiled, names an unknown thing, or fails when evaluated."""


def _percent(share: Decimal | int | None) -> str:
    if share is None:
        return ""
    return f"{(Decimal(share) * 100).normalize():f}%"


def _money(value: Decimal | int | None) -> str:
    return "" if value is None else format_money(value)


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                               keep_trailing_newline=False)
    env.filters.update({"money": _money, "cn_date": cn_date, "cn_datetime": cn_datetime,
                        "percent": _percent})
    env.globals.clear()
    env.globals.update(functions.FUNCTIONS)
    return env


ENV = _environment()


@dataclass(frozen=True)
class Names:
    """What an expression reads: plain names, and ``policy.<key>`` / ``linked.<workflow>``."""

    plain: frozenset[str]
    policy: frozenset[str]
    linked: frozenset[str]
    functions: frozenset[str]


def _names(tree: nodes.Node) -> Names:
    plain, policy, linked, called = set(), set(), set(), set()
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "policy":
            policy.add(node.attr)
        if isinstance(node.node, nodes.Name) and node.node.name == "linked":
            linked.add(node.attr)
    for node in tree.find_all(nodes.Call):
        if isinstance(node.node, nodes.Name):
            called.add(node.node.name)
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load":
            plain.add(node.name)
    return Names(frozenset(plain), frozenset(policy), frozenset(linked), frozenset(called))


def _parse_expression(source: str) -> nodes.Node:
    try:
        return ENV.parse("{{ (" + source + ") }}")
    except TemplateSyntaxError as err:
        raise RuleError(f"表达式有语法错误：{err.message}（{source}）") from None


def _no_floats(tree: nodes.Node, source: str) -> None:
    for const in tree.find_all(nodes.Const):
        if isinstance(const.value, float):
            raise RuleError(f"表达式中的小数 {const.value!r} 会带来二进制误差：请写 dec('{const.value!r}') "
                            f"或放到 [policy] 中（{source}）")


@functools.lru_cache(maxsize=4096)
def _compiled(kind: type, source: str) -> Any:
    """An :class:`Expression` or :class:`Message` for ``source``, once a process: they are
    immutable and depend on nothing but their source (and :data:`ENV`), and every engine loads
    every workflow's rules (parsing them is most of that), so a process that makes many
    engines (the web app's stores, a batch, the tests) parses each source once and turns it
    into code at most once. An error is raised again each time (lru_cache keeps no errors)."""
    return kind._parse(source)


@dataclass(frozen=True)
class Expression:
    """An expression, parsed and checked when the definitions load; turned into Python code the
    first time it is evaluated (most commands evaluate few of a store's rules)."""

    source: str
    names: Names

    @classmethod
    def compile(cls, source: str) -> "Expression":
        if not isinstance(source, str) or not source.strip():
            raise RuleError("表达式不能为空")
        return _compiled(cls, source)

    @classmethod
    def _parse(cls, source: str) -> "Expression":
        tree = _parse_expression(source)
        _no_floats(tree, source)
        return cls(source, _names(tree))

    @cached_property
    def _code(self) -> Callable[..., Any]:
        return ENV.compile_expression(self.source, undefined_to_none=False)

    def __call__(self, namespace: Mapping[str, Any]) -> Any:
        try:
            value = self._code(**namespace)
        except (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError,
                AttributeError, KeyError) as err:
            raise RuleError(f"表达式 {self.source} 无法计算：{err}") from err
        if isinstance(value, Undefined):   # e.g. an attribute the sandbox does not give
            raise RuleError(f"表达式 {self.source} 无法计算：{value._undefined_message}")
        return value


@dataclass(frozen=True)
class Message:
    """A jinja2 template for the words a user reads (compiled when first needed)."""

    source: str
    names: Names

    @classmethod
    def compile(cls, source: str) -> "Message":
        return _compiled(cls, source) if isinstance(source, str) else cls._parse(source)

    @classmethod
    def _parse(cls, source: str) -> "Message":
        try:
            tree = ENV.parse(source)
        except TemplateSyntaxError as err:
            raise RuleError(f"提示文字的模板有语法错误：{err.message}（{source}）") from None
        return cls(source, _names(tree))

    @cached_property
    def _template(self) -> Any:
        return ENV.from_string(self.source)

    def render(self, namespace: Mapping[str, Any]) -> str:
        try:
            return self._template.render(**namespace)
        except (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError,
                AttributeError, KeyError) as err:
            raise RuleError(f"提示文字 {self.source} 无法生成：{err}") from err


@dataclass(frozen=True)
class Rule:
    """A test and the message it gives when it holds; ``field`` names the field the message
    belongs to (checks only); ``lets`` are local names computed, in order, before the test."""

    test: Expression
    message: Message
    requires: tuple[str, ...]
    field: str | None = None
    lets: tuple[tuple[str, Expression], ...] = ()

    def applies(self, namespace: Mapping[str, Any]) -> bool:
        return all(namespace.get(name) not in (None, "", [], ()) for name in self.requires)

    def judge(self, namespace: Mapping[str, Any]) -> str | None:
        """The message if the rule applies and its test holds, else None."""
        if not self.applies(namespace):
            return None
        scope = dict(namespace)
        for name, expr in self.lets:
            scope[name] = expr(scope)
        if not self.test(scope):
            return None
        return self.message.render(scope)

    def reads(self) -> frozenset[str]:
        """The plain names (fields, computed values) the rule reads."""
        names = self.test.names.plain | self.message.names.plain
        for _, expr in self.lets:
            names |= expr.names.plain
        return names


@dataclass(frozen=True)
class Check:
    """Problems ``(field, message)`` with data a transition is about to commit."""

    name: str
    rules: tuple[Rule, ...]

    def __call__(self, namespace: Mapping[str, Any]) -> list[tuple[str, str]]:
        out = []
        for rule in self.rules:
            message = rule.judge(namespace)
            if message is not None:
                out.append((rule.field or "", message))
        return out


@dataclass(frozen=True)
class Condition:
    """Whether a transition may happen now: the refusal reason, or None."""

    name: str
    label: str
    rule: Rule

    def __call__(self, namespace: Mapping[str, Any]) -> str | None:
        return self.rule.judge(namespace)

    def reads(self) -> frozenset[str]:
        return self.rule.reads()


@dataclass(frozen=True)
class Computed:
    """A value computed from the case (a total, a count, a date); ``label`` names it."""

    name: str
    label: str
    value: Expression
    requires: tuple[str, ...]

    def __call__(self, namespace: Mapping[str, Any]) -> Any:
        if not all(namespace.get(name) is not None for name in self.requires):
            return None
        return self.value(namespace)


def default_requires(expression: Expression, known: Iterable[str]) -> tuple[str, ...]:
    """The fields and computed values ``expression`` names, in a stable order."""
    known = set(known)
    return tuple(sorted(n for n in expression.names.plain if n in known))


def namespace(data: Mapping[str, Any], computed: Mapping[str, Any], *, today: date,
              now: datetime | None, policy: Mapping[str, Any],
              linked: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The names an expression sees. ``now`` is naive local time (what a datetime field holds)."""
    local_now = now.replace(tzinfo=None) if now is not None else datetime.combine(
        today, datetime.min.time())
    return {**data, **computed, "policy": dict(policy), "today": today, "now": local_now,
            "linked": {k: dict(v) for k, v in linked.items()}}


def unknown_names(names: Names, known: Iterable[str], policy_keys: Iterable[str],
                  linked: Iterable[str] = ()) -> list[str]:
    """Names an expression reads that the definition does not have."""
    allowed = set(known) | set(CONTEXT_NAMES) | set(functions.FUNCTIONS)
    out = sorted(n for n in names.plain if n not in allowed)
    out += sorted(f"policy.{k}" for k in names.policy if k not in set(policy_keys))
    out += sorted(f"linked.{k}" for k in names.linked if k not in set(linked))
    return out
