"""One store of a dealer group, seen through the group's shared store.

A group keeps every store's cases in one database (or one folder); each case, document and
copy handed out carries the code of the store it belongs to (``store``), stamped when it is
first written. :class:`StoreView` wraps the shared store so that everything above it (the
engine's services) reads and writes one store only: a case of another store reads exactly
like one that does not exist, lists and indexes leave other stores' entries out, and a new
record gets this store's code. Putting the line here, under the services rather than in each
of them, means no query can forget it.

The group's view (``only=None``) reads every store and writes no case, document or copy: the
group manager's registers and reports. Sign-in sessions, batch marks, counters, the workflow
definitions, issued files kept in the database and the two hash chains are the group's,
shared by its stores (a chain links
every store's entries, so ``verify`` checks one chain per database).

Records written before the group had several stores carry no code: they belong to the
``default`` store (the first of config.toml's ``[stores]``).
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from typing import Any, Iterator, Mapping

from ..errors import StorageError

READ_ONLY = "集团视图只读：请先选择门店再办理业务"


class ScopedTx:
    """A unit of work limited to one store (or every store, read-only for cases)."""

    def __init__(self, inner: Any, only: str | None, default: str) -> None:
        self._inner = inner
        self._only = only
        self._default = default

    # what needs no limit: the group's own records and the unit of work's bookkeeping
    def __getattr__(self, name: str) -> Any:
        if name in _SHARED:
            return getattr(self._inner, name)
        raise AttributeError(name)

    @property
    def committed(self) -> bool:
        return self._inner.committed

    @property
    def writable(self) -> bool:
        return self._inner.writable

    def store_of(self, record: Mapping[str, Any]) -> str:
        """The code of the store a case, listing, document or copy belongs to."""
        return record.get("store") or self._default

    def _mine(self, record: Mapping[str, Any] | None) -> bool:
        return record is not None and (self._only is None or self.store_of(record) == self._only)

    def _stamped(self, record: Mapping[str, Any], what: str) -> dict[str, Any]:
        if self._only is None:
            raise StorageError(READ_ONLY)
        if record.get("store") and record["store"] != self._only:
            raise StorageError(f"{what}属于门店 {record['store']}，不能在门店 {self._only} 中写入")
        return {**record, "store": self._only}

    # --- cases ----------------------------------------------------------------------------

    def case(self, case_id: str) -> dict[str, Any] | None:
        record = self._inner.case(case_id)
        return record if self._mine(record) else None

    def put_case(self, record: Mapping[str, Any]) -> None:
        self._inner.put_case(self._stamped(record, f"案件 {record['id']} "))

    @property
    def _store(self) -> tuple[str, str] | None:
        """What the backends' finders filter by (in SQL, on PostgreSQL)."""
        return None if self._only is None else (self._only, self._default)

    def find_cases(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return self._inner.find_cases(*args, **kwargs, store=self._store)

    def due_cases(self, workflow: str, until: date) -> list[dict[str, Any]]:
        return [c for c in self._inner.due_cases(workflow, until) if self._mine(c)]

    def held_cases(self, workflow: str) -> list[dict[str, Any]]:
        return [c for c in self._inner.held_cases(workflow) if self._mine(c)]

    # The hashed indexes name case ids of every store; as the store's contract says, callers
    # load each case (through :meth:`case`, which hides other stores') and skip what is not
    # there, so filtering here would read every case twice.
    def cases_of_person(self, person: str) -> list[str]:
        return self._inner.cases_of_person(person)

    def cases_of_value(self, value: str) -> list[str]:
        return self._inner.cases_of_value(value)

    def cases_in_store(self) -> Iterator[dict[str, Any]]:
        return (c for c in self._inner.cases_in_store() if self._mine(c))

    def case_log(self, name: str, case_id: str) -> list[dict[str, Any]]:
        return self._inner.case_log(name, case_id) if self.case(case_id) is not None else []

    # --- documents and copies ---------------------------------------------------------------

    def case_of(self, number: str) -> str | None:
        case_id = self._inner.case_of(number)
        return case_id if case_id is not None and self.case(case_id) is not None else None

    def document(self, number: str) -> dict[str, Any] | None:
        doc = self._inner.document(number)
        return doc if self._mine(doc) else None

    def case_documents(self, case_id: str) -> list[dict[str, Any]]:
        return self._inner.case_documents(case_id) if self.case(case_id) is not None else []

    def put_document(self, doc: Mapping[str, Any]) -> None:
        self._inner.put_document(self._stamped(doc, f"文件 {doc['number']} "))

    def find_documents(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return self._inner.find_documents(*args, **kwargs, store=self._store)

    def copies(self, number: str) -> list[dict[str, Any]]:
        return self._inner.copies(number) if self.document(number) is not None else []

    def put_copy(self, record: Mapping[str, Any]) -> None:
        self._inner.put_copy(self._stamped(record, f"文件 {record['number']} 的副本"))

    def find_copies(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return self._inner.find_copies(*args, **kwargs, store=self._store)


# The Tx methods every store of the group shares as they are.
_SHARED = frozenset({
    "set_mark", "marks", "sessions", "set_session", "append_chained", "log_entries",
    "chain_head", "definition", "set_definition", "peek_counter", "next_counter",
    "set_counter", "counters", "definitions", "all_marks", "all_sessions", "put_entry",
    "flush_unjournaled", "flush_in_place", "changes", "wrote",
    # issued files kept in the database, by their path (engine/dbarchive.py): the access
    # check is the document's, made before a file is asked for
    "put_file", "file", "file_hashes", "file_names", "drop_file",
})


class StoreView:
    """The shared store as one store of the group (``only``) or the whole group (None) sees
    it: the same units of work, each handing out a :class:`ScopedTx`."""

    def __init__(self, inner: Any, only: str | None, default: str) -> None:
        self.inner = inner
        self.only = only
        self.default = default

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def location(self) -> str:
        return self.inner.location

    @property
    def listing(self) -> Any:
        return self.inner.listing

    def exists(self) -> bool:
        return self.inner.exists()

    def close(self) -> None:
        self.inner.close()

    def discard_journal(self) -> Any:
        return self.inner.discard_journal()

    def _scoped(self, unit: Any) -> Any:
        @contextmanager
        def scoped() -> Iterator[ScopedTx]:
            with unit() as tx:
                yield ScopedTx(tx, self.only, self.default)
        return scoped()

    def transaction(self) -> Any:
        return self._scoped(self.inner.transaction)

    def snapshot(self) -> Any:
        return self._scoped(self.inner.snapshot)

    def rehearsal(self) -> Any:
        return self._scoped(self.inner.rehearsal)
