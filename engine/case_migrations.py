"""Cases made under an earlier version of a workflow definition, brought to the current one.

Each case records the hash of the definition it was created under (``definition``); the store
records, per workflow, the definition its cases were last brought to (``Tx.definition``). When
a workflow file changes, the first dealerdocs process to open the store (the engine) brings the
cases along under the store's lock, as its ``[migrations]`` says: a state renamed or retired
into a current one, a field renamed, a field retired (its values kept on the case under
``retired``, never thrown away), a new date field filled from the day the case's first document
of a kind was issued (``document_dates``). A case left in a state the definition no longer has, with no
migration for it, stops the engine with a message that says what to write; ``dealerdocs lint``
reports the same before anyone starts it.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

from .errors import WorkflowDefinitionError
from .fields import from_python
from .store import Store, Tx
from .workflow import Workflow

log = logging.getLogger(__name__)


def migrate(record: Mapping[str, Any], wf: Workflow,
            documents: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any] | None:
    """``record`` brought to ``wf`` by its ``[migrations]``, or None when nothing changes;
    ``documents`` are the case's documents (their register entries: ``kind``, ``issued_at``)."""
    m = wf.migrations
    state = m.state(record["state"])
    data = dict(record["data"])
    retired = dict(record.get("retired") or {})
    changed = state != record["state"]
    for old, new in m.fields.items():
        if old in data:
            value = data.pop(old)
            if data.get(new) in (None, "", []):
                data[new] = value
            elif value not in (None, "", []):
                retired[old] = value   # both filled: the current field wins, the old one is kept
            changed = True
    for old in m.retired_fields:
        if old in data:
            value = data.pop(old)
            if value not in (None, "", []):
                retired[old] = value
            changed = True
    documents = list(documents)
    for name, kind in m.document_dates.items():
        issued = [d["issued_at"] for d in documents if d.get("kind") == kind]
        if data.get(name) in (None, "") and issued:
            # the store's local time, as stamped; a date field takes its day
            data[name] = from_python(wf.fields[name], datetime.fromisoformat(min(issued)))
            changed = True
    if not changed:
        return None
    return {**record, "state": state, "data": data, **({"retired": retired} if retired else {})}


def stray(wf: Workflow, listings: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Cases whose state neither the definition nor its ``[migrations]`` knows: state → ids."""
    out: dict[str, list[str]] = {}
    for row in listings:
        if row.get("workflow") == wf.key and wf.migrations.state(row["state"]) not in wf.states:
            out.setdefault(row["state"], []).append(row["id"])
    return out


def stray_message(wf: Workflow, found: Mapping[str, list[str]]) -> str:
    parts = [f"\"{state}\"（{len(ids)} 个案件，如 {'、'.join(ids[:3])}）" for state, ids in found.items()]
    first = next(iter(found))
    return (f"{wf.source.name}: 数据库中有{wf.title}处于已不存在的状态 {'、'.join(parts)}；"
            f"请在 [migrations] 中写明它们现在的状态，例如 states = {{ {first} = \"{wf.initial}\" }}")


def _stale(tx: Tx, workflows: Mapping[str, Workflow]) -> list[Workflow]:
    return [wf for wf in workflows.values() if tx.definition(wf.key) != wf.definition]


DUE_INDEX = "index:due"   # the store's note that every open case with a deadline is indexed
PARTY_LINKED = "party:"   # + workflow: its cases made before [party] are linked to customers
SEARCH_INDEX = "index:search"   # the searchable fields whose values every case has indexed


def search_signature(workflows: Mapping[str, Workflow]) -> str:
    """Which fields the search index keeps (``search = true`` and ``unique = true``): the
    index is whole for these."""
    return ",".join(sorted(f"{wf.key}.{name}" for wf in workflows.values()
                           for name in wf.indexed_fields)) or "-"


def _searchable(workflows: Mapping[str, Workflow]) -> list[Workflow]:
    return [wf for wf in workflows.values() if wf.indexed_fields]


def record_generated(tx: Tx, workflows: Mapping[str, Workflow]) -> None:
    """A store written directly (benchmarks, large-store tests), case by case with ``put_case``:
    its cases are at the current definitions, have no older customers to link, and are in the
    due index; nothing is left for the engine to bring along when it opens the store."""
    for wf in workflows.values():
        tx.set_definition(wf.key, wf.definition)
        if wf.party is not None:
            tx.set_definition(PARTY_LINKED + wf.key, "linked")
    tx.set_definition(DUE_INDEX, "built")
    tx.set_definition(SEARCH_INDEX, search_signature(workflows))


def record_new(tx: Tx, workflows: Mapping[str, Workflow]) -> None:
    """In a unit of work that makes a case: a workflow the store has no definition of yet has
    no cases to bring along, so the current definition is the one its cases are at; a store
    with no case that has a deadline yet has its due index whole from now on."""
    for wf in workflows.values():
        if tx.definition(wf.key) is None and not tx.find_cases(wf.key):
            tx.set_definition(wf.key, wf.definition)
    if tx.definition(DUE_INDEX) is None and not any(
            tx.find_cases(wf.key) for wf in workflows.values() if wf.deadline_field):
        tx.set_definition(DUE_INDEX, "built")
    signature = search_signature(workflows)
    if tx.definition(SEARCH_INDEX) != signature and not any(
            tx.find_cases(wf.key) for wf in _searchable(workflows)):
        tx.set_definition(SEARCH_INDEX, signature)


def _rewrite_once(store: Store, note: str, value: str,
                  rows: Callable[[Tx], Iterable[Mapping[str, Any]]]) -> int:
    """Every case ``rows`` lists written again (its listing, and the indexes kept with it,
    made anew), once: unless the store's ``note`` already says ``value`` or there is no such
    case (then nothing is written: a reading command on a new store stays a read). Returns
    how many cases were written."""
    if not store.exists():
        return 0
    with store.snapshot() as tx:
        if tx.definition(note) == value or next(iter(rows(tx)), None) is None:
            return 0
    done = 0
    with store.transaction() as tx:
        if tx.definition(note) != value:   # another process may have done it meanwhile
            for row in rows(tx):
                record = tx.case(row["id"])
                if record is not None:
                    tx.put_case(record)
                    done += 1
            tx.set_definition(note, value)
    return done


def build_due_index(store: Store, workflows: Mapping[str, Workflow]) -> int:
    """Once, for a store from before the due index: index every open case with a deadline
    (each is written again, its listing with it). Writes nothing when there is none (a
    reading command on a new store stays a read); returns how many were indexed."""
    return _rewrite_once(store, DUE_INDEX, "built", lambda tx: (
        row for wf in workflows.values() if wf.deadline_field
        for row in tx.find_cases(wf.key, open_only=True)))


def build_search_index(store: Store, workflows: Mapping[str, Workflow]) -> int:
    """For a store from before the search index, or whose workflow files marked other fields
    ``search = true`` since: every case of a workflow with searchable fields is written again
    (its listing indexes their values). Writes nothing when no such case exists (a reading
    command on a new store stays a read); returns how many cases were indexed."""
    done = _rewrite_once(store, SEARCH_INDEX, search_signature(workflows), lambda tx: (
        row for wf in _searchable(workflows) for row in tx.find_cases(wf.key)))
    if done:
        log.warning("indexed the searchable fields of %d case(s)", done)
    return done


def bring_up_to_date(store: Store, workflows: Mapping[str, Workflow]) -> None:
    """Bring the cases of every workflow whose definition changed since the store last saw it
    to the current definition, in one unit of work; record the definitions. A store not made
    yet has nothing to bring. Raises WorkflowDefinitionError (nothing written) for cases in a
    state no definition or migration knows."""
    if not store.exists():
        return
    with store.snapshot() as tx:
        if not _stale(tx, workflows):
            return
    with store.transaction() as tx:
        for wf in _stale(tx, workflows):   # again: another process may have done it meanwhile
            rewrite_all = bool(wf.migrations.fields or wf.migrations.retired_fields
                               or wf.migrations.document_dates)
            rows = tx.find_cases(wf.key)
            found = stray(wf, rows)
            if found:
                raise WorkflowDefinitionError(stray_message(wf, found), path=str(wf.source),
                                              key="migrations.states")
            moved = 0
            for row in rows:
                if not rewrite_all and row["state"] in wf.states:
                    continue
                record = tx.case(row["id"])
                new = (migrate(record, wf, tx.case_documents(record["id"])
                               if wf.migrations.document_dates else ())
                       if record is not None else None)
                if new is not None:
                    tx.put_case(new)
                    moved += 1
            if moved:
                log.warning("brought %d %s case(s) to the workflow's current definition",
                            moved, wf.key)
            tx.set_definition(wf.key, wf.definition)
