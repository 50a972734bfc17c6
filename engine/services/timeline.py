"""One case's life with the cases joined to it, newest first: a customer's file with its visits,
test drives, quotes, contracts and deliveries (every case whose ``[party]`` names the file's
workflow), built from each case's audit trail and the rows of table fields marked ``timeline``
in the workflow file (a follow-up), never from workflow-specific code.

Each line says when, what (in Chinese), who, and which case and documents it concerns. A joined
case the user may not see gives one line, that it was opened, with no link, actor or detail.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..access import Reach
from ..config import Config
from ..store import Store, Tx
from ..timers import SYSTEM
from ..workflow import Workflow
from .definitions import Definitions
from .guard import Guard

# audit events the engine writes itself (not workflow steps), as a line says them
ENGINE_EVENTS = {"create": "新建", "reveal": "查看完整个人信息", "reassign": "改派",
                 "purge": "删除个人信息", "attach": "关联案件", "detach": "取消关联"}


class Timeline:
    """The merged timeline of a case and the cases joined to it, as one user may see it."""

    def __init__(self, config: Config, workflows: Mapping[str, Workflow], store: Store,
                 guard: Guard, definitions: Definitions) -> None:
        self.config = config
        self.workflows = workflows
        self.store = store
        self.guard = guard
        self.definitions = definitions

    def timeline(self, case_id: str, *, actor: str) -> list[dict[str, Any]]:
        """The lines of ``case_id``'s timeline (a case ``actor`` sees), newest first."""
        reach = self.guard.reach(actor)
        with self.store.snapshot() as tx:
            record = self.guard.visible_case(tx, case_id, reach)
            members = self._members(tx, record)
            lines = self._lines(tx, record, reach, own=True, members=members)
            for other in members:
                if reach.sees_case(other):
                    lines += self._lines(tx, other, reach, own=False, members=[])
                else:
                    lines.append(self._unseen(other))
        return sorted(lines, key=lambda e: (e["at"], e["seq"]), reverse=True)

    def _members(self, tx: Tx, record: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The cases joined to ``record`` as their ``[party]`` (a customer's visits, quotes…)."""
        out = []
        for key, ids in record.get("links", {}).items():
            wf = self.workflows.get(key)
            if wf is None or wf.party is None or wf.party.workflow != record["workflow"]:
                continue
            out += [c for c in (tx.case(i) for i in ids) if c is not None]
        return out

    def _lines(self, tx: Tx, record: Mapping[str, Any], reach: Reach, *, own: bool,
               members: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        wf = self.definitions.workflow(record["workflow"])
        titles = {d["number"]: d["title"] for d in tx.case_documents(record["id"])}
        joined = {f"关联{self.definitions.workflow(m['workflow']).title} {m['id']}" for m in members}
        tables = {n: s for n, s in wf.fields.items() if s.type == "table" and s.timeline}
        claimed: dict[str, list[dict[str, Any]]] = {n: [] for n in tables}
        out = []
        for e in tx.case_log("audit", record["id"]):
            if e["trigger"] == "reveal" and not own:
                continue   # someone looked at another case: that case's own history says so
            detail = [e["note"]] if e.get("note") else []
            if e["trigger"] == "attach":
                # the joined case's own "opened" line stands for the link; what else happened stays
                detail = [p for p in (e.get("note") or "").split("；") if p not in joined]
                if not detail:
                    continue
            for change in e.get("changed") or ():
                spec = tables.get(change.get("field"))
                old, new = change.get("old") or [], change.get("new") or []
                if spec is None or not isinstance(new, list) or len(new) <= len(old):
                    continue
                for row in new[len(old):]:   # rows this step appended: said on its line
                    claimed[spec.name].append(row)
                    detail.append(_row_text(spec, row))
            out.append(self._line(record, wf, e["at"], e["seq"], self._what(wf, e), detail,
                                  e["actor"], [{"number": n, "title": titles.get(n, n), "link": True}
                                               for n in e.get("documents") or ()],
                                  change=self._change(wf, e)))
        for name, spec in tables.items():
            for i, row in enumerate(record["data"].get(name) or ()):
                if row in claimed[name]:
                    claimed[name].remove(row)
                    continue
                if not row.get(spec.timeline.date):
                    continue
                out.append(self._line(record, wf, str(row[spec.timeline.date]), -1, spec.label,
                                      [_row_text(spec, row)],
                                      row.get(spec.timeline.by) if spec.timeline.by else None, []))
        return out

    @staticmethod
    def _what(wf: Workflow, e: Mapping[str, Any]) -> str:
        trigger = e["trigger"]
        if trigger == "create":
            return f"新建{wf.title}"
        if trigger in ENGINE_EVENTS:
            return ENGINE_EVENTS[trigger]
        return next((t.label for t in wf.transitions if t.trigger == trigger), trigger)

    @staticmethod
    def _change(wf: Workflow, e: Mapping[str, Any]) -> str | None:
        """"已出具 → 客户已接受" when the step moved the case (a new case: where it starts)."""
        if e["trigger"] == "create":
            return _state(wf, e["to"]) if e.get("to") else None
        if e.get("from") and e.get("to") and e["from"] != e["to"]:
            return f"{_state(wf, e['from'])} → {_state(wf, e['to'])}"
        return None

    def _unseen(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A joined case the user may not see: that it was opened, and nothing more."""
        wf = self.definitions.workflow(record["workflow"])
        line = self._line(record, wf, record["created_at"], 0, f"新建{wf.title}",
                          ["（无权查看）"], None, [])
        return {**line, "link": False}

    def _line(self, record: Mapping[str, Any], wf: Workflow, at: str, seq: int, what: str,
              detail: list[str], actor: str | None, documents: list[dict[str, Any]], *,
              change: str | None = None) -> dict[str, Any]:
        who = None
        if actor:
            who = SYSTEM.name if actor == SYSTEM.login else self.config.user_label(actor)
        return {"at": at, "seq": seq, "case": record["id"], "workflow": wf.key,
                "workflow_title": wf.title, "what": what, "change": change,
                "detail": "；".join(detail),
                "actor": actor, "actor_label": who, "link": True, "documents": documents}


def _state(wf: Workflow, state: str) -> str:
    return wf.states[state].label if state in wf.states else state


def _row_text(spec: Any, row: Mapping[str, Any]) -> str:
    """A table row's line, as its field's ``timeline.text`` says (empty cells are empty)."""
    values = {c: ("" if row.get(c) is None else row.get(c)) for c in spec.columns}
    return spec.timeline.text.render(values)
