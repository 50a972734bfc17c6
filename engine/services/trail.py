"""The two hash-chained logs every unit of work appends to: the audit trail (what happened to
a case) and the register log (what happened to a document), with personal values kept out of
both: a change to a personal field is recorded by keyed hashes only (``privacy.keyed_hash``),
so it shows, cannot be read back, and a purge has nothing to erase in the chain.
"""
from __future__ import annotations

from typing import Any, Mapping

from .. import privacy
from ..config import User
from ..store import Tx
from ..workflow import Workflow


class Trail:
    """Writes audit events and register events into a unit of work; never updates one."""

    def __init__(self, workflows: Mapping[str, Workflow], key: privacy.PersonalKey) -> None:
        self.workflows = workflows
        self.key = key

    def hash(self, value: Any) -> str | None:
        """The keyed hash that stands for a personal value (None for an empty one)."""
        return privacy.keyed_hash(self.key.get(), value)

    def pseudonym(self, value: Any) -> str:
        """What replaces an erased name: the same person gets the same pseudonym."""
        return privacy.pseudonym(self.key.get(), value)

    def audit(self, tx: Tx, stamp: str, user: User, case_id: str, wf: Workflow, trigger: str,
              source: str | None, dest: str, changed: list[dict[str, Any]],
              documents: list[str], *, warnings: list[str] | None = None,
              note: str | None = None) -> None:
        """Append one event to the audit trail (hash-chained; never updated or deleted)."""
        tx.append_chained("audit", {"at": stamp, "actor": user.login,
                                    "case_id": case_id, "workflow": wf.key, "trigger": trigger,
                                    "from": source, "to": dest, "changed": changed,
                                    "documents": documents, "warnings": warnings or [],
                                    "note": note})

    @staticmethod
    def register_event(tx: Tx, stamp: str, user: User | None, event: str, number: str,
                       **details: Any) -> dict[str, Any]:
        """Append one event to the register log (issued, superseded, void, dispatched…)."""
        return tx.append_chained("register_log", {
            "at": stamp, "actor": user.login if user else None, "event": event,
            "number": number, **details})

    def changes(self, wf: Workflow, old: Mapping[str, Any], new: Mapping[str, Any]
                ) -> list[dict[str, Any]]:
        return changes(wf, old, new, self.key.get())

    def redact(self, entry: dict[str, Any]) -> dict[str, Any]:
        """An audit entry written before personal values were kept out of it, with its
        personal values replaced by keyed hashes (a store upgrade)."""
        wf = self.workflows.get(entry.get("workflow", ""))
        if wf is None or not entry.get("changed"):
            return entry
        out = []
        for change in entry["changed"]:
            if (change.get("field") in wf.personal_fields or change.get("field") in
                    wf.personal_columns) and not change.get("personal"):
                change = {"field": change["field"], "personal": True,
                          "old_hmac": self.hash(change.get("old")),
                          "new_hmac": self.hash(change.get("new"))}
            out.append(change)
        return {**entry, "changed": out}


def changes(wf: Workflow, old: Mapping[str, Any], new: Mapping[str, Any], key: bytes
            ) -> list[dict[str, Any]]:
    """The audit trail's record of what changed: old and new values, except for personal
    data, which is recorded by keyed hashes only (``personal``: a change shows, the value
    cannot be read back, and a purge has nothing to erase in the chain)."""
    out = []
    for k in sorted(set(old) | set(new)):
        if old.get(k) == new.get(k):
            continue
        if k in wf.personal_fields or k in wf.personal_columns:   # a table: its rows hashed
            out.append({"field": k, "personal": True,
                        "old_hmac": privacy.keyed_hash(key, old.get(k)),
                        "new_hmac": privacy.keyed_hash(key, new.get(k))})
        else:
            out.append({"field": k, "old": old.get(k), "new": new.get(k)})
    return out
