"""What the store's indexes keep of a case (its *listing*), and whose case it is: the store
calls these on every case it writes and while it upgrades, so lists, filters, the due list and
``[[exclusive]]`` checks read indexes and never open a case's file.
"""
from __future__ import annotations

from typing import Any, Mapping

from .. import access, privacy
from ..jsonview import context_value
from ..workflow import Workflow
from .definitions import Definitions


class Listing:
    """A case's listing under the workflow definitions (a store collaborator: no store here)."""

    def __init__(self, workflows: Mapping[str, Workflow], definitions: Definitions,
                 key: privacy.PersonalKey) -> None:
        self.workflows = workflows
        self.definitions = definitions
        self.key = key

    def __call__(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """What the store's indexes keep of a case: enough for lists, filters, the due list
        and the ``[[exclusive]]`` check without opening the case's file."""
        wf = self.workflows.get(record["workflow"])
        if wf is None:
            return {}
        data = record["data"]
        _, totals = self.definitions.evaluate(wf, data)
        names = [*wf.summary, *(n for n, f in wf.fields.items()
                                if f.type in ("user", "date", "datetime"))]
        for rule in wf.exclusive:
            names += [*rule.resources, *(n for n in (rule.start, rule.end) if n)]
        names += [n for n in (wf.deadline_field, wf.owner_field) if n]
        names += [r.date_field for r in wf.reports.values()]
        names += [n for n, f in wf.fields.items() if f.type == "string" and n.endswith("_name")]
        state = record["state"]
        people = [privacy.keyed_hash(self.key.get(), data[k])
                  for k, kind in wf.personal_fields.items()
                  if kind in privacy.MASKED_KINDS and data.get(k)]
        search = [privacy.keyed_hash(self.key.get(), data[k]) for k in wf.indexed_fields
                  if data.get(k)]
        return {"owners": access.owners(record), "people": people, "search": search,
                "purged": bool(record.get("purged_at")),
                "summary": wf.summary_of(data),
                "total": context_value(totals.get(wf.total) if wf.total else None),
                "fields": {k: data[k] for k in dict.fromkeys(names)
                           if data.get(k) not in (None, "", [])},
                "final": wf.states[state].final,
                # the deadline of an open case (the due index: dealerdocs due, the start page)
                **({"due": data[wf.deadline_field]} if wf.deadline_field and not
                   wf.states[state].final and data.get(wf.deadline_field) else {}),
                "held": any(state in rule.states for rule in wf.exclusive)}

    def owners(self, record: Mapping[str, Any]) -> list[str]:
        """Who opened a case and its assignee (a store upgrade adds the linked cases')."""
        wf = self.workflows.get(record["workflow"])
        assignee = record["data"].get(wf.assignee) if wf and wf.assignee else None
        return list(dict.fromkeys([record["created_by"], *([assignee] if assignee else [])]))
