"""Operations on whose data a case holds: showing full identity and mobile numbers (each
time an audit event), handing a customer's cases to another consultant, and erasing a person's
data (《个人信息保护法》 Art. 47) from the cases no law requires the store to keep whole.
"""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import privacy
from ..archive import Archive, document_files
from ..config import Config, User
from ..errors import InputError
from ..previews import PagePreviews
from ..store import Store, Tx
from ..text import clean_line
from ..workflow import Workflow
from .definitions import Definitions
from .guard import Guard
from .trail import Trail


class PersonalData:
    """Reveals, reassignment and erasure, each an audit event, for the roles ``[access]`` names."""

    def __init__(self, config: Config, workflows: Mapping[str, Workflow], store: Store,
                 archive: Archive, previews: PagePreviews, guard: Guard,
                 definitions: Definitions, trail: Trail,
                 clock: Callable[[], datetime]) -> None:
        self.config = config
        self.workflows = workflows
        self.store = store
        self.archive = archive
        self.previews = previews
        self.guard = guard
        self.definitions = definitions
        self.trail = trail
        self.clock = clock

    def audit_reveals(self, records: list[Mapping[str, Any]], actor: str, what: str) -> None:
        """One audit event per case whose full identity or mobile numbers ``actor`` is shown."""
        user = self.config.user(actor)
        with self.store.transaction() as tx:
            stamp = self.clock().isoformat()
            for record in records:
                wf = self.definitions.workflow(record["workflow"])
                shown = [wf.fields[k].label for k, kind in wf.personal_fields.items()
                         if kind in privacy.MASKED_KINDS and record["data"].get(k)]
                if shown:
                    self.trail.audit(tx, stamp, user, record["id"], wf, "reveal", record["state"],
                                     record["state"], [], [],
                                     note=f"{what}：查看完整个人信息（{'、'.join(shown)}）")

    def reassign(self, case_id: str, to: str, *, actor: str, reason: str | None = None
                 ) -> dict[str, Any]:
        """Give a case and every case linked to it (the customer's quote, contract and
        delivery) to another consultant: the assignee field and the owners change, the one
        before no longer sees them; one audit event per case. For roles with
        ``reassign = true``."""
        user = self.config.user(actor)
        reach = self.guard.reach(actor)
        self.guard.allow(user, reach.reassign, "改派案件", "reassign")
        target = self.config.user(to)
        try:
            note = clean_line(reason or "", max_length=200)
        except ValueError as err:
            raise InputError(f"改派原因（--reason）{err}", field="reason") from None
        moved = []
        with self.store.transaction() as tx:
            stamp = self.clock().isoformat()
            for record in _linked_cases(tx, self.guard.visible_case(tx, case_id, reach)):
                wf = self.definitions.workflow(record["workflow"])
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
                self.trail.audit(tx, stamp, user, record["id"], wf, "reassign", record["state"],
                                 record["state"], self.trail.changes(wf, record["data"], data), [],
                                 note=f"改派给 {target.login}（{target.name}）"
                                      f"{'，原为 ' + before if before else ''}"
                                      f"{'；原因：' + note if note else ''}")
                moved.append(record["id"])
        return {"to": target.login, "cases": moved}

    # --- erasure -----------------------------------------------------------------------------

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
        self.guard.allow(user, self.guard.reach(actor).purge, "删除个人信息", "purge")
        if bool(customer) == bool(expired):
            raise InputError("请给出 --customer 手机号或身份证号，或 --expired（二者选一）",
                             field="customer")
        today = self.clock().date()
        with self.store.snapshot() as tx:
            if customer:
                value = _identifier(customer)
                person = self.trail.hash(value)
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
            wf = self.definitions.workflow(record["workflow"])
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
        wf = self.definitions.workflow(record["workflow"])
        data = dict(record["data"])
        names: dict[str, str] = {}
        for k, kind in wf.personal_fields.items():
            if data.get(k) in (None, "") or str(data[k]).startswith(privacy.PSEUDONYM_PREFIX):
                continue
            if kind == "name":
                names[data[k]] = data[k] = self.trail.pseudonym(data[k])
            else:
                data[k] = None
        for table, kinds in wf.personal_columns.items():   # a table's personal columns, row by row
            if isinstance(data.get(table), list):
                data[table] = [{c: (None if c in kinds and kinds[c] != "name" else
                                    self.trail.pseudonym(v) if c in kinds and v and not
                                    str(v).startswith(privacy.PSEUDONYM_PREFIX) else v)
                                for c, v in row.items()} for row in data[table]]
        erased = [wf.fields[k].label for k in [*wf.personal_fields, *wf.personal_columns]
                  if data.get(k) != record["data"].get(k)]
        documents = []
        for doc in tx.case_documents(case_id):
            for c in tx.copies(doc["number"]):
                changed = {f: names[c[f]] for f in ("recipient", "returned_by") if c.get(f) in names}
                if changed:
                    tx.put_copy({**c, **changed})
                doomed.append(self.archive.handed_out(str(Path(doc["pdf"]).parent / "copies"
                                                          / f"{c['label']}.pdf")))
            for relative, digest in document_files(doc):
                doomed += self.archive.discard(tx, relative, digest)
            doomed += self.previews.paths(doc["pdf_sha256"])
            if not doc.get("files_purged"):
                tx.put_document({**doc, "files_purged": True, "purged_at": stamp})
                self.trail.register_event(tx, stamp, user, "purged", doc["number"], reason=why)
                documents.append(doc["number"])
        tx.put_case({**record, "data": data, "purged_at": stamp, "purged_by": user.login,
                     "updated_at": stamp, "updated_by": user.login})
        note = f"删除个人信息（{why}）：{'、'.join(erased) or '无'}"
        if documents:
            note += f"；删除文件 {'、'.join(documents)}"
        self.trail.audit(tx, stamp, user, case_id, wf, "purge", record["state"], record["state"],
                         self.trail.changes(wf, record["data"], data), [], note=note)
        return {"case": case_id, "workflow": wf.title, "fields": erased, "documents": documents}


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


def _identifier(value: str) -> str:
    """A mobile or resident ID number as the store keeps it (a purge request names one)."""
    from .. import validators

    for rule in (validators.mobile, validators.cn_id):
        try:
            return rule(value)
        except validators.RuleViolation:
            continue
    raise InputError(f"\"{value}\" 既不是有效的手机号，也不是有效的身份证号", field="customer")
