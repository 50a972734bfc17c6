"""Importing cases from a spreadsheet (``dealerdocs import customer FILE.xlsx``): every row
becomes a case made exactly as :meth:`Pipeline.create` makes one (the same normalising, required
fields, checks, owners, ``[party]`` and audit event), all rows in one unit of work. A file with
any problem imports nothing; the report names each problem by row and column.

Columns are matched to the workflow's fields by their label (客户姓名), the label without its
note in brackets (推荐人 for 推荐人（老客户档案号或姓名）) or their key (``mobile``); a column
that matches no field is a problem of the header (a file is parsed strictly: a misspelt column
would otherwise be lost silently). Tables and attachments cannot be imported. Cells are taken as
Excel holds them: a number where text is expected is its digits (a mobile typed as a number),
an Excel date is its day, 是/否 a boolean, and a user is named by login or by name (张伟).

The fields other workflows find a case by (their ``[party]`` ``match``: a customer's mobile)
and those marked ``unique = true`` (a car's VIN) are kept unique: a value twice in the file, or
already in the store, is a problem of its row (never skipped: a file is all new cases or none,
so importing it again after a fix cannot make a customer twice). Values of identity and mobile fields are masked in the report (138****8000).

A workflow with ``[import]`` (the model catalogue) names the ``key`` fields a row finds an
existing case by and the ``update`` step: a row whose key matches a case fires that step on it
with the row's changed fields (调价: a new price list), or leaves the case alone when nothing
changed; only a row that matches none makes a case. Each row's outcome is in the report
(新增, the step's label, 未变); a problem anywhere and nothing is written, updates included.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Collection, Mapping

from .. import privacy
from ..config import Config, User
from ..errors import DealerDocsError, InputError
from ..fields import FieldSpec
from ..sheets import Sheet, column_letter, is_blank
from ..store import Store, Tx
from ..workflow import Workflow
from .definitions import Definitions
from .guard import Guard
from .parties import Parties
from .pipeline import Pipeline
from .units import Work

MAX_ROWS = 5000        # one unit of work holds the store's lock: a bigger file is split
NOT_IMPORTED = ("table", "attachments")


@dataclass(frozen=True)
class Problem:
    """What is wrong with one row (``row`` 1 is the header) in one column (as the file names
    it; a field the file lacks by its label; "" for the row as a whole)."""

    row: int
    column: str
    message: str

    @property
    def text(self) -> str:
        return f"第 {self.row} 行：{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclass
class ImportReport:
    """What an import did: the cases made, row by row (none if any row has a problem), or
    the problems. ``dry_run``: checked only; ``created`` then lists what would be made."""

    workflow: str
    title: str
    source: str
    rows: int
    dry_run: bool
    created: list[dict[str, Any]] = field(default_factory=list)   # {"row": 2, "id": "K-1"}
    problems: list[Problem] = field(default_factory=list)
    # every good row: {"row": 2, "id": "CX-1", "outcome": "新增" | the step's label | "未变"}
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def failed_rows(self) -> list[int]:
        return sorted({p.row for p in self.problems})

    def to_dict(self) -> dict[str, Any]:
        return {"workflow": self.workflow, "title": self.title, "source": self.source,
                "rows": self.rows, "dry_run": self.dry_run, "ok": self.ok,
                "imported": 0 if self.dry_run or not self.ok else len(self.created),
                "created": self.created, "failed_rows": self.failed_rows,
                "outcomes": self.outcomes,
                "problems": [p.to_dict() for p in self.problems]}


class _Discard(Exception):
    """Leaves the unit of work uncommitted (a dry run, or a file with problems)."""


@dataclass(eq=False)
class _Run:
    """What the rows of one import share in its unit of work."""

    tx: Tx
    wf: Workflow
    user: User
    sheet: Sheet
    columns: dict[int, str]                  # column index → field
    report: ImportReport
    seen: dict[tuple[str, Any], int] = field(default_factory=dict)   # unique value → row
    existing: dict[tuple[Any, ...], str] = field(default_factory=dict)   # [import] key → case
    new_files: list[Path] = field(default_factory=list)   # attachments stored (none: they
                                                           # are not imported)

    def column(self, name: str | None) -> str:
        """The column of field ``name`` as the file names it, else the field's label."""
        index = next((i for i, known in self.columns.items() if known == name), None)
        if index is not None:
            return str(self.sheet.header[index]).strip()
        return self.wf.fields[name].label if name in self.wf.fields else ""

    def earlier(self, key: tuple[str, Any], number: int) -> int | None:
        """The earlier row of the file with the same unique ``key``, if any."""
        first = self.seen.setdefault(key, number)
        return first if first != number else None

    def problems(self, number: int, err: DealerDocsError, skip: Collection[str] = ()
                 ) -> list[Problem]:
        """What the engine refused in row ``number``, each problem in its field's column
        (but those of the fields in ``skip``: already said)."""
        return [Problem(number, self.column(p.details.get("field")), p.message)
                for p in getattr(err, "problems", None) or [err]
                if p.details.get("field") not in skip]


class Imports:
    """Imports spreadsheets into the cases of one store."""

    def __init__(self, config: Config, workflows: Mapping[str, Workflow], store: Store,
                 guard: Guard, definitions: Definitions, parties: Parties,
                 pipeline: Pipeline) -> None:
        self.config = config
        self.workflows = workflows
        self.store = store
        self.guard = guard
        self.definitions = definitions
        self.parties = parties
        self.pipeline = pipeline

    def workflow_named(self, name: str) -> Workflow:
        """A workflow by its key (``customer``), the key's plural (``customers``) or its title
        (客户档案)."""
        if name not in self.workflows:
            for wf in self.workflows.values():
                if name in (f"{wf.key}s", wf.title):
                    return wf
        return self.definitions.workflow(name)

    def run(self, workflow: str, sheet: Sheet, actor: str, *, dry_run: bool = False
            ) -> ImportReport:
        """Make one case of ``workflow`` per row of ``sheet`` as ``actor``, all in one unit of
        work; if any row has a problem (or ``dry_run``), nothing is written and the report
        lists every problem. Only a role that may create the workflow's cases may import them."""
        wf = self.workflow_named(workflow)
        user = self.config.user(actor)
        self.guard.authorize(user, wf.create_roles, f"导入{wf.title}")
        if not sheet.rows:
            raise InputError(f"{sheet.source} 除第 1 行的列名外没有数据", field="file")
        if len(sheet.rows) > MAX_ROWS:
            raise InputError(f"{sheet.source} 有 {len(sheet.rows)} 行数据，一次最多导入 {MAX_ROWS} 行；"
                             f"请分成几个文件", field="file")
        columns, problems = match_columns(wf, sheet)
        report = ImportReport(wf.key, wf.title, sheet.source, len(sheet.rows), dry_run,
                              problems=problems)
        new_files: list[Path] = []
        unit = self.store.rehearsal() if dry_run else self.store.transaction()
        try:
            with unit as tx:
                run = _Run(tx, wf, user, sheet, columns, report, new_files=new_files)
                if wf.import_update is not None:
                    run.existing = self._existing(tx, wf)
                for number, cells in sheet.rows:
                    self._row(run, number, cells)
                if report.problems or dry_run:
                    raise _Discard
        except BaseException as err:
            for path in new_files:
                path.unlink(missing_ok=True)
            if not isinstance(err, _Discard):
                raise
        if report.problems:
            report.created = []
            report.outcomes = []
        return report

    def _existing(self, tx: Tx, wf: Workflow) -> dict[tuple[Any, ...], str]:
        """The cases of ``wf`` by their ``[import]`` key values (the newest of each key)."""
        assert wf.import_update is not None
        out = {}
        for row in sorted(tx.find_cases(wf.key), key=lambda r: r["created_at"]):
            record = tx.case(row["id"])
            if record is not None:
                out[tuple(record["data"].get(k) for k in wf.import_update.key)] = record["id"]
        return out

    def _key(self, run: _Run, data: Mapping[str, Any], number: int
             ) -> tuple[tuple[Any, ...] | None, Problem | None]:
        """The row's ``[import]`` key as stored, and a problem if an earlier row has it."""
        wf = run.wf
        assert wf.import_update is not None
        names = wf.import_update.key
        value = self._stored(wf, {k: data[k] for k in names if k in data})
        if value is None:
            return None, None
        key = tuple(value.get(k) for k in names)
        if None in key:
            return None, None
        first = run.earlier(("$import", key), number)
        if first is not None:
            shown = " ".join(str(v) for v in key)
            return key, Problem(number, run.column(names[-1]),
                                f"{'、'.join(wf.fields[k].label for k in names)} {shown} 与第 "
                                f"{first} 行重复")
        return key, None

    def _update(self, run: _Run, number: int, case_id: str, data: Mapping[str, Any]
                ) -> list[Problem]:
        """A row that stands for an existing case: its changed fields through the ``update``
        step (or nothing, when none changed). The row's problems."""
        wf = run.wf
        assert wf.import_update is not None
        record = run.tx.case(case_id)
        assert record is not None
        problems = []
        try:
            values = self.definitions.normalize(wf, data, record["data"], edits=("*",))
        except DealerDocsError as err:
            return run.problems(number, err)
        for name in run.columns.values():
            spec = wf.fields[name]
            if spec.is_required({**record["data"], **values}) and values.get(name) in (None, ""):
                problems.append(Problem(number, run.column(name), f"{spec.label}（{name}）必填"))
        if problems:
            return problems
        changed = {k: v for k, v in values.items() if record["data"].get(k) != v}
        if not changed:
            run.report.outcomes.append({"row": number, "id": case_id, "outcome": "未变"})
            return []
        step = wf.import_update.update
        work = Work(self.pipeline.clock(), converter=None, renderer=None,  # type: ignore[arg-type]
                    rehearsal=False, new_files=run.new_files)   # the step issues no document
        try:
            result = self.pipeline.fire_in(run.tx, work, case_id, step, run.user, changed, None)
        except DealerDocsError as err:
            return run.problems(number, err)
        label = next(t.label for t in wf.transitions if t.trigger == step)
        run.report.outcomes.append({"row": number, "id": result.id, "outcome": label,
                                    "changed": sorted(changed)})
        return []

    def _row(self, run: _Run, number: int, cells: tuple[Any, ...]) -> None:
        """One row: its cells read, its unique fields checked, then its case made."""
        wf = run.wf
        data: dict[str, Any] = {}
        unread: set[str] = set()
        problems: list[Problem] = []
        for index, name in run.columns.items():
            try:
                value = cell_value(wf.fields[name], cells[index] if index < len(cells) else None,
                                   self.config)
            except InputError as err:
                problems.append(Problem(number, run.column(name), err.message))
                unread.add(name)
                continue
            if value is not None:
                data[name] = value
        hide = _hidden(wf, data)
        if wf.import_update is not None:
            key, duplicate = self._key(run, data, number)
            if duplicate is not None:
                problems.append(duplicate)
            elif key is not None and key in run.existing:
                problems += self._update(run, number, run.existing[key], data)
                self._report(run, problems, hide)
                return
        for name in self.parties.unique_fields(wf.key):   # a mobile, a VIN
            problem = self._taken(run, name, data, number, hide)
            if problem is not None:
                problems.append(Problem(number, run.column(name), problem))
                unread.add(name)        # create would say it again (or name an earlier row's)
        # the row as the engine judges a new case (without the cells that could not be read);
        # made even when it is a duplicate, so the report says all that is wrong with it
        try:
            made = self.pipeline.create_in(run.tx, wf, data, run.user, run.new_files,
                                           note=f"由 {run.sheet.source} 第 {number} 行导入")
        except DealerDocsError as err:
            problems += run.problems(number, err, skip=unread)
        else:
            run.report.created.append({"row": number, "id": made.id,
                                       **({"party": made.party} if made.party else {})})
            run.report.outcomes.append({"row": number, "id": made.id, "outcome": "新增"})
        self._report(run, problems, hide)

    @staticmethod
    def _report(run: _Run, problems: list[Problem], hide: dict[str, str]) -> None:
        order = [str(c).strip() for c in run.sheet.header]   # a row's problems left to right
        problems.sort(key=lambda p: order.index(p.column) if p.column in order else len(order))
        run.report.problems += [Problem(p.row, p.column, _masked(p.message, hide))
                                for p in problems]

    def _taken(self, run: _Run, name: str, data: Mapping[str, Any], number: int,
               hide: dict[str, str]) -> str | None:
        """Why the row's value of unique field ``name`` cannot be imported: an earlier row
        has it, or a case in the store does. None if it is free (or unreadable: the row's own
        check says why)."""
        wf = run.wf
        stored = self._stored(wf, {name: data[name]}) if name in data else None
        if stored is None:
            return None
        value = stored[name]
        shown = privacy.mask(wf.personal_fields.get(name), str(value))
        hide[str(value)] = shown
        label = wf.fields[name].label
        first = run.earlier((name, value), number)
        if first is not None:
            return f"{label} {shown} 与第 {first} 行重复"
        return self.parties.taken(run.tx, wf, {name: value}, name)

    def _stored(self, wf: Workflow, data: Mapping[str, Any]) -> dict[str, Any] | None:
        """``data`` as the fields' rules store it; None if a value is not valid (the row's
        own check says why)."""
        try:
            return self.definitions.normalize(wf, data, {}, edits=("*",))
        except InputError:
            return None


def match_columns(wf: Workflow, sheet: Sheet) -> tuple[dict[int, str], list[Problem]]:
    """Which field each column of ``sheet`` fills (by column index), and the header's
    problems: a column that names no field, names one twice, or has data but no name."""
    exact: dict[str, str] = {}
    short: dict[str, list[str]] = {}
    for name, spec in wf.fields.items():
        exact[spec.label] = exact[name] = name
        head = spec.label.split("（")[0].split("(")[0].strip()
        short.setdefault(head, []).append(name)
    known = {**{h: names[0] for h, names in short.items() if len(names) == 1}, **exact}
    columns: dict[int, str] = {}
    problems: list[Problem] = []
    where: dict[str, int] = {}
    for index, cell in enumerate(sheet.header):
        letter = column_letter(index)
        if is_blank(cell):
            if any(index < len(cells) and not is_blank(cells[index]) for _, cells in sheet.rows):
                problems.append(Problem(1, f"{letter} 列", "有数据但没有列名"))
            continue
        text = str(cell).strip()
        name = known.get(text)
        if name is None:
            close = difflib.get_close_matches(text, [s.label for s in wf.fields.values()], n=1)
            hint = f"，是否想写「{close[0]}」？" if close else ""
            problems.append(Problem(1, text, f"{letter} 列「{text}」不是{wf.title}的字段{hint}"
                                             f"（列名应为字段名称，如 {_examples(wf)}）"))
            continue
        spec = wf.fields[name]
        if spec.type in NOT_IMPORTED:
            problems.append(Problem(1, text, f"{letter} 列「{text}」是{'表格' if spec.type == 'table' else '附件'}"
                                             f"字段，不能从表格导入；请删去这一列"))
            continue
        if name in where:
            problems.append(Problem(1, text, f"{letter} 列「{text}」与 {column_letter(where[name])} 列"
                                             f"都是{spec.label}；请只留一列"))
            continue
        where[name] = index
        columns[index] = name
    return columns, problems


def cell_value(spec: FieldSpec, value: Any, config: Config) -> Any:
    """A cell as the field's normalising expects it (None for a blank cell): text stripped;
    a whole number where text is expected as its digits; an Excel date as its day (or day
    and time); a user by login or by name. The field's own rules are checked afterwards, as
    for any new case."""
    if is_blank(value):
        return None
    if isinstance(value, str):
        value = value.strip()
    elif isinstance(value, float):
        value = int(value) if value.is_integer() else Decimal(repr(value))
    kind = spec.type
    if isinstance(value, datetime):
        if kind == "datetime":
            return value.isoformat(timespec="minutes")
        value = value.date() if kind == "date" or value.time() == time(0) else value
        return value.isoformat() if isinstance(value, date) else value
    if isinstance(value, (date, time)):
        return value.isoformat()
    if kind in ("string", "text", "choice") and isinstance(value, (int, Decimal)) \
            and not isinstance(value, bool):
        return str(value)
    if kind == "user" and isinstance(value, (str, int)):
        return _login(spec, str(value), config)
    return value


def _login(spec: FieldSpec, text: str, config: Config) -> str:
    """A user named by login or by name (张伟 or zhang)."""
    if text in config.users:
        return text
    named = [login for login, user in config.users.items() if user.name == text]
    if len(named) == 1:
        return named[0]
    if named:
        raise InputError(f"{spec.label}「{text}」有 {len(named)} 位同名用户（{'、'.join(named)}），"
                         f"请写登录名", field=spec.name, label=spec.label)
    raise InputError(f"{spec.label}「{text}」不是本店用户", field=spec.name, label=spec.label)


def _hidden(wf: Workflow, data: Mapping[str, Any]) -> dict[str, str]:
    """The identity and mobile numbers of a row as written, each with its masked form."""
    return {str(data[name]): privacy.mask(kind, str(data[name]))
            for name, kind in wf.personal_fields.items()
            if kind in privacy.MASKED_KINDS and data.get(name) not in (None, "")}


def _masked(message: str, hide: Mapping[str, str]) -> str:
    for value in sorted(hide, key=len, reverse=True):
        message = message.replace(value, hide[value])
    return message


def _examples(wf: Workflow) -> str:
    return "、".join(s.label for s in list(wf.fields.values())[:3])
