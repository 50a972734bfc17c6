"""The transition pipeline: opening a case, firing a trigger on it (with the cascade to linked
cases), each as one unit of work that is all-or-nothing.

A fire, in the order of the workflow's ``transitions`` machine (``Workflow.machine``):

- before the machine is asked: the case if the actor may see it → the transitions the trigger
  may take from its state → the actor's roles → the submitted data normalised → what the
  workflow's rules see (the model's ``facts``);
- the machine's conditions: the first route whose conditions hold is taken;
- ``before_move`` (still in the old state): the route's roles and the separation of duties →
  stamps, assignments, counters → required fields and checks;
- the move;
- ``after_move`` (in the new state): ``[[exclusive]]`` resources → the documents
  (:class:`~engine.services.issuing.Issuing`) → voids → the case and its audit event → the
  linked cases' cascade (the same order on their own machines).

What stays outside the machine, and why: the unit of work (:class:`~engine.services.units.Units`)
wraps the whole, because a refusal after the move must still leave the store as it was, and the
machine rolls nothing back; the lookup of the trigger's transitions comes first, because the
machine says only "can't trigger" in English where a user needs the steps possible now, in
Chinese; and normalising the data comes before the conditions, which judge the data as
submitted (a page asking ``may_trigger`` has no data to normalise, and the machine's
``prepare`` callbacks would run for it too).
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .. import access, case_migrations
from ..config import Config, User
from ..errors import InputError, NotFoundError, PermissionDenied, StateError
from ..fields import from_python
from ..jsonview import context_value
from ..prepared import Prepared
from ..store import Store, Tx
from ..workflow import BEFORE, Model, TransitionSpec, Workflow
from .control import DocumentControl
from .definitions import Definitions, related
from .guard import Guard
from .issuing import IssuedDocument, Issuing
from .lookups import Lookups
from .joins import Joins
from .parties import Parties, as_field
from .rotas import Rotas
from .trail import Trail
from .countersigning import Countersigning
from .units import Units, Work


@dataclass(frozen=True)
class FireResult:
    id: str
    state: str
    state_label: str
    documents: list[IssuedDocument] = field(default_factory=list)
    party: str | None = None   # a new case's customer (``[party]``), found or made
    spawned: list[str] = field(default_factory=list)   # cases the step made (``spawn``)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "state_label": self.state_label,
                "documents": [d.to_dict() for d in self.documents],
                **({"party": self.party} if self.party else {}),
                **({"spawned": self.spawned} if self.spawned else {})}


@dataclass(frozen=True)
class Fire:
    """A transition to fire, as a plan takes it: what :meth:`Pipeline.fire` takes."""

    case_id: str
    trigger: str
    data: Mapping[str, Any] | None = None
    mark: tuple[str, str] | None = None   # (batch id, item), recorded with the change
    at: datetime | None = None            # the time it happens at; a plan fixes it


@dataclass(eq=False)
class Plan:
    """A fire rendered ahead of its commit (:meth:`Pipeline.plan`): ``documents`` are the
    .docx it will convert; ``prepared`` carries its renders and conversions to the commit
    (shared by the plans made together); ``converted_late`` is set by the commit (documents
    it had to convert itself because the store moved)."""

    fire: Fire
    actor: str
    documents: list[bytes]
    prepared: Prepared
    converted_late: int = 0


@dataclass(eq=False)
class _Firing:
    """What the steps of one fire share in its unit of work."""

    tx: Tx
    work: Work
    user: User
    wf: Workflow
    record: dict[str, Any]
    data: dict[str, Any]   # the case's data with what was submitted
    warnings: list[str]
    values: dict[str, Any]
    totals: dict[str, Any]
    facts: dict[str, Any]
    timed: bool
    issued: list[IssuedDocument] = field(default_factory=list)
    spawned: list[str] = field(default_factory=list)    # the cases its step made (``spawn``)
    refs: dict[str, list[str]] = field(default_factory=dict)   # its lookup fields' picks


class _Move(Model):
    """The machine's model for one step of the pipeline: the steps before and after the move
    are the pipeline's, given the route the machine took (and, after, the new state)."""

    def __init__(self, facts: Mapping[str, Any], before: Callable[[TransitionSpec], None],
                 after: Callable[[TransitionSpec, str], None]) -> None:
        super().__init__(facts)
        self.steps = (before, after)

    def before_move(self, event: Any) -> None:
        self.steps[0](event.transition.spec)

    def after_move(self, event: Any) -> None:
        self.steps[1](event.transition.spec, self.state)  # type: ignore[attr-defined]


class Pipeline:
    """Creates cases and fires their transitions, for one store."""

    def __init__(self, config: Config, workflows: Mapping[str, Workflow], store: Store,
                 guard: Guard, definitions: Definitions, trail: Trail, issuing: Issuing,
                 control: DocumentControl, units: Units, parties: Parties, rotas: Rotas,
                 clock: Callable[[], datetime], lookups: Lookups,
                 joins: Joins, countersigning: Countersigning | None = None) -> None:
        self.config = config
        self.workflows = workflows
        self.store = store
        self.guard = guard
        self.definitions = definitions
        self.trail = trail
        self.issuing = issuing
        self.control = control
        self.units = units
        self.parties = parties
        self.rotas = rotas
        self.clock = clock
        self.lookups = lookups
        self.joins = joins
        self.countersigning = countersigning

    def create(self, workflow: str, data: Mapping[str, Any], actor: str,
               source: str | None = None, files_from: Path | None = None,
               mark: tuple[str, str] | None = None, customer: str | None = None) -> FireResult:
        """Open a new case in the workflow's initial state, optionally from a ``source`` case
        (e.g. a contract from an accepted quote): mapped fields are carried over, ``data``
        overrides them, and the two cases are linked both ways. A workflow with ``[party]``
        joins its customer (``customer``, the source's, or found by mobile, or made new:
        :class:`Parties`). Relative attachment paths in ``data`` are taken from
        ``files_from`` (default: the current folder)."""
        wf = self.definitions.workflow(workflow)
        user = self.config.user(actor)
        self.guard.authorize(user, wf.create_roles, f"新建{wf.title}")   # refused before the lock
        new_files: list[Path] = []
        try:
            with self.store.transaction() as tx:
                return self.create_in(tx, wf, data, user, new_files, source=source,
                                      files_from=files_from, mark=mark, customer=customer)
        except BaseException:
            for path in new_files:
                path.unlink(missing_ok=True)
            raise

    def create_in(self, tx: Tx, wf: Workflow, data: Mapping[str, Any], user: User,
                  new_files: list[Path], *, source: str | None = None,
                  files_from: Path | None = None, mark: tuple[str, str] | None = None,
                  customer: str | None = None, note: str | None = None,
                  spawned_from: Mapping[str, Any] | None = None,
                  taken: list[str] | None = None) -> FireResult | None:
        """The body of :meth:`create` inside a unit of work ``tx`` the caller holds (an import
        makes many cases in one): the actor's roles, then everything ``create`` does. Attachments
        stored are listed in ``new_files`` (the caller removes them if ``tx`` does not commit).
        ``note`` goes into the new case's audit event (default: the source case it came from).
        ``spawned_from``: the case whose step makes this one (``spawn``: the workflow file is
        the authority, no create role needed; linked both ways). ``taken``: a value another
        case already holds (a second file for one mobile) is said there and nothing is made
        (None), instead of refused."""
        if spawned_from is None:
            self.guard.authorize(user, wf.create_roles, f"新建{wf.title}")
        base: dict[str, Any] = {}
        links: dict[str, list[str]] = {}
        origin = None
        if source is not None:
            origin = self.guard.visible_case(tx, source, self.guard.reach(user.login))
            base, links = self._carry_over(tx, wf, origin)
        elif any(cf.required for cf in wf.create_from.values()):
            labels = self.definitions.state_labels
            need = "、".join(f"{self.workflows[k].title}（{'/'.join(labels(k, cf.states))}）"
                            for k, cf in wf.create_from.items() if cf.required)
            raise InputError(f"{wf.title}只能从{need}创建：请用 --from 指定来源单号",
                             field="source")
        warnings: list[str] = []
        data, chosen = self.lookups.chosen(wf, data)
        patch = self.definitions.normalize(wf, data, base, edits=("*",), warnings=warnings,
                                           stored_files=new_files, files_from=files_from,
                                           vouched=self.joins.vouches(tx, wf))
        stored = {**base, **patch}
        refs = self.lookups.apply(tx, wf, stored, {}, user, ids=chosen, given=stored)
        self.lookups.check_choices(tx, wf, stored, refs, changed=[*stored, *chosen])
        for name in self.parties.match_fields(wf.key):   # one customer's file per mobile
            held = self.parties.taken(tx, wf, stored, name)
            if held is not None and taken is not None:
                taken.append(f"{held}，未重复建档")
                return None
            if held is not None:
                raise InputError(f"{held}；请在该档案上继续（登记来店、记录跟进）", field=name)
        self._check_unique(tx, wf, stored, None)
        for target, from_field in wf.create_assign.items():
            if stored.get(target) is None and from_field in wf.fields:
                stored[target] = copy.deepcopy(stored.get(from_field))
        now = self.clock()
        for name, spec in wf.fields.items():
            if spec.type == "user" and spec.default == "actor" and stored.get(name) is None \
                    and (not spec.roles or set(spec.roles) & set(user.roles)):
                stored[name] = user.login
            elif spec.default in ("now", "today") and stored.get(name) is None:
                stored[name] = (now.date().isoformat() if spec.default == "today" else
                                now.replace(tzinfo=None).isoformat(timespec="minutes"))
            elif spec.type == "choice" and spec.default and stored.get(name) is None:
                stored[name] = spec.default
        party = self.parties.attach(tx, wf, stored, user, customer, origin, now)
        turn = None
        if wf.rota is not None and stored.get(wf.rota.field) is None:
            # a new visitor nobody was named for: the next consultant on duty
            when = stored.get(wf.rota.date)
            turn = self.rotas.next_turn(tx, wf.rota,
                                        date.fromisoformat(when[:10]) if when else now.date())
            if turn is not None:
                stored[wf.rota.field] = turn.login
                if party is not None:
                    self.parties.give(party, turn.login)
        if party is not None:
            links[party.wf.key] = [party.record["id"]]
        if spawned_from is not None:
            links[spawned_from["workflow"]] = [spawned_from["id"]]
        if any(origin not in wf.fields for origin in wf.create_assign.values()):
            # computed origins, once the defaults and the customer's data are in
            assign_computed(wf, wf.create_assign, stored,
                            self.definitions.evaluate(wf, stored, now.date())[1], only_empty=True)
        self.definitions.require(wf, stored, (), f"新建{wf.title}")
        values, totals = self.definitions.evaluate(wf, stored)
        names = self.definitions.names(tx, values, totals, now, {**links, **refs})
        self.definitions.run_checks(wf, wf.create_checks, names)
        stamp = now.isoformat()
        self._check_exclusive(tx, wf, None, wf.initial, stored)
        joined = self.joins.resolve(tx, wf, stored, links, names)   # the car a VIN names
        links = joined.links
        case_id = f"{wf.case_prefix}-{tx.next_counter(f'case:{wf.case_prefix}')}"
        # whose case it is: who opened it, its assignee, and whose the source case was
        owners = [user.login, *([stored[wf.assignee]] if wf.assignee and stored.get(wf.assignee)
                                else []),
                  *(access.owners(origin) if origin is not None else []),
                  *(access.owners(spawned_from) if spawned_from is not None else []),
                  *(party.owners if party is not None else [])]
        case_migrations.record_new(tx, self.workflows)   # before the case: none of it yet
        self.parties.record_new(tx)
        tx.put_case({
            "id": case_id, "workflow": wf.key, "state": wf.initial, "data": stored,
            "links": links, "created_at": stamp, "created_by": user.login,
            "updated_at": stamp, "updated_by": user.login,
            "owners": list(dict.fromkeys(owners)), "definition": wf.definition,
            **({"refs": refs} if refs else {})})
        for linked in (origin, spawned_from):
            # linked back, except a spawn's source to a case of the workflow it joins as
            # [party]: a referral's new file is not the caller's customer
            joins = self.workflows[linked["workflow"]].party if linked is not None else None
            if linked is not None and not (linked is spawned_from and joins is not None
                                           and joins.workflow == wf.key):
                current = tx.case(linked["id"]) or linked   # a spawn's source: as just written
                back = {**current.get("links", {})}
                back[wf.key] = [*back.get(wf.key, []), case_id]
                tx.put_case({**current, "links": back})
        if party is not None:
            self.parties.link(tx, party, wf, case_id, user, stamp)
        self.joins.write(tx, wf, case_id, joined, user, stamp)
        if turn is not None:
            assert wf.rota is not None
            self.rotas.record(tx, wf.rota, turn, case_id, user, now)
        self.trail.audit(tx, stamp, user, case_id, wf, "create", None, wf.initial,
                         self.trail.changes(wf, {}, stored), [], warnings=warnings,
                         note=note or (f"由 {source} 创建" if source else None))
        if mark is not None:
            tx.set_mark(mark[0], mark[1], {"case": case_id})
        return FireResult(case_id, wf.initial, wf.states[wf.initial].label,
                          party=party.record["id"] if party is not None else None)

    def fire(self, case_id: str, trigger: str, actor: str,
             data: Mapping[str, Any] | None = None, files_from: Path | None = None,
             mark: tuple[str, str] | None = None, *, at: datetime | None = None,
             prepared: Prepared | None = None) -> FireResult:
        """Fire ``trigger`` on a case as ``actor``; all-or-nothing. Relative attachment paths
        in ``data`` are taken from ``files_from`` (default: the current folder). ``mark``
        (batch id, item) is recorded in the same unit of work (see :mod:`engine.batch`).
        ``at`` fixes the time the step happens at (default: the clock when it runs);
        ``prepared`` brings renders and conversions made ahead (a plan's, :meth:`commit`)."""
        step = self._step(Fire(case_id, trigger, data, mark, at), self.config.user(actor),
                          files_from)
        return self.units.run(step, at=at, prepared=prepared)

    # --- plans: a fire rendered and converted ahead, committed later --------------------------

    def plan(self, fires: Sequence[Fire], actor: str, *, after: Sequence[Plan] = ()
             ) -> list[Plan]:
        """Render ``fires`` ahead, in this order, after the plans ``after`` (made and not
        committed yet): each is rehearsed up to its first conversion on one unit of work that
        is never committed (the store's shared lock), so each renders the numbers it will get
        if they are committed in this order. Nothing is converted here
        (:meth:`convert_ahead`, no lock held). A fire that would be refused plans nothing:
        its commit refuses it and says why. Times not given are fixed now (the clock), so the
        commit renders what the plan did. Plans made together, or after others, share what
        they carry (renders, conversions)."""
        user = self.config.user(actor)
        prepared = after[-1].prepared if after else self.units.prepared()
        fixed = [f if f.at is not None else dataclasses.replace(f, at=self.clock())
                 for f in fires]
        found = self.units.rehearse([(self._step(f, user, None), f.at)
                                     for f in [*(p.fire for p in after), *fixed]], prepared)
        return [Plan(f, actor, docs, prepared) for f, docs in zip(fixed, found[len(after):])]

    def convert_ahead(self, plans: Sequence[Plan]) -> int:
        """Convert the documents ``plans`` will issue, with no lock held (a batch does it in
        the background while earlier plans commit); how many. A conversion error is raised:
        the commits then convert their documents themselves, and report it."""
        converted = 0
        for prepared in {id(p.prepared): p.prepared for p in plans}.values():
            converted += self.units.convert_ahead(
                prepared, [d for p in plans if p.prepared is prepared for d in p.documents])
        return converted

    def commit(self, plan: Plan) -> FireResult:
        """Fire a planned fire for real (:meth:`fire`, all-or-nothing, under the store's lock),
        with the plan's renders and conversions; if the store moved since the plan (another
        process took a number), what differs is rendered again and converted with no lock
        held. ``plan.converted_late`` says how many documents had to be converted so."""
        f, late = plan.fire, plan.prepared.converted_late
        try:
            return self.fire(f.case_id, f.trigger, plan.actor, f.data, mark=f.mark, at=f.at,
                             prepared=plan.prepared)
        finally:
            plan.converted_late = plan.prepared.converted_late - late

    def _step(self, f: Fire, user: User, files_from: Path | None) -> Callable[[Tx, Work], Any]:
        """The unit of work of fire ``f`` (with its mark, recorded in the same unit)."""
        def step(tx: Tx, work: Work) -> FireResult:
            result = self.fire_in(tx, work, f.case_id, f.trigger, user, f.data, files_from)
            if f.mark is not None:
                tx.set_mark(f.mark[0], f.mark[1], {
                    "case": f.case_id, "fired": f.trigger,
                    "documents": [d.number for d in result.documents]})
            return result

        return step

    # --- the body of a fire --------------------------------------------------------------------

    def fire_in(self, tx: Tx, work: Work, case_id: str, trigger: str, user: User,
                data: Mapping[str, Any] | None, files_from: Path | None,
                timed: bool = False) -> FireResult:
        """The body of :meth:`fire` inside a unit of work (a rehearsal or the real one).
        ``timed``: a timer of the workflow fires it (as ``timers.SYSTEM``): the workflow file
        is the authority, so roles and separation of duties do not apply; conditions and
        checks do."""
        reach = self.guard.everything(user.login) if timed \
            else self.guard.reach(user.login)
        record = self.guard.visible_case(tx, case_id, reach)
        wf = self.definitions.workflow(record["workflow"])
        candidates = wf.candidates(trigger, record["state"])
        label = candidates[0].label
        if not timed:
            self.guard.authorize(user, tuple(r for t in candidates for r in t.roles),
                                 f"执行「{label}」（{trigger}）")
        warnings: list[str] = []
        data, chosen = self.lookups.chosen(wf, data or {})
        for name, lookup in wf.lookups.items():
            if lookup.workflow in chosen and not candidates[0].may_edit(name):
                raise InputError(f"「{label}」不能修改{wf.fields[name].label}（{name}）",
                                 field=lookup.workflow)
        patch = self.definitions.normalize(wf, data, record["data"],
                                           edits=candidates[0].edits, transition=candidates[0],
                                           warnings=warnings, stored_files=work.new_files,
                                           files_from=files_from,
                                           vouched=self.joins.vouches(tx, wf))
        new_data = {**record["data"], **patch}
        refs = self.lookups.apply(tx, wf, new_data, record.get("refs", {}), user, ids=chosen,
                                  given=patch, may_edit=candidates[0].may_edit)
        before = record.get("refs", {})
        self.lookups.check_choices(tx, wf, new_data, refs, changed=[
            *patch, *chosen, *(k for k in {*refs, *before} if refs.get(k) != before.get(k))])
        self._check_unique(tx, wf, new_data, record)
        values, totals = self.definitions.evaluate(wf, new_data, work.now.date())
        facts = self.definitions.names(tx, values, totals, work.now,
                                       {**record.get("links", {}), **refs})
        f = _Firing(tx, work, user, wf, record, new_data, warnings, values, totals, facts, timed,
                    refs=refs)
        new_state = self._move(wf, record["state"], trigger, label, facts,
                               before=lambda t: self._before_fire(f, t),
                               after=lambda t, state: self._after_fire(f, t, state))
        return FireResult(case_id, new_state, wf.states[new_state].label, f.issued,
                          spawned=f.spawned)

    def _before_fire(self, f: _Firing, t: TransitionSpec) -> None:
        """On route ``t``, before the move: its roles and the separation of duties; then the
        stamps, assignments, counters and the actor's name it writes; then its required
        fields and checks on the result."""
        wf, user, now, new_data = f.wf, f.user, f.work.now, f.data
        if not f.timed:
            self.guard.authorize(user, t.roles, f"执行「{t.label}」（{t.trigger}）")
            self._separate_duties(f.tx, wf, t, f.record, user)
        automatic_writes(wf, t, new_data, user, now, f.facts)
        if t.stamps or t.stamps_once or t.stamps_when or t.assign or t.increment or t.record_actor:
            f.values, f.totals = self.definitions.evaluate(wf, new_data, now.date())
            if assign_computed(wf, t.assign, new_data, f.totals):
                f.values, f.totals = self.definitions.evaluate(wf, new_data, now.date())
            f.facts = self.definitions.names(f.tx, f.values, f.totals, now,
                                             {**f.record.get("links", {}), **f.refs})
        self.definitions.require(wf, new_data, t.requires, t.label)
        self.definitions.run_checks(wf, t.checks, f.facts)

    def _after_fire(self, f: _Firing, t: TransitionSpec, new_state: str) -> None:
        """After the move to ``new_state``: exclusive resources, the documents, voids, the
        case and its audit event, then the linked cases' cascade."""
        tx, work, wf, user, new_data = f.tx, f.work, f.wf, f.user, f.data
        case_id = f.record["id"]
        if t.append or t.clear:
            append_rows(wf, t, f.record["state"], new_data, user, work.now, f.record["data"])
        self._check_exclusive(tx, wf, case_id, new_state, new_data)
        stamp = work.now.isoformat()
        owners = access.owners(f.record)
        if wf.assignee:
            old, new = f.record["data"].get(wf.assignee), new_data.get(wf.assignee)
            if old and old != new:      # released or handed on: no longer the old one's
                owners = [o for o in owners if o != old]
            if new and new not in owners:
                owners.append(new)      # the case was handed to (or taken by) a consultant
        before, record = f.record, {**f.record, "state": new_state, "data": new_data,
                                    "updated_at": stamp, "updated_by": user.login,
                                    "owners": owners}
        record.pop("refs", None)
        if f.refs:
            record["refs"] = f.refs
        changed = {k for k in wf.fields if before["data"].get(k) != new_data.get(k)}
        joined = self.joins.resolve(tx, wf, new_data, before.get("links", {}), f.facts, changed)
        if joined.added or joined.dropped:
            record["links"] = joined.links
            self.joins.write(tx, wf, case_id, joined, user, stamp)
        cascades = [*self._cascades(tx, wf, t, record, f),
                    *((i, trigger, {}) for i, trigger in joined.leave)]
        f.issued = self.issuing.issue(tx, work, wf, t, record, f.values, f.totals, user,
                                      new_state)
        if t.takes_signed is not None and self.countersigning is not None:
            self.countersigning.take(tx, work, wf, t.takes_signed, record,
                                     {k: v for k, v in new_data.items()
                                      if v != before["data"].get(k)}, user)
        if t.void_documents:
            self.control.void_documents(tx, work, record["id"], user, f"{wf.title}{t.label}")
        tx.put_case(record)
        if t.spawn:        # before the step's event, which says what was not made, and why
            self._spawn(tx, work, wf, t, record, f)
        self.trail.audit(tx, stamp, user, case_id, wf, t.trigger, before["state"], new_state,
                         self.trail.changes(wf, before["data"], new_data),
                         [d.number for d in f.issued], warnings=f.warnings)
        for linked_id, linked_trigger, given in cascades:
            self._cascade(tx, work, linked_id, linked_trigger, user,
                          note=f"由 {case_id} {t.label}联动", given=given)

    def _spawn(self, tx: Tx, work: Work, wf: Workflow, t: TransitionSpec,
               record: Mapping[str, Any], f: _Firing) -> None:
        """The cases step ``t`` makes (``spawn``), from the case as the step left it; one a
        workflow already has (the same mobile) is said in the step's result, not made."""
        values, totals = self.definitions.evaluate(wf, record["data"], work.now.date())
        names = {**self.definitions.names(tx, values, totals, work.now, related(record)),
                 "case_id": record["id"]}
        for spawn in t.spawn:
            if spawn.when is not None and not spawn.when(names):
                continue
            other = self.definitions.workflow(spawn.workflow)
            for row in (values.get(spawn.each) or []) if spawn.each else [None]:
                scope = names if row is None else {**names, "row": row}
                data = {name: _as_input(expression(scope))
                        for name, expression in spawn.data.items()}
                made = self.create_in(tx, other, {k: v for k, v in data.items() if v is not None},
                                      f.user, work.new_files,
                                      note=f"由 {record['id']} {t.label}生成",
                                      spawned_from=record,
                                      taken=f.warnings)
                if made is not None:
                    f.spawned.append(made.id)

    def _cascades(self, tx: Tx, wf: Workflow, t: TransitionSpec, record: Mapping[str, Any],
                  f: _Firing) -> list[tuple[str, str, dict[str, Any]]]:
        """The linked steps ``t`` fires (``fire_linked``), with the data each is given. A
        conditional one (``fire_linked_when``) is left out when its expression does not hold,
        or, with a warning in this step's event, on a linked case whose state does not take
        it (a customer who already ordered: no follow-up to record)."""
        out = []
        for linked_wf, linked_trigger in t.fire_linked.items():
            when = t.fire_linked_when.get(linked_wf)
            if when is not None and not when(f.facts):
                continue
            other = self.definitions.workflow(linked_wf)
            given = {target: as_field(other, target, _given(wf, origin, f.data, f.totals))
                     for target, origin in t.fire_linked_data.get(linked_wf, {}).items()}
            for linked_id in record.get("links", {}).get(linked_wf, []):
                # only a conditional cascade looks at the linked case here (the cascade loads it)
                linked = self._load_case(tx, linked_id) if when is not None else None
                if linked is not None and not any(x.trigger == linked_trigger
                                                  for x in other.available(linked["state"])):
                    label = next(x.label for x in other.transitions if x.trigger == linked_trigger)
                    f.warnings.append(f"关联的{other.title} {linked_id} 处于「"
                                      f"{other.states[linked['state']].label}」，未{label}")
                    continue
                out.append((linked_id, linked_trigger, given))
        return out

    def _move(self, wf: Workflow, state: str, trigger: str, label: str,
              facts: Mapping[str, Any], before: Callable[[TransitionSpec], None],
              after: Callable[[TransitionSpec, str], None]) -> str:
        """Move a case from ``state`` by ``trigger`` on the workflow's machine, with ``before``
        and ``after`` on either side of the move; the new state. Refused with every reason
        when no route's conditions hold."""
        model = _Move(facts, before, after)
        with wf.attached(model, state):
            if not model.trigger(trigger):  # type: ignore[attr-defined]
                raise StateError(f"不能{label}：{'；'.join(dict.fromkeys(model.refusals))}",
                                 trigger=trigger)
            return model.state  # type: ignore[attr-defined]

    # --- steps -------------------------------------------------------------------------------

    def _carry_over(self, tx: Tx, wf: Workflow, origin: dict[str, Any]
                    ) -> tuple[dict[str, Any], dict[str, list[str]]]:
        """The fields a new case takes from its source case, and its links."""
        cf = wf.create_from.get(origin["workflow"])
        if cf is None:
            allowed = "、".join(self.workflows[k].title for k in wf.create_from) or "（无）"
            raise InputError(f"{wf.title}不能从{self.workflows[origin['workflow']].title} "
                             f"{origin['id']} 创建（可作为来源的：{allowed}）", field="source")
        source_wf = self.workflows[origin["workflow"]]
        if origin["state"] not in cf.states:
            need = "、".join(self.definitions.state_labels(origin["workflow"], cf.states))
            raise StateError(f"{source_wf.title} {origin['id']} 处于「"
                             f"{source_wf.states[origin['state']].label}」，只有「{need}」的才能"
                             f"创建{wf.title}", case=origin["id"], state=origin["state"])
        for other_id in origin.get("links", {}).get(wf.key, []):
            other = tx.case(other_id)
            if other and not wf.states[other["state"]].final:
                raise StateError(f"{source_wf.title} {origin['id']} 已有进行中的{wf.title} {other_id}"
                                 f"（{wf.states[other['state']].label}）；请先处理或取消它",
                                 case=origin["id"])
        base = {target: copy.deepcopy(origin["data"].get(src)) for target, src in cf.fields.items()
                if origin["data"].get(src) not in (None, [], "")}
        return base, {origin["workflow"]: [origin["id"]]}

    def _separate_duties(self, tx: Tx, wf: Workflow, t: TransitionSpec, record: Mapping[str, Any],
                         user: User) -> None:
        """Nobody approves what they drafted or submitted (``not_actor_of``): the most recent
        event of each named trigger (or the creation) must be someone else's."""
        if not t.not_actor_of:
            return
        history = tx.case_log("audit", record["id"])
        done = []
        for trigger in t.not_actor_of:
            latest = [e for e in history if e["trigger"] == trigger]
            if latest and latest[-1]["actor"] == user.login:
                done.append(trigger)
        if done:
            what = "、".join(dict.fromkeys(
                "创建" if d == "create" else next(x.label for x in wf.transitions if x.trigger == d)
                for d in done))
            raise PermissionDenied(f"职责分离：{user.login}（{user.name}）已{what}此{wf.title}"
                                   f" {record['id']}，不能再{t.label}；请由另一位有权限的人员处理",
                                   user=user.login, rule="not_actor_of")

    def _cascade(self, tx: Tx, work: Work, case_id: str, trigger: str, user: User,
                 note: str, given: Mapping[str, Any] | None = None) -> None:
        """Fire ``trigger`` on a linked case as a consequence (``fire_linked``): same store
        write, no documents, the data ``given`` (``fire_linked_data``, checked as that
        workflow's input); the linked workflow's conditions and checks still apply."""
        record = self._load_case(tx, case_id)
        wf = self.definitions.workflow(record["workflow"])
        try:
            candidates = wf.candidates(trigger, record["state"])
        except StateError as err:
            raise StateError(f"关联的{wf.title} {case_id}：{err.message}", case=case_id) from None
        now = work.now
        data = copy.deepcopy(record["data"])
        if given:
            try:
                data.update(self.definitions.normalize(wf, given, record["data"],
                                                       edits=candidates[0].edits,
                                                       transition=candidates[0]))
            except InputError as err:
                raise InputError(f"关联的{wf.title} {case_id}：{err.message}",
                                 case=case_id) from None
        values, totals = self.definitions.evaluate(wf, data, now.date())
        facts = self.definitions.names(tx, values, totals, now, related(record))

        def before(t: TransitionSpec) -> None:
            self.definitions.require(wf, data, t.requires,
                                     f"关联的{wf.title} {case_id} {t.label}")
            self.definitions.run_checks(wf, t.checks, facts)
            automatic_writes(wf, t, data, user, now, facts)   # no input: stamps, counters …
            if any(origin not in wf.fields for origin in t.assign.values()):
                assign_computed(wf, t.assign, data,
                                self.definitions.evaluate(wf, data, now.date())[1])

        def after(t: TransitionSpec, new_state: str) -> None:
            append_rows(wf, t, record["state"], data, user, now, record["data"])   # … rows
            stamp = now.isoformat()
            tx.put_case({**record, "state": new_state, "data": data, "updated_at": stamp,
                         "updated_by": user.login})
            if t.void_documents:
                self.control.void_documents(tx, work, case_id, user, f"{wf.title}{t.label}")
            self.trail.audit(tx, stamp, user, case_id, wf, trigger, record["state"], new_state,
                             self.trail.changes(wf, record["data"], data), [], note=note)

        self._move(wf, record["state"], trigger, candidates[0].label, facts, before, after)

    def _check_unique(self, tx: Tx, wf: Workflow, data: Mapping[str, Any],
                      record: Mapping[str, Any] | None) -> None:
        """Refuse a value of a ``unique = true`` field that another case of ``wf`` holds (a
        VIN registered twice), naming that case; ``record``: the case being changed (its
        fields are checked only when they change)."""
        for name in wf.unique_fields:
            if record is not None and record["data"].get(name) == data.get(name):
                continue
            held = self.parties.taken(tx, wf, data, name,
                                      other_than=record["id"] if record is not None else None)
            if held is not None:
                raise InputError(f"{held}；同一{wf.fields[name].label}只能登记一次", field=name)

    def _check_exclusive(self, tx: Tx, wf: Workflow, case_id: str | None, state: str,
                         data: Mapping[str, Any]) -> None:
        """Refuse when another case holds the same resource (``[[exclusive]]``), naming it."""
        for rule in wf.exclusive:
            if state not in rule.states:
                continue
            mine = {r: data[r] for r in rule.resources if data.get(r) not in (None, "")}
            if not mine:
                continue
            for other in tx.held_cases(wf.key):
                if other["id"] == case_id or other["state"] not in rule.states:
                    continue
                fields = other.get("fields", {})
                shared = [r for r, v in mine.items() if fields.get(r) == v]
                if not shared:
                    continue
                if rule.start is not None:
                    a0, a1 = data.get(rule.start), data.get(rule.end)
                    b0, b1 = fields.get(rule.start), fields.get(rule.end)
                    if None in (a0, a1, b0, b1) or not (a0 < b1 and b0 < a1):
                        continue
                    when = f"，{_span(b0, b1)}"
                else:
                    when = ""
                what = wf.fields[shared[0]].label
                summary = " ".join(str(fields[k]) for k in wf.summary[:1] if fields.get(k))
                raise StateError(
                    f"{rule.label}冲突：{what} {mine[shared[0]]} 已被 {other['id']}"
                    f"（{summary + '，' if summary else ''}{wf.states[other['state']].label}{when}）占用",
                    conflict=other["id"], rule=rule.label)

    def _load_case(self, tx: Tx, case_id: str) -> dict[str, Any]:
        record = tx.case(case_id)
        if record is None:
            raise NotFoundError(f"找不到案件 \"{case_id}\"（可用 dealerdocs list 查看）", case=case_id)
        return record


def automatic_writes(wf: Workflow, t: TransitionSpec, data: dict[str, Any], user: User,
                     now: datetime, names: Mapping[str, Any]) -> None:
    """What a transition writes by itself: its stamps (``stamps_once`` only while empty,
    ``stamps_when`` only while empty and when its expression holds on ``names``), copies
    (``assign``), counters (``increment``) and the actor's name (``record_actor``)."""
    when = [n for n, holds in t.stamps_when.items() if data.get(n) is None and holds(names)]
    for name in [*t.stamps, *(n for n in t.stamps_once if data.get(n) is None), *when]:
        data[name] = (now.date().isoformat() if wf.fields[name].type == "date"
                      else now.replace(tzinfo=None).isoformat(timespec="minutes"))
    for target, origin in t.assign.items():
        if origin in wf.fields:       # a computed origin: assign_computed, once evaluated
            data[target] = copy.deepcopy(data.get(origin))
    for name in t.increment:
        data[name] = (data.get(name) or 0) + 1
    for name in t.record_actor:
        data[name] = user.login


def _as_input(value: Any) -> Any:
    """A typed value (an expression's result) as a field's input: a user as their login, a
    date as ISO text, an amount as exact text; empty text as empty."""
    if isinstance(value, Mapping) and "login" in value:
        return value["login"]
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="minutes")
    if value == "":
        return None
    return context_value(value)


def assign_computed(wf: Workflow, assign: Mapping[str, str], data: dict[str, Any],
                    totals: Mapping[str, Any], only_empty: bool = False) -> bool:
    """The ``assign`` entries whose origin is a ``[computed]`` value, evaluated on the data
    after the step's stamps and copies (``totals``), written in the target field's stored form
    (``only_empty``: only into empty fields, as at creation). Whether any was written."""
    wrote = False
    for target, origin in assign.items():
        if origin in wf.fields or (only_empty and data.get(target) is not None):
            continue
        data[target] = from_python(wf.fields[target], totals.get(origin))
        wrote = True
    return wrote


def _given(wf: Workflow, origin: str, data: Mapping[str, Any], totals: Mapping[str, Any]) -> Any:
    """What a cascade gives the linked step from ``origin``: a field as stored, or a computed
    value (as the linked step's input reads it)."""
    if origin in wf.fields:
        return copy.deepcopy(data.get(origin))
    return context_value(totals.get(origin))


def append_rows(wf: Workflow, t: TransitionSpec, state: str, data: dict[str, Any], user: User,
                now: datetime, before: Mapping[str, Any] | None = None) -> None:
    """A transition's ``append``: one row added to each table named, from the fields (and
    ``$actor``, ``$now``, ``$today``, ``$state`` (the state left), ``$dest`` (the state
    reached), ``$before.<field>`` (its value in ``before``, the data the step started from:
    the price a reprice replaced)); then its ``clear`` fields are emptied, so the next entry
    starts blank."""
    special = {"$actor": user.login, "$today": now.date().isoformat(),
               "$now": now.replace(tzinfo=None).isoformat(timespec="minutes"),
               "$state": wf.states[state].label, "$dest": wf.states[t.dest].label,
               **{f"{BEFORE}{name}": (before or {}).get(name) for name in wf.fields}}
    for table, columns in t.append.items():
        row = {column: copy.deepcopy(special[origin] if origin in special else data.get(origin))
               for column, origin in columns.items()}
        data[table] = [*(data.get(table) or []), {k: v for k, v in row.items() if v is not None}]
    for name in t.clear:
        data[name] = None


def _span(start: str, end: str) -> str:
    """2026-11-27T10:00 – 10:30 (same day) or full ISO on both ends."""
    if start[:10] == end[:10]:
        return f"{start[:10]} {start[11:16]}–{end[11:16]}"
    return f"{start[:16].replace('T', ' ')}–{end[:16].replace('T', ' ')}"
