"""Workflow definitions (workflows/*.toml): fields, states, transitions and documents.

A definition is data, its rules included: checks, conditions and computed values are
expressions in the file (``engine.rules``), and the store's settings they read are declared in
its ``[policy]``. The only Python a file names is generic: the validation rules of fields
(``validators``) and the functions an expression may call (``functions``). Everything is
compiled and cross-checked when the file is loaded, so a typo fails at start-up with the file
and key named, never in front of a customer. Loading does no I/O beyond reading the files.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
import re
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Mapping

from transitions import Machine, Transition

from . import functions, rules, validators
from .workflow_rules import (NAME, RESERVED_NAMES, CheckDef, ComputedDef, ConditionDef,
                             RuleCompiler, compile_rules)
from .config import Config
from .policy import PolicySpec, declare as declare_policy
from .errors import StateError, WorkflowDefinitionError
from .fields import ASSIGNABLE, FIELD_TYPES, FieldSpec, TableTimeline
from .tallies import TallyColumn, TallySpec
from .privacy import MASKED_KINDS, PERSONAL_KINDS
from .typedtoml import build, read_toml

logging.getLogger("transitions").setLevel(logging.WARNING)



# --- the shape of a workflow file (parsed strictly; unknown keys are errors) -----------------

@dataclass(frozen=True)
class _FieldDef:
    type: str
    label: str
    required: bool = False
    required_if: dict[str, str | list[str]] = field(default_factory=dict)
    required_if_set: list[str] = field(default_factory=list)
    rule: str | None = None
    rule_field: str | None = None
    rule_map: dict[str, str] = field(default_factory=dict)
    override: str | None = None
    choices: list[str] = field(default_factory=list)
    choice_labels: dict[str, str] = field(default_factory=dict)
    min: str | None = None
    max: str | None = None
    max_length: int | None = None
    max_rows: int = 200
    roles: list[str] = field(default_factory=list)
    default: str | None = None
    columns: dict[str, "_FieldDef"] = field(default_factory=dict)
    personal: str | None = None  # what personal data it holds: id, mobile, name, address, text
    computed: dict[str, "ComputedDef"] = field(default_factory=dict)  # table: derived columns
    search: bool = False         # dealerdocs find looks its exact value up (a plate number)
    unique: bool = False         # no two cases of the workflow hold the same value (a VIN)
    timeline: "_TimelineDef | None" = None   # table: each row a line of the case's timeline
    lookup: "_LookupDef | None" = None   # string: picked from the cases of another workflow
    choices_from: str | None = None   # string: "<lookup field>.<its workflow's field>"


@dataclass(frozen=True)
class _LookupDef:
    workflow: str                # the workflow whose cases the field picks from (a catalogue)
    fill: dict[str, str] = field(default_factory=dict)   # this case's field ← its field
    match: str | None = None     # its field this one holds (default: fill's origin of this one)


@dataclass(frozen=True)
class _ImportDef:
    key: list[str]               # the fields that find the existing case a row stands for
    update: str                  # the step fired on it with the row's changed fields


@dataclass(frozen=True)
class _TimelineDef:
    date: str                    # the column with the row's date
    text: str                    # what the line says: a message over the row's columns
    by: str | None = None        # the column naming who (a login)


@dataclass(frozen=True)
class _StateDef:
    label: str
    final: bool = False
    reopens: bool = False   # final, but steps may still leave it (a lost customer won back)


@dataclass(frozen=True)
class _DocumentDef:
    title: str
    template: str
    series: str
    signatures: dict[str, str] = field(default_factory=dict)  # field name → anchor text
    dispatch_to: str | None = None  # field naming who gets copy 01 on issue (e.g. the customer)
    dispatch_dept: str = "客户"
    supersedes: bool = True  # a new issue replaces the previous one (a revision)
    # the field of `signatures` the store signs in (config.toml [documents.<kind>] sign = true)
    store_signature: str | None = None
    # the field the customer signs in afterwards (a step with `takes_signed` checks it)
    customer_signature: str | None = None


@dataclass(frozen=True)
class _CreateFromDef:
    states: list[str]
    fields: dict[str, str]  # target field → source field
    required: bool = False


@dataclass(frozen=True)
class _TransitionDef:
    trigger: str
    label: str
    source: list[str]
    dest: str
    roles: list[str]
    requires: list[str] = field(default_factory=list)
    edits: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    not_actor_of: list[str] = field(default_factory=list)
    void_documents: bool = False
    stamps: list[str] = field(default_factory=list)
    stamps_once: list[str] = field(default_factory=list)  # stamped only while still empty
    stamps_when: dict[str, str] = field(default_factory=dict)  # stamped once, when it holds
    fire_linked: dict[str, str] = field(default_factory=dict)
    # what a linked step is given: {workflow: {its field: this case's field or computed value}}
    fire_linked_data: dict[str, dict[str, str]] = field(default_factory=dict)
    # fired only when the expression holds on this case ({workflow: expression})
    fire_linked_when: dict[str, str] = field(default_factory=dict)
    spawn: list[_SpawnDef] = field(default_factory=list)  # cases of other workflows it makes
    assign: dict[str, str] = field(default_factory=dict)  # target field ← source field
    increment: list[str] = field(default_factory=list)
    record_actor: list[str] = field(default_factory=list)
    append: dict[str, dict[str, str]] = field(default_factory=dict)  # table ← {column: source}
    clear: list[str] = field(default_factory=list)  # fields emptied after the move
    # the customer-signed PDF of an issued document comes back: {document = kind, file =
    # attachments field with the upload}; checked and registered as its signed version
    takes_signed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _SpawnDef:
    workflow: str                   # the workflow of the cases made
    data: dict[str, str]            # its field → an expression over this case (and ``row``)
    each: str | None = None         # one case per row of this table field (``row`` in data)
    when: str | None = None         # made only when it holds


@dataclass(frozen=True)
class _TimerDef:
    trigger: str
    when: str | None = None    # an expression (engine.rules): due while it holds
    after: str | None = None   # "3d", "12h", "30m": due that long after the case entered its state
    states: list[str] = field(default_factory=list)  # default: every source of the trigger
    requires: list[str] | None = None  # when: not due while one is empty (default: all it reads)


@dataclass(frozen=True)
class _MigrationsDef:
    states: dict[str, str] = field(default_factory=dict)   # old state → the current one
    fields: dict[str, str] = field(default_factory=dict)   # old field → the current one
    retired_fields: list[str] = field(default_factory=list)  # removed: values kept aside
    # a date field new to the workflow ← the day the case's first document of this kind was issued
    document_dates: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _DeadlineDef:
    field: str
    owner: str | None = None
    step: str | None = None    # the step that meets it (the start page's one-tap button)


@dataclass(frozen=True)
class _ExclusiveDef:
    label: str
    resources: list[str]
    states: list[str]
    start: str | None = None
    end: str | None = None


@dataclass(frozen=True)
class _PartyDef:
    workflow: str                 # the workflow of the case this one belongs to (the customer)
    key: str                      # this case's field that finds it (a mobile)
    match: str                    # the party's field holding the same value
    create: dict[str, str] = field(default_factory=dict)  # party field ← this case's field
    fill: dict[str, str] = field(default_factory=dict)    # this case's field ← party field
    update: dict[str, str] = field(default_factory=dict)  # party field ← this one, every time
    owner: str | None = None      # this case's user field: the party's assignee
    free_when: str | None = None  # an expression on the party: its owner no longer holds it
    shared_when: str | None = None  # … : another consultant may register it too (not refused)
    states: list[str] = field(default_factory=list)  # the party's states a new case may join
    referred_by: str | None = None  # this case's field: the key of the party who referred it
    referrer: str | None = None     # the new party's field naming that referrer


@dataclass(frozen=True)
class _JoinDef:
    key: str                      # this case's field naming the other case (a VIN)
    match: str                    # the other workflow's ``unique`` field holding the same value
    optional_when: str | None = None   # an expression: a value no case holds is accepted
    message: str | None = None    # the refusal when no case holds it (a message)
    leave: str | None = None      # the other's step fired on a case this one no longer names
    states: list[str] = field(default_factory=list)   # the other's states it may name


@dataclass(frozen=True)
class _RotaDef:
    workflow: str      # the day's duty case (当班记录)
    day: str           # its date field
    order: str         # its table of those on duty, in order
    column: str        # that table's user column
    record: str        # its table where each assignment is appended (at, visit, consultant)
    field: str         # this case's user field the rota fills when left empty
    date: str          # this case's date or datetime field naming the day


@dataclass(frozen=True)
class _ReportColumnDef:
    label: str
    value: str  # a field name, "id", "state_label", or "totals.<name>"


@dataclass(frozen=True)
class _ReportDef:
    title: str
    date_field: str
    columns: list[_ReportColumnDef]
    states: list[str] = field(default_factory=list)  # only cases in these states (default: all)


@dataclass(frozen=True)
class _TallyColumnDef:
    label: str
    date_field: str | None = None   # the day (and time) it counts on; a ratio has none
    workflow: str | None = None     # another workflow's cases (default: this file's)
    count: str | None = None        # an expression: counted when it holds (default: all)
    table: str | None = None        # count the rows of this table field instead
    per_slot: bool = False          # once per time slot of the tally
    short: str | None = None        # its name under each slot (narrow columns)
    ratio: list[str] = field(default_factory=list)   # [numerator, denominator] labels
    cumulative: str | None = None   # the running total of an earlier count down the days
    blank: bool = False             # an empty column, written in by hand (备注)
    hidden: bool = False            # counted for a ratio, not shown as a column
    group: str | None = None        # a label over it in a second header row (run of columns)
    mean: str | None = None         # an expression averaged over the cases it would count


@dataclass(frozen=True)
class _TallyDef:
    title: str
    columns: list[_TallyColumnDef]
    rows: str | list[str] = "day"   # "day" (each day, with 星期), "consultant" or fields
    months: bool = False            # rows not by day: a row per calendar month and key
    by: str | None = None           # rows = "consultant": the user field naming a case's row
                                    # (default: each counted workflow's assignee)
    slots: list[str] = field(default_factory=list)   # "08:00", "10:00", …
    signatures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _WorkflowHead:
    key: str
    title: str
    case_prefix: str
    initial: str
    create_roles: list[str]
    create_checks: list[str] = field(default_factory=list)
    total: str | None = None  # the computed value shown as the case's amount in lists
    summary: list[str] = field(default_factory=list)  # fields shown in case lists
    create_assign: dict[str, str] = field(default_factory=dict)  # target ← source at creation
    assignee: str | None = None  # the user field naming whose case it is (the consultant)
    pool: bool = False  # an open case with no assignee is anyone's to take (公共客户池)
    readers: list[str] = field(default_factory=list)  # roles that see every case (a catalogue)


@dataclass(frozen=True)
class _WorkflowFile:
    workflow: _WorkflowHead
    fields: dict[str, _FieldDef]
    states: dict[str, _StateDef]
    transitions: list[_TransitionDef]
    documents: dict[str, _DocumentDef] = field(default_factory=dict)
    computed: dict[str, ComputedDef] = field(default_factory=dict)
    checks: dict[str, CheckDef] = field(default_factory=dict)
    conditions: dict[str, ConditionDef] = field(default_factory=dict)
    timers: list[_TimerDef] = field(default_factory=list)
    migrations: _MigrationsDef = field(default_factory=_MigrationsDef)
    create_from: dict[str, _CreateFromDef] = field(default_factory=dict)
    exclusive: list[_ExclusiveDef] = field(default_factory=list)
    reports: dict[str, _ReportDef] = field(default_factory=dict)
    tallies: dict[str, _TallyDef] = field(default_factory=dict)
    deadline: _DeadlineDef | None = None
    party: _PartyDef | None = None
    rota: _RotaDef | None = None
    joins: dict[str, _JoinDef] = field(default_factory=dict)


# --- the checked definition the engine works with --------------------------------------------

@dataclass(frozen=True)
class StateSpec:
    name: str
    label: str
    final: bool
    reopens: bool = False


@dataclass(frozen=True)
class DocumentSpec:
    key: str
    title: str
    template: str
    series: str
    signatures: dict[str, str] = field(default_factory=dict)
    dispatch_to: str | None = None
    dispatch_dept: str = "客户"
    supersedes: bool = True
    store_signature: str | None = None
    customer_signature: str | None = None


@dataclass(frozen=True)
class Exclusive:
    """A resource (e.g. a test car) that only one case may hold at a time while in ``states``;
    with ``start``/``end`` fields, only for overlapping periods."""

    label: str
    resources: tuple[str, ...]
    states: tuple[str, ...]
    start: str | None
    end: str | None


@dataclass(frozen=True)
class Timer:
    """A transition that happens by itself (``dealerdocs tick``, and ``serve`` in the
    background), fired as the actor ``system`` with the transition's own conditions and checks."""

    trigger: str
    states: tuple[str, ...]
    when: rules.Expression | None
    requires: tuple[str, ...]   # when: not due while one of these is empty
    after: timedelta | None

    def describe(self) -> str:
        """In words, for the diagram: "进入该状态 2 天后、条件满足时自动执行"."""
        parts = [f"进入该状态 {_duration_words(self.after)}后" if self.after else "",
                 "条件满足时" if self.when else ""]
        return "、".join(p for p in parts if p) + "自动执行"


# what a row appended by a transition (``append``) may take besides the fields (and
# ``$before.<field>``: the field's value before the step, e.g. the price a reprice replaced)
APPEND_SOURCES = ("$actor", "$now", "$today", "$state", "$dest")
BEFORE = "$before."


@dataclass(frozen=True)
class Lookup:
    """A string field picked from the cases of another workflow (``lookup``: a quote's model
    from the model catalogue). The field names a case by its id, its summary (as lists show
    it) or its ``match`` field's exact text; the case is then this case's reference
    (``linked.<workflow>`` in its rules), the field takes the case's ``match`` text and each
    ``fill`` target that is empty (or still holds the previous reference's value) takes the
    case's value."""

    workflow: str
    match: str
    fill: dict[str, str]


@dataclass(frozen=True)
class ImportUpdate:
    """``[import]``: a spreadsheet row whose ``key`` fields equal an existing case's updates
    that case by firing ``update`` with the row's changed fields, instead of making another."""

    key: tuple[str, ...]
    update: str

_DURATION = re.compile(r"^\s*(\d+)\s*(d|h|m)\s*$")
_UNITS = {"d": ("days", "天"), "h": ("hours", "小时"), "m": ("minutes", "分钟")}


def parse_duration(text: str) -> timedelta:
    """"3d", "12h", "30m" as a timedelta; ValueError otherwise."""
    found = _DURATION.match(text)
    if not found or int(found.group(1)) == 0:
        raise ValueError(f"\"{text}\" 不是时长：写成 3d（天）、12h（小时）或 30m（分钟）")
    return timedelta(**{_UNITS[found.group(2)][0]: int(found.group(1))})


def _duration_words(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440} 天"
    if minutes % 60 == 0:
        return f"{minutes // 60} 小时"
    return f"{minutes} 分钟"


@dataclass(frozen=True)
class Migrations:
    """How cases made under an earlier version of the definition are brought to this one
    (``[migrations]``): states renamed or retired into a current state, fields renamed, fields
    retired (their values are kept on the case under ``retired``, never thrown away), a new date
    field filled, where empty, with the day the case's first document of a kind was issued
    (``document_dates``: the day a quote was issued, for quotes from before the field)."""

    states: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    retired_fields: tuple[str, ...] = ()
    document_dates: dict[str, str] = field(default_factory=dict)   # date field → document kind

    def state(self, name: str) -> str:
        return self.states.get(name, name)


@dataclass(frozen=True)
class ReportSpec:
    key: str
    title: str
    date_field: str
    columns: tuple[tuple[str, str], ...]  # (label, value path)
    states: tuple[str, ...] = ()  # only cases in these states (empty: all)


@dataclass(frozen=True)
class Rota:
    """Whose turn it is (``[rota]``): a new case whose ``field`` is left empty goes to the next
    person in the order of the day's ``workflow`` case (its ``order`` table), after the one
    who had the last turn (its ``record`` table, where each turn is appended)."""

    workflow: str
    day: str
    order: str
    column: str
    record: str
    field: str
    date: str


@dataclass(frozen=True)
class Spawn:
    """Cases of another workflow a step makes (``spawn``): the calls a delivery schedules,
    a customer for each referral a call names. Each ``data`` expression sees this case's names
    (after the step), ``case_id`` and, with ``each``, the table row as ``row``; the new case is
    linked both ways with this one and joins its ``[party]``. A case whose ``[party]`` match
    value already has a case (the referral is a customer already) is not made: said in a
    warning."""

    workflow: str
    data: dict[str, rules.Expression]
    each: str | None = None
    when: rules.Expression | None = None


@dataclass(frozen=True)
class Party:
    """The case a case of this workflow belongs to (``[party]``: the customer of a visit or a
    quote). On creation it is the one named, or the one whose ``match`` field holds this case's
    ``key`` value, or a new one made from the ``create`` fields; ``fill`` prefills this case
    from it. ``owner``: this case's user field, which must be the party's assignee (another
    consultant is refused) unless ``free_when`` holds on the party (its owner let it lapse: it
    passes to the new one) or ``shared_when`` holds (the store checks ownership per consultant
    only: the other consultant registers their case and may read the party too; its owner
    stays)."""

    workflow: str
    key: str
    match: str
    create: dict[str, str]
    fill: dict[str, str]
    update: dict[str, str]
    owner: str | None
    free_when: rules.Expression | None
    states: tuple[str, ...]
    referred_by: str | None = None   # a new customer referred by another goes to theirs
    referrer: str | None = None
    shared_when: rules.Expression | None = None


@dataclass(frozen=True)
class Join:
    """A case of another workflow this case names by a value (``[joins.<workflow>]``: the
    stock car a contract names by its VIN), found through the store's index of that workflow's
    ``unique`` field ``match`` whenever this case's ``key`` is set or changed, and linked both
    ways (so ``fire_linked`` and ``linked.<workflow>`` reach it). A value no case holds is
    refused with ``message`` unless ``optional_when`` holds, and a case in a state not in
    ``states`` (when given) is refused; a case the key no longer names is unlinked and given
    the step ``leave`` when its state takes it."""

    workflow: str
    key: str
    match: str
    optional_when: rules.Expression | None = None
    message: rules.Message | None = None
    leave: str | None = None
    states: tuple[str, ...] = ()   # the other's states a case may be named in (empty: any)


@dataclass(frozen=True)
class CreateFrom:
    """A case of this workflow may be opened from a case of ``source`` in one of ``states``."""

    source: str
    states: tuple[str, ...]
    fields: dict[str, str]
    required: bool


@dataclass(frozen=True)
class TakesSigned:
    """A step that takes back the customer-signed PDF of an issued ``document`` (the one
    attached in the attachments field ``file``) and registers it as the signed version."""

    document: str
    file: str


@dataclass(frozen=True)
class TransitionSpec:
    trigger: str
    label: str
    sources: tuple[str, ...]
    dest: str
    roles: tuple[str, ...]
    requires: tuple[str, ...]
    edits: tuple[str, ...]  # field names this transition may change; ("*",) for all
    documents: tuple[str, ...]
    checks: tuple[str, ...]
    conditions: tuple[str, ...]
    not_actor_of: tuple[str, ...] = ()
    void_documents: bool = False
    stamps: tuple[str, ...] = ()
    fire_linked: dict[str, str] = field(default_factory=dict)
    assign: dict[str, str] = field(default_factory=dict)
    increment: tuple[str, ...] = ()
    record_actor: tuple[str, ...] = ()
    route: int = 0  # its place among the transitions of its trigger (tried in this order)
    append: dict[str, dict[str, str]] = field(default_factory=dict)  # table ← {column: source}
    clear: tuple[str, ...] = ()   # fields emptied once the row is appended (the next starts blank)
    stamps_once: tuple[str, ...] = ()  # like stamps, but only while the field is empty
    # like stamps_once, but only when the expression holds (e.g. the card opens at the
    # store's policy.card_min_level)
    stamps_when: dict[str, rules.Expression] = field(default_factory=dict)
    fire_linked_data: dict[str, dict[str, str]] = field(default_factory=dict)
    fire_linked_when: dict[str, rules.Expression] = field(default_factory=dict)
    spawn: tuple["Spawn", ...] = ()
    takes_signed: "TakesSigned | None" = None

    def may_edit(self, name: str) -> bool:
        return "*" in self.edits or name in self.edits


@dataclass(frozen=True)
class Workflow:
    key: str
    title: str
    case_prefix: str
    initial: str
    create_roles: tuple[str, ...]
    create_checks: tuple[str, ...]
    fields: dict[str, FieldSpec]
    states: dict[str, StateSpec]
    transitions: tuple[TransitionSpec, ...]
    documents: dict[str, DocumentSpec]
    source: Path
    summary: tuple[str, ...] = ()
    create_from: dict[str, CreateFrom] = field(default_factory=dict)
    exclusive: tuple[Exclusive, ...] = ()
    reports: dict[str, ReportSpec] = field(default_factory=dict)
    deadline_field: str | None = None  # cases are overdue after it unless in a final state
    owner_field: str | None = None
    create_assign: dict[str, str] = field(default_factory=dict)
    assignee: str | None = None
    computed: dict[str, rules.Computed] = field(default_factory=dict)
    row_computed: dict[str, dict[str, rules.Computed]] = field(default_factory=dict)
    checks: dict[str, rules.Check] = field(default_factory=dict)
    conditions: dict[str, rules.Condition] = field(default_factory=dict)
    policy: dict[str, PolicySpec] = field(default_factory=dict)
    total: str | None = None
    linked_reads: frozenset[str] = frozenset()
    timers: tuple[Timer, ...] = ()
    migrations: Migrations = field(default_factory=Migrations)
    definition: str = ""  # sha256 of the file's content (comments aside): cases record it  # workflows whose data rules read (linked.<x>)
    party: Party | None = None
    deadline_step: str | None = None   # the step that meets the deadline (one tap away)
    tallies: dict[str, TallySpec] = field(default_factory=dict)
    rota: Rota | None = None
    # an open case whose assignee is empty (a released customer, a visitor nobody received)
    # is seen by everyone who could be its assignee, to take it (公共客户池)
    pool: bool = False
    readers: tuple[str, ...] = ()   # roles that see every case (reference data: a catalogue)
    import_update: ImportUpdate | None = None
    joins: dict[str, Join] = field(default_factory=dict)

    @cached_property
    def lookups(self) -> dict[str, Lookup]:
        """Fields picked from another workflow's cases (``lookup``), by field name."""
        return {name: spec.lookup for name, spec in self.fields.items() if spec.lookup}

    @cached_property
    def total_labels(self) -> dict[str, str]:
        """Computed value → its Chinese label, for those shown to people."""
        return {name: c.label for name, c in self.computed.items() if c.label}

    @cached_property
    def functions_used(self) -> tuple[str, ...]:
        """The named Python functions the file relies on: field validation rules and the
        generic functions its expressions call (``lint`` lists them)."""
        used = {f"validators.{r}" for s in self._all_fields() for r in
                ([s.rule] if s.rule else []) + list(s.rule_map.values())}
        used |= {f"functions.{n}" for names in self._rule_names() for n in names.functions
                 if n in functions.FUNCTIONS}
        return tuple(sorted(used))

    def _rule_names(self):
        """What every expression and message of the file names (rules.Names)."""
        for c in [*self.computed.values(),
                  *(c for cols in self.row_computed.values() for c in cols.values())]:
            yield c.value.names
        rules_ = [r for check in self.checks.values() for r in check.rules]
        rules_ += [cond.rule for cond in self.conditions.values()]
        for rule in rules_:
            yield from (rule.test.names, rule.message.names, *(e.names for _, e in rule.lets))
        yield from (t.when.names for t in self.timers if t.when is not None)
        yield from (c.count.names for tally in self.tallies.values() for c in tally.columns
                    if c.count is not None)
        yield from (c.mean.names for tally in self.tallies.values() for c in tally.columns
                    if c.mean is not None)
        for t in self.transitions:          # what a step stamps, fires or makes, and when
            yield from (e.names for e in t.stamps_when.values())
            yield from (e.names for e in t.fire_linked_when.values())
            for spawn in t.spawn:
                yield from (e.names for e in spawn.data.values())
                if spawn.when is not None:
                    yield spawn.when.names
        if self.party is not None:
            yield from (e.names for e in (self.party.free_when, self.party.shared_when)
                        if e is not None)

    def _all_fields(self):
        for spec in self.fields.values():
            yield spec
            yield from spec.columns.values()

    def compute(self, values: dict[str, Any], today: date, policy_values: Mapping[str, Any]
                ) -> dict[str, Any]:
        """The computed values of a case, in definition order (each may read the ones before);
        derived table columns are written into the rows of ``values`` first."""
        context = {"policy": dict(policy_values), "today": today}
        for table, columns in self.row_computed.items():
            for row in values.get(table) or []:
                for name, c in columns.items():
                    row[name] = c({**row, **context})
        scope = rules.namespace(values, {}, today=today, now=None, policy=policy_values,
                                linked={})
        out: dict[str, Any] = {}
        for name, c in self.computed.items():
            out[name] = scope[name] = c(scope)
        return out

    @cached_property
    def personal_fields(self) -> dict[str, str]:
        """Field name → the kind of personal data it holds (``privacy.PERSONAL_KINDS``)."""
        return {name: spec.personal for name, spec in self.fields.items() if spec.personal}

    @cached_property
    def personal_columns(self) -> dict[str, dict[str, str]]:
        """Table field → its columns holding personal data → their kind (a referral's mobile):
        masked in each row, hashed in the audit trail, erased by a purge, like a field's."""
        out = {name: {c: col.personal for c, col in spec.columns.items() if col.personal}
               for name, spec in self.fields.items() if spec.type == "table"}
        return {name: cols for name, cols in out.items() if cols}

    @cached_property
    def search_fields(self) -> tuple[str, ...]:
        """Fields marked ``search = true``: their exact value finds the case (a plate number),
        as the masked personal fields' do (ID and mobile numbers)."""
        return tuple(name for name, spec in self.fields.items() if spec.search)

    @cached_property
    def unique_fields(self) -> tuple[str, ...]:
        """Fields marked ``unique = true``: no two cases of the workflow hold one value."""
        return tuple(name for name, spec in self.fields.items() if spec.unique)

    @cached_property
    def indexed_fields(self) -> tuple[str, ...]:
        """Fields whose values the store's search index keeps (keyed hashes): the searchable
        and the unique ones (a unique value is looked up before a case takes it)."""
        return tuple(dict.fromkeys([*self.search_fields, *self.unique_fields]))

    def summary_of(self, data: Mapping[str, Any]) -> str:
        """The line a case list shows for a case with ``data``: its ``summary`` fields' values
        that are not empty, space-separated (the lists, the search and the lookups say it
        alike)."""
        return " ".join(str(data[k]) for k in self.summary if data.get(k) not in (None, ""))

    def candidates(self, trigger: str, state: str) -> list[TransitionSpec]:
        """The transitions ``trigger`` may take from ``state``, in definition order; the first
        whose conditions hold is taken. Raises a StateError that says what is possible."""
        found = [t for t in self.transitions if t.trigger == trigger and state in t.sources]
        if found:
            return found
        here = self.available(state)
        options = "、".join(dict.fromkeys(f"{t.trigger}（{t.label}）" for t in here)) or "无（终态）"
        state_label = self.states[state].label
        known = sorted({t.trigger for t in self.transitions})
        if trigger not in known:
            close = difflib.get_close_matches(trigger, known, n=1)
            hint = f"；是否想用 \"{close[0]}\"？" if close else ""
            raise StateError(f"{self.title}没有操作 \"{trigger}\"{hint}（当前状态「{state_label}」"
                             f"可执行：{options}）", trigger=trigger, state=state)
        raise StateError(f"{self.title}在「{state_label}」状态下不能执行 \"{trigger}\"；"
                         f"可执行：{options}", trigger=trigger, state=state)

    def available(self, state: str) -> list[TransitionSpec]:
        return [t for t in self.transitions if state in t.sources]

    @cached_property
    def machine(self) -> Machine:
        """One ``transitions`` machine for the definition, shared by all cases.

        It carries the graph and the guards: each transition's conditions are its machine
        conditions (:class:`Conditions`), and the transitions of one trigger are tried in
        definition order, so the machine takes the first route whose conditions hold
        (conditional routing) and ``may_trigger`` answers whether a step may happen now.
        Around the move it calls the model's ``before_move`` (still in the old state) and
        ``after_move`` (in the new one), in the machine's documented callback order; a
        :class:`Model` says what they do. Models are attached per operation
        (:meth:`attached`) and removed after; no automatic ``to_<state>`` triggers, so the
        graph is the only way to move.
        """
        return _Machine(model=None, states=list(self.states), initial=None,
                        transitions=[{"trigger": t.trigger, "source": list(t.sources),
                                      "dest": t.dest, "spec": t,
                                      "conditions": [Conditions(t, [self.conditions[n]
                                                                    for n in t.conditions])]
                                      if t.conditions else []}
                                     for t in self.transitions],
                        before_state_change="before_move", after_state_change="after_move",
                        auto_transitions=False, send_event=True, ignore_invalid_triggers=False)

    @contextmanager
    def attached(self, model: "Model", state: str) -> Iterator["Model"]:
        """``model`` on the shared machine, in ``state``, for the length of the block (then
        removed, so the machine keeps no case between operations)."""
        self.machine.add_model(model, initial=state)
        try:
            yield model
        finally:
            self.machine.remove_model(model)


class Model:
    """What a workflow's machine moves: one case's state for one operation.

    The machine reads ``facts`` (the names the transitions' conditions see) and asks
    ``stops(spec, failed)`` whether the conditions that failed on a route, ``[(condition,
    reason)]``, stop it: this model says yes to any and keeps the reasons in ``refusals`` (the
    engine's rule); a page may answer otherwise. When a route's conditions hold, the machine
    calls ``before_move(event)``, moves, and calls ``after_move(event)``;
    ``event.transition.spec`` is the route taken. Here they do nothing: a subclass gives them
    the steps an operation takes on either side of the move. Compared by identity (the machine
    keeps its models in a list)."""

    def __init__(self, facts: Mapping[str, Any]) -> None:
        self.facts = facts
        self.refusals: list[str] = []

    def stops(self, spec: TransitionSpec, failed: list[tuple[rules.Condition, str]]) -> bool:
        self.refusals.extend(reason for _, reason in failed)
        return True

    def before_move(self, event: Any) -> None:
        pass

    def after_move(self, event: Any) -> None:
        pass


class Conditions:
    """The machine condition of one transition: the workflow's conditions it names, all of
    them judged on ``model.facts`` (so a refusal can give every reason, not the first); what
    a failure means is the model's to say (:meth:`Model.stops`)."""

    def __init__(self, spec: TransitionSpec, conditions: list[rules.Condition]) -> None:
        self.spec = spec
        self.conditions = conditions

    def __call__(self, event: Any) -> bool:
        model = event.model
        failed = [(c, reason) for c in self.conditions if (reason := c(model.facts))]
        return not failed or not model.stops(self.spec, failed)


class _Route(Transition):
    """A machine transition that knows the definition it was made from (``spec``)."""

    def __init__(self, *args: Any, spec: TransitionSpec, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec


class _Machine(Machine):
    transition_cls = _Route


def load_workflows(config: Config) -> dict[str, Workflow]:
    """Load and check every ``*.toml`` in the configured workflows folder."""
    folder = config.workflows_dir
    if not folder.is_dir():
        raise WorkflowDefinitionError(f"工作流目录不存在：{folder}（config.toml 的 paths.workflows）",
                                      path=str(folder))
    workflows: dict[str, Workflow] = {}
    for path in sorted(folder.glob("*.toml")):
        wf = load_workflow(path, config)
        if wf.key in workflows:
            raise WorkflowDefinitionError(f"{path.name}: workflow.key \"{wf.key}\" 与 "
                                          f"{workflows[wf.key].source.name} 重复", path=str(path))
        workflows[wf.key] = wf
    for w in workflows.values():
        _check_links(w, workflows)
    linked_steps = {(name, trigger) for w in workflows.values() for t in w.transitions
                    for name, trigger in t.fire_linked.items()}
    linked_steps |= {(name, j.leave) for w in workflows.values() for name, j in w.joins.items()
                     if j.leave}
    for w in workflows.values():
        for i, t in enumerate(w.transitions):
            if not t.roles and not any(x.trigger == t.trigger for x in w.timers) \
                    and (w.key, t.trigger) not in linked_steps:
                raise WorkflowDefinitionError(
                    f"{w.source.name}: transitions[{i}].roles: 没有角色的操作只能由 [[timers]] 定时"
                    f"执行或由其他流程联动（fire_linked）；请写上可执行的角色，或为它定义一个定时器",
                    path=str(w.source), key=f"transitions[{i}].roles")
    declared: dict[str, tuple[Workflow, PolicySpec]] = {}
    for w in workflows.values():
        for key, spec in w.policy.items():
            first = declared.setdefault(key, (w, spec))
            if first[1] != spec:
                raise WorkflowDefinitionError(
                    f"{w.source.name}: policy.{key}: 与 {first[0].source.name} 中的同名策略项定义不同"
                    f"（类型、默认值、范围与说明应一致）", path=str(w.source), key=f"policy.{key}")
    prefixes = [w.case_prefix for w in workflows.values()]
    for w in workflows.values():
        if prefixes.count(w.case_prefix) > 1:
            raise WorkflowDefinitionError(f"{w.source.name}: workflow.case_prefix "
                                          f"\"{w.case_prefix}\" 被多个工作流使用",
                                          path=str(w.source))
    return workflows


def _check_links(wf: Workflow, workflows: dict[str, Workflow]) -> None:
    """``create_from``, ``fire_linked`` and ``spawn`` name other workflows: check them against
    those (a case is linked with its source, its party and the cases a step of it made)."""
    def fail(key: str, message: str) -> WorkflowDefinitionError:
        return WorkflowDefinitionError(f"{wf.source.name}: {key}: {message}",
                                       path=str(wf.source), key=key)

    for name, cf in wf.create_from.items():
        source = workflows.get(name)
        if source is None:
            raise fail(f"create_from.{name}", f"没有名为 \"{name}\" 的工作流")
        for i, state in enumerate(cf.states):
            if state not in source.states:
                raise fail(f"create_from.{name}.states[{i}]", f"\"{state}\" 不是 {name} 的状态")
        _check_copies(cf.fields, wf, source, f"create_from.{name}.fields", fail)
    linked = set(wf.create_from) | {w.key for w in workflows.values() if wf.key in w.create_from}
    linked |= {wf.party.workflow} if wf.party else set()
    linked |= {w.key for w in workflows.values() if w.party and w.party.workflow == wf.key}
    linked |= {spawn.workflow for t in wf.transitions for spawn in t.spawn}    # made by a step
    linked |= {w.key for w in workflows.values() for t in w.transitions
               if any(spawn.workflow == wf.key for spawn in t.spawn)}       # … and its maker
    linked |= {lookup.workflow for lookup in wf.lookups.values()}   # a case's reference
    linked |= set(wf.joins) | {w.key for w in workflows.values() if wf.key in w.joins}
    for name, rep in wf.reports.items():
        for j, (_, value) in enumerate(rep.columns):
            if value.startswith("links.") and value[6:] not in workflows:
                raise fail(f"reports.{name}.columns[{j}].value", f"\"{value[6:]}\" 不是已定义的工作流")
    for name, join in wf.joins.items():
        other = workflows.get(name)
        if other is None:
            raise fail(f"joins.{name}", f"没有名为 \"{name}\" 的工作流")
        if join.match not in other.fields or not other.fields[join.match].unique:
            raise fail(f"joins.{name}.match", f"\"{join.match}\" 应为 {name} 中标了 unique = true 的字段"
                                              f"（按它找到唯一的{other.title}）")
        if join.leave is not None and not any(t.trigger == join.leave for t in other.transitions):
            raise fail(f"joins.{name}.leave", f"\"{join.leave}\" 不是 {name} 的操作")
        for j, state in enumerate(join.states):
            if state not in other.states:
                raise fail(f"joins.{name}.states[{j}]", f"\"{state}\" 不是 {name} 的状态")
    if wf.party is not None:
        _check_party(wf, workflows, fail)
    _check_lookups(wf, workflows, fail)
    _check_tallies(wf, workflows, fail)
    if wf.rota is not None:
        _check_rota(wf, workflows, fail)
    for name in sorted(wf.linked_reads - linked):
        raise fail("checks", f"规则读取了 linked.{name}，但与工作流 \"{name}\" 没有关联（create_from）")
    for i, t in enumerate(wf.transitions):
        for name, trigger in t.fire_linked.items():
            key = f"transitions[{i}].fire_linked.{name}"
            if name not in linked:
                raise fail(key, f"与工作流 \"{name}\" 没有关联（create_from）")
            targets = [x for x in workflows[name].transitions if x.trigger == trigger]
            if not targets:
                raise fail(key, f"\"{trigger}\" 不是 {name} 的操作")
            if any(x.documents for x in targets):
                raise fail(key, f"{name} 的 \"{trigger}\" 会出具文档，不能被联动触发")
        for j, spawn in enumerate(t.spawn):
            key = f"transitions[{i}].spawn[{j}]"
            if spawn.workflow not in workflows:
                raise fail(f"{key}.workflow", f"\"{spawn.workflow}\" 不是已定义的工作流")
            for name in spawn.data:
                if name not in workflows[spawn.workflow].fields:
                    raise fail(f"{key}.data.{name}", f"\"{name}\" 不是 {spawn.workflow} 的字段")
        for name in [*t.fire_linked_data, *t.fire_linked_when]:
            if name not in t.fire_linked:
                raise fail(f"transitions[{i}].fire_linked_data.{name}",
                           f"\"{name}\" 不在本操作的 fire_linked 中")
        for name, given in t.fire_linked_data.items():
            other = workflows[name]
            targets = [x for x in other.transitions if x.trigger == t.fire_linked[name]]
            for target, origin in given.items():
                key = f"transitions[{i}].fire_linked_data.{name}.{target}"
                if target not in other.fields or not all(x.may_edit(target) for x in targets):
                    raise fail(key, f"\"{target}\" 不是 {name} 的操作 \"{t.fire_linked[name]}\" "
                                    f"可填写的字段（edits）")
                if origin in wf.fields:
                    if not _same_kind(other.fields[target].type, wf.fields[origin].type):
                        raise fail(key, f"类型与本工作流的 {origin} 不同")
                elif origin not in wf.computed:
                    raise fail(key, f"\"{origin}\" 不是本工作流的字段或计算值")


def _same_kind(target: str, origin: str) -> bool:
    """Whether a value of type ``origin`` may be written into a field of type ``target`` (a
    date takes the day of a date and time)."""
    return target == origin or (target, origin) == ("date", "datetime")


def _check_copies(copies: Mapping[str, str], wf: Workflow, source: Workflow, key: str,
                  fail) -> None:
    """Fields of ``wf`` filled from fields of another workflow's case (``create_from``, a
    lookup's or a party's ``fill``: target ← origin): both defined, of the same type."""
    for target, origin in copies.items():
        if target not in wf.fields:
            raise fail(f"{key}.{target}", "不是本工作流的字段")
        if origin not in source.fields:
            raise fail(f"{key}.{target}", f"\"{origin}\" 不是 {source.key} 的字段")
        if wf.fields[target].type != source.fields[origin].type:
            raise fail(f"{key}.{target}", f"类型 {wf.fields[target].type} 与 {source.key}.{origin} 的 "
                                          f"{source.fields[origin].type} 不同")


def _check_lookups(wf: Workflow, workflows: dict[str, Workflow], fail) -> None:
    """A field's ``lookup`` names another workflow, its fields and this one's, alike in type."""
    for name, lookup in wf.lookups.items():
        key = f"fields.{name}.lookup"
        other = workflows.get(lookup.workflow)
        if other is None or other.key == wf.key:
            raise fail(f"{key}.workflow", f"没有名为 \"{lookup.workflow}\" 的其他工作流")
        if lookup.workflow in wf.fields:
            raise fail(f"{key}.workflow", f"本工作流已有名为 \"{lookup.workflow}\" 的字段；"
                                          f"数据中的 {lookup.workflow} 用来写所选案件的编号")
        _check_copies(lookup.fill, wf, other, f"{key}.fill", fail)
    for name, spec in wf.fields.items():
        if spec.choices_from is None:
            continue
        key, (picker, origin) = f"fields.{name}.choices_from", spec.choices_from
        lookup = wf.fields[picker].lookup if picker in wf.fields else None
        if lookup is None:
            raise fail(key, f"\"{picker}\" 应为本工作流中带 lookup 的字段")
        other = workflows[lookup.workflow]
        if origin not in other.fields or other.fields[origin].type not in ("string", "text"):
            raise fail(key, f"\"{origin}\" 应为 {lookup.workflow} 的文字字段（可选值用、分隔）")


def _check_party(wf: Workflow, workflows: dict[str, Workflow], fail) -> None:
    party = wf.party
    assert party is not None
    other = workflows.get(party.workflow)
    if other is None:
        raise fail("party.workflow", f"没有名为 \"{party.workflow}\" 的工作流")
    if party.match not in other.fields:
        raise fail("party.match", f"\"{party.match}\" 不是 {party.workflow} 的字段")
    for i, state in enumerate(party.states):
        if state not in other.states:
            raise fail(f"party.states[{i}]", f"\"{state}\" 不是 {party.workflow} 的状态")
    for what, mapping in (("create", party.create), ("update", party.update)):
        for target, origin in mapping.items():
            if target not in other.fields:
                raise fail(f"party.{what}.{target}", f"不是 {party.workflow} 的字段")
            if not _same_kind(other.fields[target].type, wf.fields[origin].type):
                raise fail(f"party.{what}.{target}", f"类型与本工作流的 {origin} 不同")
    _check_copies(party.fill, wf, other, "party.fill", fail)
    if party.referrer is not None and party.referrer not in other.fields:
        raise fail("party.referrer", f"\"{party.referrer}\" 不是 {party.workflow} 的字段")
    if party.owner is not None and not other.assignee:
        raise fail("party.owner", f"{party.workflow} 没有 workflow.assignee，无法判断客户归属")
    for what, expression in (("free_when", party.free_when), ("shared_when", party.shared_when)):
        if expression is None:
            continue
        unknown = rules.unknown_names(expression.names,
                                      set(other.fields) | set(other.computed), other.policy)
        if unknown:
            raise fail(f"party.{what}", f"引用了 {party.workflow} 没有的名称 {', '.join(unknown)}")


def load_workflow(path: Path, config: Config) -> Workflow:
    def fail(key: str, message: str) -> WorkflowDefinitionError:
        return WorkflowDefinitionError(f"{path.name}: {key}: {message}", path=str(path), key=key)

    try:
        raw = read_toml(path)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise WorkflowDefinitionError(f"{path.name}: 无法读取：{err}", path=str(path)) from err
    definition = hashlib.sha256(json.dumps(raw, sort_keys=True, ensure_ascii=False,
                                           default=str).encode()).hexdigest()
    for key, words in (("calculator", "workflow.calculator"), ("totals", "totals")):
        if key in (raw.get("workflow", {}) if key == "calculator" else raw):
            raise fail(words, "不再支持：计算值请写在 [computed.<名称>] 中（value = 表达式，"
                              "label = 中文名称），见 templates/README.md「新增业务流程」")
    raw_policy = raw.pop("policy", {})
    raw_import = raw.pop("import", None)   # [import]: a Python keyword, read on its own
    try:
        wf = build(_WorkflowFile, raw, WorkflowDefinitionError)
        import_def = (build(_ImportDef, raw_import, WorkflowDefinitionError, "import")
                      if raw_import is not None else None)
    except WorkflowDefinitionError as err:
        raise WorkflowDefinitionError(f"{path.name}: {err.message}", path=str(path),
                                      **err.details) from None
    head = wf.workflow
    if not NAME.match(head.key):
        raise fail("workflow.key", f"\"{head.key}\" 应为小写字母、数字和下划线")

    def check_roles(roles: list[str], key: str) -> None:
        for i, role in enumerate(roles):
            if role not in config.roles:
                raise fail(f"{key}[{i}]", f"角色 \"{role}\" 未在 config.toml 的 [roles] 中定义")

    def check_names(names: list[str], registry: dict, key: str, what: str) -> None:
        for i, name in enumerate(names):
            if name not in registry:
                raise fail(f"{key}[{i}]", f"未知的{what} \"{name}\"（可用：{', '.join(registry)}）")

    fields = {name: _field(name, d, f"fields.{name}", fail) for name, d in wf.fields.items()}
    for name, spec in fields.items():
        for key, others in (("required_if", spec.required_if), ("required_if_set",
                                                                  spec.required_if_set)):
            for other in others:
                if other not in fields:
                    raise fail(f"fields.{name}.{key}", f"引用了未定义的字段 \"{other}\"")
        check_roles(list(spec.roles), f"fields.{name}.roles")
        if spec.rule_field is not None:
            ruler = fields.get(spec.rule_field)
            if ruler is None or ruler.type != "choice" or ruler.rule_field:
                raise fail(f"fields.{name}.rule_field", f"\"{spec.rule_field}\" 应为本工作流的 choice 字段")
            for value, rule in spec.rule_map.items():
                if value not in ruler.choices:
                    raise fail(f"fields.{name}.rule_map.{value}",
                               f"\"{value}\" 不是 {spec.rule_field} 的可选值")
                if rule not in validators.RULES:
                    raise fail(f"fields.{name}.rule_map.{value}", f"未知的校验规则 \"{rule}\"")
        if spec.override is not None and (spec.override not in fields
                                          or fields[spec.override].type != "boolean"):
            raise fail(f"fields.{name}.override", f"\"{spec.override}\" 应为本工作流的 boolean 字段")
    for i, name in enumerate(head.summary):
        if name not in fields:
            raise fail(f"workflow.summary[{i}]", f"\"{name}\" 不是已定义的字段")
    states = {name: StateSpec(name, d.label, d.final, d.reopens) for name, d in wf.states.items()}
    for name in states:
        if not NAME.match(name):
            raise fail(f"states.{name}", "状态名应为小写字母、数字和下划线")
    if head.initial not in states:
        raise fail("workflow.initial", f"\"{head.initial}\" 不是已定义的状态")
    check_roles(head.create_roles, "workflow.create_roles")
    check_roles(head.readers, "workflow.readers")
    if not isinstance(raw_policy, dict):
        raise fail("policy", "应为表：[policy.<名称>] type、default，可选 label、min、max")
    policy_specs = {k: declare_policy(k, v, path.name, str(path)) for k, v in raw_policy.items()}
    compiled = compile_rules(wf, fields, policy_specs, fail)
    check_names(head.create_checks, compiled["checks"], "workflow.create_checks", "检查")
    if head.total is not None and head.total not in compiled["computed"]:
        raise fail("workflow.total", f"\"{head.total}\" 不是 [computed] 中的计算值")
    compiler = compiled["compiler"]
    known = set(fields) | set(compiled["computed"])   # what the file's other expressions read

    def expressions(sources: Mapping[str, str], key: str) -> dict[str, rules.Expression]:
        return {name: compiler.expression(source, f"{key}.{name}", known)
                for name, source in sources.items()}

    documents = {}
    for key, d in wf.documents.items():
        if d.series not in config.series:
            raise fail(f"documents.{key}.series", f"编号序列 \"{d.series}\" 未在 config.toml 的 "
                                                  f"[series] 中定义")
        if config.template_layers.find(d.template) is None:
            raise fail(f"documents.{key}.template", f"模板文件不存在：{d.template}"
                                                    f"（{config.template_layers.describe()}中都没有）")
        if d.dispatch_to is not None and d.dispatch_to not in fields:
            raise fail(f"documents.{key}.dispatch_to", f"\"{d.dispatch_to}\" 不是已定义的字段")
        for which in ("store_signature", "customer_signature"):
            named = getattr(d, which)
            if named is not None and named not in d.signatures:
                raise fail(f"documents.{key}.{which}", f"\"{named}\" 不是本文件 signatures 中的签名域"
                                                       f"（有：{'、'.join(d.signatures) or '无'}）")
        documents[key] = DocumentSpec(key, d.title, d.template, d.series, dict(d.signatures),
                                      d.dispatch_to, d.dispatch_dept, d.supersedes,
                                      d.store_signature, d.customer_signature)

    def _check_assign(assign: dict[str, str], key: str) -> None:
        # the origin is a field (copied as stored) or a computed value (stored in the target's
        # form once the step's stamps and copies are made: a date takes a datetime's day)
        for target, origin in assign.items():
            if target not in fields or (origin not in fields and origin not in compiled["computed"]):
                raise fail(f"{key}.{target}", f"\"{target}\" 应是已定义的字段，\"{origin}\" 应是字段或计算值")
            if origin in compiled["computed"] and origin not in fields:
                if fields[target].type not in ASSIGNABLE:
                    raise fail(f"{key}.{target}", f"计算值只能写入 {'、'.join(ASSIGNABLE)} 类型的字段，"
                                                  f"\"{target}\" 是 {fields[target].type}")
                continue
            if fields[target].type != fields[origin].type:
                raise fail(f"{key}.{target}", f"类型不同：{fields[target].type} ← {fields[origin].type}")

    _check_assign(head.create_assign, "workflow.create_assign")
    if head.assignee is not None and (head.assignee not in fields
                                      or fields[head.assignee].type != "user"):
        raise fail("workflow.assignee", f"\"{head.assignee}\" 应为本工作流的 user 类型字段（如 consultant）")
    if head.pool and head.assignee is None:
        raise fail("workflow.pool", "pool 需要 workflow.assignee（无人负责的案件才进入公共池）")
    if wf.deadline is not None:
        if wf.deadline.field not in fields or fields[wf.deadline.field].type != "date":
            raise fail("deadline.field", f"\"{wf.deadline.field}\" 应为 date 类型的字段")
        if wf.deadline.owner is not None and wf.deadline.owner not in fields:
            raise fail("deadline.owner", f"\"{wf.deadline.owner}\" 不是已定义的字段")
    exclusive = []
    for i, ex in enumerate(wf.exclusive):
        key = f"exclusive[{i}]"
        for j, name in enumerate(ex.resources):
            if name not in fields:
                raise fail(f"{key}.resources[{j}]", f"\"{name}\" 不是已定义的字段")
        for j, name in enumerate(ex.states):
            if name not in states:
                raise fail(f"{key}.states[{j}]", f"\"{name}\" 不是已定义的状态")
        if (ex.start is None) != (ex.end is None):
            raise fail(key, "start 与 end 须同时给出")
        for bound in (ex.start, ex.end):
            if bound is not None and (bound not in fields
                                      or fields[bound].type not in ("date", "datetime")):
                raise fail(key, f"\"{bound}\" 应为 date 或 datetime 类型的字段")
        if not ex.resources or not ex.states:
            raise fail(key, "resources 与 states 不能为空")
        exclusive.append(Exclusive(ex.label, tuple(ex.resources), tuple(ex.states), ex.start,
                                   ex.end))
    reports = {}
    for name, rep in wf.reports.items():
        key = f"reports.{name}"
        if rep.date_field not in fields or fields[rep.date_field].type not in ("date", "datetime"):
            raise fail(f"{key}.date_field", f"\"{rep.date_field}\" 应为 date 或 datetime 类型的字段")
        for j, col in enumerate(rep.columns):
            value = col.value
            if not (value in fields or value in ("id", "state", "state_label", "created_at",
                                                "created_by", "overdue_days")
                    or value.startswith("totals.") or value.startswith("documents.")
                    or value.startswith("links.")):
                raise fail(f"{key}.columns[{j}].value", f"\"{value}\" 不是字段、id、state_label、"
                                                        f"overdue_days、documents.<文档>、links.<工作流> "
                                                        f"或 totals.<名称>")
            if value.startswith("documents.") and value[10:] not in wf.documents:
                raise fail(f"{key}.columns[{j}].value", f"\"{value[10:]}\" 不是 [documents] 中的文档")
            if value == "overdue_days" and wf.deadline is None:
                raise fail(f"{key}.columns[{j}].value", "没有 [deadline] 时不能用 overdue_days")
            if value.startswith("totals.") and value[7:] not in compiled["computed"]:
                raise fail(f"{key}.columns[{j}].value", f"\"{value[7:]}\" 不是 [computed] 中的计算值")
        for j, state in enumerate(rep.states):
            if state not in states:
                raise fail(f"{key}.states[{j}]", f"\"{state}\" 不是已定义的状态")
        reports[name] = ReportSpec(name, rep.title, rep.date_field,
                                   tuple((c.label, c.value) for c in rep.columns),
                                   tuple(rep.states))

    # dest = "=": the step leaves the case where it is, from each of its sources (one route each)
    wf_transitions = [dataclasses.replace(t, source=[source], dest=source) if t.dest == "=" else t
                      for t in wf.transitions for source in (t.source if t.dest == "=" else [None])]
    transitions = []
    seen: dict[tuple[str, str], _TransitionDef] = {}
    routes: dict[str, int] = {}
    triggers = {t.trigger for t in wf.transitions} | {"create"}
    for i, t in enumerate(wf_transitions):
        key = f"transitions[{i}]"
        if not NAME.match(t.trigger) or t.trigger in ("trigger", "state"):
            raise fail(f"{key}.trigger", f"\"{t.trigger}\" 不能用作操作名")
        for j, source in enumerate(t.source):
            if source not in states:
                raise fail(f"{key}.source[{j}]", f"\"{source}\" 不是已定义的状态")
            earlier = seen.get((t.trigger, source))
            if earlier is not None:
                # Several transitions may share a trigger and source (conditional routing);
                # every one but the last must have conditions, and all edit the same fields.
                if not earlier.conditions:
                    raise fail(f"{key}", f"操作 \"{t.trigger}\" 在状态 \"{source}\" 下已有一个无条件的"
                                         f"定义；同名操作只有前面的带 conditions 时才能再定义")
                if set(earlier.edits) != set(t.edits):
                    raise fail(f"{key}.edits", f"同名操作 \"{t.trigger}\" 的 edits 应相同")
            seen[(t.trigger, source)] = t
        for j, name in enumerate(t.not_actor_of):
            if name not in triggers:
                raise fail(f"{key}.not_actor_of[{j}]", f"\"{name}\" 不是本工作流的操作（或 create）")
        for what, names in (("stamps", t.stamps), ("stamps_once", t.stamps_once),
                            ("stamps_when", list(t.stamps_when))):
            for j, name in enumerate(names):
                if name not in fields or fields[name].type not in ("datetime", "date"):
                    raise fail(f"{key}.{what}[{j}]", f"\"{name}\" 应为 date 或 datetime 类型的字段")
        _check_assign(t.assign, f"{key}.assign")
        for j, name in enumerate(t.increment):
            if name not in fields or fields[name].type != "integer":
                raise fail(f"{key}.increment[{j}]", f"\"{name}\" 应为 integer 类型的字段")
        for j, name in enumerate(t.record_actor):
            if name not in fields or fields[name].type != "user":
                raise fail(f"{key}.record_actor[{j}]", f"\"{name}\" 应为 user 类型的字段")
        for table, columns in t.append.items():
            if table not in fields or fields[table].type != "table":
                raise fail(f"{key}.append.{table}", f"\"{table}\" 应为 table 类型的字段")
            for column, origin in columns.items():
                if column not in fields[table].columns:
                    raise fail(f"{key}.append.{table}.{column}", f"不是 {table} 的列")
                if origin not in fields and origin not in APPEND_SOURCES and not (
                        origin.startswith(BEFORE) and origin[len(BEFORE):] in fields):
                    raise fail(f"{key}.append.{table}.{column}",
                               f"\"{origin}\" 不是字段（也不是 {'、'.join(APPEND_SOURCES)} 或 "
                               f"$before.<字段>）")
        for j, name in enumerate(t.clear):
            if name not in fields:
                raise fail(f"{key}.clear[{j}]", f"\"{name}\" 不是已定义的字段")
        if t.dest not in states:
            raise fail(f"{key}.dest", f"\"{t.dest}\" 不是已定义的状态")
        check_roles(t.roles, f"{key}.roles")
        for j, name in enumerate(t.requires):
            if name not in fields:
                raise fail(f"{key}.requires[{j}]", f"\"{name}\" 不是已定义的字段")
        for j, name in enumerate(t.edits):
            if name != "*" and name not in fields:
                raise fail(f"{key}.edits[{j}]", f"\"{name}\" 不是已定义的字段")
        for j, name in enumerate(t.documents):
            if name not in documents:
                raise fail(f"{key}.documents[{j}]", f"\"{name}\" 不是 [documents] 中定义的文档")
        check_names(t.checks, compiled["checks"], f"{key}.checks", "检查")
        check_names(t.conditions, compiled["conditions"], f"{key}.conditions", "条件")
        takes_signed = None
        if t.takes_signed:
            kind, upload = t.takes_signed.get("document"), t.takes_signed.get("file")
            if set(t.takes_signed) != {"document", "file"}:
                raise fail(f"{key}.takes_signed", "应为 { document = 文件种类, file = 附件字段 }")
            if kind not in documents or not documents[kind].customer_signature:
                raise fail(f"{key}.takes_signed.document",
                           f"\"{kind}\" 应是 [documents] 中定义了 customer_signature 的文件")
            if upload not in fields or fields[upload].type != "attachments" or \
                    not ("*" in t.edits or upload in t.edits):
                raise fail(f"{key}.takes_signed.file",
                           f"\"{upload}\" 应是本操作可修改（edits）的 attachments 字段")
            takes_signed = TakesSigned(kind, upload)
        route = routes.get(t.trigger, 0)
        routes[t.trigger] = route + 1
        transitions.append(TransitionSpec(t.trigger, t.label, tuple(t.source), t.dest,
                                          tuple(t.roles), tuple(t.requires), tuple(t.edits),
                                          tuple(t.documents), tuple(t.checks),
                                          tuple(t.conditions), tuple(t.not_actor_of),
                                          t.void_documents, tuple(t.stamps), dict(t.fire_linked),
                                          dict(t.assign), tuple(t.increment),
                                          tuple(t.record_actor), route,
                                          {k: dict(v) for k, v in t.append.items()},
                                          tuple(t.clear), tuple(t.stamps_once),
                                          expressions(t.stamps_when, f"{key}.stamps_when"),
                                          {k: dict(v) for k, v in t.fire_linked_data.items()},
                                          expressions(t.fire_linked_when,
                                                      f"{key}.fire_linked_when"),
                                          tuple(_spawn(d, f"{key}.spawn[{j}]", fields, compiler,
                                                       known, fail)
                                                for j, d in enumerate(t.spawn)), takes_signed))
    timers = []
    for i, d in enumerate(wf.timers):
        key = f"timers[{i}]"
        sources = tuple(dict.fromkeys(s for t in transitions if t.trigger == d.trigger
                                      for s in t.sources))
        if not sources:
            raise fail(f"{key}.trigger", f"\"{d.trigger}\" 不是本工作流的操作")
        for j, state in enumerate(d.states):
            if state not in sources:
                raise fail(f"{key}.states[{j}]", f"操作 \"{d.trigger}\" 不能从 \"{state}\" 执行"
                                                f"（可从：{', '.join(sources)}）")
        if d.when is None and d.after is None:
            raise fail(key, "需要 when（条件表达式）或 after（如 \"3d\"），或两者都写")
        when = compiler.expression(d.when, f"{key}.when", known) if d.when is not None else None
        try:
            after = parse_duration(d.after) if d.after is not None else None
        except ValueError as err:
            raise fail(f"{key}.after", str(err)) from None
        requires = compiler.requires(d.requires, when, key, known, known)
        timers.append(Timer(d.trigger, tuple(d.states) or sources, when, requires, after))
    m = wf.migrations
    for old_name, new_name in m.states.items():
        if old_name in states:
            raise fail(f"migrations.states.{old_name}", f"\"{old_name}\" 仍是现有状态，不需要迁移")
        if new_name not in states:
            raise fail(f"migrations.states.{old_name}", f"\"{new_name}\" 不是现有状态"
                                                        f"（可用：{', '.join(states)}）")
    for old_name, new_name in m.fields.items():
        if old_name in fields or new_name not in fields:
            raise fail(f"migrations.fields.{old_name}",
                       f"应把已不存在的字段映射到现有字段（\"{old_name}\" → \"{new_name}\"）")
    for j, old_name in enumerate(m.retired_fields):
        if old_name in fields or old_name in m.fields:
            raise fail(f"migrations.retired_fields[{j}]",
                       f"\"{old_name}\" 仍是现有字段或已在 migrations.fields 中改名")
    for name, kind in m.document_dates.items():
        if name not in fields or fields[name].type not in ("date", "datetime"):
            raise fail(f"migrations.document_dates.{name}", f"\"{name}\" 应为本工作流的 date 或 datetime 字段")
        if kind not in documents:
            raise fail(f"migrations.document_dates.{name}", f"\"{kind}\" 不是本工作流出具的文件"
                                                            f"（可用：{', '.join(documents) or '无'}）")
    tallies = {name: _tally(name, d, head.key, fields, fail) for name, d in wf.tallies.items()}
    if wf.deadline is not None and wf.deadline.step is not None \
            and not any(t.trigger == wf.deadline.step for t in transitions):
        raise fail("deadline.step", f"\"{wf.deadline.step}\" 不是本工作流的操作")
    party = None
    if wf.party is not None:
        d = wf.party
        for name in [d.key, *d.create.values(), *d.update.values(), *d.fill,
                     *([d.owner] if d.owner else [])]:
            if name not in fields:
                raise fail("party", f"\"{name}\" 不是本工作流的字段")
        if d.owner is not None and fields[d.owner].type != "user":
            raise fail("party.owner", f"\"{d.owner}\" 应为 user 类型的字段")
        if bool(d.referred_by) != bool(d.referrer):
            raise fail("party.referred_by", "referred_by 与 referrer 须同时给出")
        if d.referred_by and d.referred_by not in fields:
            raise fail("party.referred_by", f"\"{d.referred_by}\" 不是本工作流的字段")
        # free_when and shared_when read the party's fields: checked once all files load
        party = Party(d.workflow, d.key, d.match, dict(d.create), dict(d.fill), dict(d.update),
                      d.owner, _compile_later(d.free_when, "party.free_when", fail),
                      tuple(d.states), d.referred_by, d.referrer,
                      _compile_later(d.shared_when, "party.shared_when", fail))
    joins = {}
    for name, d in wf.joins.items():
        key = f"joins.{name}"
        if d.key not in fields or fields[d.key].type != "string":
            raise fail(f"{key}.key", f"\"{d.key}\" 应为本工作流的 string 字段")
        joins[name] = Join(
            name, d.key, d.match,
            compiler.expression(d.optional_when, f"{key}.optional_when", known)
            if d.optional_when else None,
            compiler.message(d.message, f"{key}.message", known | {"value"})
            if d.message else None, d.leave, tuple(d.states))
    return Workflow(head.key, head.title, head.case_prefix, head.initial,
                    tuple(head.create_roles), tuple(head.create_checks),
                    fields, states, tuple(transitions), documents, path,
                    tuple(head.summary),
                    {name: CreateFrom(name, tuple(cf.states), dict(cf.fields), cf.required)
                     for name, cf in wf.create_from.items()},
                    tuple(exclusive), reports,
                    wf.deadline.field if wf.deadline else None,
                    wf.deadline.owner if wf.deadline else None, dict(head.create_assign),
                    head.assignee, compiled["computed"], compiled["row_computed"],
                    compiled["checks"], compiled["conditions"], policy_specs, head.total,
                    frozenset(compiler.linked), tuple(timers),
                    Migrations(dict(m.states), dict(m.fields), tuple(m.retired_fields),
                               dict(m.document_dates)),
                    definition, party,
                    wf.deadline.step if wf.deadline else None, tallies,
                    Rota(**vars(wf.rota)) if wf.rota else None, head.pool,
                    tuple(head.readers), _import(import_def, fields, transitions, fail),
                    joins)


def _compile_later(source: str | None, key: str, fail) -> rules.Expression | None:
    """An expression over another workflow's names (a party's, a tally's counted cases'):
    compiled now, its names checked once every file loads."""
    if not source:
        return None
    try:
        return rules.Expression.compile(source)
    except rules.RuleError as err:
        raise fail(key, str(err)) from None


def _import(d: _ImportDef | None, fields: Mapping[str, FieldSpec],
            transitions: list[TransitionSpec], fail) -> ImportUpdate | None:
    """``[import]``: the key fields a row finds its case by, and the step that updates it."""
    if d is None:
        return None
    if not d.key:
        raise fail("import.key", "应列出找到已有案件的字段（如 [\"brand\", \"series\", \"model\"]）")
    for j, name in enumerate(d.key):
        if name not in fields or fields[name].type in ("table", "attachments"):
            raise fail(f"import.key[{j}]", f"\"{name}\" 应为本工作流的字段（表格、附件除外）")
    steps = [t for t in transitions if t.trigger == d.update]
    if not steps:
        raise fail("import.update", f"\"{d.update}\" 不是本工作流的操作")
    if any(t.documents for t in steps):
        raise fail("import.update", f"\"{d.update}\" 会出具文档，不能由导入触发")
    return ImportUpdate(tuple(d.key), d.update)


def _spawn(d: _SpawnDef, key: str, fields: Mapping[str, FieldSpec], compiler: RuleCompiler,
           known: set[str], fail) -> Spawn:
    """A step's ``spawn``; the other workflow's fields are checked once every file loads. Its
    expressions read ``known`` (the file's fields and computed values), ``case_id`` and, with
    ``each``, the table's ``row``."""
    if d.each is not None and (d.each not in fields or fields[d.each].type != "table"):
        raise fail(f"{key}.each", f"\"{d.each}\" 应为本工作流 table 类型的字段")
    known = known | {"case_id"} | ({"row"} if d.each else set())
    when = compiler.expression(d.when, f"{key}.when", known) if d.when else None
    if not d.data:
        raise fail(f"{key}.data", "应写明新案件的字段（字段 = 表达式）")
    return Spawn(d.workflow, {name: compiler.expression(source, f"{key}.data.{name}", known)
                              for name, source in d.data.items()}, d.each, when)


def _tally(name: str, d: _TallyDef, own: str, fields: Mapping[str, FieldSpec],
           fail) -> TallySpec:
    """A tally's definition; the fields it names are checked once every file is loaded."""
    key = f"tallies.{name}"
    if isinstance(d.rows, list):
        if not d.rows or len(set(d.rows)) != len(d.rows) or {"day", "consultant"} & set(d.rows):
            raise fail(f"{key}.rows", f"{d.rows} 应为本工作流不重复的字段名（每组取值一行，如 "
                                      f"[\"brand\", \"series\", \"model\"]）")
        row_fields = tuple(d.rows)
    else:
        row_fields = () if d.rows in ("day", "consultant") else (d.rows,)
    rows = row_fields[0] if row_fields else d.rows
    for row_field in row_fields:
        if not NAME.match(row_field):
            raise fail(f"{key}.rows", f"\"{row_field}\" 应为 day（每天一行）、consultant（每位销售顾问一行）"
                                      f"或本工作流的字段（每个取值一行，如 model）")
        if not _names_rows(fields.get(row_field)):
            raise fail(f"{key}.rows", f"\"{row_field}\" 应为 day、consultant 或本工作流不含个人信息的 "
                                      f"string / choice 字段（每个取值一行）")
    row_labels = tuple(fields[f].label for f in row_fields)
    if d.months and rows == "day":
        raise fail(f"{key}.months", "按天的表已按日期分行，不能再写 months（months 用于按销售顾问或按字段分行的表）")
    try:
        slots = tuple(datetime.strptime(s, "%H:%M").time() for s in d.slots)
    except ValueError:
        raise fail(f"{key}.slots", f"时段应写成 \"08:00\" 这样的时刻：{d.slots}") from None
    if list(slots) != sorted(set(slots)) or len(slots) == 1:
        raise fail(f"{key}.slots", "时段的分界应从早到晚、不重复，至少两个")
    columns: list[TallyColumn] = []
    labels: set[str] = set()
    for j, c in enumerate(d.columns):
        where = f"{key}.columns[{j}]"
        if c.label in labels:
            raise fail(f"{where}.label", f"列名 \"{c.label}\" 重复")
        labels.add(c.label)
        kinds = [k for k, given in (("ratio", c.ratio), ("cumulative", c.cumulative),
                                    ("blank", c.blank)) if given]
        if len(kinds) > 1:
            raise fail(f"{where}.{kinds[1]}", f"{kinds[0]} 与 {kinds[1]} 不能写在同一列")
        if c.group and c.per_slot:
            raise fail(f"{where}.group", "按时段的列已按时段分组，不能再写 group")
        if kinds and c.hidden:
            raise fail(f"{where}.hidden", "只有计数列可以隐藏（hidden）")
        if kinds and (c.date_field or c.count or c.table or c.per_slot or c.workflow or c.mean):
            raise fail(f"{where}.{kinds[0]}",
                       f"{kinds[0]} 列不计数，不能再写 date_field、count、table、per_slot、workflow 或 mean")
        counted = {x.label for x in columns if x.counts and x.mean is None}
        if c.ratio:
            if len(c.ratio) != 2 or any(r not in counted for r in c.ratio):
                raise fail(f"{where}.ratio", "应为 [分子列名, 分母列名]，两列须是写在它前面的计数列")
            columns.append(TallyColumn(c.label, own, "", None, ratio=(c.ratio[0], c.ratio[1]),
                                       group=c.group))
            continue
        if c.cumulative:
            if c.cumulative not in counted:
                raise fail(f"{where}.cumulative",
                           f"\"{c.cumulative}\" 应为写在它前面的计数列（可用：{'、'.join(sorted(counted)) or '无'}）")
            if rows != "day":
                raise fail(f"{where}.cumulative", "累计列只用于按天的统计表（rows = \"day\"）")
            columns.append(TallyColumn(c.label, own, "", None, cumulative=c.cumulative))
            continue
        if c.blank:
            columns.append(TallyColumn(c.label, own, "", None, blank=True))
            continue
        if not c.date_field:
            raise fail(f"{where}.date_field", "计数列需要 date_field（按哪个日期计入哪一天）")
        columns.append(TallyColumn(c.label, c.workflow or own, c.date_field,
                                   _compile_later(c.count, f"{where}.count", fail), c.table,
                                   c.per_slot, short=c.short, hidden=c.hidden, group=c.group,
                                   mean=_compile_later(c.mean, f"{where}.mean", fail)))
    if d.by is not None and rows != "consultant":
        raise fail(f"{key}.by", "by 只用于按人统计的表（rows = \"consultant\"）")
    if d.months and any(c.date_field == "today" for c in columns if c.counts):
        raise fail(f"{key}.months", "date_field = \"today\" 的列只统计当天的现状，不能按月分行")
    return TallySpec(name, d.title, rows, slots, tuple(columns), tuple(d.signatures), d.by,
                     row_labels, row_fields, d.months)


def _names_rows(spec: FieldSpec | None) -> bool:
    """Whether a tally may have a row per value of the field (``rows``): a plain string or
    choice, no personal data."""
    return spec is not None and spec.type in ("string", "choice") and not spec.personal


def _check_rota(wf: Workflow, workflows: dict[str, Workflow], fail) -> None:
    rota = wf.rota
    assert rota is not None
    duty = workflows.get(rota.workflow)
    if duty is None:
        raise fail("rota.workflow", f"没有名为 \"{rota.workflow}\" 的工作流")
    if rota.day not in duty.fields or duty.fields[rota.day].type != "date":
        raise fail("rota.day", f"\"{rota.day}\" 应为 {rota.workflow} 的 date 字段")
    for key, table in (("order", rota.order), ("record", rota.record)):
        if table not in duty.fields or duty.fields[table].type != "table":
            raise fail(f"rota.{key}", f"\"{table}\" 应为 {rota.workflow} 的表格字段")
    if duty.fields[rota.order].columns.get(rota.column) is None \
            or duty.fields[rota.order].columns[rota.column].type != "user":
        raise fail("rota.column", f"\"{rota.column}\" 应为 {rota.order} 的 user 列")
    if set(duty.fields[rota.record].columns) < {"at", "visit", "consultant"}:
        raise fail("rota.record", f"{rota.record} 应有 at、visit、consultant 三列")
    if rota.field not in wf.fields or wf.fields[rota.field].type != "user":
        raise fail("rota.field", f"\"{rota.field}\" 应为本工作流的 user 字段")
    if rota.date not in wf.fields or wf.fields[rota.date].type not in ("date", "datetime"):
        raise fail("rota.date", f"\"{rota.date}\" 应为本工作流的 date 或 datetime 字段")


def _check_tallies(wf: Workflow, workflows: dict[str, Workflow], fail) -> None:
    """Each counting column names a workflow, a date field and fields that it has."""
    for name, tally in wf.tallies.items():
        for j, c in enumerate(tally.columns):
            where = f"tallies.{name}.columns[{j}]"
            if not c.counts:
                continue
            other = workflows.get(c.workflow)
            if other is None:
                raise fail(f"{where}.workflow", f"没有名为 \"{c.workflow}\" 的工作流")
            if tally.by is not None and (tally.by not in other.fields
                                         or other.fields[tally.by].type != "user"):
                raise fail(f"tallies.{name}.by",
                           f"\"{tally.by}\" 应为 {c.workflow} 的 user 字段（按谁分行）")
            for row_field in tally.row_fields:   # rows by fields: each counted case has them
                if not _names_rows(other.fields.get(row_field)):
                    raise fail(f"tallies.{name}.rows",
                               f"按字段 {row_field} 分行，但 {c.workflow}（{where}）没有不含个人信息的 "
                               f"string / choice 字段 {row_field}")
            fields = dict(other.fields)
            if c.table is not None:
                if c.table not in fields or fields[c.table].type != "table":
                    raise fail(f"{where}.table", f"\"{c.table}\" 不是 {c.workflow} 的表格字段")
                fields = {**fields, **fields[c.table].columns}
            if c.date_field not in fields and c.date_field not in ("created_at", "today") \
                    or c.date_field in fields and fields[c.date_field].type not in ("date", "datetime"):
                raise fail(f"{where}.date_field", f"\"{c.date_field}\" 应为 {c.workflow} 的 date 或 datetime 字段")
            for kind, expr in (("count", c.count), ("mean", c.mean)):
                if expr is None:
                    continue
                unknown = rules.unknown_names(expr.names,
                                              set(fields) | set(other.computed) | {"state"},
                                              other.policy)
                if unknown:
                    raise fail(f"{where}.{kind}", f"引用了 {c.workflow} 没有的名称 {', '.join(unknown)}")


def _field(name: str, d: _FieldDef, key: str, fail) -> FieldSpec:
    if not NAME.match(name) or name in RESERVED_NAMES:
        raise fail(key, f"字段名 \"{name}\" 无效或与模板保留名冲突（{', '.join(sorted(RESERVED_NAMES))}）")
    if d.type not in FIELD_TYPES:
        raise fail(f"{key}.type", f"未知的字段类型 \"{d.type}\"（可用：{', '.join(FIELD_TYPES)}）")
    if d.rule is not None and d.rule not in validators.RULES:
        raise fail(f"{key}.rule", f"未知的校验规则 \"{d.rule}\"（可用：{', '.join(validators.RULES)}）")
    if d.type in ("choice", "multichoice") and not d.choices:
        raise fail(f"{key}.choices", f"{d.type} 类型的字段需要 choices")
    for value in d.choice_labels:
        if value not in d.choices:
            raise fail(f"{key}.choice_labels.{value}", f"\"{value}\" 不在 choices 中")
    if bool(d.rule_field) != bool(d.rule_map) or (d.rule_field and d.rule):
        raise fail(f"{key}.rule_field", "rule_field 与 rule_map 须同时给出，且不能再写 rule")
    if d.type == "table" and not d.columns:
        raise fail(f"{key}.columns", "table 类型的字段需要 columns")
    if d.type != "table" and d.columns:
        raise fail(f"{key}.columns", "只有 table 类型的字段可以有 columns")
    for bound in ("min", "max"):
        value = getattr(d, bound)
        if value is not None:
            try:
                float(value)
            except ValueError:
                raise fail(f"{key}.{bound}", f"\"{value}\" 不是数字") from None
    if d.personal is not None and d.personal not in PERSONAL_KINDS:
        raise fail(f"{key}.personal", f"\"{d.personal}\" 不是个人信息的种类（可用：{', '.join(PERSONAL_KINDS)}）")
    if d.personal is not None and d.type not in ("string", "text"):
        raise fail(f"{key}.personal", "只有 string 和 text 类型的字段可以标为个人信息")
    if d.timeline is not None and d.type != "table":
        raise fail(f"{key}.timeline", "只有 table 类型的字段可以有 timeline")
    if d.search and (d.type != "string" or d.personal in MASKED_KINDS):
        raise fail(f"{key}.search", "只有 string 类型的字段可以标 search = true（身份证号、手机号等"
                                    "个人信息字段本来就能按完整号码查找，无需再标）")
    if d.unique and (d.type != "string" or d.personal is not None):
        raise fail(f"{key}.unique", "只有不含个人信息的 string 类型字段可以标 unique = true"
                                    "（如 VIN；客户的手机号由 [party] 保证一人一档）")
    if d.default is not None and (d.type, d.default) not in (("user", "actor"), ("datetime", "now"),
                                                             ("date", "today")) \
            and not (d.type == "choice" and d.default in d.choices):
        raise fail(f"{key}.default", "目前只支持 user 类型字段的 default = \"actor\"（操作人）、"
                                     "datetime 的 \"now\"（此刻）、date 的 \"today\"（今天）"
                                     "和 choice 的选项之一")
    columns = {c: _field(c, cd, f"{key}.columns.{c}", fail) for c, cd in d.columns.items()}
    for c, col in columns.items():
        for other in col.required_if:
            if other not in columns:
                raise fail(f"{key}.columns.{c}.required_if", f"引用了本表未定义的列 \"{other}\"")
    timeline = _timeline(d.timeline, columns, f"{key}.timeline", fail) if d.timeline else None
    return FieldSpec(name=name, type=d.type, label=d.label, required=d.required,
                     required_if=dict(d.required_if), required_if_set=tuple(d.required_if_set),
                     rule=d.rule, rule_field=d.rule_field, rule_map=dict(d.rule_map),
                     override=d.override, choices=tuple(d.choices),
                     choice_labels=dict(d.choice_labels),
                     min=d.min, max=d.max, max_length=d.max_length, max_rows=d.max_rows,
                     roles=tuple(d.roles), default=d.default, columns=columns,
                     personal=d.personal, search=d.search, unique=d.unique, timeline=timeline,
                     lookup=_lookup(name, d, key, fail),
                     choices_from=_choices_from(d, key, fail))


def _choices_from(d: _FieldDef, key: str, fail) -> tuple[str, str] | None:
    """A field's ``choices_from`` as (lookup field, its workflow's field); both are checked
    once every file loads (:func:`_check_lookups`)."""
    if d.choices_from is None:
        return None
    field_name, dot, origin = d.choices_from.partition(".")
    if d.type != "string" or not dot or not field_name or not origin:
        raise fail(f"{key}.choices_from", "应写 \"<本工作流的选取字段>.<其工作流的字段>\"（如 "
                                          "\"model.exterior_colours\"），且只用于 string 类型的字段")
    return field_name, origin


def _lookup(name: str, d: _FieldDef, key: str, fail) -> Lookup | None:
    """A field's ``lookup``; the other workflow's fields are checked once every file loads."""
    if d.lookup is None:
        return None
    if d.type != "string":
        raise fail(f"{key}.lookup", "只有 string 类型的字段可以从其他工作流的案件中选取")
    match = d.lookup.match or d.lookup.fill.get(name)
    if match is None:
        raise fail(f"{key}.lookup", f"应写 match（{d.lookup.workflow} 中与本字段对应的字段），"
                                    f"或在 fill 中给出 {name}")
    return Lookup(d.lookup.workflow, match, {name: match, **d.lookup.fill})


def _timeline(d: _TimelineDef, columns: dict[str, FieldSpec], key: str, fail) -> TableTimeline:
    """A table's rows as timeline lines: the date column, who, and the words of the line."""
    if d.date not in columns or columns[d.date].type not in ("date", "datetime"):
        raise fail(f"{key}.date", f"\"{d.date}\" 应为本表的 date 或 datetime 列")
    if d.by is not None and d.by not in columns:
        raise fail(f"{key}.by", f"\"{d.by}\" 不是本表的列")
    try:
        text = rules.Message.compile(d.text)
    except WorkflowDefinitionError as err:
        raise fail(f"{key}.text", err.message) from None
    unknown = sorted(n for n in text.names.plain if n not in columns)
    if unknown:
        raise fail(f"{key}.text", f"引用了本表没有的列 {', '.join(unknown)}")
    return TableTimeline(date=d.date, text=text, by=d.by)
