"""Reading cases as a user: only the cases and documents their ``[access]`` reaches, identity
and mobile numbers masked unless revealed, and what each step of a case's workflow allows them
now (:meth:`Cases.actions`, for the pages' buttons).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Callable, Mapping

from .. import access
from ..access import Action
from ..config import Config
from ..errors import NotFoundError, PermissionDenied
from ..jsonview import context_value
from ..store import Store
from ..workflow import Workflow
from .control import DocumentControl
from .definitions import Definitions, related
from .guard import Guard
from .personal import PersonalData
from .registers import Registers


class Cases:
    """The cases of one store, as each user may see them."""

    def __init__(self, config: Config, workflows: Mapping[str, Workflow], store: Store,
                 guard: Guard, definitions: Definitions, control: DocumentControl,
                 registers: Registers, personal: PersonalData,
                 clock: Callable[[], datetime]) -> None:
        self.config = config
        self.workflows = workflows
        self.store = store
        self.guard = guard
        self.definitions = definitions
        self.control = control
        self.registers = registers
        self.personal = personal
        self.clock = clock

    def case(self, case_id: str, *, actor: str, reveal: bool = False) -> dict[str, Any]:
        """The case with its data, computed totals, documents and history (JSON-friendly), if
        ``actor`` may see it. Identity and mobile numbers are masked unless ``reveal``, which
        needs a role that may reveal and is written into the audit trail."""
        reach = self.guard.reach(actor)
        if reveal and not reach.reveal:
            user = self.config.user(actor)
            raise PermissionDenied(f"用户 {user.login}（{user.name}）无权查看完整的个人信息"
                                   f"（身份证号、手机号）", user=user.login)
        if reveal:
            with self.store.snapshot() as tx:
                record = self.guard.visible_case(tx, case_id, reach)
            self.personal.audit_reveals([record], actor, "查看案件")
        with self.store.snapshot() as tx:
            record = self.guard.visible_case(tx, case_id, reach)
            documents = tx.case_documents(case_id)
            history = tx.case_log("audit", case_id)
        wf = self.definitions.workflow(record["workflow"])
        values, totals = self.definitions.evaluate(wf, record["data"])
        return {
            "id": record["id"], "workflow": wf.key, "workflow_title": wf.title,
            "state": record["state"], "state_label": wf.states[record["state"]].label,
            "created_at": record["created_at"], "created_by": record["created_by"],
            "updated_at": record["updated_at"], "updated_by": record["updated_by"],
            "owners": access.owners(record), "revealed": reveal,
            "data": record["data"] if reveal else self.guard.masked(wf, record["data"]),
            "links": record.get("links", {}),
            "refs": record.get("refs", {}),
            "totals": context_value(totals),
            "total": context_value(totals.get(wf.total) if wf.total else None),
            "deadline": self.registers.deadline_status(wf, record),
            "triggers": [{"trigger": t.trigger, "label": t.label, "roles": list(t.roles)}
                         for t in wf.available(record["state"])],
            "documents": [self.control.view(d, fetch=True) for d in documents],
            "history": sorted(history, key=lambda e: e["seq"]),
        }

    def cases(self, workflow: str | None = None, state: str | None = None,
              opened_from: date | None = None, opened_to: date | None = None,
              open_only: bool = False, *, actor: str) -> list[dict[str, Any]]:
        """The listings of the cases ``actor`` sees (from the indexes, no case file opened),
        filtered by workflow, state and the period the case was opened in; ``open_only``
        leaves out finished cases (and reads only the index of open ones, as does asking for
        a state that is never final). Identity and mobile numbers are masked."""
        reach = self.guard.reach(actor)
        return [row for row in self.listings(workflow, state, opened_from, opened_to, open_only)
                if reach.sees_case(row)]

    def listings(self, workflow: str | None = None, state: str | None = None,
               opened_from: date | None = None, opened_to: date | None = None,
               open_only: bool = False) -> list[dict[str, Any]]:
        """The listings of every case (nobody's view: for the engine's own work, e.g. timers)."""
        flows = ([self.definitions.workflow(workflow)] if workflow is not None
                 else list(self.workflows.values()))
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
                        "fields": self.guard.masked(wf, fields) if wf else fields,
                        "owners": access.owners(r), "final": r.get("final", False),
                        "created_at": r["created_at"], "created_by": r["created_by"],
                        "updated_at": r["updated_at"], "updated_by": r["updated_by"],
                        **({"store": r["store"]} if r.get("store") else {})})
        return sorted(out, key=lambda c: (c["workflow"], _case_seq(c["id"])))

    def documents(self, case_id: str | None = None, status: str | None = None, *,
                  actor: str) -> list[dict[str, Any]]:
        """The issued documents ``actor`` sees: those of the cases they see, or all of them
        for a role that keeps the register's copies (``documents = "all"``)."""
        reach = self.guard.reach(actor)
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
            mine = {r["id"] for key in own for r in self.listings(key) if reach.sees_case(r)}
            rows = [d for d in rows
                    if reach.scope.get(d["workflow"]) == "all" or d["case_id"] in mine]
        return [self.control.view(d) for d in sorted(rows, key=lambda d: d["issued_at"])]

    def rule_names(self, wf: Workflow, case: Mapping[str, Any]) -> dict[str, Any]:
        """What ``wf``'s rules see for ``case`` now: its data and computed values, the data of
        its linked cases, the policy and the clock (the pages judge their buttons on it)."""
        values, totals = self.definitions.evaluate(wf, case["data"])
        with self.store.snapshot() as tx:
            return self.definitions.names(tx, values, totals, self.clock(), related(case))

    def actions(self, case_id: str, actor: str) -> list[Action]:
        """Every step the case's state offers (none in a final state), each saying whether
        ``actor`` may take it now and, if not, why: no role or the separation of duties
        (``refused``: a page shows no button), or a condition its form cannot change
        (``blocked``: a disabled button with the reason). Judged as :meth:`Pipeline.fire`
        would judge it: on the stored case, its history and linked cases, and the clock; the
        workflow's machine answers for the conditions (``may_trigger``)."""
        user = self.config.user(actor)
        with self.store.snapshot() as tx:
            record = self.guard.visible_case(tx, case_id, self.guard.reach(actor))
            wf = self.definitions.workflow(record["workflow"])
            history = tx.case_log("audit", case_id)
            facts = None
            if any(t.conditions for t in wf.available(record["state"])):
                values, totals = self.definitions.evaluate(wf, record["data"])
                facts = self.definitions.names(tx, values, totals, self.clock(),
                                               related(record))
        return access.steps(wf, {"state": record["state"], "history": history}, user, facts)


def _case_seq(case_id: str) -> int:
    tail = case_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0
