"""Issuing a transition's documents: number → render → convert → finish → archive → register,
inside the unit of work of the transition (so a failure anywhere leaves no number taken, no file
and no register entry); and the same documents as drafts (``preview``), stamped 草稿 and never
numbered, registered or stored.

The renderer, the converter and the PDF finisher know nothing of cases or stores: this service
hands them bytes and records what comes back.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import access, checkpoints
from ..archive import Archive, sha256
from ..config import Config, User
from ..convert import ArchivalDocx
from ..dates import cn_date
from ..errors import NotFoundError, StateError
from ..files import atomic_write_bytes
from ..numbering import counter_key, format_number
from ..store import Store, Tx
from ..workflow import TransitionSpec, Workflow
from .control import DocumentControl
from .definitions import Definitions
from .guard import Guard
from .press import Press
from .trail import Trail
from .units import Work


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



class Issuing:
    """The documents of one dealership's transitions: issued for real, or drafted."""

    def __init__(self, config: Config, workflows: Mapping[str, Workflow], store: Store,
                 archive: Archive, guard: Guard, definitions: Definitions, trail: Trail,
                 control: DocumentControl, press: Press, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.workflows = workflows
        self.store = store
        self.archive = archive
        self.guard = guard
        self.definitions = definitions
        self.trail = trail
        self.control = control
        self.press = press
        self.clock = clock

    def issue(self, tx: Tx, work: Work, wf: Workflow, t: TransitionSpec, record: dict[str, Any],
              values: dict[str, Any], totals: dict[str, Any], user: User, new_state: str
              ) -> list[IssuedDocument]:
        """The documents transition ``t`` issues for ``record`` (already in ``new_state``),
        numbered, rendered, converted (by ``work``'s converter), finished, written to the
        archive and registered, with the documents they supersede withdrawn and any copies the
        workflow hands out on issue recorded."""
        if not t.documents:
            return []
        now = work.now
        # the password is checked in the rehearsal too, before anything is numbered or written
        signer = (self.signer() if any(self.config.document_kind(k).sign for k in t.documents)
                  else None)
        from ..pdf import finish, signature_bookmarks   # the PDF stack loads when it is needed

        checkpoints.reached("rendering", f"{'、'.join(t.documents)} "
                                         f"({'rehearsal' if work.rehearsal else 'for real'})")
        prepared = []
        for kind in t.documents:
            spec = wf.documents[kind]
            series = self.config.series[spec.series]
            number = format_number(series, now.year,
                                   tx.next_counter(counter_key(spec.series, series, now.year,
                                                               self.config.current_store)))
            previous = [d for d in tx.case_documents(record["id"]) if d["kind"] == kind]
            version = len(previous) + 1
            template = work.renderer.load(self.config.template_path(spec.template))
            context = self.definitions.context(wf, spec, record, values, totals, user, now,
                                               new_state, number, version,
                                               self.definitions.links_context(tx, record))
            docx = work.renderer.render(template, context, {
                "title": f"{spec.title} {number}", "subject": spec.title,
                "author": self.config.dealer.name, "identifier": number,
                "keywords": f"{record['id']} {number}",
                "comments": f"dealerdocs {wf.key}/{t.trigger} case {record['id']}"},
                signature_bookmarks(spec.signatures))
            if self.config.document_kind(spec.key).pdf_a:   # the archive copy: PDF/A-2b
                docx = ArchivalDocx(docx)
            prepared.append((spec, series, number, version, template, docx, previous))
        from ..qr import verification_url

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
                spec.signatures,
                qr=verification_url(self.config.verification.base_url, number, version,
                                    docx_hash))
            signed_in = spec.store_signature if self.config.document_kind(spec.key).sign else None
            if signed_in and signer is not None and not work.rehearsal:
                # last: nothing may change the PDF after the store signs it (a rehearsal's
                # bytes are never archived, so it does not spend the signature)
                pdf = signer.sign(pdf, signed_in, now)
            rel_docx = self.archive.relative_path(now.year, spec.series, number, ".docx")
            rel_pdf = self.archive.relative_path(now.year, spec.series, number, ".pdf")
            for relative, payload in ((rel_docx, docx), (rel_pdf, pdf)):
                work.write(self.archive, tx, relative, payload)
            if not work.rehearsal:
                checkpoints.reached("outbox written", number)
            for old in previous if spec.supersedes else ():
                if old["status"] == "issued":
                    old = {**old, "status": "superseded", "superseded_by": number,
                           "superseded_at": stamp}
                    tx.put_document(old)
                    self.trail.register_event(tx, stamp, user, "superseded", old["number"],
                                              by=number)
                    self.control.withdraw(tx, work, old, "换版", user)
            entry = {
                "number": number, "series": spec.series, "year": now.year, "version": version,
                "case_id": record["id"], "workflow": wf.key, "kind": spec.key,
                "title": spec.title, "trigger": t.trigger, "template": spec.template,
                "template_sha256": template.sha256, "issued_at": stamp,
                "issued_by": user.login, "docx": rel_docx, "pdf": rel_pdf,
                "docx_sha256": docx_hash, "pdf_sha256": sha256(pdf), "status": "issued",
                "superseded_by": None, "superseded_at": None}
            if signed_in:
                entry["store_signature"] = signed_in   # verify expects a valid signature there
            tx.put_document(entry)
            self.trail.register_event(tx, stamp, user, "issued", number, case_id=record["id"],
                                      kind=spec.key, version=version,
                                      pdf_sha256=entry["pdf_sha256"], docx_sha256=docx_hash)
            if spec.dispatch_to:
                recipient = record["data"].get(spec.dispatch_to)
                self.control.auto_dispatch(tx, entry, str(recipient) if recipient else None,
                                           spec.dispatch_dept, user, now)
            issued.append(IssuedDocument(number, spec.key, spec.title, version,
                                         self.archive.where(rel_docx, docx_hash),
                                         self.archive.where(rel_pdf, entry["pdf_sha256"]),
                                         docx_hash,
                                         entry["pdf_sha256"]))
        return issued

    def signer(self):
        """The store's signer (:mod:`engine.signing`), read from ``[signing]`` each time it is
        needed, so that a renewed certificate or password applies without a restart."""
        from ..signing import store_signer

        return store_signer(self.config)

    def context_for(self, workflow: str, data: Mapping[str, Any], kind: str, actor: str,
                    number: str = "（预览）") -> dict[str, Any]:
        """The template context a document of ``kind`` would get for ``data`` (nothing stored).

        For previews and benchmarks; ``data`` is checked like a new case's data.
        """
        wf = self.definitions.workflow(workflow)
        user = self.config.user(actor)
        if kind not in wf.documents:
            raise NotFoundError(f"{wf.title}没有文档 \"{kind}\"（可用：{'、'.join(wf.documents)}）")
        stored = self.definitions.normalize(wf, data, {}, edits=("*",))
        values, totals = self.definitions.evaluate(wf, stored)
        record = {"id": f"{wf.case_prefix}-0"}
        return self.definitions.context(wf, wf.documents[kind], record, values, totals, user,
                                        self.clock(), wf.initial, number, 1)

    def preview(self, target: str, actor: str, data: Mapping[str, Any] | None = None,
                trigger: str | None = None, out_dir: Path | None = None) -> dict[str, Any]:
        """Render the documents a transition would issue, stamped 草稿 / DRAFT on every page,
        without numbering, registering or changing anything. ``target`` is a case id (its data,
        with ``data`` laid over it) or a workflow key (``data`` alone)."""
        user = self.config.user(actor)
        reach = self.guard.reach(actor)
        with self.store.snapshot() as tx:
            record = (self.guard.visible_case(tx, target, reach)
                      if target not in self.workflows else None)
            wf = self.definitions.workflow(record["workflow"] if record else target)
            links = self.definitions.links_context(tx, record) if record else {}
            earlier = tx.case_documents(record["id"]) if record else []
        state = record["state"] if record else wf.initial
        if record is None and not access.may_create(user, wf):
            self.guard.authorize(user, wf.create_roles, f"预览新的{wf.title}")
        base = record["data"] if record else {}
        patch = self.definitions.normalize(wf, data or {}, base, edits=("*",))
        values, totals = self.definitions.evaluate(wf, {**base, **patch})
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
            template = self.press.renderer.load(self.config.template_path(spec.template))
            context = self.definitions.context(wf, spec, record or {"id": f"{wf.case_prefix}-（新）"},
                                               values, totals, user, now, state, "草稿（未编号）",
                                               sum(d["kind"] == kind for d in earlier) + 1, links)
            rendered.append((spec, self.press.renderer.render(template, context, {
                "title": f"{spec.title}（草稿）", "subject": spec.title})))
        pdfs = self.press.converter.convert_many([docx for _, docx in rendered])
        files = []
        for (spec, docx), pdf in zip(rendered, pdfs):
            from .. import stamps

            pdf = stamps.void_stamp(pdf, word="草稿", when=cn_date(now.date()),
                                    reason="DRAFT · 预览，非正式文件", converter=self.press.converter)
            for suffix, payload in ((".docx", docx), (".pdf", pdf)):
                path = folder / f"{spec.key}-草稿{suffix}"
                atomic_write_bytes(path, payload)
                files.append(str(path.resolve()))
        return {"workflow": wf.key, "case": record["id"] if record else None,
                "documents": [spec.key for spec, _ in rendered], "files": files}
