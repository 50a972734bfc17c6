"""Document control (ISO 9001 §7.5, 文件发放回收记录表): copies handed out, recalls, void and
recalled stamps, the register and its export, and a document's files.

Every operation is one store transaction, and every change to the register is also an event in
the hash-chained ``register_log`` (:class:`~engine.services.trail.Trail`). The issuing service
calls :meth:`DocumentControl.withdraw`, :meth:`~DocumentControl.auto_dispatch` and
:meth:`~DocumentControl.void_documents` inside its own unit of work.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from ..archive import Archive, sha256
from ..config import Config, User
from ..dates import cn_date
from ..errors import InputError, NotFoundError, StateError, StorageError
from ..files import atomic_write_bytes
from ..previews import PagePreviews
from ..store import Store, Tx
from ..text import clean_line
from .guard import Guard
from .press import Press
from .trail import Trail
from .units import Units, Work

log = logging.getLogger(__name__)

RECALL_REASONS = ("换版", "作废", "损坏", "丢失")
CHANNELS = ("纸质", "电子")
REGISTER_COLUMNS = ("序号", "文件编号", "文件名称", "版本/修改状态", "发放编号", "份数", "发放日期",
                    "发放人", "领用部门", "签收人", "回收日期", "交回人", "回收签收人", "回收原因",
                    "处置", "备注")
STAMP_WORDS = {"换版": "已收回", "作废": "作废"}
REGISTER_TEXT_MAX = 60


class DocumentControl:
    """Dispatch, recall, the register and the files of the documents of one store."""

    def __init__(self, config: Config, store: Store, archive: Archive, previews: PagePreviews,
                 guard: Guard, trail: Trail, units: Units, press: Press,
                 clock: Callable[[], datetime]) -> None:
        self.config = config
        self.store = store
        self.archive = archive
        self.previews = previews
        self.guard = guard
        self.trail = trail
        self.units = units
        self.press = press
        self.clock = clock

    # --- public operations -------------------------------------------------------------------

    def dispatch(self, number: str, *, to: str, dept: str, actor: str, copies: int = 1,
                 channel: str = "纸质", print_copies: bool = False) -> dict[str, Any]:
        """Record ``copies`` copies of document ``number`` handed to ``to`` (发放)."""
        user = self.config.user(actor)
        reach = self.guard.reach(actor)
        self.guard.allow(user, reach.dispatch, "发放文件", "dispatch")
        problems = []
        to = self._register_text(to, "领用人", "to", "--to", problems)
        dept = self._register_text(dept, "领用部门", "dept", "--dept", problems)
        if channel not in CHANNELS:
            problems.append(InputError(f"发放方式 \"{channel}\" 无效；可选：{'、'.join(CHANNELS)}",
                                       field="channel"))
        if not 1 <= copies <= 50:
            problems.append(InputError(f"份数应在 1–50 之间，收到 {copies}", field="copies"))
        if problems:
            raise InputError.combine(problems)
        now = self.clock()
        made: list[dict[str, Any]] = []
        with self.store.transaction() as tx:
            doc = self.guard.visible_document(tx, number, reach)
            if doc["status"] != "issued":
                raise StateError(f"文件 {number} 的状态是「{_status_label(doc['status'])}」，"
                                 f"不能再发放；请发放现行版本"
                                 f"{'（' + doc['superseded_by'] + '）' if doc.get('superseded_by') else ''}",
                                 number=number)
            for _ in range(copies):
                made.append(self._new_copy(tx, doc, to, dept, channel, user, now))
        result = {"number": number, "copies": [self._copy_view(c) for c in made]}
        if print_copies:
            result["printed"] = self._print_copies(number, made)
        return result

    def recall(self, number: str, *, reason: str, actor: str, copy: int | None = None,
               from_: str | None = None, keep: bool = False) -> dict[str, Any]:
        """Record copies coming back (回收), or a lost copy declared void and replaced."""
        user = self.config.user(actor)
        reach = self.guard.reach(actor)
        self.guard.allow(user, reach.recall, "回收文件", "recall")
        if reason not in RECALL_REASONS:
            raise InputError(f"回收原因 \"{reason}\" 无效；可选：{'、'.join(RECALL_REASONS)}",
                             field="reason")
        problems: list[InputError] = []
        from_ = self._register_text(from_, "交回人", "from", "--from", problems, required=False)
        if problems:
            raise InputError.combine(problems)
        return self.units.run(lambda tx, work: self._recall(tx, work, number, reason, user, reach,
                                                            copy, from_, keep))

    def _recall(self, tx: Tx, work: Work, number: str, reason: str, user: User, reach,
                copy: int | None, from_: str | None, keep: bool) -> dict[str, Any]:
        """The body of :meth:`recall` in a unit of work (a rehearsal or the real one): a
        recall for 换版 or 作废 stamps the PDF, which converts."""
        now = work.now
        doc = self.guard.visible_document(tx, number, reach)
        current = self._current_copies(tx, number)
        if copy is not None:
            target = current.get(copy)
            if target is None:
                raise NotFoundError(f"文件 {number} 没有发放过发放号 {copy:02d} 的副本"
                                    f"（已发放：{_copy_list(current) or '无'}）", number=number)
            if target["status"] != "out":
                raise StateError(f"发放号 {target['label']} 已{_copy_state(target)}，不能再回收",
                                 number=number)
            targets = [target]
        else:
            targets = [c for c in current.values() if c["status"] == "out"
                       and (from_ is None or c["recipient"] == from_)]
            if not targets:
                who = f"在 {from_} 处" if from_ else ""
                raise StateError(f"文件 {number} {who}没有未收回的副本", number=number)
        results = [self._take_back(tx, doc, c, reason, user, now, returned_by=from_,
                                   keep=keep) for c in targets]
        if reason in STAMP_WORDS:
            self._stamp_document(tx, work, doc, STAMP_WORDS[reason], reason)
        return {"number": number, "reason": reason, "copies": results}

    def document(self, number: str, *, actor: str) -> dict[str, Any]:
        """A document's life: the register entry, its copies, events, versions before/after
        (if ``actor`` sees it: their case's, or every document for the register's keeper)."""
        reach = self.guard.reach(actor)
        with self.store.snapshot() as tx:
            doc = self.guard.visible_document(tx, number, reach)
            copies = sorted(tx.copies(number), key=lambda c: (c["copy_no"], c["rev"]))
            events = [e for e in tx.case_log("register_log", doc["case_id"])
                      if e.get("number") == number]
            before = [d["number"] for d in tx.case_documents(doc["case_id"])
                      if d.get("superseded_by") == number]
        view = self.view(doc, fetch=True)
        view.update({"copies": [self._copy_view(c) for c in copies],
                     "events": [{k: v for k, v in e.items() if k not in ("schema_version",)}
                                for e in events],
                     "supersedes": before[0] if before else None})
        return view

    def register_rows(self, start: date | None = None, end: date | None = None, *,
                      actor: str) -> list[list]:
        """文件发放回收记录表 rows (domain.md §4.3), one per copy issued, oldest first; for
        the roles that read the register (``register = true``)."""
        user = self.config.user(actor)
        self.guard.allow(user, self.guard.reach(actor).register, "查看文件发放回收记录表", "register")
        with self.store.snapshot() as tx:
            copies = sorted(tx.find_copies(start, end),
                            key=lambda c: (c["issued_at"], c["label"], c["rev"]))
            docs = {n: tx.document(n) or {} for n in dict.fromkeys(c["number"] for c in copies)}
        rows = []
        for c in copies:
            d = docs[c["number"]]
            note = []
            if c.get("replaces"):
                note.append(f"补发，替代 {c['replaces']}")
            if c.get("rev", 1) > 1:
                note.append("损坏换发")
            if c["status"] == "void":
                note.append("已声明作废")
            rows.append([len(rows) + 1, c["number"], d.get("title", ""),
                         f"第 {d.get('version', '')} 版（{_status_label(d.get('status', ''))}）",
                         c["label"], 1, _day(c["issued_at"]), self._user_name(c["issued_by"]),
                         c["dept"], c["recipient"], _day(c.get("returned_at")),
                         c.get("returned_by") or "", self._user_name(c.get("received_by")),
                         c.get("reason") or "", c.get("disposition") or "", "；".join(note)])
        return rows

    def register_export(self, fmt: str, out: Path, start: date | None = None,
                        end: date | None = None, *, actor: str) -> dict[str, Any]:
        if fmt not in ("xlsx", "docx", "pdf"):
            raise InputError(f"不支持的格式 {fmt}（可用：xlsx、docx、pdf）", field="format")
        from .. import reports

        today = self.clock().date()
        table = reports.Table("文件发放回收记录表", reports.period_label(start, end, today),
                              list(REGISTER_COLUMNS),
                              self.register_rows(start, end, actor=actor))
        if fmt == "xlsx":
            payload = reports.to_xlsx(table)
        else:
            docx = reports.to_docx(table, self.config.dealer.name)
            payload = docx if fmt == "docx" else self.press.converter.convert(docx)
        out = Path(out)
        try:
            atomic_write_bytes(out, payload)
        except OSError as err:
            raise StorageError(f"无法写入 {out}：{err}", path=str(out)) from err
        return {"rows": len(table.rows), "file": str(out.resolve())}

    def page_count(self, number: str, *, actor: str) -> int:
        """How many pages the PDF of document ``number`` has, if ``actor`` sees it."""
        from pypdf import PdfReader   # not loaded by commands that read no PDF

        return len(PdfReader(self._pdf(number, actor)[1]).pages)

    def page_image(self, number: str, page: int = 1, *, actor: str) -> Path:
        """Page ``page`` of a document's PDF as a PNG (kept a few days), if ``actor`` sees it."""
        from pypdf import PdfReader

        life, pdf = self._pdf(number, actor)
        made = self.previews.path(life["pdf_sha256"], page)
        if made.is_file():         # made before: the viewer's pictures cost no PDF parse
            return made
        pages = len(PdfReader(pdf).pages)
        if not 1 <= page <= pages:
            raise NotFoundError(f"文件 {number} 没有第 {page} 页（共 {pages} 页）", number=number)
        return self.previews.page(pdf, life["pdf_sha256"], page, number)

    def _pdf(self, number: str, actor: str) -> tuple[dict[str, Any], Path]:
        """A document's register entry and its PDF, which must still be archived."""
        life = self.document(number, actor=actor)
        pdf = Path(life["pdf"])
        if life.get("files_purged") or not pdf.is_file():
            raise NotFoundError(f"文件 {number} 的存档文件缺失或已删除", number=number)
        return life, pdf

    def document_file(self, number: str, which: str, *, actor: str) -> Path | None:
        """A local file with the ``pdf``, ``docx``, ``stamped`` (作废 / 已收回) or ``signed`` (the
        customer-signed version) file of
        document ``number``, by the path and hash the register records, if ``actor`` sees the
        document; None if the document has no such file (a path that is not there if it is
        missing from the archive: ``verify`` says so)."""
        with self.store.snapshot() as tx:
            doc = self.guard.visible_document(tx, number, self.guard.reach(actor))
        keys = {"pdf": ("pdf", "pdf_sha256"), "docx": ("docx", "docx_sha256"),
                "stamped": ("stamped_pdf", "stamped_sha256"),
                "signed": ("signed_pdf", "signed_sha256")}.get(which)
        if keys is None or not doc.get(keys[0]):
            return None
        return self.archive.fetch(doc[keys[0]], doc[keys[1]])

    def view(self, d: Mapping[str, Any], fetch: bool = False) -> dict[str, Any]:
        """A register entry as callers see it: the files as absolute local paths, made local
        with ``fetch`` (one document or one case; a list names where they are or will be, so
        listing a year of documents reads none of them)."""
        view = {k: v for k, v in d.items() if k != "schema_version"}
        local = self.archive.fetch if fetch and not d.get("files_purged") else self.archive.where
        view["docx"] = str(local(d["docx"], d["docx_sha256"]))
        view["pdf"] = str(local(d["pdf"], d["pdf_sha256"]))
        return view   # the stamped copy keeps its relative path: document_file(…, "stamped")

    # --- used while issuing, superseding and voiding (inside the caller's unit of work) ------

    def auto_dispatch(self, tx: Tx, doc: Mapping[str, Any], recipient: str | None, dept: str,
                       user: User, now: datetime) -> None:
        if recipient:
            self._new_copy(tx, doc, recipient, dept, "纸质", user, now)

    def withdraw(self, tx: Tx, work: Work, doc: Mapping[str, Any], reason: str, user: User
                 ) -> None:
        """Recall every open copy of ``doc`` (换版 on a revision, 作废 on cancellation) and
        write the stamped PDF beside the original."""
        for c in self._current_copies(tx, doc["number"]).values():
            if c["status"] == "out":
                self._take_back(tx, doc, c, reason, user, work.now, returned_by=None, keep=True)
        self._stamp_document(tx, work, doc, STAMP_WORDS[reason], reason)

    def void_documents(self, tx: Tx, work: Work, case_id: str, user: User,
                       reason: str) -> None:
        """A cancelled case's issued documents become void: copies recalled, PDFs stamped."""
        stamp = work.now.isoformat()
        for doc in tx.case_documents(case_id):
            if doc["status"] != "issued":
                continue
            doc = {**doc, "status": "void", "voided_at": stamp, "voided_by": user.login,
                   "void_reason": reason}
            tx.put_document(doc)
            self.trail.register_event(tx, stamp, user, "void", doc["number"], reason=reason)
            self.withdraw(tx, work, doc, "作废", user)

    # --- internals ---------------------------------------------------------------------------

    @staticmethod
    def _register_text(value: str | None, label: str, name: str, option: str,
                       problems: list[InputError], required: bool = True) -> str | None:
        """A name or department written into the register: cleaned like every text field
        (control and direction-override characters removed) and at most 60 characters."""
        try:
            text = clean_line(value or "", max_length=REGISTER_TEXT_MAX)
        except ValueError as err:
            problems.append(InputError(f"{label}（{option}）{err}", field=name, label=label))
            return None
        if required and not text:
            problems.append(InputError(f"请填写{label}（{option}）", field=name, label=label))
        return text or None

    def _document_record(self, tx: Tx, number: str) -> dict[str, Any]:
        doc = tx.document(number)
        if doc is None:
            raise NotFoundError(f"找不到文件编号 \"{number}\"（可用 dealerdocs docs 查看已出具的文件）",
                                number=number)
        return doc

    def _current_copies(self, tx: Tx, number: str) -> dict[int, dict[str, Any]]:
        """The latest record of each copy number (a damaged copy exchanged keeps its number)."""
        latest: dict[int, dict[str, Any]] = {}
        for c in tx.copies(number):
            if c["copy_no"] not in latest or c["rev"] > latest[c["copy_no"]]["rev"]:
                latest[c["copy_no"]] = c
        return latest

    def _new_copy(self, tx: Tx, doc: Mapping[str, Any], to: str, dept: str, channel: str,
                  user: User, now: datetime, *, copy_no: int | None = None, rev: int = 1,
                  replaces: str | None = None) -> dict[str, Any]:
        number = doc["number"]
        copy_no = copy_no or max((c["copy_no"] for c in tx.copies(number)), default=0) + 1
        label = f"{number}-{copy_no:02d}"
        record = {"key": f"{label}/{rev}", "number": number, "copy_no": copy_no, "rev": rev,
                  "label": label, "recipient": to, "dept": dept, "channel": channel,
                  "issued_at": now.isoformat(), "issued_by": user.login, "status": "out",
                  "returned_at": None, "returned_by": None, "received_by": None, "reason": None,
                  "disposition": None, "replaces": replaces, "replaced_by": None}
        tx.put_copy(record)
        self.trail.register_event(tx, now.isoformat(), user, "dispatched", number, copy=label,
                                  recipient_hmac=self.trail.hash(to),
                                  dept=dept, channel=channel, rev=rev)
        return record

    def _take_back(self, tx: Tx, doc: Mapping[str, Any], c: dict[str, Any], reason: str,
                   user: User, now: datetime, *, returned_by: str | None, keep: bool
                   ) -> dict[str, Any]:
        stamp = now.isoformat()
        if reason == "丢失":
            # the lost number is declared void; a replacement gets a new number
            record = {**c, "status": "void", "reason": reason, "disposition": "声明作废",
                      "received_by": user.login, "returned_at": None}
            tx.put_copy(record)
            self.trail.register_event(tx, stamp, user, "lost", doc["number"], copy=c["label"])
            if doc["status"] == "issued":
                new = self._new_copy(tx, doc, c["recipient"], c["dept"], c["channel"], user, now,
                                     replaces=c["label"])
                record["replaced_by"] = new["label"]
                tx.put_copy(record)
            return self._copy_view(record)
        disposition = "作废留存" if keep else "销毁"
        if reason == "损坏":
            disposition = "销毁"
        record = {**c, "status": "returned", "reason": reason, "disposition": disposition,
                  "returned_at": stamp, "returned_by": returned_by or c["recipient"],
                  "received_by": user.login}
        tx.put_copy(record)
        self.trail.register_event(tx, stamp, user, "recalled", doc["number"], copy=c["label"],
                                  reason=reason, disposition=disposition)
        if reason == "损坏" and doc["status"] == "issued":
            # a damaged copy is exchanged and keeps its number
            self._new_copy(tx, doc, c["recipient"], c["dept"], c["channel"], user, now,
                           copy_no=c["copy_no"], rev=c["rev"] + 1)
        return self._copy_view(record)

    def _stamp_document(self, tx: Tx, work: Work, doc: Mapping[str, Any], word: str,
                        reason: str) -> None:
        """A stamped copy of the PDF beside the original (which stays untouched)."""
        doc = tx.document(doc["number"]) or doc
        if doc.get("stamped_pdf"):
            return
        original = self._original(doc, tx)
        from .. import stamps

        stamped = stamps.void_stamp(original, word=word, when=cn_date(work.now.date()),
                                    reason=reason, converter=work.converter)
        suffix = ".recalled.pdf" if word == "已收回" else ".void.pdf"
        relative = doc["pdf"][: -len(".pdf")] + suffix
        work.write(self.archive, tx, relative, stamped)
        tx.put_document({**doc, "stamped_pdf": relative, "stamped_sha256": sha256(stamped),
                         "stamp": word})

    def _print_copies(self, number: str, made: list[dict[str, Any]]) -> list[str]:
        """PDFs of the copies handed out, each marked 受控文件 with its copy number."""
        with self.store.snapshot() as tx:
            doc = self._document_record(tx, number)
        original = self._original(doc)
        from .. import stamps

        marked = stamps.controlled_copies(original, copy_labels=[c["label"] for c in made],
                                          converter=self.press.converter)  # one LibreOffice run
        folder = Path(doc["pdf"]).parent / "copies"
        return [str(self.archive.hand_out(str(folder / f"{c['label']}.pdf"), pdf))
                for c, pdf in zip(made, marked)]

    def _original(self, doc: Mapping[str, Any], tx: Tx | None = None) -> bytes:
        """The archived PDF of ``doc`` (to stamp or print), which must be there."""
        data = self.archive.read(doc["pdf"], doc["pdf_sha256"], tx)
        if data is None:
            raise StorageError(f"文件 {doc['number']} 的存档 PDF 缺失（{doc['pdf']}），"
                               f"请运行 dealerdocs verify 查明", number=doc["number"])
        return data

    def _copy_view(self, c: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in c.items() if k not in ("key", "schema_version")}

    def _user_name(self, login: str | None) -> str:
        if not login:
            return ""
        user = self.config.users.get(login)
        return user.name if user else login


def _status_label(status: str) -> str:
    return {"issued": "现行", "superseded": "已换版", "void": "作废"}.get(status, status)


def _copy_state(c: Mapping[str, Any]) -> str:
    if c["status"] == "void":
        return "声明作废（丢失）"
    return f"于 {_day(c['returned_at'])} 收回"


def _copy_list(current: Mapping[int, Mapping[str, Any]]) -> str:
    return "、".join(f"{n:02d}" for n in sorted(current))


def _day(value: str | None) -> str:
    return value[:10] if value else ""
