"""Finding a customer by what the person at the desk knows: part of a name (or of a case's
summary), a full mobile or ID number, a plate number. A hit on any case joined to a customer's
file (a contract's buyer ID, a delivery's plate) finds that file.

Three ways, over the cases the user sees and nothing else: a substring of the summary and name
fields in the listings (never of a masked field: a partial mobile finds nothing); the exact value
of an ID or mobile field through the people index; the exact value of a field marked
``search = true`` in its workflow file through the search index. Both indexes keep keyed hashes
only, and name cases that once held the value, so each hit is checked on the case itself. A hit
resolves to the customer's file (the case's ``[party]`` link), or stays itself when its
workflow joins no one. Finding someone is not a reveal: results are masked like any list.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from .. import privacy, validators
from ..access import Reach
from ..config import Config
from ..errors import InputError
from ..store import Store, Tx
from ..text import clean_line
from ..workflow import Workflow
from .definitions import Definitions
from .guard import Guard

QUERY_MAX = 60
RESULTS_MAX = 50
NAME_HITS_MAX = 200   # cases a part of a name may open to find their files (newest first)


class Search:
    """``find``: the customers (and other cases) a query names, as one user may see them."""

    def __init__(self, config: Config, workflows: Mapping[str, Workflow], store: Store,
                 guard: Guard, definitions: Definitions, key: privacy.PersonalKey) -> None:
        self.config = config
        self.workflows = workflows
        self.store = store
        self.guard = guard
        self.definitions = definitions
        self.key = key
        # the workflows other cases join (``[party] workflow``): the customers' files
        self.files = {wf.party.workflow for wf in workflows.values() if wf.party is not None}

    def find(self, query: str, *, actor: str, limit: int = RESULTS_MAX) -> list[dict[str, Any]]:
        """The cases ``query`` finds for ``actor``, each a customer's file (or a case that joins
        no one) with the matches that led to it, most recently updated first; masked."""
        text = _query(query)
        reach = self.guard.reach(actor)
        found: dict[str, dict[str, Any]] = {}
        with self.store.snapshot() as tx:
            hits = self._exact(tx, text, reach)
            for case_id, matches in self._by_name(tx, text, reach).items():
                hits.setdefault(case_id, {"record": None, "matches": []})["matches"] += matches
            for case_id, hit in hits.items():
                record = hit["record"] or tx.case(case_id)
                if record is None:
                    continue
                for target in self._targets(tx, record, reach):
                    entry = found.setdefault(target["id"], {"record": target, "matches": []})
                    entry["matches"] += hit["matches"]
        rows = sorted(found.values(), key=lambda e: e["record"]["updated_at"], reverse=True)
        return [self._view(e["record"], e["matches"]) for e in rows[:limit]]

    # --- the three ways ---------------------------------------------------------------------

    def _exact(self, tx: Tx, text: str, reach: Reach) -> dict[str, dict[str, Any]]:
        """Cases holding ``text`` (as each field's rule writes it) in an ID or mobile field or
        a ``search = true`` field, through the keyed-hash indexes."""
        out: dict[str, dict[str, Any]] = {}
        for value in self._spellings(text):
            hashed = privacy.keyed_hash(self.key.get(), value)
            for case_id in dict.fromkeys([*tx.cases_of_person(hashed),
                                          *tx.cases_of_value(hashed)]):
                record = tx.case(case_id)
                if record is None or not reach.sees_case(record):
                    continue
                wf = self.workflows.get(record["workflow"])
                if wf is None:
                    continue
                matches = [_match(record, wf, name) for name in _exact_fields(wf)
                           if record["data"].get(name) == value]
                if matches:
                    hit = out.setdefault(case_id, {"record": record, "matches": []})
                    hit["matches"] += matches
        return out

    def _spellings(self, text: str) -> list[str]:
        """``text`` as each searchable field's rule would store it (a mobile without spaces,
        an ID with a capital X, a plate without its dot), and as typed."""
        rules = {spec.rule for wf in self.workflows.values() for name in _exact_fields(wf)
                 for spec in [wf.fields[name]] if spec.rule}
        rules |= {r for wf in self.workflows.values() for name in _exact_fields(wf)
                  for r in wf.fields[name].rule_map.values()}
        out = [text]
        for rule in sorted(rules):
            try:
                out.append(validators.check(rule, text))
            except validators.RuleViolation:
                continue
        return list(dict.fromkeys(out))

    def _by_name(self, tx: Tx, text: str, reach: Reach) -> dict[str, list[dict[str, Any]]]:
        """Cases whose summary or name fields (string fields the listings keep, never a masked
        one) contain ``text``, from the listings (no case file opened)."""
        needle = text.casefold()
        out: dict[str, list[dict[str, Any]]] = {}
        # a common surname may name thousands of cases: the newest ones are opened, not all
        rows = sorted(tx.find_cases(), key=lambda r: r["updated_at"], reverse=True)
        for row in rows:
            if len(out) >= NAME_HITS_MAX:
                break
            wf = self.workflows.get(row["workflow"])
            if wf is None or not reach.sees_case(row):
                continue
            fields = row.get("fields", {})
            for name in _text_fields(wf):
                value = fields.get(name)
                if isinstance(value, str) and needle in value.casefold():
                    out.setdefault(row["id"], []).append(_match(row, wf, name, exact=False))
        return out

    # --- whose file a hit is ----------------------------------------------------------------

    def _targets(self, tx: Tx, record: dict[str, Any], reach: Reach) -> list[dict[str, Any]]:
        """The customers' files a hit belongs to (those ``reach`` sees), or the hit itself
        when its workflow is someone's file or joins no one."""
        wf = self.workflows.get(record["workflow"])
        if wf is None or wf.party is None or record["workflow"] in self.files:
            return [record]
        linked = record.get("links", {}).get(wf.party.workflow) or []
        if not linked:
            return [record]
        out = []
        for case_id in linked:
            other = tx.case(case_id)
            if other is not None and reach.sees_case(other):
                out.append(other)
        return out

    def _view(self, record: Mapping[str, Any], matches: list[dict[str, Any]]) -> dict[str, Any]:
        wf = self.definitions.workflow(record["workflow"])
        data = record["data"]
        assignee = data.get(wf.assignee) if wf.assignee else None
        seen: set[tuple] = set()
        unique = []
        for m in matches:
            if (m["case"], m["field"]) not in seen:
                seen.add((m["case"], m["field"]))
                unique.append(m)
        return {
            "id": record["id"], "workflow": wf.key, "workflow_title": wf.title,
            "state": record["state"], "state_label": wf.states[record["state"]].label,
            "summary": wf.summary_of(data),
            "contact": {wf.fields[k].label: privacy.mask(kind, data[k])
                        for k, kind in wf.personal_fields.items()
                        if kind in privacy.MASKED_KINDS and data.get(k)},
            "assignee": assignee, "assignee_label": self.config.user_label(assignee) if assignee else None,
            "updated_at": record["updated_at"], "matches": unique,
        }


def _query(query: str) -> str:
    try:
        text = clean_line(query or "", max_length=QUERY_MAX)
    except ValueError as err:
        raise InputError(f"查找内容{err}", field="query") from None
    if not text:
        raise InputError("请输入要查找的客户姓名、手机号、车牌号或证件号", field="query")
    return text


def _exact_fields(wf: Workflow) -> Iterable[str]:
    """Fields whose exact value finds a case: ID and mobile numbers, and ``search = true``."""
    return [*(k for k, kind in wf.personal_fields.items() if kind in privacy.MASKED_KINDS),
            *wf.search_fields]


def _text_fields(wf: Workflow) -> list[str]:
    """String fields a part of a name finds: the summary's and the ``*_name`` ones (those the
    listings keep), never an ID or mobile number."""
    names = [*wf.summary, *(n for n in wf.fields if n.endswith("_name"))]
    return [n for n in dict.fromkeys(names) if n in wf.fields and wf.fields[n].type == "string"
            and wf.personal_fields.get(n) not in privacy.MASKED_KINDS]


def _match(record: Mapping[str, Any], wf: Workflow, name: str, *, exact: bool = True
           ) -> dict[str, Any]:
    return {"case": record["id"], "workflow": wf.key, "workflow_title": wf.title,
            "field": name, "label": wf.fields[name].label, "exact": exact}
