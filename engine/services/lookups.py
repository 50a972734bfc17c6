"""Fields picked from another workflow's cases (``lookup`` on a field: a quote's model from the
model catalogue), inside the unit of work that creates or changes the case.

A lookup field names a case of its workflow by the case's id (``CX-3``), its summary as case
lists show it (奇瑞 瑞虎8 2026款 1.6TGDI DCT 卓越版) or the exact text of its ``match`` field
(2026款 1.6TGDI DCT 卓越版, narrowed by the fill fields already given, such as the series); the
data may instead name the id under the workflow's key (``{"vehicle_model": "CX-3"}``). The case
found becomes this case's reference (``refs`` in its record, read as ``linked.<workflow>`` by
its rules, never followed by a reassign or a purge), the field takes the case's match text and
every ``fill`` target that is empty, or still holds the previous reference's value, takes the
case's value. Text that names no case is kept as typed, without a reference. Only open cases
(not in a final state) are picked by text, and only those the user may see.

A field with ``choices_from = "<lookup field>.<field>"`` takes one of the values the picked case
lists in that field (separated by 、 , ， ; ／: a catalogue model's colours). It is checked when
it, its lookup field or the pick changes; a case with no pick, or a pick listing nothing, keeps
any text (a quote whose model was typed freely, a quote made before the catalogue).
"""
from __future__ import annotations

import copy
import re
from typing import Any, Collection, Mapping

from ..access import Reach
from ..config import User
from ..errors import InputError
from ..fields import is_empty
from ..store import Store, Tx
from ..workflow import Lookup, Workflow
from .definitions import Definitions
from .guard import Guard

MAX_MATCHES = 20   # a search-as-you-type answer


class Lookups:
    """Resolves lookup fields against the cases of their workflows, for one store."""

    def __init__(self, workflows: Mapping[str, Workflow], store: Store,
                 definitions: Definitions, guard: Guard) -> None:
        self.workflows = workflows
        self.store = store
        self.definitions = definitions
        self.guard = guard

    def find(self, workflow: str, text: str, *, actor: str) -> list[dict[str, Any]]:
        """What a form's search-as-you-type offers: the open cases of ``workflow`` that
        ``actor`` sees whose id or summary holds every word of ``text`` (none for an empty
        text or a workflow they do not see), each with its id, summary and data (masked)."""
        wf = self.definitions.workflow(workflow)
        reach = self.guard.reach(actor)
        if not text.strip() or not reach.sees_workflow(wf.key):
            return []
        with self.store.snapshot() as tx:
            found = self.search(tx, wf, text, reach)
        return [{"id": r["id"], "summary": wf.summary_of(r["data"]), "state": r["state"],
                 "data": {k: v for k, v in self.guard.masked(wf, r["data"]).items()
                          if k in wf.fields and wf.fields[k].type not in ("table", "attachments")}}
                for r in found]

    @staticmethod
    def chosen(wf: Workflow, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """``data`` without the case ids named under a lookup workflow's key, and those ids."""
        keys = {lookup.workflow for lookup in wf.lookups.values()}
        ids = {k: str(v).strip() for k, v in data.items() if k in keys and not is_empty(v)}
        return {k: v for k, v in data.items() if k not in keys}, ids

    def apply(self, tx: Tx, wf: Workflow, data: dict[str, Any], refs: Mapping[str, list[str]],
              user: User, *, ids: Mapping[str, str], given: Mapping[str, Any],
              may_edit: Any = None) -> dict[str, list[str]]:
        """Resolve each lookup field ``given`` names (or whose id ``ids`` names) on ``data``
        (changed in place: the field and its fill targets) and return the new references.
        ``may_edit(name)``: whether the step may change a fill target (default: all)."""
        out = {k: list(v) for k, v in refs.items()}
        for name, lookup in wf.lookups.items():
            chosen = ids.get(lookup.workflow)
            if chosen is None and name not in given:
                continue        # nothing picked (a timer's step, as system, picks nothing)
            reach = self.guard.reach(user.login)
            before = self._case(tx, out.get(lookup.workflow))
            if chosen is not None:
                found = self.guard.visible_case(tx, chosen, reach)
                if found["workflow"] != lookup.workflow:
                    other = self.workflows[lookup.workflow]
                    raise InputError(f"{chosen} 不是{other.title}的案件", field=name,
                                     label=wf.fields[name].label)
            else:
                found = self._by_text(tx, wf, name, lookup, data, reach)
            if found is None:
                out.pop(lookup.workflow, None)
                continue
            out[lookup.workflow] = [found["id"]]
            previous = before["data"] if before is not None else {}
            for target, origin in lookup.fill.items():
                value = found["data"].get(origin)
                if target == name:
                    data[target] = copy.deepcopy(value)
                elif (may_edit is None or may_edit(target)) and value not in (None, "", []) and (
                        is_empty(data.get(target)) or
                        (before is not None and data.get(target) == previous.get(origin))):
                    data[target] = copy.deepcopy(value)
        return out

    def check_choices(self, tx: Tx, wf: Workflow, data: Mapping[str, Any],
                      refs: Mapping[str, list[str]], changed: Collection[str]) -> None:
        """Refuse a ``choices_from`` field whose value the picked case does not list, when the
        field, its lookup field or the pick (a workflow key in ``changed``) changed; every
        problem at once."""
        problems = []
        for name, spec in wf.fields.items():
            if spec.choices_from is None or is_empty(data.get(name)):
                continue
            picker, origin = spec.choices_from
            lookup = wf.fields[picker].lookup
            if not {name, picker, lookup.workflow} & set(changed):
                continue
            picked = self._case(tx, refs.get(lookup.workflow))
            allowed = split_choices(picked["data"].get(origin)) if picked is not None else []
            value = str(data[name]).strip()
            if allowed and value not in allowed:
                problems.append(InputError(
                    f"{spec.label}「{value}」不在{wf.fields[picker].label} {picked['id']} 的可选"
                    f"{spec.label}中（可选：{'、'.join(allowed)}）", field=name, label=spec.label))
        if problems:
            raise InputError.combine(problems)

    def search(self, tx: Tx, workflow: Workflow, text: str, reach: Reach) -> list[dict[str, Any]]:
        """The open cases of ``workflow`` ``reach`` sees whose id or summary contains ``text``
        (case-insensitive, every word of it), at most ``MAX_MATCHES``, with their data."""
        words = text.lower().split()
        out = []
        for row in sorted(tx.find_cases(workflow.key, open_only=True), key=lambda r: r["id"]):
            haystack = f"{row['id']} {row.get('summary', '')}".lower()
            if not reach.sees_case(row) or not all(w in haystack for w in words):
                continue
            record = tx.case(row["id"])
            if record is not None:
                out.append(record)
            if len(out) == MAX_MATCHES:
                break
        return out

    def _by_text(self, tx: Tx, wf: Workflow, name: str, lookup: Lookup,
                 data: Mapping[str, Any], reach: Reach) -> dict[str, Any] | None:
        text = data.get(name)
        if is_empty(text):
            return None
        other = self.workflows[lookup.workflow]
        text = str(text).strip()
        rows = [r for r in tx.find_cases(other.key, open_only=True) if reach.sees_case(r)]
        named = [r for r in rows if text in (r["id"], r.get("summary"))]   # exact: one case
        if named:
            records = [c for c in (tx.case(r["id"]) for r in named) if c is not None]
        else:
            near = [r for r in rows if lookup.match not in other.summary
                    or text in (r.get("summary") or "")]
            records = [c for c in (tx.case(r["id"]) for r in near)
                       if c is not None and c["data"].get(lookup.match) == text]
        if len(records) > 1:   # the same model text in two series: the ones the data agrees with
            agree = [c for c in records
                     if all(is_empty(data.get(t)) or data.get(t) == c["data"].get(o)
                            for t, o in lookup.fill.items() if t != name)]
            records = agree or records
        if len(records) > 1:
            listed = "、".join(f"{c['id']}（{other.summary_of(c['data'])}）" for c in records[:5])
            raise InputError(f"{wf.fields[name].label}「{text}」在{other.title}中有 "
                             f"{len(records)} 个：{listed}；请选择其中一个（或在数据中写 "
                             f"{other.key} = 编号）", field=name, label=wf.fields[name].label)
        return records[0] if records else None

    @staticmethod
    def _case(tx: Tx, ids: list[str] | None) -> dict[str, Any] | None:
        return tx.case(ids[-1]) if ids else None


def split_choices(text: Any) -> list[str]:
    """The values a catalogue field lists (珍珠白、曜石黑), in order, without repeats."""
    if not isinstance(text, str):
        return []
    return list(dict.fromkeys(p.strip() for p in re.split(r"[、,，;；/／\n]", text) if p.strip()))
