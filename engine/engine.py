"""The Engine: the one API the CLI, the web app and a batch call — a façade over services.

The work is done by services in :mod:`engine.services`, each given its collaborators when it is
made (the store, the archive of issued files, the press that renders and converts, the clock, and the other
services it needs, through their public methods): the case reads (``reads``), the transition
pipeline (``pipeline``), issuing (``issuing``), document control (``control``), registers and
reports (``registers``), timed transitions (``timed``), personal data (``personal``) and the
store's integrity (``integrity``), on top of the definitions (``definitions``), access
(``guard``), the logs (``trail``) and units of work (``units``); finding customers
(``search``), a customer's timeline (``timelines``) and imports from spreadsheets
(``imports``, which make their cases through the pipeline). This class makes them, each after
those it uses, and offers their operations under one name each.

A transition travels like this (``fire``): rehearse it on a consistent view of the store
(shared lock, never committed) — load the case if the actor may see it → find the transition
from the current state → check the actor's roles → normalise the submitted data → the
workflow's ``transitions`` machine takes the first route whose conditions hold → before the
move: the route's roles, the separation of duties, required fields and checks (pure) → the
move → after it, for each document: the next number, render — until it asks for a
conversion, which is made with no lock held; then run it for real under the exclusive lock,
each conversion served from what was made → finish, archive the files → one store write with
the new state, register entries, counters and the audit event (personal values as keyed
hashes). Anything failing before that write leaves the store as it was and removes the files
this attempt wrote, so numbers stay gap-free among issued documents; after it, nothing is
undone.

Reads are made as a user too: a case they may not see is not found, and identity and mobile
numbers are masked unless revealed (``access``, ``privacy``).
"""
from __future__ import annotations

import logging
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from . import case_migrations, privacy
from . import seal as sealing
from .access import Action, Reach
from .archive import Attachments, open_archive
from .config import GROUP, Config, load_config
from .errors import ConfigError, StorageError
from .convert import Converter
from .previews import PagePreviews
from .services.countersigning import Countersigning
from .services.cases import Cases
from .services.control import DocumentControl
from .services.definitions import Definitions
from .services.guard import Guard
from .services.imports import ImportReport, Imports
from .services.integrity import Integrity
from .services.issuing import IssuedDocument, Issuing
from .services.listing import Listing
from .services.joins import Joins
from .services.lookups import Lookups
from .services.personal import PersonalData
from .services.parties import Parties
from .services.pipeline import Fire, FireResult, Pipeline, Plan
from .services.press import Press
from .services.rotas import Rotas
from .services.search import Search
from .services.registers import REPORT_FORMATS, Registers
from .services.timed import TimedTransitions
from .services.timeline import Timeline
from .services.trail import Trail
from .services.units import Units
from .services.verification import Comparison, PublicFacts, Verification
from .sessions import Sessions
from .sheets import Sheet
from .store import LEGACY_FILE, AnyStore, Upgrade, open_store, store_view
from .workflow import Workflow, load_workflows

if TYPE_CHECKING:  # pragma: no cover
    from . import qr
    from .render import Renderer
    from .warm import WarmConverter

log = logging.getLogger(__name__)

__all__ = ["Engine", "Fire", "FireResult", "IssuedDocument", "Plan", "local_now"]


def local_now(tz: tzinfo | None = None) -> datetime:
    """Now, to the second, in ``tz`` (the machine's zone if None)."""
    return datetime.now(tz).astimezone(tz).replace(microsecond=0)


class Engine:
    """Cases, transitions, documents and the register of one dealership (one config.toml)."""

    def __init__(self, config: Config, *, converter: Converter | None = None,
                 renderer: Renderer | None = None,
                 clock: Callable[[], datetime] | None = None,
                 shared: AnyStore | None = None) -> None:
        """``config``: one store's (``Config.for_store``; a group's config as read from the
        file is its read-only group view). ``shared``: the group's store, already open, when
        the engines of several of its stores share one connection pool (closed by its
        opener, not here)."""
        if config.stores and not config.current_store:
            config = config.for_store(GROUP)
        self.config = config
        self.workflows: dict[str, Workflow] = load_workflows(config)
        _check_document_kinds(config, self.workflows)
        self.clock = clock or (lambda: local_now(config.tz))
        self.press = Press(config, converter=converter, renderer=renderer)
        self.attachments = Attachments(config.store_dir / "attachments")
        self.previews = PagePreviews(config.store_dir / "cache" / "previews")
        self.key = privacy.PersonalKey(config.store_dir / "keys" / "personal.key")
        # what needs no store: the definitions, the logs' writers, a case's listing
        self.definitions = Definitions(config, self.workflows, self.attachments, self.clock)
        self.trail = Trail(self.workflows, self.key)
        listing = Listing(self.workflows, self.definitions, self.key)
        # the store of every store of a group (migrations, verify, copies) and this store's
        # view of it, which the services read and write through (engine.store.scoped)
        self._owns_store = shared is None
        self._branches: dict[str, Engine] = {}
        self.whole_store = shared or open_store(
            config, listing=listing, upgrade=Upgrade(owners=listing.owners,
                                                     redact=self.trail.redact,
                                                     private=(config.outbox_dir,)))
        self.store = store_view(self.whole_store, config)
        self.sessions = Sessions(self.store, self.clock)  # sign-in sessions and API tokens
        # issued files: the outbox, or the database (named by path: the group's, not a store's)
        self.archive = open_archive(config, self.whole_store)
        # the services, each after those it uses
        self.guard = Guard(config, self.workflows)
        self.units = Units(self.store, self.press, self.clock)
        self.control = DocumentControl(config, self.store, self.archive, self.previews,
                                       self.guard, self.trail, self.units, self.press,
                                       self.clock)
        self.personal = PersonalData(config, self.workflows, self.store, self.archive,
                                     self.previews, self.guard, self.definitions, self.trail,
                                     self.clock)
        self.registers = Registers(config, self.workflows, self.store, self.guard,
                                   self.definitions, self.personal, self.press, self.clock)
        self.issuing = Issuing(config, self.workflows, self.store, self.archive, self.guard,
                               self.definitions, self.trail, self.control, self.press,
                               self.clock)
        self.reads = Cases(config, self.workflows, self.store, self.guard, self.definitions,
                           self.control, self.registers, self.personal, self.clock)
        self.search = Search(config, self.workflows, self.store, self.guard, self.definitions,
                             self.key)
        self.timelines = Timeline(config, self.workflows, self.store, self.guard,
                                  self.definitions)
        self.parties = Parties(config, self.workflows, self.guard, self.definitions,
                               self.trail, self.key)
        self.lookups = Lookups(self.workflows, self.store, self.definitions, self.guard)
        self.pipeline = Pipeline(config, self.workflows, self.store, self.guard,
                                 self.definitions, self.trail, self.issuing, self.control,
                                 self.units, self.parties, Rotas(self.workflows, self.trail),
                                 self.clock, self.lookups,
                                 Joins(self.workflows, self.definitions, self.parties, self.trail),
                                 Countersigning(config, self.archive, self.attachments,
                                                self.trail))
        self.imports = Imports(config, self.workflows, self.store, self.guard, self.definitions,
                               self.parties, self.pipeline)
        self.timed = TimedTransitions(self.workflows, self.store, self.reads, self.definitions,
                                      self.pipeline, self.units, self.clock)
        self.integrity = Integrity(config, self.workflows, self.whole_store, self.archive,
                                   self.attachments, self.clock)
        # what anybody holding a paper may learn of it (no actor; every store of a group)
        self.verification = Verification(config, self.whole_store)
        try:
            whole = self.whole_store   # migrations concern every store of a group
            if (config.store_dir / LEGACY_FILE).exists():
                with whole.snapshot():   # an old one-file store is brought up first
                    pass
            # a workflow file changed since the store last saw it: bring its cases along
            case_migrations.bring_up_to_date(whole, self.workflows)
            self.parties.link_existing(whole, self.clock())   # once: old cases' customers
            case_migrations.build_due_index(whole, self.workflows)   # once: old stores
            case_migrations.build_search_index(whole, self.workflows)   # once: old stores
        except StorageError:
            pass  # a store that cannot be opened says so on first use (recover must still run)

    @classmethod
    def from_config_file(cls, path: str | Path, **kwargs: Any) -> "Engine":
        return cls(load_config(path), **kwargs)

    # --- rendering and conversion (made on first use) ----------------------------------------

    @property
    def renderer(self) -> "Renderer":
        """docxtpl and its stack load on first use: commands that only read start fast."""
        return self.press.renderer

    @property
    def converter(self) -> Converter:
        return self.press.converter

    def warm_converter(self, instances: int | None = None) -> "WarmConverter":
        """The pool of warm LibreOffice instances of this store (running or not)."""
        return self.press.warm_converter(instances)

    def branch(self, code: str) -> "Engine":
        """The engine of store ``code`` of this engine's group (this engine itself if it is
        that store's), made on first use and sharing this one's store connection, converter
        and clock; closed with this one."""
        if code == self.config.current_store:
            return self
        found = self._branches.get(code)
        if found is None:
            found = Engine(self.config.for_store(code), converter=self.converter,
                           clock=self.clock, shared=self.whole_store)
            self._branches[code] = found
        return found

    def close(self) -> None:
        for other in self._branches.values():
            other.close()
        self._branches.clear()
        self.press.close()
        if self._owns_store:
            self.whole_store.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def personal_key(self) -> bytes:
        """The key of the keyed hashes that stand for personal values in the audit trail and
        the register log (``<store>/keys/personal.key``, made on first use)."""
        return self.key.get()

    # --- definitions and access ----------------------------------------------------------------

    def workflow(self, key: str) -> Workflow:
        return self.definitions.workflow(key)

    def reach(self, actor: str) -> Reach:
        """What ``actor`` sees and may do besides workflow steps (``[access]`` in config.toml)."""
        return self.guard.reach(actor)

    def rule_names(self, wf: Workflow, case: Mapping[str, Any]) -> dict[str, Any]:
        """What ``wf``'s rules see for ``case`` now (its data and totals, linked cases, the
        policy, the clock)."""
        return self.reads.rule_names(wf, case)

    # --- cases and documents, as a user sees them ----------------------------------------------

    def actions(self, case_id: str, actor: str) -> list[Action]:
        """Each step the case's state offers, with whether ``actor`` may take it now and why
        not (``Action.allowed``, ``refused``, ``blocked``; :meth:`Cases.actions`)."""
        return self.reads.actions(case_id, actor)

    def case(self, case_id: str, *, actor: str, reveal: bool = False) -> dict[str, Any]:
        """The case with its data, totals, documents and history (:meth:`Cases.case`)."""
        return self.reads.case(case_id, actor=actor, reveal=reveal)

    def cases(self, workflow: str | None = None, state: str | None = None,
              opened_from: date | None = None, opened_to: date | None = None,
              open_only: bool = False, *, actor: str) -> list[dict[str, Any]]:
        """The listings of the cases ``actor`` sees (:meth:`Cases.cases`)."""
        return self.reads.cases(workflow, state, opened_from, opened_to, open_only, actor=actor)

    def find(self, query: str, *, actor: str) -> list[dict[str, Any]]:
        """The customers' files (and other cases) a name, a mobile or ID number or a plate
        finds among the cases ``actor`` sees; masked (:meth:`Search.find`)."""
        return self.search.find(query, actor=actor)

    def lookup(self, workflow: str, query: str, *, actor: str) -> list[dict[str, Any]]:
        """The open cases of ``workflow`` (a catalogue a ``lookup`` field picks from) whose id
        or summary holds every word of ``query``, among those ``actor`` sees
        (:meth:`Lookups.find`)."""
        return self.lookups.find(workflow, query, actor=actor)

    def timeline(self, case_id: str, *, actor: str) -> list[dict[str, Any]]:
        """A case's life with the cases joined to it, newest first (:meth:`Timeline.timeline`)."""
        return self.timelines.timeline(case_id, actor=actor)

    def documents(self, case_id: str | None = None, status: str | None = None, *,
                  actor: str) -> list[dict[str, Any]]:
        """The issued documents ``actor`` sees (:meth:`Cases.documents`)."""
        return self.reads.documents(case_id, status, actor=actor)

    def document(self, number: str, *, actor: str) -> dict[str, Any]:
        """A document's life: entry, copies, events, versions (``DocumentControl.document``)."""
        return self.control.document(number, actor=actor)

    def document_file(self, number: str, which: str, *, actor: str) -> Path | None:
        """Where a document's ``pdf``, ``docx`` or ``stamped`` file lies, if ``actor`` sees it."""
        return self.control.document_file(number, which, actor=actor)

    def page_image(self, number: str, page: int = 1, *, actor: str) -> Path:
        """Page ``page`` of a document's PDF as a PNG, if ``actor`` sees it."""
        return self.control.page_image(number, page, actor=actor)

    def page_count(self, number: str, *, actor: str) -> int:
        """How many pages a document's PDF has, if ``actor`` sees it."""
        return self.control.page_count(number, actor=actor)

    def deadline_status(self, wf: Workflow, record: Mapping[str, Any], today: date | None = None
                        ) -> dict[str, Any] | None:
        """Days left or overdue of an open case (derived, never stored)."""
        return self.registers.deadline_status(wf, record, today)

    def due(self, within: int = 7, *, actor: str) -> list[dict[str, Any]]:
        """Open cases ``actor`` sees whose deadline is past or within ``within`` days."""
        return self.registers.due(within, actor=actor)

    def report(self, name: str, start: date | None = None, end: date | None = None,
               formats: tuple[str, ...] = REPORT_FORMATS, out_dir: Path | None = None, *,
               actor: str, reveal: bool = False) -> dict[str, Any]:
        """Export the register ``name`` for a period (:meth:`Registers.report`)."""
        return self.registers.report(name, start, end, formats, out_dir, actor=actor,
                                     reveal=reveal)

    # --- operations ------------------------------------------------------------------------------

    def create(self, workflow: str, data: Mapping[str, Any], actor: str,
               source: str | None = None, files_from: Path | None = None,
               mark: tuple[str, str] | None = None, customer: str | None = None
               ) -> FireResult:
        """Open a new case, optionally from a ``source`` case and for a ``customer`` (a case
        of the workflow's ``[party]``) (:meth:`Pipeline.create`)."""
        return self.pipeline.create(workflow, data, actor, source, files_from, mark, customer)

    def import_cases(self, workflow: str, sheet: Sheet, actor: str, *, dry_run: bool = False
                     ) -> ImportReport:
        """One new case per row of a spreadsheet (``sheets.read_xlsx``), all or none, with a
        report by row and column; ``workflow`` by key, plural or title (:meth:`Imports.run`)."""
        return self.imports.run(workflow, sheet, actor, dry_run=dry_run)

    def fire(self, case_id: str, trigger: str, actor: str,
             data: Mapping[str, Any] | None = None, files_from: Path | None = None,
             mark: tuple[str, str] | None = None, *, at: datetime | None = None
             ) -> FireResult:
        """Fire ``trigger`` on a case as ``actor``; all-or-nothing (:meth:`Pipeline.fire`)."""
        return self.pipeline.fire(case_id, trigger, actor, data, files_from, mark, at=at)

    def plan_fires(self, fires: Sequence[Fire], actor: str, *, after: Sequence[Plan] = ()
                   ) -> list[Plan]:
        """Render fires ahead, in order, after the plans ``after`` not committed yet; nothing
        is converted or committed (:meth:`Pipeline.plan`)."""
        return self.pipeline.plan(fires, actor, after=after)

    def convert_ahead(self, plans: Sequence[Plan]) -> int:
        """Convert what ``plans`` will issue, with no lock held (:meth:`Pipeline.convert_ahead`)."""
        return self.pipeline.convert_ahead(plans)

    def plan_fire(self, case_id: str, trigger: str, actor: str,
                  data: Mapping[str, Any] | None = None, *,
                  mark: tuple[str, str] | None = None) -> Plan:
        """One fire rendered and converted ahead, with no lock held; :meth:`commit` it."""
        [plan] = self.pipeline.plan([Fire(case_id, trigger, data, mark)], actor)
        self.pipeline.convert_ahead([plan])
        return plan

    def commit(self, plan: Plan) -> FireResult:
        """Fire a planned fire for real, under the store's lock (:meth:`Pipeline.commit`)."""
        return self.pipeline.commit(plan)

    def tick(self) -> list[dict[str, Any]]:
        """Fire the timed transitions that are due (:meth:`TimedTransitions.tick`); in a
        group's view, those of each of its stores in turn, each entry naming its store."""
        if self.config.current_store != GROUP:
            return self.timed.tick()
        return [{**entry, "store": code} for code in self.config.stores
                for entry in self.branch(code).timed.tick()]

    def tick_alone(self) -> list[dict[str, Any]] | None:
        """:meth:`tick`, if this process becomes the store's ticker (``ticker()``: a lock
        nobody waits for, one per database or folder, so one per group); None if another
        process holds it and is ticking now. With several servers (or workers) ticking in the
        background, the timers are then worked through by one of them at a time; the timed
        steps' judging under the store's lock keeps it correct without, this keeps the others
        from doing the same work meanwhile."""
        with self.whole_store.ticker() as first:
            if not first:
                log.debug("another process is ticking %s now; this tick skipped",
                          self.whole_store.location)
                return None
            return self.tick()

    @property
    def failures(self) -> Any:
        """Where the web app's sign-in throttle counts failures: the store, which every
        process serving it (and every store of a group) shares (:mod:`engine.store.failures`)."""
        return self.whole_store

    def preview(self, target: str, actor: str, data: Mapping[str, Any] | None = None,
                trigger: str | None = None, out_dir: Path | None = None) -> dict[str, Any]:
        """The documents a transition would issue, stamped 草稿 (:meth:`Issuing.preview`)."""
        return self.issuing.preview(target, actor, data, trigger, out_dir)

    def context_for(self, workflow: str, data: Mapping[str, Any], kind: str, actor: str,
                    number: str = "（预览）") -> dict[str, Any]:
        """The template context a document would get for ``data`` (nothing stored)."""
        return self.issuing.context_for(workflow, data, kind, actor, number)

    def dispatch(self, number: str, *, to: str, dept: str, actor: str, copies: int = 1,
                 channel: str = "纸质", print_copies: bool = False) -> dict[str, Any]:
        """Record copies of a document handed out (:meth:`DocumentControl.dispatch`)."""
        return self.control.dispatch(number, to=to, dept=dept, actor=actor, copies=copies,
                                     channel=channel, print_copies=print_copies)

    def recall(self, number: str, *, reason: str, actor: str, copy: int | None = None,
               from_: str | None = None, keep: bool = False) -> dict[str, Any]:
        """Record copies coming back (:meth:`DocumentControl.recall`)."""
        return self.control.recall(number, reason=reason, actor=actor, copy=copy, from_=from_,
                                   keep=keep)

    def register_rows(self, start: date | None = None, end: date | None = None, *,
                      actor: str) -> list[list]:
        """文件发放回收记录表 rows (:meth:`DocumentControl.register_rows`)."""
        return self.control.register_rows(start, end, actor=actor)

    def register_export(self, fmt: str, out: Path, start: date | None = None,
                        end: date | None = None, *, actor: str) -> dict[str, Any]:
        """The register as .xlsx, .docx or .pdf (:meth:`DocumentControl.register_export`)."""
        return self.control.register_export(fmt, out, start, end, actor=actor)

    def reassign(self, case_id: str, to: str, *, actor: str, reason: str | None = None
                 ) -> dict[str, Any]:
        """Give a case and its linked cases to another consultant (``PersonalData.reassign``)."""
        return self.personal.reassign(case_id, to, actor=actor, reason=reason)

    def purge(self, *, actor: str, customer: str | None = None, expired: bool = False
              ) -> dict[str, Any]:
        """Erase a person's data, or every case past retention (:meth:`PersonalData.purge`)."""
        return self.personal.purge(actor=actor, customer=customer, expired=expired)

    # --- checking a paper (public: no actor) --------------------------------------------------

    def public_facts(self, payload: "qr.Payload") -> PublicFacts | None:
        """The public facts of the document a page's QR code names (any store of a group),
        or None if its number, version and short hash do not all agree with the register
        (:meth:`Verification.facts`)."""
        return self.verification.facts(payload)

    def compare_file(self, payload: "qr.Payload", sha256: str) -> Comparison | None:
        """A file, by its sha256, against the archived PDFs of that document; None as for
        :meth:`public_facts` (:meth:`Verification.compare`)."""
        return self.verification.compare(payload, sha256)

    def check_file(self, pdf: bytes) -> dict[str, Any]:
        """What ``dealerdocs check`` tells of a PDF: its QR payload (from the metadata or its
        pages), the document's public facts and whether the file is an archived one."""
        import hashlib

        from . import qr
        from .errors import InputError

        try:
            payload = qr.payload_in(pdf)
        except ValueError as err:
            raise InputError(f"无法读取这份 PDF：{err}", field="file") from err
        if payload is None:
            raise InputError("这份 PDF 中找不到本系统的验证二维码（元数据中也没有验证地址）："
                             "它不是由 dealerdocs 出具的文件，或已被其他程序重新生成", field="file")
        facts = self.verification.facts(payload)
        comparison = (self.verification.compare(payload, hashlib.sha256(pdf).hexdigest())
                      if facts else None)
        return {"number": payload.number, "version": payload.version, "h": payload.h,
                "matches_register": facts is not None,
                "facts": facts.to_dict() if facts else None,
                "file": comparison.to_dict() if comparison else None}

    # --- the store as a whole ------------------------------------------------------------------

    def verify(self, seals: str | Path | None = None) -> list[dict[str, Any]]:
        """Every problem of the store and outbox, empty if none (:meth:`Integrity.verify`)."""
        return self.integrity.verify(seals)

    def seal(self, out: str | Path | None = None) -> dict[str, Any]:
        """A seal line of the store now (:meth:`Integrity.seal`)."""
        return self.integrity.seal(out)

    def read_seals(self, path: str | Path) -> list[sealing.Line]:
        """The seal lines of a file, authenticated with the key (:meth:`Integrity.read_seals`)."""
        return self.integrity.read_seals(path)

    def document_count(self) -> int:
        """How many documents the store has issued (no one's data: for ``verify``)."""
        return self.integrity.document_count()

    def discard_journal(self) -> Path | None:
        """Move a store journal that cannot be replayed aside (``dealerdocs recover``); the
        unit of work it held is lost. Returns where it went, or None if there was none."""
        return self.whole_store.discard_journal()

    def copy_store(self, to: str, files: str | None = None,
                   outbox: str | Path | None = None) -> dict[str, Any]:
        """Copy the whole store into a new, empty one (``dealerdocs store copy --to``): a
        postgresql:// URL or a folder; the issued files too when the target keeps them
        elsewhere (``files``: "database" or "outbox", ``outbox``: a new folder for them);
        see :mod:`engine.services.store_copy`."""
        from .services.store_copy import copy_store, open_target, target_archive

        target = open_target(to, self.whole_store.listing, self.config.base_dir)
        try:
            into, setting, label = target_archive(self.config.files, target, files,
                                                  Path(outbox) if outbox else None,
                                                  self.config.store_dir / "cache")
            result = copy_store(self.whole_store, target, self.config.store_dir, self.archive, into,
                                label).as_dict()
            return {**result, "files_setting": setting}
        finally:
            target.close()

    def batch_marks(self, batch: str) -> dict[str, dict[str, Any]]:
        """What a batch (by its id) has done so far, item by item (see :mod:`engine.batch`)."""
        with self.store.snapshot() as tx:
            return tx.marks(batch)


def _check_document_kinds(config: Config, workflows: Mapping[str, Workflow]) -> None:
    """``[documents.<kind>]`` in config.toml names a document some workflow issues."""
    kinds = {k for wf in workflows.values() for k in wf.documents}
    for kind in config.documents:
        if kind not in kinds:
            raise ConfigError(f"config.toml: [documents.{kind}]：没有这种文件（工作流出具的文件有："
                              f"{'、'.join(sorted(kinds))}）", key=f"documents.{kind}")
        for wf in workflows.values():
            spec = wf.documents.get(kind)
            if spec is not None and config.documents[kind].sign and not spec.store_signature:
                raise ConfigError(f"config.toml: documents.{kind}.sign = true，但 {wf.source.name} 的 "
                                  f"[documents.{kind}] 没有 store_signature（本店签章的签名域；"
                                  f"模板须在签章处印有 signatures 中的定位文字）",
                                  key=f"documents.{kind}.sign")
