"""The Engine: the one API the CLI and the web app call.

A transition travels like this (``fire``): rehearse it on a consistent view of the store
(shared lock, never committed) — load the case if the actor may see it → find the transition
from the current state → check the actor's roles → normalise the submitted data → check
required fields, cross-field checks and conditions (pure) → move the shared ``transitions``
machine → for each document: the next number, render — until it asks for a conversion, which
is made with no lock held; then run it for real under the exclusive lock, each conversion
served from what was made → finish, write to the outbox → one store write with the new state,
register entries, counters and the audit event (personal values as keyed hashes). Anything
failing before that write leaves the store as it was and removes the files this attempt
wrote, so numbers stay gap-free among issued documents; after it, nothing is undone.

Reads are made as a user too: a case they may not see is not found, and identity and mobile
numbers are masked unless revealed (``access``, ``privacy``).
"""
from __future__ import annotations

import copy
import dataclasses
import os
import secrets
import tempfile
import difflib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from . import access, chain, checkpoints, definitions, privacy, rules, timers
from . import seal as sealing
from .access import Reach
from .archive import Attachments, Outbox, sha256, verify_files
from .config import Config, User, load_config
from .control import DocumentControl
from .registers import Registers
from .convert import Converter, SofficeConverter
from .errors import (ConfigError, DealerDocsError, InputError, IntegrityError, NotFoundError,
                     PermissionDenied, StateError, StorageError)
from .fields import is_empty, normalize, to_python
from .numbering import counter_key, format_number
from .prepared import ConversionNeeded, Prepared, ServingConverter
from .previews import PagePreviews
from .jsonview import context_value
from .dates import cn_date
from .files import atomic_write_bytes, create_once
from .sessions import Sessions
from .store import LOGS, Store, Tx, Upgrade
from .text import clean_line
from .workflow import DocumentSpec, TransitionSpec, Workflow, load_workflows

if TYPE_CHECKING:
    from .render import Renderer

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class IssuedDocument:
    number: str
    kind: str
    title: str
    version: int
    docx: Path
    pdf: Path
    docx_sha256: str
    pdf_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "kind": self.kind, "title": self.title,
                "version": self.version, "docx": str(self.docx), "pdf": str(self.pdf),
                "sha256": self.pdf_sha256, "docx_sha256": self.docx_sha256}


@dataclass(frozen=True)
class FireResult:
    id: str
    state: str
    state_label: str
    documents: list[IssuedDocument] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "state_label": self.state_label,
                "documents": [d.to_dict() for d in self.documents]}


# Tries of an operation whose rehearsal went stale (the last converts under the lock), and
# rounds of conversions one rehearsal may ask for (documents, then stamps).
MAX_ATTEMPTS = 3
MAX_CONVERSION_ROUNDS = 8


@dataclass
class _Work:
    """One run of an operation (a rehearsal or the real one): the time it happens at, how it
    renders and converts, and what it wrote besides the store (removed if it does not commit)."""

    now: datetime
    converter: Converter
    renderer: Any
    rehearsal: bool
    written: list[str] = field(default_factory=list)     # outbox files, relative paths
    new_files: list[Path] = field(default_factory=list)  # attachments stored

    def write(self, outbox: Outbox, relative: str, payload: bytes) -> None:
        """An outbox file; a rehearsal writes none."""
        if self.rehearsal:
            return
        self.written.append(relative)
        outbox.write(relative, payload)


@dataclass
class _Model:
    """What the shared ``transitions`` machine moves; attached for one operation only."""

    state: str | None = None


def local_now(tz: tzinfo | None = None) -> datetime:
    """Now, to the second, in ``tz`` (the machine's zone if None)."""
    return datetime.now(tz).astimezone(tz).replace(microsecond=0)


class Engine(DocumentControl, Registers):
    """Cases, transitions, documents and the register of one dealership (one config.toml)."""

    def __init__(self, config: Config, *, converter: Converter | None = None,
                 renderer: Renderer | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.workflows: dict[str, Workflow] = load_workflows(config)
        self.store = Store(config.store_dir, lock_timeout=config.lock_timeout,
                           listing=self._listing,
                           upgrade=Upgrade(owners=self._direct_owners, redact=self._redact,
                                           private=(config.outbox_dir,)))
        self.outbox = Outbox(config.outbox_dir)
        self.attachments = Attachments(config.store_dir / "attachments")
        self.previews = PagePreviews(config.store_dir / "cache" / "previews")
        self._renderer = renderer
        self._converter = converter
        self._owns_converter = converter is None
        self.clock = clock or (lambda: local_now(config.tz))
        self.sessions = Sessions(self.store, self.clock)  # sign-in sessions and API tokens
        try:
            definitions.bring_up_to_date(self.store, self.workflows)  # a workflow file changed
        except StorageError:
            pass  # a store that cannot be opened says so on first use (recover must still run)

    @classmethod
    def from_config_file(cls, path: str | Path, **kwargs: Any) -> "Engine":
        return cls(load_config(path), **kwargs)

    @property
    def renderer(self) -> "Renderer":
        """docxtpl and its stack load on first use: commands that only read start fast."""
        if self._renderer is None:
            from .render import Renderer

            self._renderer = Renderer()
        return self._renderer

    @property
    def converter(self) -> Converter:
        if self._converter is None:
            self._converter = self.warm_converter() if self._warm_wanted() \
                else SofficeConverter(self.config.libreoffice.binary,
                                      self.config.libreoffice.timeout)
        return self._converter

    def warm_converter(self, instances: int | None = None):
        """The pool of warm LibreOffice instances of this store (running or not)."""
        from .warm import WarmConverter

        lo = self.config.libreoffice
        return WarmConverter(self.config.pool_dir,
                             instances=instances or lo.warm_instances or os.cpu_count() or 2,
                             timeout=lo.timeout, unoserver=lo.unoserver, binary=lo.binary,
                             autostart=lo.warm_instances > 0, recycle_after=lo.recycle_after)

    def _warm_wanted(self) -> bool:
        return (self.config.libreoffice.warm_instances > 0
                or (self.config.pool_dir / "pool.json").is_file())

    def close(self) -> None:
        if self._owns_converter and self._converter is not None:
            self._converter.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- lookups ---------------------------------------------------------------------------

    def workflow(self, key: str) -> Workflow:
        try:
            return self.workflows[key]
        except KeyError:
            close = difflib.get_close_matches(key, list(self.workflows), n=1)
            hint = f"；是否想用 \"{close[0]}\"？" if close else ""
            raise NotFoundError(f"没有名为 \"{key}\" 的工作流{hint}（可用：{'、'.join(self.workflows)}）",
                                workflow=key) from None

    # --- who sees what ---------------------------------------------------------------------

    def reach(self, actor: str) -> Reach:
        """What ``actor`` sees and may do besides workflow steps (``[access]`` in config.toml)."""
        return access.reach(self.config, self.workflows, self.config.user(actor))

    @cached_property
    def personal_key(self) -> bytes:
        """The key of the keyed hashes that stand for personal values in the audit trail and
        the register log (``<store>/keys/personal.key``, made on first use)."""
        return privacy.load_key(self.config.store_dir / "keys" / "personal.key")

    def _direct_owners(self, record: Mapping[str, Any]) -> list[str]:
        """Who opened a case and its assignee (a store upgrade adds the linked cases')."""
        wf = self.workflows.get(record["workflow"])
        assignee = record["data"].get(wf.assignee) if wf and wf.assignee else None
        return list(dict.fromkeys([record["created_by"], *([assignee] if assignee else [])]))

    def _redact(self, entry: dict[str, Any]) -> dict[str, Any]:
        """An audit entry written before personal values were kept out of it, with its
        personal values replaced by keyed hashes (a store upgrade)."""
        wf = self.workflows.get(entry.get("workflow", ""))
        if wf is None or not entry.get("changed"):
            return entry
        out = []
        for change in entry["changed"]:
            if change.get("field") in wf.personal_fields and not change.get("personal"):
                change = {"field": change["field"], "personal": True,
                          "old_hmac": privacy.keyed_hash(self.personal_key, change.get("old")),
                          "new_hmac": privacy.keyed_hash(self.personal_key, change.get("new"))}
            out.append(change)
        return {**entry, "changed": out}

    def _visible_case(self, tx: Tx, case_id: str, reach: Reach) -> dict[str, Any]:
        """The case, if ``reach`` sees it; a case that exists but is someone else's reads as
        not found, so nobody learns which customers a colleague has."""
        record = tx.case(case_id)
        if record is None or not reach.sees_case(record):
            raise NotFoundError(f"找不到案件 \"{case_id}\"（可用 dealerdocs list 查看）", case=case_id)
        return record

    def _masked(self, wf: Workflow, data: Mapping[str, Any]) -> dict[str, Any]:
        return {k: privacy.mask(wf.personal_fields.get(k), v) for k, v in data.items()}

    def _audit_reveals(self, records: list[Mapping[str, Any]], actor: str, what: str) -> None:
        """One audit event per case whose full identity or mobile numbers ``actor`` is shown."""
        user = self.config.user(actor)
        with self.store.transaction() as tx:
            stamp = self.clock().isoformat()
            for record in records:
                wf = self.workflow(record["workflow"])
                shown = [wf.fields[k].label for k, kind in wf.personal_fields.items()
                         if kind in privacy.MASKED_KINDS and record["data"].get(k)]
                if shown:
                    self._audit(tx, stamp, user, record["id"], wf, "reveal", record["state"],
                                record["state"], [], [],
                                note=f"{what}：查看完整个人信息（{'、'.join(shown)}）")

    def reassign(self, case_id: str, to: str, *, actor: str, reason: str | None = None
                 ) -> dict[str, Any]:
        """Give a case and every case linked to it (the customer's quote, contract and
        delivery) to another consultant: the assignee field and the owners change, the one
        before no longer sees them; one audit event per case. For roles with
        ``reassign = true``."""
        user = self.config.user(actor)
        reach = self.reach(actor)
        self._allow(user, reach.reassign, "改派案件", "reassign")
        target = self.config.user(to)
        try:
            note = clean_line(reason or "", max_length=200)
        except ValueError as err:
            raise InputError(f"改派原因（--reason）{err}", field="reason") from None
        moved = []
        with self.store.transaction() as tx:
            stamp = self.clock().isoformat()
            for record in self._linked_cases(tx, self._visible_case(tx, case_id, reach)):
                wf = self.workflow(record["workflow"])
                data = dict(record["data"])
                before = data.get(wf.assignee) if wf.assignee else None
                if wf.assignee:
                    allowed = wf.fields[wf.assignee].roles
                    if allowed and not set(allowed) & set(target.roles):
                        need = "、".join(self.config.role_label(r) for r in allowed)
                        raise InputError(f"{target.login}（{target.name}）不能做{wf.title}的"
                                         f"{wf.fields[wf.assignee].label}（需要角色：{need}）",
                                         field="to")
                    data[wf.assignee] = target.login
                tx.put_case({**record, "data": data, "owners": [target.login],
                             "updated_at": stamp, "updated_by": user.login})
                self._audit(tx, stamp, user, record["id"], wf, "reassign", record["state"],
                            record["state"], self._changes(wf, record["data"], data), [],
                            note=f"改派给 {target.login}（{target.name}）"
                                 f"{'，原为 ' + before if before else ''}"
                                 f"{'；原因：' + note if note else ''}")
                moved.append(record["id"])
        return {"to": target.login, "cases": moved}

    # --- personal data: erasure ------------------------------------------------------------

    def purge(self, *, actor: str, customer: str | None = None, expired: bool = False
              ) -> dict[str, Any]:
        """Erase a person's data (``customer``: their mobile or resident ID) or every finished
        case past its retention period (``expired``, ``[privacy] retention_days``), from the
        cases of workflows no law requires the store to keep whole (《个人信息保护法》 Art.
        47): personal fields are emptied (names become a pseudonym, the same for the same
        person), their documents' files are deleted (the register keeps number, title and
        hashes, marked 已删除), the register's copies name the pseudonym. Cases of kept
        workflows are left, with the reason; cases still in progress are left. Every erasure is
        an audit event (which fields, never the values). For roles with ``purge = true``."""
        user = self.config.user(actor)
        self._allow(user, self.reach(actor).purge, "删除个人信息", "purge")
        if bool(customer) == bool(expired):
            raise InputError("请给出 --customer 手机号或身份证号，或 --expired（二者选一）",
                             field="customer")
        today = self.clock().date()
        with self.store.snapshot() as tx:
            if customer:
                value = _identifier(customer)
                person = privacy.keyed_hash(self.personal_key, value)
                candidates = [c for c in (tx.case(i) for i in tx.cases_of_person(person))
                              if c is not None and self._holds(c, value)]
                why = "依据本人的删除请求"
            else:
                candidates = []
                for key, days in self.config.privacy.retention_days.items():
                    if key not in self.workflows:
                        continue
                    for row in tx.find_cases(workflow=key):
                        age = (today - date.fromisoformat(row["updated_at"][:10])).days
                        if row.get("final") and age > days and not row.get("purged"):
                            candidates.append(tx.case(row["id"]))
                why = "超过保存期限"
        kept, waiting, chosen = [], [], []
        for record in candidates:
            wf = self.workflow(record["workflow"])
            if record["workflow"] not in self.config.privacy.retention_days:
                kept.append({"case": record["id"], "workflow": wf.title,
                             "reason": self.config.privacy.keep.get(
                                 record["workflow"], "config.toml 的 [privacy] 未给这类案件设保存期限，按保留处理")})
            elif not wf.states[record["state"]].final:
                waiting.append({"case": record["id"], "workflow": wf.title,
                                "state": wf.states[record["state"]].label})
            else:
                chosen.append(record["id"])
        purged: list[dict[str, Any]] = []
        doomed: list[Path] = []
        if chosen:
            with self.store.transaction() as tx:
                stamp = self.clock().isoformat()
                for case_id in chosen:
                    purged.append(self._purge_case(tx, case_id, user, stamp, why, doomed))
        for path in doomed:      # after the commit: an erasure that did not happen keeps them
            path.unlink(missing_ok=True)
        return {"purged": purged, "kept": kept, "in_progress": waiting}

    def _holds(self, record: Mapping[str, Any], value: str) -> bool:
        wf = self.workflows.get(record["workflow"])
        return bool(wf) and any(record["data"].get(k) == value
                                for k, kind in wf.personal_fields.items()
                                if kind in privacy.MASKED_KINDS)

    def _purge_case(self, tx: Tx, case_id: str, user: User, stamp: str, why: str,
                    doomed: list[Path]) -> dict[str, Any]:
        record = tx.case(case_id)
        wf = self.workflow(record["workflow"])
        data = dict(record["data"])
        names: dict[str, str] = {}
        for k, kind in wf.personal_fields.items():
            if data.get(k) in (None, "") or str(data[k]).startswith(privacy.PSEUDONYM_PREFIX):
                continue
            if kind == "name":
                names[data[k]] = data[k] = privacy.pseudonym(self.personal_key, data[k])
            else:
                data[k] = None
        erased = [wf.fields[k].label for k in wf.personal_fields if data.get(k) != record["data"].get(k)]
        documents = []
        for doc in tx.case_documents(case_id):
            for c in tx.copies(doc["number"]):
                changed = {f: names[c[f]] for f in ("recipient", "returned_by") if c.get(f) in names}
                if changed:
                    tx.put_copy({**c, **changed})
                doomed.append(self.outbox.absolute(str(Path(doc["pdf"]).parent / "copies"
                                                       / f"{c['label']}.pdf")))
            doomed += [self.outbox.absolute(doc[k]) for k in ("docx", "pdf", "stamped_pdf")
                       if doc.get(k)]
            doomed.append(self.previews.path(doc["pdf_sha256"]))
            if not doc.get("files_purged"):
                tx.put_document({**doc, "files_purged": True, "purged_at": stamp})
                self._register_event(tx, stamp, user, "purged", doc["number"], reason=why)
                documents.append(doc["number"])
        tx.put_case({**record, "data": data, "purged_at": stamp, "purged_by": user.login,
                     "updated_at": stamp, "updated_by": user.login})
        note = f"删除个人信息（{why}）：{'、'.join(erased) or '无'}"
        if documents:
            note += f"；删除文件 {'、'.join(documents)}"
        self._audit(tx, stamp, user, case_id, wf, "purge", record["state"], record["state"],
                    self._changes(wf, record["data"], data), [], note=note)
        return {"case": case_id, "workflow": wf.title, "fields": erased, "documents": documents}

    def page_image(self, number: str, *, actor: str) -> Path:
        """Page 1 of a document's PDF as a PNG (kept a few days), if ``actor`` sees it."""
        life = self.document(number, actor=actor)
        pdf = Path(life["pdf"])
        if life.get("files_purged") or not pdf.is_file():
            raise NotFoundError(f"文件 {number} 的存档文件缺失或已删除", number=number)
        return self.previews.first_page(pdf, life["pdf_sha256"], number)

    def document_count(self) -> int:
        """How many documents the store has issued (no one's data: for ``verify``)."""
        with self.store.snapshot() as tx:
            return len(tx.find_documents())

    @staticmethod
    def _linked_cases(tx: Tx, start: dict[str, Any]) -> list[dict[str, Any]]:
        """``start`` and every case reachable from it through links, in the order found."""
        found = {start["id"]: start}
        queue = [start]
        while queue:
            record = queue.pop(0)
            for ids in record.get("links", {}).values():
                for other_id in ids:
                    if other_id not in found:
                        other = tx.case(other_id)
                        if other is not None:
                            found[other_id] = other
                            queue.append(other)
        return list(found.values())

    # --- lookups (as a user: only what they see, personal data masked) --------------------

    def case(self, case_id: str, *, actor: str, reveal: bool = False) -> dict[str, Any]:
        """The case with its data, computed totals, documents and history (JSON-friendly), if
        ``actor`` may see it. Identity and mobile numbers are masked unless ``reveal``, which
        needs a role that may reveal and is written into the audit trail."""
        reach = self.reach(actor)
        if reveal and not reach.reveal:
            user = self.config.user(actor)
            raise PermissionDenied(f"用户 {user.login}（{user.name}）无权查看完整的个人信息"
                                   f"（身份证号、手机号）", user=user.login)
        if reveal:
            with self.store.snapshot() as tx:
                record = self._visible_case(tx, case_id, reach)
            self._audit_reveals([record], actor, "查看案件")
        with self.store.snapshot() as tx:
            record = self._visible_case(tx, case_id, reach)
            documents = tx.case_documents(case_id)
            history = tx.case_log("audit", case_id)
        wf = self.workflow(record["workflow"])
        values, totals = self._evaluate(wf, record["data"])
        return {
            "id": record["id"], "workflow": wf.key, "workflow_title": wf.title,
            "state": record["state"], "state_label": wf.states[record["state"]].label,
            "created_at": record["created_at"], "created_by": record["created_by"],
            "updated_at": record["updated_at"], "updated_by": record["updated_by"],
            "owners": access.owners(record), "revealed": reveal,
            "data": record["data"] if reveal else self._masked(wf, record["data"]),
            "links": record.get("links", {}),
            "totals": context_value(totals),
            "total": context_value(totals.get(wf.total) if wf.total else None),
            "deadline": self.deadline_status(wf, record),
            "triggers": [{"trigger": t.trigger, "label": t.label, "roles": list(t.roles)}
                         for t in wf.available(record["state"])],
            "documents": [self._document_view(d) for d in documents],
            "history": sorted(history, key=lambda e: e["seq"]),
        }

    def cases(self, workflow: str | None = None, state: str | None = None,
              opened_from: date | None = None, opened_to: date | None = None,
              open_only: bool = False, *, actor: str) -> list[dict[str, Any]]:
        """The listings of the cases ``actor`` sees (from the indexes, no case file opened),
        filtered by workflow, state and the period the case was opened in; ``open_only``
        leaves out finished cases (and reads only the index of open ones, as does asking for
        a state that is never final). Identity and mobile numbers are masked."""
        reach = self.reach(actor)
        return [row for row in self._cases(workflow, state, opened_from, opened_to, open_only)
                if reach.sees_case(row)]

    def _cases(self, workflow: str | None = None, state: str | None = None,
               opened_from: date | None = None, opened_to: date | None = None,
               open_only: bool = False) -> list[dict[str, Any]]:
        flows = [self.workflow(workflow)] if workflow is not None else list(self.workflows.values())
        if state is not None and all(not wf.states[state].final for wf in flows
                                     if state in wf.states):
            open_only = True
        with self.store.snapshot() as tx:
            rows = tx.find_cases(workflow, state, opened_from, opened_to, open_only)
        out = []
        for r in rows:
            wf = self.workflows.get(r["workflow"])
            fields = r.get("fields", {})
            out.append({"id": r["id"], "workflow": r["workflow"], "state": r["state"],
                        "state_label": wf.states[r["state"]].label if wf else r["state"],
                        "summary": r.get("summary", ""), "total": r.get("total"),
                        "fields": self._masked(wf, fields) if wf else fields,
                        "owners": access.owners(r), "final": r.get("final", False),
                        "created_at": r["created_at"], "created_by": r["created_by"],
                        "updated_at": r["updated_at"], "updated_by": r["updated_by"]})
        return sorted(out, key=lambda c: (c["workflow"], _case_seq(c["id"])))

    def _listing(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """What the store's indexes keep of a case: enough for lists, filters, the due list
        and the ``[[exclusive]]`` check without opening the case's file."""
        wf = self.workflows.get(record["workflow"])
        if wf is None:
            return {}
        data = record["data"]
        _, totals = self._evaluate(wf, data)
        names = [*wf.summary, *(n for n, f in wf.fields.items() if f.type in ("user", "date"))]
        for rule in wf.exclusive:
            names += [*rule.resources, *(n for n in (rule.start, rule.end) if n)]
        names += [n for n in (wf.deadline_field, wf.owner_field) if n]
        names += [r.date_field for r in wf.reports.values()]
        names += [n for n, f in wf.fields.items() if f.type == "string" and n.endswith("_name")]
        state = record["state"]
        people = [privacy.keyed_hash(self.personal_key, data[k])
                  for k, kind in wf.personal_fields.items()
                  if kind in privacy.MASKED_KINDS and data.get(k)]
        return {"owners": access.owners(record), "people": people,
                "purged": bool(record.get("purged_at")),
                "summary": " ".join(str(data[k]) for k in wf.summary
                                    if data.get(k) not in (None, "")),
                "total": context_value(totals.get(wf.total) if wf.total else None),
                "fields": {k: data[k] for k in dict.fromkeys(names)
                           if data.get(k) not in (None, "", [])},
                "final": wf.states[state].final,
                "held": any(state in rule.states for rule in wf.exclusive)}

    def documents(self, case_id: str | None = None, status: str | None = None, *,
                  actor: str) -> list[dict[str, Any]]:
        """The issued documents ``actor`` sees: those of the cases they see, or all of them
        for a role that keeps the register's copies (``documents = "all"``)."""
        reach = self.reach(actor)
        with self.store.snapshot() as tx:
            if case_id:
                record = tx.case(case_id)
                if record is None or not (reach.documents_all or reach.sees_case(record)):
                    raise NotFoundError(f"找不到案件 \"{case_id}\"（可用 dealerdocs list 查看）",
                                        case=case_id)
                rows = [d for d in tx.case_documents(case_id) if not status or d["status"] == status]
            else:
                rows = [d for d in tx.find_documents(status=status)
                        if reach.sees_documents_of(d["workflow"])]
        if not case_id and not reach.documents_all:
            own = {d["workflow"] for d in rows if reach.scope.get(d["workflow"]) == "own"}
            mine = {r["id"] for key in own for r in self._cases(key) if reach.sees_case(r)}
            rows = [d for d in rows
                    if reach.scope.get(d["workflow"]) == "all" or d["case_id"] in mine]
        return [self._document_view(d) for d in sorted(rows, key=lambda d: d["issued_at"])]

    def _document_view(self, d: Mapping[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in d.items() if k != "schema_version"}
        view["docx"] = str(self.outbox.absolute(d["docx"]))
        view["pdf"] = str(self.outbox.absolute(d["pdf"]))
        return view

    def verify(self, seals: str | Path | None = None) -> list[dict[str, Any]]:
        """Check the store and outbox; one entry per problem (empty = all good): the hash
        chains, the register against its log and index, each case's copy of its log entries,
        every issued file and attachment re-hashed, and the register_log head each issued PDF
        recorded. With ``seals`` (a file of ``dealerdocs seal`` lines), also that the chains
        extend every seal of this store (see :mod:`engine.seal`)."""
        sealed = self.read_seals(seals) if seals is not None else None  # key, file: fail first
        with self.store.snapshot() as tx:
            cases = list(tx.cases_in_store())
            docs = [d for c in cases for d in tx.case_documents(c["id"])]
            logs = {name: tx.log_entries(name) for name in LOGS}
            register_problems = self._verify_register(tx, docs, logs, [c["id"] for c in cases])
            indexed = len(tx.find_documents())
        seal_problems = self._seal_problems(seals, sealed, logs, indexed) \
            if sealed is not None else []
        entries = []
        for d in docs:
            if d.get("files_purged"):
                continue   # erased on purpose (dealerdocs purge); the register keeps the hashes
            entries.append((d["number"], d["docx"], d["docx_sha256"]))
            if d.get("stamped_pdf"):
                entries.append((d["number"], d["stamped_pdf"], d["stamped_sha256"]))
        problems = [dataclasses.asdict(p) for p in self.outbox.verify_files(entries)]
        problems += self._verify_pdfs([d for d in docs if not d.get("files_purged")],
                                      logs["register_log"])   # hash and head, one read
        attached = []
        for case in cases:
            wf = self.workflows.get(case["workflow"])
            for name, spec in (wf.fields.items() if wf else ()):
                if spec.type == "attachments":
                    attached += [(case["id"], self.attachments.path_for(a["sha256"]),
                                  a["sha256"]) for a in case["data"].get(name) or []]
        problems += [dataclasses.asdict(p) for p in verify_files(attached)]
        return register_problems + seal_problems + problems

    # --- seals -------------------------------------------------------------------------------

    def seal(self, out: str | Path | None = None) -> dict[str, Any]:
        """A seal of the store now (:mod:`engine.seal`): each chain's length and head and the
        number of documents, with an HMAC made with the key of ``[seal] key`` (outside the
        store; made 0600 on first use). Appended to ``out`` if given. The line is meant to be
        kept where the store's users cannot change it (printed, or on another disk)."""
        target = self._outside_store(Path(out), "封存文件") if out is not None else None
        with self.store.snapshot() as tx:
            heads = {}
            for name in sealing.CHAINS:
                entries = tx.log_entries(name)
                problem = chain.check(entries, tx.chain_head(name))
                if problem:
                    raise IntegrityError(f"不能封存：{sealing.LABELS[name]}：{problem}；"
                                         f"请先运行 dealerdocs verify 查明原因", chain=name)
                heads[name] = sealing.Head(entries[-1]["seq"] if entries else 0,
                                        tx.chain_head(name) or chain.GENESIS)
            docs = len(tx.find_documents())
        key, created = self._seal_key(create=True)
        try:
            record = sealing.make(self.config.dealer.code, self.clock(), heads, docs, key)
        except sealing.SealError as err:
            raise ConfigError(f"无法封存：{err}", key="dealer.code") from None
        if target is not None:
            _append_line(target, record.line)
        return {**record.to_dict(), "key": str(self.config.seal_key_path),
                "key_created": created, "out": str(target) if target else None}

    def read_seals(self, path: str | Path) -> list[sealing.Line]:
        """The seal lines of the file at ``path``, parsed and authenticated with the key."""
        path = Path(path).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFoundError(f"找不到封存文件 {path}", path=str(path)) from None
        except UnicodeDecodeError:
            raise InputError(f"封存文件 {path} 不是 UTF-8 文本", field="seal") from None
        except OSError as err:
            raise StorageError(f"无法读取封存文件 {path}：{err.strerror}", path=str(path)) from err
        key, _ = self._seal_key(create=False)
        return sealing.read_lines(text, self.config.dealer.code, key)

    def _seal_problems(self, path: str | Path, lines: list[sealing.Line],
                       logs: Mapping[str, list[dict[str, Any]]], docs: int
                       ) -> list[dict[str, Any]]:
        where = str(Path(path).expanduser())
        problems = [{"number": "seal", "path": f"{where}:{line.number}",
                     "problem": f"seal_{line.status}",
                     "detail": f"封存文件 {where} 第 {line.number} 行：{line.detail}"}
                    for line in lines if line.status in ("forged", "malformed")]
        ours = {line.seal: line.number for line in lines if line.status == "ok"}
        if not ours:
            problems.append({"number": "seal", "path": where, "problem": "seal_none",
                             "detail": f"封存文件 {where} 中没有本店（{self.config.dealer.code}）"
                                       f"可核对的封存"})
        hashes = {name: sealing.recomputed_hashes(logs[name]) for name in sealing.CHAINS}
        for found in sealing.compare(list(ours), hashes, docs):
            problems.append({"number": found.chain, "path": f"{where}:{ours[found.seal]}",
                             "problem": "seal_broken", "first": found.first, "last": found.last,
                             "detail": f"{found.detail}（封存文件 {where} 第 {ours[found.seal]} 行）"})
        return problems

    def _seal_key(self, create: bool) -> tuple[bytes, bool]:
        """The seal key's bytes (surrounding whitespace dropped) and whether it was just made."""
        path = self.config.seal_key_path
        created = False
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if not create:
                raise ConfigError(f"找不到封存密钥 {path}（config.toml 的 [seal] key）；没有生成封存时"
                                  f"用的那把密钥就无法核对封存", key="seal.key") from None
            data, created = _create_key(path)
        except OSError as err:
            raise ConfigError(f"无法读取封存密钥 {path}：{err.strerror}", key="seal.key") from err
        try:
            return sealing.check_key(data.strip()), created
        except sealing.SealError as err:
            raise ConfigError(f"封存密钥 {path}：{err}；请换用生成封存时的那把密钥（或删除它，"
                              f"让 dealerdocs seal 生成新的，但以前的封存将无法再核对）",
                              key="seal.key") from None

    def _outside_store(self, path: Path, what: str) -> Path:
        path = path.expanduser().resolve()
        for name, label in (("store", "数据库目录"), ("outbox", "输出目录")):
            folder = self.config.path(name).resolve()
            if path.is_relative_to(folder):
                raise InputError(f"{what} {path} 在{label} {folder} 之内；请写到数据库之外"
                                 f"（如 U 盘或另一台电脑），否则能改写数据库的人也能改它", field="out")
        return path

    def context_for(self, workflow: str, data: Mapping[str, Any], kind: str, actor: str,
                    number: str = "（预览）") -> dict[str, Any]:
        """The template context a document of ``kind`` would get for ``data`` (nothing stored).

        For previews and benchmarks; ``data`` is checked like a new case's data.
        """
        wf = self.workflow(workflow)
        user = self.config.user(actor)
        if kind not in wf.documents:
            raise NotFoundError(f"{wf.title}没有文档 \"{kind}\"（可用：{'、'.join(wf.documents)}）")
        stored = self._normalize(wf, data, {}, edits=("*",))
        values, totals = self._evaluate(wf, stored)
        record = {"id": f"{wf.case_prefix}-0"}
        return self._context(wf, wf.documents[kind], record, values, totals, user, self.clock(),
                             wf.initial, number, 1)

    def preview(self, target: str, actor: str, data: Mapping[str, Any] | None = None,
                trigger: str | None = None, out_dir: Path | None = None) -> dict[str, Any]:
        """Render the documents a transition would issue, stamped 草稿 / DRAFT on every page,
        without numbering, registering or changing anything. ``target`` is a case id (its data,
        with ``data`` laid over it) or a workflow key (``data`` alone)."""
        user = self.config.user(actor)
        reach = self.reach(actor)
        with self.store.snapshot() as tx:
            record = (self._visible_case(tx, target, reach)
                      if target not in self.workflows else None)
            wf = self.workflow(record["workflow"] if record else target)
            links = self._links_context(tx, record) if record else {}
            earlier = tx.case_documents(record["id"]) if record else []
        state = record["state"] if record else wf.initial
        if record is None and not access.may_create(user, wf):
            self._authorize(user, wf.create_roles, f"预览新的{wf.title}")
        base = record["data"] if record else {}
        patch = self._normalize(wf, data or {}, base, edits=("*",))
        values, totals = self._evaluate(wf, {**base, **patch})
        if trigger is not None:
            kinds = list(dict.fromkeys(k for t in wf.candidates(trigger, state)
                                       for k in t.documents))
        elif record is not None:
            kinds = list(dict.fromkeys(k for t in wf.available(state) for k in t.documents))
        else:
            kinds = list(wf.documents)
        if not kinds:
            raise StateError(f"{wf.title}在「{wf.states[state].label}」没有要出具的文档可预览",
                             state=state)
        now = self.clock()
        folder = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="dealerdocs-preview-"))
        rendered = []
        for kind in kinds:
            spec = wf.documents[kind]
            template = self.renderer.load(self.config.template_path(spec.template))
            context = self._context(wf, spec, record or {"id": f"{wf.case_prefix}-（新）"},
                                    values, totals, user, now, state, "草稿（未编号）",
                                    sum(d["kind"] == kind for d in earlier) + 1, links)
            rendered.append((spec, self.renderer.render(template, context, {
                "title": f"{spec.title}（草稿）", "subject": spec.title})))
        pdfs = self.converter.convert_many([docx for _, docx in rendered])
        files = []
        for (spec, docx), pdf in zip(rendered, pdfs):
            from . import stamps

            pdf = stamps.void_stamp(pdf, word="草稿", when=cn_date(now.date()),
                                    reason="DRAFT · 预览，非正式文件", converter=self.converter)
            for suffix, payload in ((".docx", docx), (".pdf", pdf)):
                path = folder / f"{spec.key}-草稿{suffix}"
                atomic_write_bytes(path, payload)
                files.append(str(path.resolve()))
        return {"workflow": wf.key, "case": record["id"] if record else None,
                "documents": [spec.key for spec, _ in rendered], "files": files}

    # --- operations --------------------------------------------------------------------------

    def create(self, workflow: str, data: Mapping[str, Any], actor: str,
               source: str | None = None, files_from: Path | None = None,
               mark: tuple[str, str] | None = None) -> FireResult:
        """Open a new case in the workflow's initial state, optionally from a ``source`` case
        (e.g. a contract from an accepted quote): mapped fields are carried over, ``data``
        overrides them, and the two cases are linked both ways. Relative attachment paths in
        ``data`` are taken from ``files_from`` (default: the current folder)."""
        wf = self.workflow(workflow)
        user = self.config.user(actor)
        self._authorize(user, wf.create_roles, f"新建{wf.title}")
        new_files: list[Path] = []
        try:
            return self._create(wf, data, user, source, new_files, files_from, mark)
        except BaseException:
            for path in new_files:
                path.unlink(missing_ok=True)
            raise

    def _create(self, wf: Workflow, data: Mapping[str, Any], user: User, source: str | None,
                new_files: list[Path], files_from: Path | None,
                mark: tuple[str, str] | None = None) -> FireResult:
        with self.store.transaction() as tx:
            base: dict[str, Any] = {}
            links: dict[str, list[str]] = {}
            origin = None
            if source is not None:
                origin = self._visible_case(tx, source, self.reach(user.login))
                base, links = self._carry_over(tx, wf, origin)
            elif any(cf.required for cf in wf.create_from.values()):
                need = "、".join(f"{self.workflows[k].title}（{'/'.join(self._state_labels(k, cf.states))}）"
                                 for k, cf in wf.create_from.items() if cf.required)
                raise InputError(f"{wf.title}只能从{need}创建：请用 --from 指定来源单号",
                                 field="source")
            warnings: list[str] = []
            patch = self._normalize(wf, data, base, edits=("*",), warnings=warnings,
                                    stored_files=new_files, files_from=files_from)
            stored = {**base, **patch}
            for target, from_field in wf.create_assign.items():
                if stored.get(target) is None:
                    stored[target] = copy.deepcopy(stored.get(from_field))
            for name, spec in wf.fields.items():
                if spec.type == "user" and spec.default == "actor" and stored.get(name) is None \
                        and (not spec.roles or set(spec.roles) & set(user.roles)):
                    stored[name] = user.login
            self._require(wf, stored, (), f"新建{wf.title}")
            now = self.clock()
            values, totals = self._evaluate(wf, stored)
            self._run_checks(wf, wf.create_checks,
                             self._facts(tx, values, totals, now, links))
            stamp = now.isoformat()
            self._check_exclusive(tx, wf, None, wf.initial, stored)
            case_id = f"{wf.case_prefix}-{tx.next_counter(f'case:{wf.case_prefix}')}"
            # whose case it is: who opened it, its assignee, and whose the source case was
            owners = [user.login, *([stored[wf.assignee]] if wf.assignee and stored.get(wf.assignee)
                                    else []),
                      *(access.owners(origin) if origin is not None else [])]
            definitions.record_new(tx, self.workflows)   # before the case: none of it yet
            tx.put_case({
                "id": case_id, "workflow": wf.key, "state": wf.initial, "data": stored,
                "links": links, "created_at": stamp, "created_by": user.login,
                "updated_at": stamp, "updated_by": user.login,
                "owners": list(dict.fromkeys(owners)), "definition": wf.definition})
            if origin is not None:
                back = {**origin.get("links", {})}
                back[wf.key] = [*back.get(wf.key, []), case_id]
                tx.put_case({**origin, "links": back})
            self._audit(tx, stamp, user, case_id, wf, "create", None, wf.initial,
                        self._changes(wf, {}, stored), [], warnings=warnings,
                        note=f"由 {source} 创建" if source else None)
            if mark is not None:
                tx.set_mark(mark[0], mark[1], {"case": case_id})
        return FireResult(case_id, wf.initial, wf.states[wf.initial].label)

    def fire(self, case_id: str, trigger: str, actor: str,
             data: Mapping[str, Any] | None = None, files_from: Path | None = None,
             mark: tuple[str, str] | None = None, *, at: datetime | None = None,
             prepared: Prepared | None = None) -> FireResult:
        """Fire ``trigger`` on a case as ``actor``; all-or-nothing. Relative attachment paths
        in ``data`` are taken from ``files_from`` (default: the current folder). ``mark``
        (batch id, item) is recorded in the same unit of work (see :mod:`engine.batch`).
        ``at`` fixes the time the step happens at (default: the clock when it runs);
        ``prepared`` brings conversions done ahead (see :meth:`rehearse_fire`)."""
        user = self.config.user(actor)

        def step(tx: Tx, work: _Work) -> FireResult:
            result = self._fire_in(tx, work, case_id, trigger, user, data, files_from)
            if mark is not None:
                tx.set_mark(mark[0], mark[1], {"case": case_id, "fired": trigger,
                                               "documents": [d.number for d in result.documents]})
            return result

        return self._run(step, at=at, prepared=prepared)

    def tick(self) -> list[dict[str, Any]]:
        """Fire the timed transitions that are due (``[[timers]]``), each as the actor
        ``system`` in its own unit of work with the transition's conditions and checks.
        Idempotent: a case is judged again under the store's lock before it moves, so a second
        run (or another process ticking at once) finds nothing left to do. Returns one entry a
        case: what was fired, or why a due transition was refused (its conditions or checks)."""
        out: list[dict[str, Any]] = []
        for wf in self.workflows.values():
            if not wf.timers:
                continue
            for row in self._cases(wf.key, open_only=True):
                for timer in wf.timers:
                    if row["state"] not in timer.states or not self._timer_due(wf, timer, row["id"]):
                        continue
                    done = self._fire_timer(wf, timer, row["id"])
                    if done is not None:
                        out.append(done)
                        break  # the case moved: its other timers wait for the next tick
        return out

    def _timer_due(self, wf: Workflow, timer: "timers.Timer", case_id: str,
                   tx: Tx | None = None) -> bool:
        def judge(tx: Tx) -> bool:
            record = tx.case(case_id)
            if record is None or record["state"] not in timer.states:
                return False
            now = self.clock()
            since = (timers.entered_at(record, tx.case_log("audit", case_id))
                     if timer.after is not None else None)
            names = {}
            if timer.when is not None:
                values, totals = self._evaluate(wf, record["data"], now.date())
                names = self._facts(tx, values, totals, now, record.get("links", {}))
            return timers.due(timer, record, names, now, since)

        if tx is not None:
            return judge(tx)
        with self.store.snapshot() as snapshot:
            return judge(snapshot)

    def _fire_timer(self, wf: Workflow, timer: "timers.Timer", case_id: str
                    ) -> dict[str, Any] | None:
        class NotDue(Exception):
            pass

        def step(tx: Tx, work: _Work) -> FireResult:
            if not self._timer_due(wf, timer, case_id, tx):
                raise NotDue
            return self._fire_in(tx, work, case_id, timer.trigger, timers.SYSTEM, None, None,
                                 timed=True)

        entry = {"case": case_id, "workflow": wf.key, "trigger": timer.trigger}
        try:
            result = self._run(step)
        except NotDue:
            return None
        except (StateError, InputError) as err:
            log.info("timer %s on %s refused: %s", timer.trigger, case_id, err.message)
            return {**entry, "refused": err.message}
        return {**entry, "state": result.state, "state_label": result.state_label,
                "documents": [d.number for d in result.documents]}

    def rehearse_fires(self, fires: list[tuple[str, str, Mapping[str, Any] | None, datetime]],
                       actor: str, prepared: Prepared,
                       before: list[tuple[str, str, Mapping[str, Any] | None, datetime]] = ()
                       ) -> list[bytes]:
        """The documents (.docx) the fires ``(case, trigger, data, at)`` would convert, if
        committed in this order after the fires ``before`` (not committed yet either):
        rehearsed one after the other on one unit of work that is never committed, each up to
        its first conversion, so each sees the numbers taken before it. Renders are kept in
        ``prepared``. A batch converts these ahead, then fires each with ``prepared``. A fire
        that would be refused adds nothing (it is refused, and reported, when it runs)."""
        user = self.config.user(actor)
        documents: list[bytes] = []
        with self.store.rehearsal() as tx:
            for n, (case_id, trigger, data, at) in enumerate([*before, *fires]):
                work = _Work(at, ServingConverter(prepared.conversions), prepared.renders,
                             rehearsal=True)
                try:
                    self._fire_in(tx, work, case_id, trigger, user, data, None)
                except ConversionNeeded as need:
                    if need.suffix == ".docx" and n >= len(before):
                        documents.extend(need.documents)
                except DealerDocsError:
                    pass
                finally:
                    for path in work.new_files:
                        path.unlink(missing_ok=True)
        return documents

    def discard_journal(self) -> Path | None:
        """Move a store journal that cannot be replayed aside (``dealerdocs recover``); the
        unit of work it held is lost. Returns where it went, or None if there was none."""
        return self.store.discard_journal()

    def batch_marks(self, batch: str) -> dict[str, dict[str, Any]]:
        """What a batch (by its id) has done so far, item by item (see :mod:`engine.batch`)."""
        with self.store.snapshot() as tx:
            return tx.marks(batch)

    def _run(self, step: Callable[[Tx, "_Work"], Any], *, at: datetime | None = None,
             prepared: Prepared | None = None) -> Any:
        """Run ``step`` (a unit of work that may render and convert) so that LibreOffice never
        runs under the store's exclusive lock.

        ``step`` first runs on rehearsals (a consistent view under the shared lock, never
        committed, writing no outbox file) until every conversion it asks for has been made,
        with no lock held; then for real under the exclusive lock, where each conversion is
        served from what was made. If the store changed in between (another process took the
        number the rehearsal rendered), the real run misses a conversion, is abandoned
        (nothing written) and the whole is tried again; after ``MAX_ATTEMPTS`` the last try
        converts under the lock. ``prepared`` with conversions made ahead (a batch) is tried
        for real straight away, and rehearsed only if it misses one. A step that fails leaves
        nothing behind: its outbox files and new attachments are removed — unless the store
        committed it (its journal is durable), after which nothing is removed or rolled
        back, whatever interrupts.
        """
        ahead = prepared is not None and len(prepared.conversions) > 0
        prepared = prepared or Prepared(self.renderer)
        plans = [*(["ahead"] if ahead else []), *["rehearsed"] * (MAX_ATTEMPTS - 1), "locked"]
        new_files: list[Path] = []
        committed = False
        try:
            for attempt, plan in enumerate(plans, start=1):
                now = at or self.clock()
                if plan == "rehearsed":
                    self._rehearse(step, now, prepared, new_files)
                converter = (self.converter if plan == "locked"
                             else ServingConverter(prepared.conversions))
                work = _Work(now, converter, prepared.renders, rehearsal=False,
                             new_files=new_files)
                tx: Tx | None = None
                try:
                    with self.store.transaction() as tx:
                        return step(tx, work)
                except ConversionNeeded:
                    self._remove_outbox(work.written)
                    log.info("a conversion was not ready (%s); trying again (%d)", plan, attempt)
                except BaseException:
                    if tx is not None and tx.committed:
                        committed = True
                    else:
                        self._remove_outbox(work.written)
                    raise
            raise AssertionError("unreachable: the last attempt converts under the lock")
        except BaseException:
            if not committed:
                for path in new_files:
                    path.unlink(missing_ok=True)
            raise

    def _rehearse(self, step: Callable[[Tx, "_Work"], Any], now: datetime,
                  prepared: Prepared, new_files: list[Path]) -> None:
        """Rehearse ``step`` until it runs through with every conversion ready, converting
        what it asks for between rehearsals (no lock held while LibreOffice works)."""
        for _ in range(MAX_CONVERSION_ROUNDS):
            work = _Work(now, ServingConverter(prepared.conversions), prepared.renders,
                         rehearsal=True, new_files=new_files)
            try:
                with self.store.rehearsal() as tx:
                    step(tx, work)
                return
            except ConversionNeeded as need:
                checkpoints.reached("converting", f"{len(need.documents)} document(s) "
                                                  f"({need.suffix}), no lock held")
                pdfs = self.converter.convert_many(need.documents, need.suffix)
                prepared.conversions.add(need.documents, pdfs, need.suffix)
                prepared.converted_late += len(need.documents)

    def _remove_outbox(self, written: list[str]) -> None:
        for relative in written:
            self.outbox.remove(relative)

    def _fire_in(self, tx: Tx, work: "_Work", case_id: str, trigger: str, user: User,
                 data: Mapping[str, Any] | None, files_from: Path | None,
                 timed: bool = False) -> FireResult:
        """The body of :meth:`fire` inside a unit of work (a rehearsal or the real one).
        ``timed``: a timer of the workflow fires it (as ``timers.SYSTEM``): the workflow file
        is the authority, so roles and separation of duties do not apply; conditions and
        checks do."""
        reach = Reach(user.login, {k: "all" for k in self.workflows}) if timed \
            else self.reach(user.login)
        record = self._visible_case(tx, case_id, reach)
        wf = self.workflow(record["workflow"])
        candidates = wf.candidates(trigger, record["state"])
        label = candidates[0].label
        if not timed:
            self._authorize(user, tuple(r for t in candidates for r in t.roles),
                            f"执行「{label}」（{trigger}）")
        warnings: list[str] = []
        patch = self._normalize(wf, data or {}, record["data"],
                                edits=candidates[0].edits, transition=candidates[0],
                                warnings=warnings, stored_files=work.new_files,
                                files_from=files_from)
        new_data = {**record["data"], **patch}
        now = work.now
        values, totals = self._evaluate(wf, new_data, now.date())
        facts = self._facts(tx, values, totals, now, record.get("links", {}))
        t = self._route(wf, candidates, facts)
        if not timed:
            self._authorize(user, t.roles, f"执行「{t.label}」（{trigger}）")
            self._separate_duties(tx, wf, t, record, user)
        for name in t.stamps:
            spec = wf.fields[name]
            new_data[name] = (now.date().isoformat() if spec.type == "date"
                              else now.replace(tzinfo=None).isoformat(timespec="minutes"))
        for target, origin in t.assign.items():
            new_data[target] = copy.deepcopy(new_data.get(origin))
        for name in t.increment:
            new_data[name] = (new_data.get(name) or 0) + 1
        for name in t.record_actor:
            new_data[name] = user.login
        if t.stamps or t.assign or t.increment or t.record_actor:
            values, totals = self._evaluate(wf, new_data, now.date())
            facts = self._facts(tx, values, totals, now, record.get("links", {}))
        self._require(wf, new_data, t.requires, t.label)
        self._run_checks(wf, t.checks, facts)
        new_state = self._move(wf, record["state"], t)
        self._check_exclusive(tx, wf, case_id, new_state, new_data)
        stamp = now.isoformat()
        owners = access.owners(record)
        if wf.assignee and new_data.get(wf.assignee) and new_data[wf.assignee] not in owners:
            owners.append(new_data[wf.assignee])   # the case was handed to another consultant
        before, record = record, {**record, "state": new_state, "data": new_data,
                                  "updated_at": stamp, "updated_by": user.login,
                                  "owners": owners}
        issued = self._issue_documents(tx, work, wf, t, record, values, totals, user,
                                       new_state)
        if t.void_documents:
            self._void_documents(tx, work, record["id"], user, f"{wf.title}{t.label}")
        tx.put_case(record)
        self._audit(tx, stamp, user, case_id, wf, trigger, before["state"], new_state,
                    self._changes(wf, before["data"], new_data), [d.number for d in issued],
                    warnings=warnings)
        for linked_wf, linked_trigger in t.fire_linked.items():
            for linked_id in record.get("links", {}).get(linked_wf, []):
                self._cascade(tx, work, linked_id, linked_trigger, user,
                              note=f"由 {case_id} {t.label}联动")
        return FireResult(case_id, new_state, wf.states[new_state].label, issued)

    # --- steps -------------------------------------------------------------------------------

    def _state_labels(self, workflow: str, states: tuple[str, ...]) -> list[str]:
        wf = self.workflows[workflow]
        return [wf.states[s].label for s in states]

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
            need = "、".join(self._state_labels(origin["workflow"], cf.states))
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

    def rule_names(self, wf: Workflow, case: Mapping[str, Any]) -> dict[str, Any]:
        """What ``wf``'s rules see for ``case`` now: its data and computed values, the data of
        its linked cases, the policy and the clock (the pages judge their buttons on it)."""
        values, totals = self._evaluate(wf, case["data"])
        with self.store.snapshot() as tx:
            return self._facts(tx, values, totals, self.clock(), case.get("links", {}))

    def _facts(self, tx: Tx, values: dict[str, Any], totals: dict[str, Any], now: datetime,
               links: Mapping[str, list[str]]) -> dict[str, Any]:
        """The names a workflow's rules see (``rules.namespace``): the case's typed data and
        computed values, the data of its linked cases, the store's policy and the clock."""
        linked = {}
        for key, ids in links.items():
            other = tx.case(ids[-1]) if ids else None
            if other is not None and key in self.workflows:
                linked[key] = self._evaluate(self.workflows[key], other["data"])[0]
        return rules.namespace(values, totals, today=now.date(), now=now,
                               policy=self.config.policy, linked=linked)

    def _route(self, wf: Workflow, candidates: list[TransitionSpec], facts: Mapping[str, Any]
               ) -> TransitionSpec:
        """The first candidate whose conditions all hold (conditional routing)."""
        reasons = []
        for t in candidates:
            failed = [r for r in (wf.conditions[name](facts) for name in t.conditions) if r]
            if not failed:
                return t
            reasons.extend(failed)
        raise StateError(f"不能{candidates[0].label}：{'；'.join(reasons)}",
                         trigger=candidates[0].trigger)

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

    def _cascade(self, tx: Tx, work: "_Work", case_id: str, trigger: str, user: User,
                 note: str) -> None:
        """Fire ``trigger`` on a linked case as a consequence (``fire_linked``): same store
        write, no data, no documents; the linked workflow's conditions and checks still apply."""
        record = self._load_case(tx, case_id)
        wf = self.workflow(record["workflow"])
        try:
            candidates = wf.candidates(trigger, record["state"])
        except StateError as err:
            raise StateError(f"关联的{wf.title} {case_id}：{err.message}", case=case_id) from None
        now = work.now
        values, totals = self._evaluate(wf, record["data"], now.date())
        facts = self._facts(tx, values, totals, now, record.get("links", {}))
        t = self._route(wf, candidates, facts)
        self._require(wf, record["data"], t.requires, f"关联的{wf.title} {case_id} {t.label}")
        self._run_checks(wf, t.checks, facts)
        new_state = self._move(wf, record["state"], t)
        stamp = now.isoformat()
        tx.put_case({**record, "state": new_state, "updated_at": stamp,
                     "updated_by": user.login})
        if t.void_documents:
            self._void_documents(tx, work, case_id, user, f"{wf.title}{t.label}")
        self._audit(tx, stamp, user, case_id, wf, trigger, record["state"], new_state, [], [],
                    note=note)

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

    def _void_documents(self, tx: Tx, work: "_Work", case_id: str, user: User,
                        reason: str) -> None:
        """A cancelled case's issued documents become void: copies recalled, PDFs stamped."""
        stamp = work.now.isoformat()
        for doc in tx.case_documents(case_id):
            if doc["status"] != "issued":
                continue
            doc = {**doc, "status": "void", "voided_at": stamp, "voided_by": user.login,
                   "void_reason": reason}
            tx.put_document(doc)
            self._register_event(tx, stamp, user, "void", doc["number"], reason=reason)
            self._withdraw(tx, work, doc, "作废", user)

    def _load_case(self, tx: Tx, case_id: str) -> dict[str, Any]:
        record = tx.case(case_id)
        if record is None:
            raise NotFoundError(f"找不到案件 \"{case_id}\"（可用 dealerdocs list 查看）", case=case_id)
        return record

    def _authorize(self, user: User, roles: tuple[str, ...], action: str) -> None:
        if set(roles) & set(user.roles):
            return
        mine = "、".join(self.config.role_label(r) for r in user.roles) or "无"
        need = "、".join(dict.fromkeys(self.config.role_label(r) for r in roles)) or "（无人可执行）"
        raise PermissionDenied(f"用户 {user.login}（{user.name}，角色：{mine}）无权{action}；"
                               f"需要角色：{need}", user=user.login, roles=list(roles))

    def _normalize(self, wf: Workflow, data: Mapping[str, Any], current: Mapping[str, Any], *,
                   edits: tuple[str, ...], transition: TransitionSpec | None = None,
                   warnings: list[str] | None = None,
                   stored_files: list[Path] | None = None,
                   files_from: Path | None = None) -> dict[str, Any]:
        """Normalise submitted data against the workflow's fields (all problems at once).

        Fields whose rule depends on another field (``rule_field``) are checked after it, and
        re-checked when only that other field changed; a rule's warning is accepted when the
        field's ``override`` flag is set (in the data or already on the case).
        """
        if not isinstance(data, Mapping):
            raise InputError(f"数据应为 JSON 对象（键值表），收到 {type(data).__name__}")
        # a masked number sent back as it was shown (a form, an API client) leaves it as it is
        data = {k: v for k, v in data.items()
                if not privacy.is_masked(wf.personal_fields.get(k), v, current.get(k))}
        problems: list[InputError] = []
        out: dict[str, Any] = {}
        for key in data:
            spec = wf.fields.get(key)
            if spec is None:
                close = difflib.get_close_matches(key, list(wf.fields), n=1)
                hint = f"，是否想写 \"{close[0]}\"？" if close else ""
                problems.append(InputError(f"未知字段 \"{key}\"{hint}（{wf.title}的字段见 "
                                           f"{wf.source.name}）", field=key))
            elif "*" not in edits and key not in edits:
                where = f"「{transition.label}」" if transition else ""
                problems.append(InputError(f"{where}不能修改{spec.label}（{key}）",
                                           field=key, label=spec.label))
        ordered = sorted((k for k in data if k in wf.fields and ("*" in edits or k in edits)),
                         key=lambda k: wf.fields[k].rule_field is not None
                         or wf.fields[k].override is not None)
        dependants = [n for n, s in wf.fields.items() if s.rule_field and n not in data
                      and s.rule_field in data and current.get(n) is not None]
        for key in [*ordered, *dependants]:
            spec = wf.fields[key]
            raw = data[key] if key in data else current.get(key)
            merged = {**current, **out}
            rule = None
            if spec.rule_field is not None:
                chooser = merged.get(spec.rule_field)
                rule = spec.rule_map.get(chooser) if chooser is not None else None
                if rule is None and not is_empty(raw):
                    ruler = wf.fields[spec.rule_field]
                    problems.append(InputError(
                        f"填写{spec.label}（{key}）前请先选择{ruler.label}（{ruler.name}）"
                        f"：{'、'.join(ruler.choices)}", field=key, label=spec.label))
                    continue
            allow = spec.override is not None and merged.get(spec.override) is True
            if spec.type == "attachments" and isinstance(raw, list):
                try:
                    raw = [self.attachments.store(Path(files_from or ".") / item, stored_files)
                           if isinstance(item, str)
                           else _attached(spec, item, current.get(key)) for item in raw]
                except InputError as err:
                    problems.append(InputError(f"{spec.label}（{key}）：{err.message}",
                                               field=key, label=spec.label))
                    continue
            try:
                out[key] = normalize(spec, raw, self.config, rule=rule,
                                     warnings=(warnings if allow and warnings is not None
                                               else None))
            except InputError as err:
                problems.extend(err.problems)
        if problems:
            raise InputError.combine(problems)
        return out

    def _require(self, wf: Workflow, data: Mapping[str, Any], requires: tuple[str, ...],
                 action: str) -> None:
        missing = [spec for name, spec in wf.fields.items()
                   if is_empty(data.get(name)) and (name in requires or spec.is_required(data))]
        if missing:
            names = "、".join(f"{s.label}（{s.name}）" for s in missing)
            raise InputError(f"{action}需要填写：{names}",
                             problems=[InputError(f"{s.label}（{s.name}）必填", field=s.name,
                                                  label=s.label) for s in missing],
                             fields=[s.name for s in missing])

    def _evaluate(self, wf: Workflow, stored: Mapping[str, Any], today: date | None = None
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
        values = {name: to_python(spec, stored.get(name), self.config)
                  for name, spec in wf.fields.items()}
        totals = wf.compute(values, today or self.clock().date(), self.config.policy)
        return values, totals

    def _run_checks(self, wf: Workflow, names: tuple[str, ...], facts: Mapping[str, Any]
                    ) -> None:
        problems = []
        for name in names:
            for field_name, message in wf.checks[name](facts):
                label = wf.fields[field_name].label if field_name in wf.fields else field_name
                problems.append(InputError(f"{label}（{field_name}）：{message}",
                                           field=field_name, label=label))
        if problems:
            raise InputError.combine(problems)

    def _move(self, wf: Workflow, state: str, t: TransitionSpec) -> str:
        model = _Model()
        wf.machine.add_model(model, initial=state)
        try:
            if not model.trigger(t.trigger, route=t.route):  # type: ignore[attr-defined]
                raise StateError(f"状态机拒绝了 \"{t.trigger}\"", trigger=t.trigger, state=state)
            return model.state  # type: ignore[return-value]
        finally:
            wf.machine.remove_model(model)

    def _issue_documents(self, tx: Tx, work: "_Work", wf: Workflow, t: TransitionSpec,
                         record: dict[str, Any], values: dict[str, Any], totals: dict[str, Any],
                         user: User, new_state: str) -> list[IssuedDocument]:
        if not t.documents:
            return []
        now = work.now
        checkpoints.reached("rendering", f"{'、'.join(t.documents)} "
                                         f"({'rehearsal' if work.rehearsal else 'for real'})")
        prepared = []
        for kind in t.documents:
            spec = wf.documents[kind]
            series = self.config.series[spec.series]
            number = format_number(series, now.year,
                                   tx.next_counter(counter_key(spec.series, series, now.year)))
            previous = [d for d in tx.case_documents(record["id"]) if d["kind"] == kind]
            version = len(previous) + 1
            template = work.renderer.load(self.config.template_path(spec.template))
            context = self._context(wf, spec, record, values, totals, user, now, new_state,
                                    number, version, self._links_context(tx, record))
            docx = work.renderer.render(template, context, {
                "title": f"{spec.title} {number}", "subject": spec.title,
                "author": self.config.dealer.name, "identifier": number,
                "keywords": f"{record['id']} {number}",
                "comments": f"dealerdocs {wf.key}/{t.trigger} case {record['id']}"})
            prepared.append((spec, series, number, version, template, docx, previous))
        from .pdf import finish

        pdfs = work.converter.convert_many([p[5] for p in prepared])
        issued = []
        stamp = now.isoformat()
        for (spec, series, number, version, template, docx, previous), pdf in zip(prepared, pdfs):
            docx_hash = sha256(docx)
            pdf = finish(pdf, {
                "DealerDocsRegisterHash": tx.chain_head("register_log") or "0" * 64,
                "Title": f"{spec.title} {number}", "Author": self.config.dealer.name,
                "Subject": spec.title, "Keywords": f"{record['id']} {number}",
                "DealerDocsNumber": number, "DealerDocsCase": record["id"],
                "DealerDocsWorkflow": wf.key, "DealerDocsTemplate": spec.template,
                "DealerDocsTemplateSHA256": template.sha256, "DealerDocsDocxSHA256": docx_hash},
                spec.signatures)
            rel_docx = self.outbox.relative_path(now.year, spec.series, number, ".docx")
            rel_pdf = self.outbox.relative_path(now.year, spec.series, number, ".pdf")
            for relative, payload in ((rel_docx, docx), (rel_pdf, pdf)):
                work.write(self.outbox, relative, payload)
            if not work.rehearsal:
                checkpoints.reached("outbox written", number)
            for old in previous if spec.supersedes else ():
                if old["status"] == "issued":
                    old = {**old, "status": "superseded", "superseded_by": number,
                           "superseded_at": stamp}
                    tx.put_document(old)
                    self._register_event(tx, stamp, user, "superseded", old["number"],
                                         by=number)
                    self._withdraw(tx, work, old, "换版", user)
            entry = {
                "number": number, "series": spec.series, "year": now.year, "version": version,
                "case_id": record["id"], "workflow": wf.key, "kind": spec.key,
                "title": spec.title, "trigger": t.trigger, "template": spec.template,
                "template_sha256": template.sha256, "issued_at": stamp,
                "issued_by": user.login, "docx": rel_docx, "pdf": rel_pdf,
                "docx_sha256": docx_hash, "pdf_sha256": sha256(pdf), "status": "issued",
                "superseded_by": None, "superseded_at": None}
            tx.put_document(entry)
            self._register_event(tx, stamp, user, "issued", number, case_id=record["id"],
                                 kind=spec.key, version=version, pdf_sha256=entry["pdf_sha256"],
                                 docx_sha256=docx_hash)
            if spec.dispatch_to:
                recipient = record["data"].get(spec.dispatch_to)
                self._auto_dispatch(tx, entry, str(recipient) if recipient else None,
                                    spec.dispatch_dept, user, now)
            issued.append(IssuedDocument(number, spec.key, spec.title, version,
                                         self.outbox.absolute(rel_docx),
                                         self.outbox.absolute(rel_pdf), docx_hash,
                                         entry["pdf_sha256"]))
        return issued

    def _context(self, wf: Workflow, spec: DocumentSpec, record: Mapping[str, Any],
                 values: dict[str, Any], totals: dict[str, Any], user: User, now: datetime,
                 state: str, number: str, version: int,
                 links: Mapping[str, Any] | None = None) -> dict[str, Any]:
        context = copy.deepcopy(values)
        context.update({
            "dealer": dataclasses.asdict(self.config.dealer),
            "doc": {"number": number, "title": spec.title, "version": version,
                    "issued_at": now, "issuer": {"login": user.login, "name": user.name}},
            "case": {"id": record["id"], "state": state, "state_label": wf.states[state].label},
            "totals": totals,
            "links": dict(links or {}),
            # the store's rules as the checks apply them, so the printed terms say the same
            "policy": dict(self.config.policy),
            # how long personal data is kept, as dealerdocs purge --expired applies it
            "privacy": {"retention": {
                key: privacy.period_text(self.config.privacy.retention_days[key])
                if key in self.config.privacy.retention_days else "法律规定的期限"
                for key in self.workflows}},
        })
        return context

    def _changes(self, wf: Workflow, old: Mapping[str, Any], new: Mapping[str, Any]
                 ) -> list[dict[str, Any]]:
        return changes(wf, old, new, self.personal_key)

    def _audit(self, tx: Tx, stamp: str, user: User, case_id: str, wf: Workflow, trigger: str,
               source: str | None, dest: str, changed: list[dict[str, Any]],
               documents: list[str], *, warnings: list[str] | None = None,
               note: str | None = None) -> None:
        """Append one event to the audit trail (hash-chained; never updated or deleted)."""
        tx.append_chained("audit", {"at": stamp, "actor": user.login,
                                    "case_id": case_id, "workflow": wf.key, "trigger": trigger,
                                    "from": source, "to": dest, "changed": changed,
                                    "documents": documents, "warnings": warnings or [],
                                    "note": note})

    def _links_context(self, tx: Tx, record: Mapping[str, Any]) -> dict[str, Any]:
        """``links.<workflow>``: the linked case's id and its current issued document number."""
        out = {}
        for key, ids in record.get("links", {}).items():
            if not ids:
                continue
            docs = sorted((d for d in tx.case_documents(ids[-1]) if d["status"] == "issued"),
                          key=lambda d: d["issued_at"])
            out[key] = {"id": ids[-1], "ids": list(ids), "number": docs[-1]["number"] if docs else ""}
        return out


def changes(wf: Workflow, old: Mapping[str, Any], new: Mapping[str, Any], key: bytes
            ) -> list[dict[str, Any]]:
    """The audit trail's record of what changed: old and new values, except for personal
    data, which is recorded by keyed hashes only (``personal``: a change shows, the value
    cannot be read back, and a purge has nothing to erase in the chain)."""
    out = []
    for k in sorted(set(old) | set(new)):
        if old.get(k) == new.get(k):
            continue
        if k in wf.personal_fields:
            out.append({"field": k, "personal": True,
                        "old_hmac": privacy.keyed_hash(key, old.get(k)),
                        "new_hmac": privacy.keyed_hash(key, new.get(k))})
        else:
            out.append({"field": k, "old": old.get(k), "new": new.get(k)})
    return out


def _identifier(value: str) -> str:
    """A mobile or resident ID number as the store keeps it (a purge request names one)."""
    from . import validators

    for rule in (validators.mobile, validators.cn_id):
        try:
            return rule(value)
        except validators.RuleViolation:
            continue
    raise InputError(f"\"{value}\" 既不是有效的手机号，也不是有效的身份证号", field="customer")


def _attached(spec, item: Any, current: Any) -> dict[str, Any]:
    """An attachment record sent back as it is (kept on the case): only one already on this
    case is accepted, and its stored record is used, never what was sent (a made-up record
    could cite evidence nobody uploaded, or point at a file outside the store)."""
    on_case = {a.get("sha256"): a for a in current or [] if isinstance(a, dict)}
    found = on_case.get(item.get("sha256")) if isinstance(item, Mapping) else None
    if found is None:
        name = item.get("name") if isinstance(item, Mapping) else None
        raise InputError(f"附件 {name or item!r} 不是本案件已上传的文件；请上传文件本身",
                         field=spec.name, label=spec.label)
    return dict(found)


def _span(start: str, end: str) -> str:
    """2026-11-27T10:00 – 10:30 (same day) or full ISO on both ends."""
    if start[:10] == end[:10]:
        return f"{start[:10]} {start[11:16]}–{end[11:16]}"
    return f"{start[:16].replace('T', ' ')}–{end[:16].replace('T', ' ')}"


def _case_seq(case_id: str) -> int:
    tail = case_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _create_key(path: Path) -> tuple[bytes, bool]:
    """A new random seal key at ``path`` (mode 0600), written whole or not at all and never
    replacing a key another process made at the same moment; (the key, whether ours is it)."""
    try:
        made = create_once(path, (secrets.token_hex(32) + "\n").encode("ascii"))
        if made:
            log.info("made the seal key %s", path)
        return path.read_bytes(), made
    except OSError as err:
        raise StorageError(f"无法生成封存密钥 {path}：{err.strerror}；可以自行生成："
                           f"openssl rand -hex 32 > {path} && chmod 600 {path}",
                           path=str(path)) from err


def _append_line(path: Path, line: str) -> None:
    """Append ``line`` to the text file ``path`` (made if missing), synced to disk."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab+") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell():
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
            fh.write(line.encode("utf-8") + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        raise StorageError(f"无法写入封存文件 {path}：{err.strerror}", path=str(path)) from err
