"""The repository of typed records on top of the journaled unit of work: cases (one tinydb
partition each), documents, copies handed out, batch marks, sign-in sessions, hash-chained
logs, counters and the workflow definitions the cases are at, with the indexes that find them
without opening a case. A :class:`Tx` reads only the files it needs and keeps its writes in
memory; :meth:`Tx.changes` gives them to the journal as whole files and log appends."""
from __future__ import annotations

import json
import os
import zlib
from datetime import date
from pathlib import Path
from typing import Any, Iterator, Mapping

from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Document

from ..errors import StorageError
from ..files import FILE_MODE, atomic_write_bytes, make_dirs, write_all
from .jsonfiles import dumps, read_index_cached, read_json
from .layout import (CASES_PER_FOLDER, META_FILE, NUMBER_BUCKETS, SCHEMA_VERSION, Listing,
                     case_listing, check_batch, check_owner, entry_case, new_meta, next_entry)


class _Memory(Storage):
    """The in-memory copy tinydb works on during one unit of work."""

    def __init__(self, data: dict[str, Any] | None) -> None:
        self.data = data if data is not None else {}
        self.dirty = False

    def read(self) -> dict[str, Any]:
        return self.data

    def write(self, data: dict[str, Any]) -> None:
        self.data = data
        self.dirty = True


def _day(stamp: str) -> tuple[str, str, str]:
    return stamp[:4], stamp[5:7], stamp[8:10]


def _in_range(day: str, start: date | None, end: date | None) -> bool:
    return (start is None or day >= start.isoformat()) and (end is None or day <= end.isoformat())


def _of_store(record: Mapping[str, Any], store: tuple[str, str] | None) -> bool:
    """Whether ``record`` is one store's of a group (``store``: its code, and the code of
    records from before ``[stores]``, which carry none); True without ``store``."""
    return store is None or (record.get("store") or store[1]) == store[0]


class Tx:
    """One unit of work on the store. Reads load only the files they need; writes stay in
    memory until the store commits them all at once."""

    def __init__(self, root: Path, writable: bool, listing: Listing) -> None:
        self.root = root
        self.writable = writable
        self.committed = False   # set by the store once the journal is durable
        self._listing = listing
        self._dbs: dict[Path, TinyDB] = {}          # tinydb files: meta and case partitions
        self._indexes: dict[Path, dict] = {}        # plain JSON index files
        self._dirty_indexes: set[Path] = set()
        self._appends: dict[Path, list[bytes]] = {}
        meta = read_json(root / META_FILE)
        self._meta_new = meta is None
        self._meta = TinyDB(meta if meta is not None else new_meta(), storage=_Memory)
        self._dbs[root / META_FILE] = self._meta

    # --- files ----------------------------------------------------------------------------

    def _db(self, path: Path, create: bool = True) -> TinyDB | None:
        db = self._dbs.get(path)
        if db is None:
            data = read_json(path)
            if data is None and not create:
                return None
            db = TinyDB(data, storage=_Memory)
            self._dbs[path] = db
        return db

    def _index(self, path: Path) -> dict:
        found = self._indexes.get(path)
        if found is None:
            data = read_json(path) if self.writable else read_index_cached(path)
            found = dict(data) if self.writable and data else (data or {})
            self._indexes[path] = found
        return found

    def _set_index(self, path: Path, key: str, value: Any) -> None:
        index = self._index(path)
        if value is None:
            if key not in index:
                return
            del index[key]
        else:
            index[key] = value
        self._dirty_indexes.add(path)

    def _day_index(self, kind: str, stamp: str) -> Path:
        y, m, d = _day(stamp)
        return self.root / "index" / kind / y / m / f"{d}.json"

    def _day_files(self, kind: str, start: date | None = None, end: date | None = None
                   ) -> Iterator[Path]:
        base = self.root / "index" / kind
        for year in sorted(p.name for p in base.glob("[0-9]" * 4)):
            if (start and year < f"{start.year:04d}") or (end and year > f"{end.year:04d}"):
                continue
            for month in sorted(p.name for p in (base / year).iterdir()):
                if (start and f"{year}-{month}" < start.isoformat()[:7]) or \
                        (end and f"{year}-{month}" > end.isoformat()[:7]):
                    continue
                for day in sorted(p.name for p in (base / year / month).glob("*.json")):
                    if _in_range(f"{year}-{month}-{day[:2]}", start, end):
                        yield base / year / month / day

    def _scan(self, kind: str, start: date | None = None, end: date | None = None
              ) -> Iterator[dict]:
        """Every entry of the day indexes of ``kind`` in [start, end], in day order (this
        unit of work's own changes included)."""
        seen = set()
        for path in self._day_files(kind, start, end):
            seen.add(path)
            yield from (dict(v) for v in self._index(path).values())
        for path, index in self._indexes.items():   # days created in this unit of work
            if path not in seen and path.is_relative_to(self.root / "index" / kind) \
                    and not path.exists() and _in_range(self._path_day(path), start, end):
                yield from (dict(v) for v in index.values())

    @staticmethod
    def _path_day(path: Path) -> str:
        return f"{path.parent.parent.name}-{path.parent.name}-{path.stem}"

    # --- cases ----------------------------------------------------------------------------

    def case_path(self, case_id: str) -> Path:
        prefix, _, tail = case_id.rpartition("-")
        if not prefix or not tail.isdigit() or "/" in case_id or case_id.startswith("."):
            raise StorageError(f"案件编号 \"{case_id}\" 的格式不对（应为 前缀-数字，如 Q-17）",
                               case=case_id)
        return self.root / "cases" / prefix / str(int(tail) // CASES_PER_FOLDER) / f"{case_id}.json"

    def _partition(self, case_id: str, create: bool = False) -> TinyDB | None:
        try:
            path = self.case_path(case_id)
        except StorageError:
            if create:
                raise
            return None
        return self._db(path, create=create)

    @staticmethod
    def _table(db: TinyDB, name: str):
        return db.table(name, cache_size=0)

    def case(self, case_id: str) -> dict[str, Any] | None:
        db = self._partition(case_id)
        if db is None:
            return None
        row = self._table(db, "case").get(doc_id=1)
        return dict(row) if row is not None else None

    def put_case(self, record: Mapping[str, Any]) -> None:
        """Insert or replace a case (its own file) and its listing in the indexes."""
        self._check_writable()
        record = {**record, "schema_version": SCHEMA_VERSION}
        self._table(self._partition(record["id"], create=True), "case").upsert(
            Document(record, doc_id=1))
        listing, hashed = case_listing(record, self._listing)
        day = self._day_index("cases", record["created_at"])
        before = self._index(day).get(record["id"]) or {}
        self._index_due(record, before.get("due"), listing.get("due"), listing)
        for kind, values in hashed.items():
            for value in values:
                bucket = self._hash_bucket(kind, value)
                ids = self._index(bucket).get(value, [])
                if record["id"] not in ids:
                    self._set_index(bucket, value, [*ids, record["id"]])
        self._set_index(self._day_index("cases", record["created_at"]), record["id"], listing)
        held = self.root / "index" / "held" / f"{record['workflow']}.json"
        self._set_index(held, record["id"], listing if listing.get("held") else None)
        self._set_index(self._open_path(record["workflow"], record["created_at"]), record["id"],
                        None if listing.get("final") else listing)

    def _due_path(self, workflow: str, due: str) -> Path:
        return self.root / "index" / "due" / workflow / f"{due[:7]}.json"

    def _index_due(self, record: Mapping[str, Any], old: str | None, new: str | None,
                   listing: Mapping[str, Any]) -> None:
        """The index of open cases by the month their deadline falls in (a follow-up due):
        the due list reads the months up to its horizon, not every open case."""
        if old and (not new or old[:7] != new[:7]):
            self._set_index(self._due_path(record["workflow"], old), record["id"], None)
        if new:
            self._set_index(self._due_path(record["workflow"], new), record["id"], dict(listing))

    def due_cases(self, workflow: str, until: date) -> list[dict[str, Any]]:
        """Listings of the open cases of ``workflow`` whose deadline is ``until`` or earlier
        (overdue ones included), from the due index."""
        base = self.root / "index" / "due" / workflow
        paths = set(base.glob("*.json")) | {p for p in self._indexes if p.parent == base}
        last = until.isoformat()
        return [dict(c) for path in sorted(paths) if path.stem <= last[:7]
                for c in self._index(path).values() if str(c["due"])[:10] <= last]

    def _hash_bucket(self, kind: str, value: str) -> Path:
        return self.root / "index" / kind / f"{value[:2]}.json"

    def cases_of_person(self, person: str) -> list[str]:
        """The ids of the cases that held a personal identifier with this keyed hash (the
        listing function names them; entries are never removed, so callers check the case)."""
        return list(self._index(self._hash_bucket("people", person)).get(person, []))

    def cases_of_value(self, value: str) -> list[str]:
        """The ids of the cases whose searchable fields held a value with this keyed hash (a
        plate number; the listing's ``search``; never removed, so callers check the case)."""
        return list(self._index(self._hash_bucket("search", value)).get(value, []))

    def _open_path(self, workflow: str, stamp: str) -> Path:
        return self.root / "index" / "open" / workflow / f"{stamp[:7]}.json"

    def find_cases(self, workflow: str | None = None, state: str | None = None,
                   opened_from: date | None = None, opened_to: date | None = None,
                   open_only: bool = False, store: tuple[str, str] | None = None
                   ) -> list[dict[str, Any]]:
        """Listings of the cases opened in [opened_from, opened_to], filtered by workflow and
        state; only the day indexes of that period are read, or with ``open_only`` only the
        (much smaller) index of cases not in a final state. ``store``: (code, the code of
        records that carry none): one store's of a group."""
        if open_only:
            rows = self._scan_open(workflow, opened_from, opened_to)
        else:
            rows = self._scan("cases", opened_from, opened_to)
        return [c for c in rows
                if (workflow is None or c["workflow"] == workflow)
                and (state is None or c["state"] == state) and _of_store(c, store)]

    def _scan_open(self, workflow: str | None, start: date | None, end: date | None
                   ) -> Iterator[dict]:
        base = self.root / "index" / "open"
        paths = set(base.glob(f"{workflow or '*'}/*.json"))
        paths |= {p for p in self._indexes if p.is_relative_to(base)
                  and (workflow is None or p.parent.name == workflow)}
        lo = start.isoformat()[:7] if start else ""
        hi = end.isoformat()[:7] if end else "9999"
        for path in sorted(paths):
            if lo <= path.stem <= hi:
                for c in self._index(path).values():
                    if _in_range(c["created_at"][:10], start, end):
                        yield dict(c)

    def held_cases(self, workflow: str) -> list[dict[str, Any]]:
        """Listings of the cases of ``workflow`` that hold an ``[[exclusive]]`` resource."""
        return [dict(v) for v in self._index(self.root / "index" / "held" / f"{workflow}.json").values()]

    def cases_in_store(self) -> Iterator[dict[str, Any]]:
        """Every case record, read from its own file (slow on a large store: verify only)."""
        for path in sorted((self.root / "cases").glob("*/*/*.json")):
            case = self.case(path.stem)
            if case is not None:
                yield case

    # --- documents ----------------------------------------------------------------------

    def _number_bucket(self, number: str) -> Path:
        bucket = zlib.crc32(number.encode("utf-8")) % NUMBER_BUCKETS
        return self.root / "index" / "numbers" / f"{bucket:03x}.json"

    def case_of(self, number: str) -> str | None:
        return self._index(self._number_bucket(number)).get(number)

    def document(self, number: str) -> dict[str, Any] | None:
        case_id = self.case_of(number)
        db = self._partition(case_id) if case_id else None
        if db is None:
            return None
        row = self._table(db, "documents").get(Query().number == number)
        return dict(row) if row is not None else None

    def case_documents(self, case_id: str) -> list[dict[str, Any]]:
        db = self._partition(case_id)
        return [dict(r) for r in self._table(db, "documents").all()] if db is not None else []

    def put_document(self, doc: Mapping[str, Any]) -> None:
        self._check_writable()
        doc = {**doc, "schema_version": SCHEMA_VERSION}
        db = self._partition(doc["case_id"], create=True)
        self._table(db, "documents").upsert(doc, Query().number == doc["number"])
        if self.case_of(doc["number"]) != doc["case_id"]:
            self._set_index(self._number_bucket(doc["number"]), doc["number"], doc["case_id"])
        self._set_index(self._day_index("documents", doc["issued_at"]), doc["number"], doc)

    def find_documents(self, status: str | None = None, issued_from: date | None = None,
                       issued_to: date | None = None, store: tuple[str, str] | None = None
                       ) -> list[dict[str, Any]]:
        return [d for d in self._scan("documents", issued_from, issued_to)
                if (status is None or d["status"] == status) and _of_store(d, store)]

    # --- copies handed out ----------------------------------------------------------------

    def copies(self, number: str) -> list[dict[str, Any]]:
        case_id = self.case_of(number)
        db = self._partition(case_id) if case_id else None
        if db is None:
            return []
        return [dict(r) for r in self._table(db, "copies").search(Query().number == number)]

    def put_copy(self, record: Mapping[str, Any]) -> None:
        self._check_writable()
        case_id = self.case_of(record["number"])
        if case_id is None:
            raise StorageError(f"找不到文件 {record['number']}，不能登记其副本")
        record = {**record, "schema_version": SCHEMA_VERSION}
        db = self._partition(case_id, create=True)
        self._table(db, "copies").upsert(record, Query().key == record["key"])
        self._set_index(self._day_index("copies", record["issued_at"]), record["key"], record)

    def find_copies(self, issued_from: date | None = None, issued_to: date | None = None,
                    store: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        return [c for c in self._scan("copies", issued_from, issued_to) if _of_store(c, store)]

    # --- batch progress -------------------------------------------------------------------

    def _marks_path(self, batch: str) -> Path:
        check_batch(batch)
        return self.root / "batches" / f"{batch}.json"

    def set_mark(self, batch: str, item: str, value: Mapping[str, Any]) -> None:
        """Record, in this unit of work, that ``item`` of ``batch`` got this far (merged into
        what it already has): a batch run again skips what is marked."""
        self._check_writable()
        path = self._marks_path(batch)
        self._set_index(path, item, {**self._index(path).get(item, {}), **value})

    def marks(self, batch: str) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self._index(self._marks_path(batch)).items()}

    # --- sign-in sessions -----------------------------------------------------------------
    # One small index file per user (engine/sessions.py decides what a record holds); read
    # through the index cache, so checking a session on every request costs a stat.

    def _sessions_path(self, owner: str) -> Path:
        check_owner(owner)
        return self.root / "sessions" / f"{owner}.json"

    def sessions(self, owner: str) -> dict[str, dict[str, Any]]:
        """The session records in ``owner``'s file, by session id."""
        return {k: dict(v) for k, v in self._index(self._sessions_path(owner)).items()}

    def set_session(self, owner: str, session_id: str, record: Mapping[str, Any] | None) -> None:
        """Add or replace a session record in this unit of work; None removes it."""
        self._check_writable()
        self._set_index(self._sessions_path(owner), session_id,
                        None if record is None else {**record, "schema_version": SCHEMA_VERSION})

    # --- hash-chained logs ----------------------------------------------------------------

    def _log_path(self, name: str, stamp: str) -> Path:
        return self.root / "log" / name / f"{stamp[:7]}.jsonl"

    def append_chained(self, name: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """Append ``record`` to the hash chain ``name`` (see :mod:`engine.chain`); a copy goes
        into the file of the case it concerns, for that case's history."""
        self._check_writable()
        entry = next_entry(name, record, self.chain_head(name),
                           self.next_counter(f"chain:{name}"))
        self.put_entry(name, entry)
        return entry

    def case_log(self, name: str, case_id: str) -> list[dict[str, Any]]:
        """The entries of log ``name`` about one case (from the case's file), oldest first."""
        db = self._partition(case_id)
        rows = [dict(r) for r in self._table(db, name).all()] if db is not None else []
        return sorted(rows, key=lambda e: e["seq"])

    def log_entries(self, name: str) -> list[dict[str, Any]]:
        """The whole chain ``name`` from its monthly files (verify, migration)."""
        out = []
        for path in sorted((self.root / "log" / name).glob("*.jsonl")):
            try:
                lines = path.read_bytes().splitlines()
            except OSError as err:
                raise StorageError(f"无法读取日志 {path}：{err}", path=str(path)) from err
            for n, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    raise StorageError(f"日志 {path} 第 {n} 行已损坏；请从备份恢复",
                                       path=str(path)) from None
        for path, chunks in self._appends.items():
            if path.is_relative_to(self.root / "log" / name):
                out.extend(json.loads(c) for c in chunks)
        return sorted(out, key=lambda e: e.get("seq", 0))

    def chain_head(self, name: str) -> str | None:
        row = self._table(self._meta, "chains").get(Query().key == name)
        return row["hash"] if row else None

    # --- workflow definitions the cases are at ---------------------------------------------

    def definition(self, workflow: str) -> str | None:
        """The hash of ``workflow``'s definition the store's cases were last brought to (see
        ``engine.definitions``); None before the first time."""
        row = self._table(self._meta, "definitions").get(Query().key == workflow)
        return row["hash"] if row else None

    def set_definition(self, workflow: str, digest: str) -> None:
        self._check_writable()
        self._table(self._meta, "definitions").upsert(
            {"key": workflow, "hash": digest, "schema_version": SCHEMA_VERSION},
            Query().key == workflow)

    # --- counters -------------------------------------------------------------------------

    def peek_counter(self, key: str) -> int:
        row = self._table(self._meta, "counters").get(Query().key == key)
        return row["value"] if row else 0

    def next_counter(self, key: str) -> int:
        """Increment and return the counter ``key`` (1 for the first call)."""
        value = self.peek_counter(key) + 1
        self.set_counter(key, value)
        return value

    def set_counter(self, key: str, value: int) -> None:
        self._check_writable()
        self._table(self._meta, "counters").upsert(
            {"key": key, "value": value, "schema_version": SCHEMA_VERSION}, Query().key == key)

    # --- copying a whole store (``dealerdocs store copy``) ----------------------------------

    def counters(self) -> dict[str, int]:
        return {r["key"]: r["value"] for r in self._table(self._meta, "counters").all()}

    def definitions(self) -> dict[str, str]:
        return {r["key"]: r["hash"] for r in self._table(self._meta, "definitions").all()}

    def all_marks(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {p.stem: self.marks(p.stem)
                for p in sorted((self.root / "batches").glob("*.json"))}

    def all_sessions(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {p.stem: self.sessions(p.stem)
                for p in sorted((self.root / "sessions").glob("*.json"))}

    def put_entry(self, name: str, entry: Mapping[str, Any]) -> None:
        """Append an entry of chain ``name`` as it is (hash and sequence kept), and make it
        the chain's head: a copied chain links exactly as the original."""
        self._check_writable()
        self._appends.setdefault(self._log_path(name, entry["at"]), []).append(
            dumps(entry) + b"\n")
        self._table(self._meta, "chains").upsert({"key": name, "hash": entry["hash"]},
                                                 Query().key == name)
        case_id = entry_case(entry, self.case_of)
        if case_id:
            self._table(self._partition(case_id, create=True), name).insert(dict(entry))

    # --- commit ---------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if not self.writable:
            raise StorageError("只读视图不能写入")  # programming error surfaced clearly

    def changes(self) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """(files to replace, bytes to append), by path relative to the store folder."""
        replace: dict[str, bytes] = {}
        for path, db in self._dbs.items():
            if db.storage.dirty:  # type: ignore[attr-defined]
                replace[str(path.relative_to(self.root))] = dumps(db.storage.data)  # type: ignore[attr-defined]
        for path in self._dirty_indexes:
            replace[str(path.relative_to(self.root))] = dumps(self._indexes[path])
        appends = {str(p.relative_to(self.root)): b"".join(chunks)
                   for p, chunks in self._appends.items()}
        if (replace or appends) and self._meta_new:
            replace[META_FILE] = dumps(self._meta.storage.data)  # type: ignore[attr-defined]
        return replace, appends

    def flush_in_place(self) -> None:
        """Replace this unit of work's files one by one (each atomically, no sync) and forget
        them: for upgrading a store under its exclusive lock, where every step may run again."""
        replace, appends = self.changes()
        if appends:
            raise StorageError("flush_in_place: appends need the journal")  # programming error
        for rel, payload in replace.items():
            atomic_write_bytes(self.root / rel, payload, sync=False)
        self._dbs = {self.root / META_FILE: self._meta}
        self._indexes, self._dirty_indexes, self._appends = {}, set(), {}

    def flush_unjournaled(self) -> None:
        """Write this unit of work's changes straight to their files and forget them (bulk
        loading into a store nobody else uses: the generator and the migration)."""
        replace, appends = self.changes()
        for rel, payload in [*replace.items(), *appends.items()]:
            path = self.root / rel
            make_dirs(path.parent)
            # a new store nobody reads yet: no temp file needed
            flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if rel in appends else os.O_TRUNC)
            fd = os.open(path, flags, FILE_MODE)
            try:
                write_all(fd, payload)
            finally:
                os.close(fd)
        meta = self._meta
        self._dbs = {self.root / META_FILE: meta}
        meta.storage.dirty = False  # type: ignore[attr-defined]
        self._meta_new = False
        self._indexes, self._dirty_indexes, self._appends = {}, set(), {}
