"""The embedded store: tinydb on one JSON file, written atomically under a cross-process lock.

Why not plain tinydb: its JSONStorage rewrites the file in place (a crash leaves broken JSON)
and has no locking (two processes lose updates). Here every unit of work is a
:meth:`Store.transaction`: take the file lock, read the file once into memory, let tinydb work
on that in-memory copy, and on success write it back once (temp file, fsync, ``os.replace``,
fsync of the folder). A failure or a kill anywhere before the replace leaves the previous file
intact; a reader never sees a half-written one. Reads that change nothing use
:meth:`Store.snapshot` and take no lock.

On-disk shape (``<store>/dealerdocs.json``; tinydb's table → doc_id → record layout)::

    _meta     {"schema_version": 2}
    cases     {id, workflow, state, data{…}, created_at, created_by, updated_at, …}
    documents {number, series, year, version, case_id, workflow, kind, title, template,
               template_sha256, issued_at, issued_by, docx, pdf, docx_sha256, pdf_sha256,
               status, superseded_by, superseded_at}
    counters  {key, value}                 e.g. "series:quote:2026" → 17, "case:Q" → 4
    copies    {key, number, copy_no, label, recipient, dept, channel, issued_at, issued_by,
               status (out/returned/void), returned_at, returned_by, received_by, reason,
               disposition, replaces, replaced_by}         one row per copy handed out
    audit     {seq, at, actor, case_id, workflow, trigger, from, to, changed, documents,
               warnings, note, prev_hash, hash}            hash-chained, append-only
    register_log {seq, at, actor, event, number, …, prev_hash, hash}   hash-chained, append-only
    chains    {key, hash}                  the head of each chain (catches a deleted last entry)

Every record carries ``schema_version``; older stores are upgraded by :data:`MIGRATIONS`.
The store knows nothing of workflows or documents: those meanings live in the engine.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock, Timeout
from tinydb import Query, TinyDB
from tinydb.storages import Storage

from . import chain
from .errors import StorageError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
STORE_FILE = "dealerdocs.json"

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


# version n → function upgrading a whole store dict from n to n + 1
MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _chain_existing_logs}


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; published files follow the umask
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class AtomicJSONStorage(Storage):
    """A tinydb storage that opens the file per read and replaces it atomically per write."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StorageError(f"无法读取数据库 {self.path}：{err}", path=str(self.path)) from err
        try:
            return json.loads(text) if text.strip() else None
        except json.JSONDecodeError as err:
            raise StorageError(f"数据库文件 {self.path} 已损坏（第 {err.lineno} 行：{err.msg}）；"
                               f"请从备份恢复", path=str(self.path)) from err

    def write(self, data: dict[str, Any]) -> None:
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            atomic_write_bytes(self.path, payload)
        except OSError as err:
            raise StorageError(f"无法写入数据库 {self.path}：{err}", path=str(self.path)) from err


class _Snapshot(Storage):
    """The in-memory copy tinydb works on during one unit of work."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.dirty = False

    def read(self) -> dict[str, Any]:
        return self.data

    def write(self, data: dict[str, Any]) -> None:
        self.data = data
        self.dirty = True


class Tx:
    """One unit of work on the store: generic keyed records and counters."""

    def __init__(self, data: dict[str, Any], writable: bool) -> None:
        self._db = TinyDB(data, storage=_Snapshot)
        self.writable = writable

    @property
    def data(self) -> dict[str, Any]:
        return self._db.storage.data  # type: ignore[attr-defined]

    @property
    def dirty(self) -> bool:
        return self._db.storage.dirty  # type: ignore[attr-defined]

    def _table(self, name: str):
        return self._db.table(name, cache_size=0)

    def get(self, table: str, key_field: str, key: Any) -> dict[str, Any] | None:
        found = self._table(table).get(Query()[key_field] == key)
        return dict(found) if found is not None else None

    def put(self, table: str, key_field: str, record: dict[str, Any]) -> None:
        """Insert or replace the record whose ``key_field`` equals ``record[key_field]``."""
        self._check_writable()
        record = {**record, "schema_version": SCHEMA_VERSION}
        self._table(table).upsert(record, Query()[key_field] == record[key_field])

    def append(self, table: str, record: dict[str, Any]) -> None:
        self._check_writable()
        self._table(table).insert({**record, "schema_version": SCHEMA_VERSION})

    def all(self, table: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self._table(table).all()]

    def search(self, table: str, **equals: Any) -> list[dict[str, Any]]:
        q = None
        for k, v in equals.items():
            cond = Query()[k] == v
            q = cond if q is None else (q & cond)
        rows = self._table(table).search(q) if q is not None else self._table(table).all()
        return [dict(r) for r in rows]

    def append_chained(self, table: str, record: dict[str, Any]) -> dict[str, Any]:
        """Append ``record`` to the hash chain kept in ``table`` (see :mod:`engine.chain`)."""
        self._check_writable()
        head = self.chain_head(table)
        entry = chain.link({**record, "schema_version": SCHEMA_VERSION},
                           self.next_counter(f"chain:{table}"), head or chain.GENESIS)
        self._table(table).insert(entry)
        self._table("chains").upsert({"key": table, "hash": entry["hash"]},
                                     Query()["key"] == table)
        return entry

    def chain_head(self, table: str) -> str | None:
        row = self.get("chains", "key", table)
        return row["hash"] if row else None

    def peek_counter(self, key: str) -> int:
        row = self.get("counters", "key", key)
        return row["value"] if row else 0

    def next_counter(self, key: str) -> int:
        """Increment and return the counter ``key`` (1 for the first call)."""
        value = self.peek_counter(key) + 1
        self.put("counters", "key", {"key": key, "value": value})
        return value

    def _check_writable(self) -> None:
        if not self.writable:
            raise StorageError("只读视图不能写入")  # programming error surfaced clearly


class Store:
    """The store folder: ``dealerdocs.json`` plus its lock file."""

    def __init__(self, directory: Path, lock_timeout: float = 120.0) -> None:
        self.directory = Path(directory)
        self.storage = AtomicJSONStorage(self.directory / STORE_FILE)
        self.lock = FileLock(str(self.directory / (STORE_FILE + ".lock")), timeout=lock_timeout)

    def _load(self) -> dict[str, Any]:
        data = self.storage.read()
        if data is None:
            return {"_meta": {"1": {"schema_version": SCHEMA_VERSION}}}
        version = (data.get("_meta", {}).get("1") or {}).get("schema_version")
        if not isinstance(version, int):
            raise StorageError(f"数据库 {self.storage.path} 缺少 schema_version，不是 dealerdocs 的数据库",
                               path=str(self.storage.path))
        if version > SCHEMA_VERSION:
            raise StorageError(f"数据库版本 {version} 比本程序支持的 {SCHEMA_VERSION} 新；请升级 dealerdocs",
                               path=str(self.storage.path))
        while version < SCHEMA_VERSION:
            log.info("migrating store from schema %s", version)
            data = MIGRATIONS[version](data)
            version += 1
            data["_meta"] = {"1": {"schema_version": version}}
        return data

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Exclusive read-modify-write: commits once if the block succeeds, else writes nothing."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()
        except Timeout:
            raise StorageError(f"数据库正被另一个 dealerdocs 进程占用（等待 {self.lock.timeout:.0f} 秒后"
                               f"仍未释放：{self.lock.lock_file}），请稍后重试") from None
        except OSError as err:
            raise StorageError(f"无法锁定数据库目录 {self.directory}：{err}") from err
        try:
            tx = Tx(self._load(), writable=True)
            yield tx
            if tx.dirty:
                self.storage.write(tx.data)
        finally:
            self.lock.release()

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        """A consistent read-only view (the file is only ever replaced whole)."""
        yield Tx(self._load(), writable=False)
