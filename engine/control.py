"""Document control (ISO 9001 §7.5, 文件发放回收记录表): copies handed out, recalls, void and
recalled stamps, the register's hash-chained log and its export.

Mixed into :class:`engine.Engine`; every operation is one store transaction, and every change
to the register is also an event in the hash-chained ``register_log``.
"""
from __future__ import annotations

import dataclasses
import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any, Mapping

from . import chain, privacy
from .archive import FileProblem, sha256
from .config import User
from .dates import cn_date
from .errors import InputError, NotFoundError, PermissionDenied, StateError, StorageError
from .files import atomic_write_bytes
from .seal import LABELS as LOG_LABELS
from .store import Tx
from .text import clean_line

log = logging.getLogger(__name__)

RECALL_REASONS = ("换版", "作废", "损坏", "丢失")
CHANNELS = ("纸质", "电子")
REGISTER_COLUMNS = ("序号", "文件编号", "文件名称", "版本/修改状态", "发放编号", "份数", "发放日期",
                    "发放人", "领用部门", "签收人", "回收日期", "交回人", "回收签收人", "回收原因",
                    "处置", "备注")
STAMP_WORDS = {"换版": "已收回", "作废": "作废"}
REGISTER_TEXT_MAX = 60


class DocumentControl:
    """Dispatch, recall and the register; expects the Engine's store, outbox, converter."""

    # --- public operations -------------------------------------------------------------------

    def dispatch(self, number: str, *, to: str, dept: str, actor: str, copies: int = 1,
                 channel: str = "纸质", print_copies: bool = False) -> dict[str, Any]:
        """Record ``copies`` copies of document ``number`` handed to ``to`` (发放)."""
        user = self.config.user(actor)
        reach = self.reach(actor)
        self._allow(user, reach.dispatch, "发放文件", "dispatch")
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
            doc = self._visible_document(tx, number, reach)
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
        reach = self.reach(actor)
        self._allow(user, reach.recall, "回收文件", "recall")
        if reason not in RECALL_REASONS:
            raise InputError(f"回收原因 \"{reason}\" 无效；可选：{'、'.join(RECALL_REASONS)}",
                             field="reason")
        problems: list[InputError] = []
        from_ = self._register_text(from_, "交回人", "from", "--from", problems, required=False)
        if problems:
            raise InputError.combine(problems)
        return self._run(lambda tx, work: self._recall(tx, work, number, reason, user, reach,
                                                       copy, from_, keep))

    def _recall(self, tx: Tx, work, number: str, reason: str, user: User, reach, copy: int | None,
                from_: str | None, keep: bool) -> dict[str, Any]:
        """The body of :meth:`recall` in a unit of work (a rehearsal or the real one): a
        recall for 换版 or 作废 stamps the PDF, which converts."""
        now = work.now
        doc = self._visible_document(tx, number, reach)
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
        reach = self.reach(actor)
        with self.store.snapshot() as tx:
            doc = self._visible_document(tx, number, reach)
            copies = sorted(tx.copies(number), key=lambda c: (c["copy_no"], c["rev"]))
            events = [e for e in tx.case_log("register_log", doc["case_id"])
                      if e.get("number") == number]
            before = [d["number"] for d in tx.case_documents(doc["case_id"])
                      if d.get("superseded_by") == number]
        view = self._document_view(doc)
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
        self._allow(user, self.reach(actor).register, "查看文件发放回收记录表", "register")
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
        from . import reports

        today = self.clock().date()
        table = reports.Table("文件发放回收记录表", reports.period_label(start, end, today),
                              list(REGISTER_COLUMNS),
                              self.register_rows(start, end, actor=actor))
        if fmt == "xlsx":
            payload = reports.to_xlsx(table)
        else:
            docx = reports.to_docx(table, self.config.dealer.name)
            payload = docx if fmt == "docx" else self.converter.convert(docx)
        out = Path(out)
        try:
            atomic_write_bytes(out, payload)
        except OSError as err:
            raise StorageError(f"无法写入 {out}：{err}", path=str(out)) from err
        return {"rows": len(table.rows), "file": str(out.resolve())}

    # --- used by the engine while issuing, superseding and voiding ---------------------------

    def _register_event(self, tx: Tx, stamp: str, user: User | None, event: str, number: str,
                        **details: Any) -> dict[str, Any]:
        return tx.append_chained("register_log", {
            "at": stamp, "actor": user.login if user else None, "event": event,
            "number": number, **details})

    def _auto_dispatch(self, tx: Tx, doc: Mapping[str, Any], recipient: str | None, dept: str,
                       user: User, now: datetime) -> None:
        if recipient:
            self._new_copy(tx, doc, recipient, dept, "纸质", user, now)

    def _withdraw(self, tx: Tx, work, doc: Mapping[str, Any], reason: str, user: User) -> None:
        """Recall every open copy of ``doc`` (换版 on a revision, 作废 on cancellation) and
        write the stamped PDF beside the original."""
        for c in self._current_copies(tx, doc["number"]).values():
            if c["status"] == "out":
                self._take_back(tx, doc, c, reason, user, work.now, returned_by=None, keep=True)
        self._stamp_document(tx, work, doc, STAMP_WORDS[reason], reason)

    # --- internals ---------------------------------------------------------------------------

    def _visible_document(self, tx: Tx, number: str, reach) -> dict[str, Any]:
        """The register entry of ``number`` if ``reach`` sees it (the same "not found" as for
        a number never issued, so nobody learns of a colleague's customers)."""
        doc = tx.document(number)
        if doc is not None and not reach.documents_all:
            record = tx.case(doc["case_id"])
            if record is None or not reach.sees_case(record):
                doc = None
        if doc is None:
            raise NotFoundError(f"找不到文件编号 \"{number}\"（可用 dealerdocs docs 查看已出具的文件）",
                                number=number)
        return doc

    def _allow(self, user: User, allowed: bool, action: str, right: str) -> None:
        """Refuse ``action`` unless one of the user's roles has ``right`` in ``[access]``."""
        if allowed:
            return
        need = "、".join(self.config.role_label(r) for r, a in self.config.access.items()
                        if getattr(a, right)) or "（无人）"
        mine = "、".join(self.config.role_label(r) for r in user.roles) or "无"
        raise PermissionDenied(f"用户 {user.login}（{user.name}，角色：{mine}）无权{action}；"
                               f"需要角色：{need}", user=user.login, right=right)

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
        self._register_event(tx, now.isoformat(), user, "dispatched", number, copy=label,
                             recipient_hmac=privacy.keyed_hash(self.personal_key, to),
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
            self._register_event(tx, stamp, user, "lost", doc["number"], copy=c["label"])
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
        self._register_event(tx, stamp, user, "recalled", doc["number"], copy=c["label"],
                             reason=reason, disposition=disposition)
        if reason == "损坏" and doc["status"] == "issued":
            # a damaged copy is exchanged and keeps its number
            self._new_copy(tx, doc, c["recipient"], c["dept"], c["channel"], user, now,
                           copy_no=c["copy_no"], rev=c["rev"] + 1)
        return self._copy_view(record)

    def _stamp_document(self, tx: Tx, work, doc: Mapping[str, Any], word: str,
                        reason: str) -> None:
        """A stamped copy of the PDF beside the original (which stays untouched)."""
        doc = tx.document(doc["number"]) or doc
        if doc.get("stamped_pdf"):
            return
        original = self.outbox.absolute(doc["pdf"]).read_bytes()
        from . import stamps

        stamped = stamps.void_stamp(original, word=word, when=cn_date(work.now.date()),
                                    reason=reason, converter=work.converter)
        suffix = ".recalled.pdf" if word == "已收回" else ".void.pdf"
        relative = doc["pdf"][: -len(".pdf")] + suffix
        work.write(self.outbox, relative, stamped)
        tx.put_document({**doc, "stamped_pdf": relative, "stamped_sha256": sha256(stamped),
                         "stamp": word})

    def _print_copies(self, number: str, made: list[dict[str, Any]]) -> list[str]:
        """PDFs of the copies handed out, each marked 受控文件 with its copy number."""
        with self.store.snapshot() as tx:
            doc = self._document_record(tx, number)
        original = self.outbox.absolute(doc["pdf"]).read_bytes()
        from . import stamps

        marked = stamps.controlled_copies(original, copy_labels=[c["label"] for c in made],
                                          converter=self.converter)  # one LibreOffice run
        folder = Path(doc["pdf"]).parent / "copies"
        return [str(self.outbox.write(str(folder / f"{c['label']}.pdf"), pdf))
                for c, pdf in zip(made, marked)]

    def _copy_view(self, c: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in c.items() if k not in ("key", "schema_version")}

    def _user_name(self, login: str | None) -> str:
        if not login:
            return ""
        user = self.config.users.get(login)
        return user.name if user else login

    def _verify_register(self, tx: Tx, documents: list[dict[str, Any]],
                         logs: Mapping[str, list[dict[str, Any]]], case_ids: list[str]
                         ) -> list[dict[str, Any]]:
        """The chains hold, the register (``documents``, read from the cases' files) agrees
        with its log and with the document index, and every case's copy of its log entries is
        the chain's (naming the first break). ``logs``: the chains read in the same snapshot."""
        problems = []
        for table, what in LOG_LABELS.items():
            problem = chain.check(logs[table], tx.chain_head(table))
            if problem:
                problems.append({"number": table, "path": what, "problem": "chain",
                                 "detail": f"{what}：{problem}"})
        docs = {d["number"]: d for d in documents}
        issued = {e["number"]: e for e in logs["register_log"] if e["event"] == "issued"}
        indexed = {d["number"]: d for d in tx.find_documents()}
        for number in sorted(set(docs) | set(indexed)):
            a, b = docs.get(number), indexed.get(number)
            if a is None or b is None or tx.case_of(number) != a["case_id"] or a != b:
                problems.append({"number": number, "path": "index", "problem": "index",
                                 "detail": f"文件 {number} 的索引与案件文件中的登记不一致"})
        for number, event in sorted(issued.items(), key=lambda kv: kv[1]["seq"]):
            d = docs.get(number)
            if d is None:
                problems.append({"number": number, "path": "documents", "problem": "missing_entry",
                                 "detail": f"登记簿缺少文件 {number}（发放登记日志第 {event['seq']} 条记载其出具）"})
            elif d["pdf_sha256"] != event.get("pdf_sha256"):
                problems.append({"number": number, "path": "documents", "problem": "entry_changed",
                                 "detail": f"登记簿中 {number} 的哈希与出具时记录的不符"})
        for number in sorted(set(docs) - set(issued)):
            problems.append({"number": number, "path": "register_log", "problem": "unlogged",
                             "detail": f"文件 {number} 在发放登记日志中没有出具记录"})
        return problems + self._verify_case_copies(tx, logs, case_ids)

    def _verify_case_copies(self, tx: Tx, logs: Mapping[str, list[dict[str, Any]]],
                            case_ids: list[str]) -> list[dict[str, Any]]:
        """Each case's own copy of its audit and register_log entries (what its history and the
        separation-of-duties rule read) is exactly the chain's entries about that case: one
        problem per case and chain, the earliest entry first."""
        found = []
        for name, what in LOG_LABELS.items():
            about: dict[str, list[dict[str, Any]]] = {}
            for entry in logs[name]:
                case_id = entry.get("case_id") or (tx.case_of(entry["number"])
                                                   if entry.get("number") else None)
                if case_id:
                    about.setdefault(case_id, []).append(entry)
            for case_id in sorted(set(about) | set(case_ids)):
                problem = copy_difference(tx.case_log(name, case_id), about.get(case_id, []))
                if problem:
                    seq, text = problem
                    found.append((seq, {"number": case_id, "path": what, "problem": "case_copy",
                                        "detail": f"案件 {case_id} 的文件中{what}{text}"}))
        return [p for _, p in sorted(found, key=lambda sp: sp[0])]

    def _verify_pdfs(self, documents: list[dict[str, Any]],
                     register_log: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each issued PDF, read once: re-hashed against the register (a missing or changed
        file, as :func:`archive.verify_files` reports it), and the register_log head it
        recorded at issue (``/DealerDocsRegisterHash``) must still be an entry of the log
        before the document's own "issued" event. A head the log no longer has means the log
        was rewritten after the document went out. Reads the outbox, outside the store's lock."""
        from pypdf.errors import PyPdfError

        from .pdf import read_metadata

        issued = {e["number"]: e for e in register_log if e.get("event") == "issued"}
        seq_of = {e.get("hash"): e.get("seq") for e in register_log}
        problems = []
        for d in documents:
            number, path, expected = d["number"], self.outbox.absolute(d["pdf"]), d["pdf_sha256"]
            try:
                pdf = path.read_bytes()
            except FileNotFoundError:
                problems.append(dataclasses.asdict(FileProblem(number, str(path), "missing",
                                                               expected, None)))
                continue
            actual = sha256(pdf)
            if actual != expected:
                problems.append(dataclasses.asdict(FileProblem(number, str(path), "changed",
                                                               expected, actual)))
                continue
            if number not in issued:
                continue   # reported by the register check ("unlogged")
            try:
                recorded = read_metadata(pdf).get("DealerDocsRegisterHash")
            except (PyPdfError, ValueError) as err:
                problems.append({"number": number, "path": str(path), "problem": "register_head",
                                 "detail": f"无法读取文件 {number} 的 PDF 元数据（{err}）"})
                continue
            problem = head_problem(number, recorded, issued[number], register_log, seq_of)
            if problem:
                problems.append({"number": number, "path": str(path), "problem": "register_head",
                                 "detail": problem})
        return problems


def copy_difference(copy: list[Mapping[str, Any]], entries: list[Mapping[str, Any]]
                    ) -> tuple[int, str] | None:
    """The first seq at which a case's copy of a log differs from the chain's ``entries``
    about that case, with what is wrong (in Chinese, to follow "…的文件中审计记录"), or None."""
    mine = {e.get("seq"): e for e in copy}
    theirs = {e.get("seq"): e for e in entries}
    if len(mine) != len(copy):
        seq = next(s for s in mine if sum(e.get("seq") == s for e in copy) > 1)
        return _seq_key(seq), f"第 {seq} 条出现了不止一次"
    for seq in sorted(set(mine) | set(theirs), key=_seq_key):
        a, b = mine.get(seq), theirs.get(seq)
        if a is None:
            return _seq_key(seq), f"缺少第 {seq} 条（链中有这一条）"
        if b is None:
            return _seq_key(seq), f"第 {seq} 条在链中没有（或链中这一条不属于该案件）"
        if a != b:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            return _seq_key(seq), f"第 {seq} 条与链中的不一致（不同之处：{'、'.join(keys)}）"
    return None


def head_problem(number: str, recorded: str | None, event: Mapping[str, Any],
                 log: list[Mapping[str, Any]], seq_of: Mapping[str, Any]) -> str | None:
    """Whether the register_log head a PDF recorded at issue (``recorded``) fits the log as it
    is now: an entry before the document's "issued" ``event``, or the genesis hash when every
    entry before that event was written in the same transaction. None if it fits."""
    issued = event["seq"]
    if recorded is None:
        if "kind" not in event:   # issued before PDFs carried the head (a migrated schema-1 store)
            return None
        return f"文件 {number} 的 PDF 中没有记载出具时发放登记日志的链尾哈希（DealerDocsRegisterHash）"
    if recorded == chain.GENESIS:
        earlier = [e for e in log if _seq_key(e.get("seq")) < issued and e.get("at") != event.get("at")]
        if not earlier:
            return None
        return (f"文件 {number} 的 PDF 记载出具时发放登记日志为空，但其出具记录（第 {issued} 条）之前"
                f"已有更早的第 {earlier[0].get('seq')} 条：发放登记日志在该文件出具之后被改写")
    seq = seq_of.get(recorded)
    if seq is None:
        return (f"文件 {number} 的 PDF 记载的出具时发放登记日志链尾哈希 {recorded[:16]}… 不在现在的日志中："
                f"发放登记日志中第 {issued} 条（该文件的出具记录）之前的记录在出具之后被改写")
    if _seq_key(seq) >= issued:
        return (f"文件 {number} 的 PDF 记载的出具时发放登记日志链尾是第 {seq} 条，"
                f"却不在它自己的出具记录（第 {issued} 条）之前：发放登记日志被改写或重排")
    return None


def _seq_key(seq: Any) -> int:
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else -1


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
