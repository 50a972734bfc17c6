"""When a timed transition (``[[timers]]`` in a workflow file) is due for a case.

Pure: the case, what its rules see (``Engine.rule_names``) and the time are passed in. The
engine fires what is due as the actor ``system`` (``Engine.tick``), under the store's lock and
with the transition's own conditions and checks, so running ``dealerdocs tick`` twice, or from
two processes at once, fires each transition once.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from .config import User
from .workflow import Timer

# Who fires timed transitions: in the audit trail as "system"; not a config.toml user, so
# nobody can sign in or act as it.
SYSTEM = User(name="系统（定时）", roles=[], login="system")


def entered_at(record: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> datetime:
    """When the case entered its current state: the last audit event that moved it there (its
    creation if none did)."""
    state = record["state"]
    moved = [e for e in events if e.get("to") == state and e.get("from") != state]
    return datetime.fromisoformat(moved[-1]["at"] if moved else record["created_at"])


def due(timer: Timer, record: Mapping[str, Any], names: Mapping[str, Any], now: datetime,
        since: datetime | None) -> bool:
    """Whether ``timer`` fires for ``record`` at ``now``: it is in one of the timer's states,
    ``after`` has passed since ``since`` (when it entered the state) and ``when`` holds (not
    while a field it reads is empty)."""
    if record["state"] not in timer.states:
        return False
    if timer.after is not None and (since is None or now < since + timer.after):
        return False
    if timer.when is not None:
        if any(names.get(n) in (None, "", [], ()) for n in timer.requires):
            return False
        return bool(timer.when(names))
    return True
