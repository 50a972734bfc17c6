"""Whose turn it is (``[rota]`` in a workflow file): a new visitor the front desk registers
without naming a consultant goes to the next consultant on duty that day, in the order the
sales manager set (the day's 当班记录, duty.toml), after the one who had the last turn; the turn
is appended to that day's record, in the same unit of work as the visit.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Mapping

from ..config import User
from ..store import Tx
from ..workflow import Rota, Workflow
from .trail import Trail


@dataclass
class Turn:
    """The day's duty case and whose turn it was."""

    duty: dict[str, Any]
    login: str


class Rotas:
    def __init__(self, workflows: Mapping[str, Workflow], trail: Trail) -> None:
        self.workflows = workflows
        self.trail = trail

    def next_turn(self, tx: Tx, rota: Rota, day: date) -> Turn | None:
        """Who is next on ``day``: None when nobody is on duty (no duty case, or an empty
        order): the desk then names the consultant itself."""
        duty = None
        for listing in tx.find_cases(workflow=rota.workflow):
            if listing.get("fields", {}).get(rota.day) == day.isoformat():
                duty = tx.case(listing["id"])
        if duty is None:
            return None
        order = [row[rota.column] for row in duty["data"].get(rota.order) or []
                 if row.get(rota.column)]
        if not order:
            return None
        turns = duty["data"].get(rota.record) or []
        last = turns[-1].get("consultant") if turns else None
        login = order[(order.index(last) + 1) % len(order)] if last in order else order[0]
        return Turn(duty, login)

    def record(self, tx: Tx, rota: Rota, turn: Turn, case_id: str, user: User, now: datetime
               ) -> None:
        """Append the turn to the day's record (and its audit trail)."""
        duty = copy.deepcopy(turn.duty)
        stamp = now.isoformat()
        row = {"at": now.replace(tzinfo=None).isoformat(timespec="minutes"), "visit": case_id,
               "consultant": turn.login}
        duty["data"][rota.record] = [*(duty["data"].get(rota.record) or []), row]
        duty.update(updated_at=stamp, updated_by=user.login)
        tx.put_case(duty)
        wf = self.workflows[rota.workflow]
        self.trail.audit(tx, stamp, user, duty["id"], wf, "turn", duty["state"], duty["state"],
                         self.trail.changes(wf, turn.duty["data"], duty["data"]), [],
                         note=f"{case_id} 按轮岗顺序由 {turn.login} 接待")
