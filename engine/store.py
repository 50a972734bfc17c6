"""The embedded store: tinydb partitions, one per case, so a transition costs the same after
years of history; written through a journal under a cross-process lock.

Why this layout (schema 3, open-case index added in 4): tinydb's own storage rewrites the whole file on every write, so a
single-file store gets slower with every case ever handled. Here a unit of work touches only
small files: the case's own tinydb file, the index of the day the case was opened, the
document index of the day, one of 1,024 document-number buckets, the small ``meta.json`` and
the month's append-only log files. None of them grows with the store's age.

On-disk shape under ``<store>/``::

    meta.json                          tinydb: _meta {schema_version}, counters, chains (heads),
                                       definitions (the workflow definition the cases are at)
    cases/<PREFIX>/<n // 1000>/<ID>.json
                                       tinydb, one per case: case, documents, copies, and the
                                       case's own audit and register_log entries
    index/cases/YYYY/MM/DD.json        {case id: listing} by the day the case was opened
    index/held/<workflow>.json         {case id: listing} cases holding an [[exclusive]] resource
    index/open/<workflow>/YYYY-MM.json {case id: listing} cases not in a final state, by the
                                       month they were opened (what start pages, the due list
                                       and "which quotes are still issued" read)
    index/documents/YYYY/MM/DD.json    {number: document} by the day it was issued
    index/numbers/<xyz>.json           {number: case id}, 1,024 buckets by crc32 of the number
    index/copies/YYYY/MM/DD.json       {key: copy} by the day the copy was handed out
    index/people/<xy>.json             {keyed hash of an ID or mobile: [case ids]}, 256
                                       buckets: which cases a purge request concerns
    sessions/<h>.json                  {session id: record} one user's sign-in sessions and API
                                       tokens (engine/sessions.py); <h> is 32 hex of a sha256
                                       of the login; a record keeps the sha256 of its secret,
                                       never the secret
    log/audit/YYYY-MM.jsonl            the hash-chained audit trail, append-only
    log/register_log/YYYY-MM.jsonl     the hash-chained register log, append-only
    journal/commit.json                a unit of work being applied (see below)

A listing (the index entry of a case) is what lists, filters, the due list and the
``[[exclusive]]`` check need without opening the case: the engine supplies it
(``Store(listing=...)``) so the store stays ignorant of workflows.

Atomicity across files: :meth:`Store.transaction` takes the lock, works on in-memory copies,
and on success writes one journal file holding every new file content and every log append
(with the log's size before it), fsynced and renamed into place: that is the commit point.
Then it applies the journal (each file replaced atomically, each append written at its
recorded offset) and deletes it. A crash before the journal exists changes nothing; a crash
after it is finished by the next process that takes the lock (replaying is idempotent).
Once the journal is durable the unit of work is committed: SIGINT and SIGTERM wait until it
is applied, a failed write or ``syncfs`` while applying leaves the journal for the next
process, and nothing undoes it. A journal that is empty or cut short is reported, never
guessed at (``dealerdocs recover --discard-journal`` moves it aside).

Locking (``flock`` on ``dealerdocs.lock``): readers share the lock, a writer takes it alone,
so nobody sees half of a unit of work. A writer holds it only to read, decide and commit:
documents are rendered and converted before (see ``Engine``), on a :meth:`Store.rehearsal`,
so a reader never waits for LibreOffice. Files are the service user's only (0600 / 0700).

Older stores (one ``dealerdocs.json``, schemas 1 and 2) are migrated on first use; the old
file is kept beside it as ``dealerdocs.v2.json``.
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import signal
import threading
import zlib
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Document

from . import chain, checkpoints
from .errors import StorageError
from .files import FILE_MODE, atomic_write_bytes, fsync_dir, make_dirs, make_private, write_all
from .lock import LockTimeout, RWFileLock

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5
LEGACY_FILE = "dealerdocs.json"   # schemas 1 and 2: the whole store in one tinydb file
META_FILE = "meta.json"
LOCK_FILE = "dealerdocs.lock"
LOGS = ("audit", "register_log")
NUMBER_BUCKETS = 1024
CASES_PER_FOLDER = 1000

Listing = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Upgrade:
    """What the store needs from the engine to bring a schema-4 store to 5 (it knows nothing
    of workflows): a case's direct owners, an audit entry without personal values, and other
    folders to make private (the outbox)."""

    owners: Callable[[Mapping[str, Any]], list[str]]
    redact: Callable[[dict[str, Any]], dict[str, Any]]
    private: tuple[Path, ...] = ()


def basic_listing(record: Mapping[str, Any]) -> dict[str, Any]:
    """The listing when no engine supplies one: the case's bookkeeping fields only."""
    return {}


# --- migrations of the single-file layout ------------------------------------------------

def _chain_existing_logs(data: dict) -> dict:
    """1 → 2: the audit trail becomes a hash chain and the register gets its own chained log
    (an "issued" event per document already issued), so older stores verify like new ones."""
    def rechain(rows: list[dict]) -> tuple[dict, str]:
        out, prev = {}, chain.GENESIS
        for i, row in enumerate(rows, start=1):
            body = {k: v for k, v in row.items() if k not in ("seq", "prev_hash", "hash")}
            entry = chain.link({**body, "schema_version": 2}, i, prev)
            out[str(i)] = entry
            prev = entry["hash"]
        return out, prev

    audit = sorted(data.get("audit", {}).values(), key=lambda r: r.get("seq", 0))
    data["audit"], audit_head = rechain(audit)
    docs = sorted(data.get("documents", {}).values(), key=lambda d: d["issued_at"])
    events = [{"at": d["issued_at"], "actor": d["issued_by"], "event": "issued",
               "number": d["number"], "case_id": d["case_id"], "pdf_sha256": d["pdf_sha256"],
               "docx_sha256": d["docx_sha256"]} for d in docs]
    data["register_log"], register_head = rechain(events)
    data["chains"] = {"1": {"key": "audit", "hash": audit_head},
                      "2": {"key": "register_log", "hash": register_head}}
    counters = data.setdefault("counters", {})
    next_id = max((int(k) for k in counters), default=0) + 1
    for key, value in (("chain:audit", len(audit)), ("chain:register_log", len(events))):
        counters[str(next_id)] = {"key": key, "value": value, "schema_version": 2}
        next_id += 1
    return data


# version n → function upgrading a whole single-file store dict from n to n + 1 (up to 2;
# 2 → 3 changes the layout on disk, see Store._migrate_legacy)
MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _chain_existing_logs}
LEGACY_VERSION = 2


# --- files -------------------------------------------------------------------------------

_fsync_dir = fsync_dir


def _sync_filesystem(path: Path) -> None:
    """Flush every write on the file system holding ``path`` (Linux ``syncfs``; ``sync``
    where there is no ``syncfs``). A failed ``syncfs`` (an I/O error reported by the disk) is
    raised: the writes may not be on the disk, so the journal must stay."""
    if _LIBC is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if _LIBC.syncfs(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"syncfs: {os.strerror(errno)}")
    finally:
        os.close(fd)


try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
    _LIBC.syncfs  # noqa: B018  (present on Linux)
except (OSError, AttributeError):
    _LIBC = None


@contextmanager
def deferred_signals() -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM wait until the block is done, then are delivered as
    usual. Only the main thread receives signals; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    kinds = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in kinds}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(received):
            signal.raise_signal(s)


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StorageError(f"无法读取数据库文件 {path}：{err}", path=str(path)) from err
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError as err:
        raise StorageError(f"数据库文件 {path} 已损坏（第 {err.lineno} 行：{err.msg}）；"
                           f"请从备份恢复", path=str(path)) from err


# Parsed index files, keyed by path and (mtime, size, inode): a long-running process (the web
# app) re-reads only the files that changed. Files are only ever replaced whole, so a new
# content always comes with a new inode. Bounded by the files' size on disk (least recently
# used go first), so scanning every document of a large store cannot fill the memory.
_INDEX_CACHE: "OrderedDict[Path, tuple[tuple[int, int, int], Any]]" = OrderedDict()
_INDEX_CACHE_BYTES = 32 * 1024 * 1024
_index_cache_size = 0
_index_cache_lock = threading.Lock()


def _read_index_cached(path: Path) -> Any:
    global _index_cache_size
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    with _index_cache_lock:
        hit = _INDEX_CACHE.get(path)
        if hit is not None and hit[0] == key:
            _INDEX_CACHE.move_to_end(path)
            return hit[1]
    data = _read_json(path)
    with _index_cache_lock:
        old = _INDEX_CACHE.pop(path, None)
        if old is not None:
            _index_cache_size -= old[0][1]
        if st.st_size <= _INDEX_CACHE_BYTES // 4:
            _INDEX_CACHE[path] = (key, data)
            _index_cache_size += st.st_size
        while _index_cache_size > _INDEX_CACHE_BYTES:
            _, (dropped, _) = _INDEX_CACHE.popitem(last=False)
            _index_cache_size -= dropped[1]
    return data


def clear_index_cache() -> None:
    global _index_cache_size
    with _index_cache_lock:
        _INDEX_CACHE.clear()
        _index_cache_size = 0


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
        meta = _read_json(root / META_FILE)
        self._meta_new = meta is None
        self._meta = TinyDB(meta if meta is not None else new_meta(), storage=_Memory)
        self._dbs[root / META_FILE] = self._meta

    # --- files ----------------------------------------------------------------------------

    def _db(self, path: Path, create: bool = True) -> TinyDB | None:
        db = self._dbs.get(path)
        if db is None:
            data = _read_json(path)
            if data is None and not create:
                return None
            db = TinyDB(data, storage=_Memory)
            self._dbs[path] = db
        return db

    def _index(self, path: Path) -> dict:
        found = self._indexes.get(path)
        if found is None:
            data = _read_json(path) if self.writable else _read_index_cached(path)
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
        listing = {"id": record["id"], "workflow": record["workflow"], "state": record["state"],
                   "created_at": record["created_at"], "created_by": record["created_by"],
                   "updated_at": record["updated_at"], "updated_by": record["updated_by"],
                   **self._listing(record)}
        for person in listing.pop("people", None) or ():
            bucket = self._people_bucket(person)
            ids = self._index(bucket).get(person, [])
            if record["id"] not in ids:
                self._set_index(bucket, person, [*ids, record["id"]])
        self._set_index(self._day_index("cases", record["created_at"]), record["id"], listing)
        held = self.root / "index" / "held" / f"{record['workflow']}.json"
        self._set_index(held, record["id"], listing if listing.get("held") else None)
        self._set_index(self._open_path(record["workflow"], record["created_at"]), record["id"],
                        None if listing.get("final") else listing)

    def _people_bucket(self, person: str) -> Path:
        return self.root / "index" / "people" / f"{person[:2]}.json"

    def cases_of_person(self, person: str) -> list[str]:
        """The ids of the cases that held a personal identifier with this keyed hash (the
        listing function names them; entries are never removed, so callers check the case)."""
        return list(self._index(self._people_bucket(person)).get(person, []))

    def _open_path(self, workflow: str, stamp: str) -> Path:
        return self.root / "index" / "open" / workflow / f"{stamp[:7]}.json"

    def find_cases(self, workflow: str | None = None, state: str | None = None,
                   opened_from: date | None = None, opened_to: date | None = None,
                   open_only: bool = False) -> list[dict[str, Any]]:
        """Listings of the cases opened in [opened_from, opened_to], filtered by workflow and
        state; only the day indexes of that period are read, or with ``open_only`` only the
        (much smaller) index of cases not in a final state."""
        if open_only:
            rows = self._scan_open(workflow, opened_from, opened_to)
        else:
            rows = self._scan("cases", opened_from, opened_to)
        return [c for c in rows
                if (workflow is None or c["workflow"] == workflow)
                and (state is None or c["state"] == state)]

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
                       issued_to: date | None = None) -> list[dict[str, Any]]:
        return [d for d in self._scan("documents", issued_from, issued_to)
                if status is None or d["status"] == status]

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

    def find_copies(self, issued_from: date | None = None, issued_to: date | None = None
                    ) -> list[dict[str, Any]]:
        return list(self._scan("copies", issued_from, issued_to))

    # --- batch progress -------------------------------------------------------------------

    def _marks_path(self, batch: str) -> Path:
        if not batch.isalnum():
            raise StorageError(f"批次编号 \"{batch}\" 只能含字母和数字")
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
        if len(owner) != 32 or any(c not in "0123456789abcdef" for c in owner):
            raise StorageError(f"登录会话文件名 \"{owner}\" 应为 32 位十六进制")
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
        if name not in LOGS:
            raise StorageError(f"没有名为 {name} 的日志")
        head = self.chain_head(name)
        entry = chain.link({**record, "schema_version": SCHEMA_VERSION},
                           self.next_counter(f"chain:{name}"), head or chain.GENESIS)
        self._appends.setdefault(self._log_path(name, entry["at"]), []).append(
            _dumps(entry) + b"\n")
        self._table(self._meta, "chains").upsert({"key": name, "hash": entry["hash"]},
                                                 Query().key == name)
        case_id = record.get("case_id") or (self.case_of(record["number"])
                                            if record.get("number") else None)
        if case_id:
            self._table(self._partition(case_id, create=True), name).insert(entry)
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
        self._check_writable()
        value = self.peek_counter(key) + 1
        self._table(self._meta, "counters").upsert(
            {"key": key, "value": value, "schema_version": SCHEMA_VERSION}, Query().key == key)
        return value

    # --- commit ---------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if not self.writable:
            raise StorageError("只读视图不能写入")  # programming error surfaced clearly

    def changes(self) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """(files to replace, bytes to append), by path relative to the store folder."""
        replace: dict[str, bytes] = {}
        for path, db in self._dbs.items():
            if db.storage.dirty:  # type: ignore[attr-defined]
                replace[str(path.relative_to(self.root))] = _dumps(db.storage.data)  # type: ignore[attr-defined]
        for path in self._dirty_indexes:
            replace[str(path.relative_to(self.root))] = _dumps(self._indexes[path])
        appends = {str(p.relative_to(self.root)): b"".join(chunks)
                   for p, chunks in self._appends.items()}
        if (replace or appends) and self._meta_new:
            replace[META_FILE] = _dumps(self._meta.storage.data)  # type: ignore[attr-defined]
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


class Store:
    """The store folder: partitions, indexes, logs and the lock (see the module docstring)."""

    def __init__(self, directory: Path, lock_timeout: float = 120.0,
                 listing: Listing | None = None, upgrade: "Upgrade | None" = None) -> None:
        self.directory = Path(directory)
        self.listing = listing or basic_listing
        self.upgrade = upgrade
        self.lock = RWFileLock(self.directory / LOCK_FILE, timeout=lock_timeout)

    @property
    def journal(self) -> Path:
        return self.directory / "journal" / "commit.json"

    # --- locking and recovery -------------------------------------------------------------

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        """The store's lock: shared for readers, exclusive for a writer. Whoever takes it
        first after a crash or an upgrade finishes the interrupted write or the migration
        (under the exclusive lock) before reading anything."""
        try:
            make_dirs(self.directory)
            if exclusive:
                with self.lock.exclusive():
                    self._recover()
                    yield
                return
            if self.lock.held() is None and self._needs_recovery():
                with self.lock.exclusive():
                    self._recover()
            with self.lock.shared():
                yield
        except LockTimeout:
            raise StorageError(f"数据库正被另一个 dealerdocs 进程占用（等待 {self.lock.timeout:.0f} 秒后"
                               f"仍未释放：{self.lock.path}），请稍后重试") from None
        except OSError as err:
            if isinstance(err, StorageError):  # pragma: no cover - StorageError is no OSError
                raise
            raise StorageError(f"无法锁定数据库目录 {self.directory}：{err}") from err

    def _needs_recovery(self) -> bool:
        if self.journal.exists() or (self.directory / LEGACY_FILE).exists():
            return True
        meta = _read_index_cached(self.directory / META_FILE)
        version = ((meta or {}).get("_meta", {}).get("1") or {}).get("schema_version")
        return meta is not None and version != SCHEMA_VERSION

    def _recover(self) -> None:
        """Finish a unit of work whose journal was committed, then bring old layouts up."""
        if self.journal.exists():
            manifest = self._read_journal()
            log.warning("finishing an interrupted write from %s", self.journal)
            try:
                self._apply(manifest)
            except OSError as err:
                raise StorageError(f"无法补完上次中断的写入（{err}）；数据库日志 {self.journal} "
                                   f"保留，问题解决后任何 dealerdocs 命令都会再试",
                                   path=str(self.journal)) from err
        if (self.directory / LEGACY_FILE).exists():
            self._migrate_legacy()
        while (meta := _read_json(self.directory / META_FILE)) is not None:
            version = (meta.get("_meta", {}).get("1") or {}).get("schema_version")
            if not isinstance(version, int):
                raise StorageError(f"数据库 {self.directory / META_FILE} 缺少 schema_version，"
                                   f"不是 dealerdocs 的数据库", path=str(self.directory))
            if version > SCHEMA_VERSION:
                raise StorageError(f"数据库版本 {version} 比本程序支持的 {SCHEMA_VERSION} 新；"
                                   f"请升级 dealerdocs", path=str(self.directory))
            if version == SCHEMA_VERSION:
                break
            # each step writes its files first and the new version last, and may run again
            # after a crash half way
            {3: self._add_open_index, 4: self._upgrade_to_5}[version](meta)

    def _read_journal(self) -> Mapping[str, Any]:
        """The committed journal, checked for its shape: a journal that is empty or cut
        short cannot be replayed, and guessing would corrupt the store."""
        way_out = ("它记录的是上一次未完成的写入。请先备份整个数据库目录，再运行 "
                   "dealerdocs recover --discard-journal 把它移到一旁（之后用 dealerdocs verify 检查）")
        try:
            manifest = _read_json(self.journal)
        except StorageError:
            manifest = "corrupt"
        ok = (isinstance(manifest, dict) and isinstance(manifest.get("replace"), dict)
              and isinstance(manifest.get("append"), dict)
              and all(isinstance(k, str) and isinstance(v, str)
                      for k, v in manifest["replace"].items())
              and all(isinstance(k, str) and isinstance(v, list) and len(v) == 2
                      and isinstance(v[0], int) and isinstance(v[1], str)
                      for k, v in manifest["append"].items()))
        if not ok:
            what = "是空的" if manifest is None else "已损坏"
            raise StorageError(f"数据库日志 {self.journal} {what}，无法补完；{way_out}",
                               path=str(self.journal))
        for rel in [*manifest["replace"], *manifest["append"]]:
            target = (self.directory / rel).resolve()
            if not target.is_relative_to(self.directory.resolve()) or rel.startswith("/"):
                raise StorageError(f"数据库日志 {self.journal} 指向数据库目录之外（{rel}）；{way_out}",
                                   path=str(self.journal))
        return manifest

    def discard_journal(self) -> Path | None:
        """Move a journal that cannot be replayed aside (kept for inspection); the unit of
        work it held is lost. Returns where it went, or None if there was none."""
        with self.lock.exclusive():
            if not self.journal.exists():
                return None
            stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
            target = self.journal.with_name(f"discarded-{stamp}.json")
            os.replace(self.journal, target)
            fsync_dir(self.journal.parent)
            return target

    def _add_open_index(self, meta: dict) -> None:
        """3 → 4: the index of open cases, built from the day indexes (idempotent: the
        version moves on only once every file is written)."""
        log.info("migrating store to schema 4 (index of open cases)")
        tx = Tx(self.directory, writable=True, listing=self.listing)
        shutil.rmtree(self.directory / "index" / "open", ignore_errors=True)
        for listing in tx.find_cases():
            if not listing.get("final"):
                tx._set_index(tx._open_path(listing["workflow"], listing["created_at"]),
                              listing["id"], listing)
        for path in tx._dirty_indexes:
            atomic_write_bytes(path, _dumps(tx._indexes[path]), sync=False)
        _sync_filesystem(self.directory)
        meta["_meta"] = {"1": {"schema_version": 4}}
        atomic_write_bytes(self.directory / META_FILE, _dumps(meta))

    def _upgrade_to_5(self, meta: dict) -> None:
        """4 → 5, for issue 13 (personal data): every case gets its ``owners`` (shared by the
        cases linked together) and its listing is made again; the audit trail's personal
        values become keyed hashes and the chain is linked again (the head before is kept in
        ``meta.json`` under ``upgrades``); the store's and the outbox's files become the
        service user's only. The register log is left as it is: issued PDFs carry its head."""
        if self.upgrade is None:
            raise StorageError(f"数据库 {self.directory} 是第 4 版，需要由 dealerdocs 升级（请运行任意 "
                               f"dealerdocs 命令，如 dealerdocs list --as 用户）", path=str(self.directory))
        log.warning("migrating store %s to schema 5 (owners, audit trail without personal "
                    "values, private files)", self.directory)
        up = self.upgrade
        # 1. owners: who opened each case and its assignee, shared along the links
        links: dict[str, list[str]] = {}
        direct: dict[str, list[str]] = {}
        reader = Tx(self.directory, writable=False, listing=self.listing)
        ids = [p.stem for p in sorted((self.directory / "cases").glob("*/*/*.json"))]
        for case_id in ids:
            record = reader.case(case_id)
            if record is None:
                continue
            links[case_id] = [i for group in record.get("links", {}).values() for i in group]
            direct[case_id] = up.owners(record)
            reader = Tx(self.directory, writable=False, listing=self.listing)  # bounded memory
        group_of: dict[str, list[str]] = {}
        for case_id in links:
            if case_id in group_of:
                continue
            group, queue = [], [case_id]
            while queue:
                current = queue.pop()
                if current in group_of or current not in links:
                    continue
                group_of[current] = group
                group.append(current)
                queue.extend(links[current])
        # 2. the audit trail: personal values become keyed hashes, linked again
        old_head = reader.chain_head("audit")
        new_links: dict[int, tuple[str, str]] = {}
        prev = chain.GENESIS
        rewritten: dict[Path, list[bytes]] = {}
        for entry in reader.log_entries("audit"):
            body = up.redact({k: v for k, v in entry.items()
                              if k not in ("seq", "prev_hash", "hash")})
            new = chain.link(body, entry["seq"], prev)
            new_links[entry["seq"]] = (new["prev_hash"], new["hash"])
            prev = new["hash"]
            rewritten.setdefault(reader._log_path("audit", new["at"]), []).append(
                _dumps(new) + b"\n")
        for path, lines in rewritten.items():
            atomic_write_bytes(path, b"".join(lines), sync=False)
        checkpoints.reached("upgrade 5 audit", "the audit trail linked again")
        # 3. each case: owners, its copy of the audit trail, its listing (through put_case)
        for n, case_id in enumerate(links, start=1):
            tx = Tx(self.directory, writable=True, listing=self.listing)
            record = tx.case(case_id)
            owners = list(dict.fromkeys(o for member in group_of[case_id]
                                        for o in direct[member]))
            table = tx._table(tx._partition(case_id, create=True), "audit")
            copies = [dict(e) for e in table.all()]
            table.truncate()
            for entry in sorted(copies, key=lambda e: e["seq"]):
                body = up.redact({k: v for k, v in entry.items()
                                  if k not in ("seq", "prev_hash", "hash")})
                prev_hash, digest = new_links.get(entry["seq"], (entry["prev_hash"], entry["hash"]))
                table.insert({**body, "seq": entry["seq"], "prev_hash": prev_hash, "hash": digest})
            tx.put_case({**record, "owners": owners})
            tx.flush_in_place()
            if n == len(links) // 2:
                checkpoints.reached("upgrade 5 cases", f"{n} of {len(links)} cases")
        # 4. the new head, the old one kept; private files; the version last
        if old_head is not None:
            meta.setdefault("chains", {})
            for row in meta["chains"].values():
                if row.get("key") == "audit":
                    row["hash"] = prev
        meta.setdefault("upgrades", {})["5"] = {"audit_head_before": old_head,
                                               "audit_head_after": prev if old_head else None}
        _sync_filesystem(self.directory)
        for folder in (self.directory, *up.private):
            make_private(folder)
        meta["_meta"] = {"1": {"schema_version": 5}}
        atomic_write_bytes(self.directory / META_FILE, _dumps(meta))

    def _commit(self, tx: Tx) -> None:
        """Write the journal (the commit point), then apply it. From the moment the journal
        is durable the unit of work is committed: SIGINT and SIGTERM wait until it is
        applied, and a failure while applying leaves the journal for the next process
        instead of undoing anything."""
        replace, appends = tx.changes()
        if not replace and not appends:
            return
        sizes = {}
        for rel in appends:
            path = self.directory / rel
            sizes[rel] = path.stat().st_size if path.exists() else 0
        manifest = {"replace": {k: v.decode("utf-8") for k, v in replace.items()},
                    "append": {k: [sizes[k], v.decode("utf-8")] for k, v in appends.items()}}
        with deferred_signals():
            try:
                atomic_write_bytes(self.journal, _dumps(manifest))   # the commit point
            except OSError as err:
                raise StorageError(f"无法写入数据库日志 {self.journal}：{err}",
                                   path=str(self.journal)) from err
            tx.committed = True
            checkpoints.reached("journal written", "committed")
            try:
                self._apply(manifest)
            except OSError as err:
                log.error("committed, but applying %s failed (%s); the next dealerdocs "
                          "process finishes it", self.journal, err)

    def _apply(self, manifest: Mapping[str, Any]) -> None:
        """Make the files say what the journal says (idempotent), then drop the journal.

        The journal is the durable copy, so the files are written without a sync each and
        the whole file system is synced once before the journal goes (if the machine dies
        before that, the next process replays the journal). Raises ``OSError``, leaving the
        journal in place, if anything cannot be written or synced."""
        for rel, text in manifest["replace"].items():
            atomic_write_bytes(self.directory / rel, text.encode("utf-8"), sync=False)
        for rel, (offset, text) in manifest["append"].items():
            path = self.directory / rel
            make_dirs(path.parent)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
            try:
                os.ftruncate(fd, offset)
                os.lseek(fd, offset, os.SEEK_SET)
                write_all(fd, text.encode("utf-8"))
            finally:
                os.close(fd)
        _sync_filesystem(self.directory)
        self.journal.unlink()
        log.debug("journal applied")

    # --- units of work --------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Exclusive read-modify-write: commits once if the block succeeds, else writes
        nothing. ``tx.committed`` tells a caller whose block or commit was interrupted
        whether the unit of work is nevertheless on disk."""
        with self._locked(exclusive=True):
            tx = Tx(self.directory, writable=True, listing=self.listing)
            yield tx
            self._commit(tx)

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        """A consistent read-only view, under the shared lock: readers do not wait for each
        other, only for a writer's commit (never for a document's conversion)."""
        if not self.directory.exists():
            yield Tx(self.directory, writable=False, listing=self.listing)
            return
        with self._locked(exclusive=False):
            yield Tx(self.directory, writable=False, listing=self.listing)

    @contextmanager
    def rehearsal(self) -> Iterator[Tx]:
        """A unit of work that is never committed, on a consistent view (the shared lock):
        an operation runs in it to learn what it would convert, then again for real."""
        with self._locked(exclusive=False):
            yield Tx(self.directory, writable=True, listing=self.listing)

    @contextmanager
    def bulk(self) -> Iterator[Tx]:
        """Loading into a new, empty store (the generator): call ``tx.flush_unjournaled()``
        every few thousand cases; no journal, one sync at the end."""
        with self._locked(exclusive=True):
            if (self.directory / META_FILE).exists():
                raise StorageError(f"{self.directory} 已有数据；批量装载只能用于新的空数据库")
            tx = Tx(self.directory, writable=True, listing=self.listing)
            yield tx
            tx.flush_unjournaled()
            os.sync()

    # --- 2 → 3: from one file to partitions -------------------------------------------------

    def _migrate_legacy(self) -> None:
        """Rebuild a single-file store (schemas 1, 2) as partitions, in a side folder first;
        the old file is renamed only when the new layout is complete."""
        legacy = self.directory / LEGACY_FILE
        data = _read_json(legacy)
        if data is None:
            legacy.unlink()
            return
        version = (data.get("_meta", {}).get("1") or {}).get("schema_version")
        if not isinstance(version, int):
            raise StorageError(f"数据库 {legacy} 缺少 schema_version，不是 dealerdocs 的数据库",
                               path=str(legacy))
        if version > LEGACY_VERSION:
            raise StorageError(f"数据库版本 {version} 比本程序支持的 {SCHEMA_VERSION} 新；请升级 dealerdocs",
                               path=str(legacy))
        while version < LEGACY_VERSION:
            log.info("migrating store from schema %s", version)
            data = MIGRATIONS[version](data)
            version += 1
        log.info("migrating store to schema 3 (partitions)")
        side = self.directory / ".migrating-v3"
        shutil.rmtree(side, ignore_errors=True)
        tx = Tx(side, writable=True, listing=self.listing)
        rows = {name: list(data.get(name, {}).values()) for name in
                ("cases", "documents", "copies", "counters", "chains", *LOGS)}
        for row in rows["counters"]:
            if not row["key"].startswith("copy:"):   # copy numbers now come from the copies
                tx._table(tx._meta, "counters").insert(
                    {"key": row["key"], "value": row["value"], "schema_version": SCHEMA_VERSION})
        for row in rows["chains"]:
            tx._table(tx._meta, "chains").insert({"key": row["key"], "hash": row["hash"]})
        for case in rows["cases"]:
            tx.put_case(case)
        for doc in rows["documents"]:
            tx.put_document(doc)
        for copy in rows["copies"]:
            tx.put_copy(copy)
        for name in LOGS:
            for entry in sorted(rows[name], key=lambda e: e["seq"]):
                tx._appends.setdefault(tx._log_path(name, entry["at"]), []).append(
                    _dumps(entry) + b"\n")
                case_id = entry.get("case_id") or (tx.case_of(entry["number"])
                                                   if entry.get("number") else None)
                if case_id:
                    tx._table(tx._partition(case_id, create=True), name).insert(entry)
        # the partitioned layout of schema 3; the later steps of _recover take it further
        tx._meta.storage.data["_meta"] = {"1": {"schema_version": 3}}  # type: ignore[attr-defined]
        tx.flush_unjournaled()
        os.sync()
        checkpoints.reached("upgrade 3", "partitions written beside the old file")
        for item in ("cases", "index", "log"):
            shutil.rmtree(self.directory / item, ignore_errors=True)
            if (side / item).exists():
                os.replace(side / item, self.directory / item)
        os.replace(side / META_FILE, self.directory / META_FILE)
        _fsync_dir(self.directory)
        os.replace(legacy, self.directory / "dealerdocs.v2.json")
        _fsync_dir(self.directory)
        shutil.rmtree(side, ignore_errors=True)
        (self.directory / (LEGACY_FILE + ".lock")).unlink(missing_ok=True)


def new_meta() -> dict[str, Any]:
    return {"_meta": {"1": {"schema_version": SCHEMA_VERSION}}}
