"""The store on PostgreSQL (``store = "postgresql://…"`` in config.toml): the same units of
work and the same typed records as the embedded store (:mod:`engine.store.repository`), in
tables, for a dealer group whose servers share one database.

Why psycopg 3 and ``psycopg_pool``: the maintained PostgreSQL driver for Python, with a
thread-safe pool the web app's workers share and server-side parameters (no SQL is built
from values). Records are kept as ``json`` (not ``jsonb``): the text comes back as written,
keys in their order, so a case reads the same on both backends and a copied chain keeps
its hashes.

Units of work and locking mirror the embedded store's reader/writer lock with one advisory
lock on the database, so they hold across servers:

- ``transaction``: takes the lock alone (``pg_advisory_xact_lock``) for read, decide and
  commit, in one database transaction. A document's number (the series counter) is taken
  in the same transaction that records the document; rendering and conversion happen
  before, on a rehearsal, so the lock is never held while LibreOffice works.
- ``snapshot``: a REPEATABLE READ, read-only transaction, no lock: readers never wait.
- ``rehearsal``: shares the lock (``pg_advisory_xact_lock_shared``), so no writer commits
  under it (READ COMMITTED then reads one state throughout), and is rolled back. Counters, chain heads and log entries are kept in memory in
  a rehearsal, so two rehearsals never lock the same rows.
- ``bulk``: loading into an empty store in one transaction.

The schema is versioned (``dd_meta``) and created or migrated on first use under a session
advisory lock, so two servers starting together do not race.
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from datetime import date
from typing import Any, Iterator, Mapping

from .. import checkpoints
from ..errors import ConfigError, StorageError
from .failures import Counts, changes
from .journal import deferred_signals
from .layout import (SCHEMA_VERSION, Listing, basic_listing, case_listing, check_batch,
                     check_owner, entry_case, next_entry)

# The record schema version the engine writes (the same as the embedded store's records), and
# the version of the tables below.
TABLES_VERSION = 3
_WRITE_LOCK = 0x6464_5354        # "ddST": the store's reader/writer lock
_SCHEMA_LOCK = 0x6464_534D       # "ddSM": creating or migrating the tables
_FAILURES_LOCK = 0x6464_4641     # "ddFA": the counts of failed sign-ins (dd_failures)
_TICKER_LOCK = 0x6464_5449       # "ddTI": the one server running the timers

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS dd_meta (key text PRIMARY KEY, value json NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dd_counters (key text PRIMARY KEY, value bigint NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dd_chains (name text PRIMARY KEY, hash text NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dd_definitions (workflow text PRIMARY KEY, hash text NOT NULL,
           record json NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dd_cases (
           id text PRIMARY KEY, seq bigserial, workflow text NOT NULL, state text NOT NULL,
           opened text NOT NULL, open boolean NOT NULL, held boolean NOT NULL, due text,
           listing json NOT NULL, record json NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS dd_cases_opened ON dd_cases (opened, seq)",
    "CREATE INDEX IF NOT EXISTS dd_cases_open ON dd_cases (workflow, opened) WHERE open",
    "CREATE INDEX IF NOT EXISTS dd_cases_due ON dd_cases (workflow, due) WHERE due IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS dd_cases_held ON dd_cases (workflow) WHERE held",
    """CREATE TABLE IF NOT EXISTS dd_people (hash text NOT NULL, case_id text NOT NULL,
           seq bigserial, PRIMARY KEY (hash, case_id))""",
    """CREATE TABLE IF NOT EXISTS dd_search (hash text NOT NULL, case_id text NOT NULL,
           seq bigserial, PRIMARY KEY (hash, case_id))""",
    """CREATE TABLE IF NOT EXISTS dd_documents (
           number text PRIMARY KEY, seq bigserial, case_id text NOT NULL,
           issued text NOT NULL, status text, record json NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS dd_documents_case ON dd_documents (case_id, seq)",
    "CREATE INDEX IF NOT EXISTS dd_documents_issued ON dd_documents (issued, seq)",
    """CREATE TABLE IF NOT EXISTS dd_copies (
           key text PRIMARY KEY, seq bigserial, number text NOT NULL, case_id text NOT NULL,
           issued text NOT NULL, record json NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS dd_copies_number ON dd_copies (number, seq)",
    "CREATE INDEX IF NOT EXISTS dd_copies_issued ON dd_copies (issued, seq)",
    """CREATE TABLE IF NOT EXISTS dd_marks (batch text NOT NULL, item text NOT NULL,
           seq bigserial, value json NOT NULL, PRIMARY KEY (batch, item))""",
    """CREATE TABLE IF NOT EXISTS dd_sessions (owner text NOT NULL, session_id text NOT NULL,
           seq bigserial, record json NOT NULL, PRIMARY KEY (owner, session_id))""",
    """CREATE TABLE IF NOT EXISTS dd_log (name text NOT NULL, seq bigint NOT NULL,
           case_id text, entry json NOT NULL, PRIMARY KEY (name, seq))""",
    "CREATE INDEX IF NOT EXISTS dd_log_case ON dd_log (name, case_id, seq)",
]

# --- version 2: failed sign-ins counted for every server (engine/store/failures.py) --------
_FAILURES_TABLE = [
    """CREATE TABLE IF NOT EXISTS dd_failures (key text PRIMARY KEY, failures integer NOT NULL,
           last double precision NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS dd_failures_last ON dd_failures (last)",
]

# {tables version: statements bringing the one before to it}; version 1 is _SCHEMA itself
_MIGRATIONS: dict[int, list[str]] = {
    2: _FAILURES_TABLE,
}

# --- version 3: issued files kept in the database (config.toml files = "database") ---------
# dd_files holds each content once, by its sha256; dd_file_names maps the relative names the
# register records to it (a name erased, its content goes once no name refers to it).
_MIGRATIONS[3] = [
    """CREATE TABLE IF NOT EXISTS dd_files (sha256 text PRIMARY KEY, size bigint NOT NULL,
           bytes bytea NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dd_file_names (name text PRIMARY KEY,
           sha256 text NOT NULL REFERENCES dd_files (sha256))""",
    "CREATE INDEX IF NOT EXISTS dd_file_names_sha256 ON dd_file_names (sha256)",
]


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))



def is_database_url(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://"))


def check_url(url: str, key: str = "store") -> None:
    """A connection URL that carries no password (it comes from PGPASSWORD or ~/.pgpass)."""
    try:
        from psycopg.conninfo import conninfo_to_dict
        params = conninfo_to_dict(url)
    except ImportError:   # pragma: no cover - psycopg is a dependency
        raise ConfigError("使用 PostgreSQL 需要安装 psycopg（pip install 'psycopg[binary]' "
                          "psycopg-pool）", key=key) from None
    except Exception as err:
        raise ConfigError(f"config.toml 的 {key} 不是有效的 PostgreSQL 连接地址：{err}",
                          key=key) from None
    if params.get("password"):
        raise ConfigError(f"config.toml 的 {key} 不能写入数据库密码；请删去地址中的密码，"
                          f"改用环境变量 PGPASSWORD 或 ~/.pgpass", key=key)


def _of_store(column: str, store: tuple[str, str] | None) -> tuple[list[str], list]:
    """The condition that keeps one store's rows of a group (see engine.store.scoped): the
    ``store`` of the json ``column``, or the default store's for a row from before."""
    if store is None:
        return [], []
    code, default = store
    return [f"coalesce({column}->>'store', %s) = %s"], [default, code]


class PgTx:
    """One unit of work on the PostgreSQL store: the same methods as the embedded store's
    :class:`~engine.store.repository.Tx`, each a statement on the unit's connection."""

    def __init__(self, conn: Any, writable: bool, listing: Listing, rehearsal: bool = False
                 ) -> None:
        self.conn = conn
        self.writable = writable
        self.committed = False   # set by the store once the transaction is committed
        self.wrote = False
        self._listing = listing
        self._rehearsal = rehearsal
        # in a rehearsal: counters, chain heads and log entries kept here, never written
        self._counters: dict[str, int] = {}
        self._heads: dict[str, str] = {}
        self._entries: list[tuple[str, str | None, dict[str, Any]]] = []

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: tuple = ()) -> tuple | None:
        return self.conn.execute(sql, params).fetchone()

    def _write(self, sql: str, params: tuple = ()) -> None:
        self._check_writable()
        self.wrote = True
        self.conn.execute(sql, params)

    def _upsert(self, table: str, key: tuple[str, ...], row: Mapping[str, Any]) -> None:
        """Insert ``row`` into ``table`` or replace the row with the same ``key`` columns (the
        names are this module's own, never a caller's values)."""
        columns = list(row)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
        self._write(f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join(['%s'] * len(columns))}) "
                    f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
                    tuple(row.values()))

    # --- cases ----------------------------------------------------------------------------

    def case(self, case_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT record FROM dd_cases WHERE id = %s", (case_id,))
        return dict(row[0]) if row else None

    def put_case(self, record: Mapping[str, Any]) -> None:
        """Insert or replace a case and its listing (its index columns with it)."""
        self._check_writable()
        record = {**record, "schema_version": SCHEMA_VERSION}
        listing, hashed = case_listing(record, self._listing)
        due = listing.get("due")
        self._upsert("dd_cases", ("id",), {
            "id": record["id"], "workflow": record["workflow"], "state": record["state"],
            "opened": record["created_at"][:10], "open": not listing.get("final"),
            "held": bool(listing.get("held")), "due": str(due) if due else None,
            "listing": _dumps(listing), "record": _dumps(record)})
        for kind, values in hashed.items():
            for value in values:
                self._write(f"INSERT INTO dd_{kind} (hash, case_id) VALUES (%s, %s) "
                            f"ON CONFLICT DO NOTHING", (value, record["id"]))

    def due_cases(self, workflow: str, until: date) -> list[dict[str, Any]]:
        """Listings of the open cases of ``workflow`` whose deadline is ``until`` or earlier."""
        rows = self._rows("""SELECT listing FROM dd_cases WHERE workflow = %s AND due IS NOT NULL
                             AND left(due, 10) <= %s ORDER BY left(due, 7), seq""",
                          (workflow, until.isoformat()))
        return [dict(r[0]) for r in rows]

    def cases_of_person(self, person: str) -> list[str]:
        return [r[0] for r in self._rows(
            "SELECT case_id FROM dd_people WHERE hash = %s ORDER BY seq", (person,))]

    def cases_of_value(self, value: str) -> list[str]:
        return [r[0] for r in self._rows(
            "SELECT case_id FROM dd_search WHERE hash = %s ORDER BY seq", (value,))]

    def find_cases(self, workflow: str | None = None, state: str | None = None,
                   opened_from: date | None = None, opened_to: date | None = None,
                   open_only: bool = False, store: tuple[str, str] | None = None
                   ) -> list[dict[str, Any]]:
        """Listings of the cases opened in [opened_from, opened_to], filtered by workflow and
        state (or only the open ones), by the day they were opened, then as they came.
        ``store``: (code, the code of records that carry none): one store's of a group."""
        where, params = _of_store("listing", store)
        for clause, value in (("workflow = %s", workflow), ("state = %s", state),
                              ("opened >= %s", opened_from and opened_from.isoformat()),
                              ("opened <= %s", opened_to and opened_to.isoformat())):
            if value is not None:
                where.append(clause)
                params.append(value)
        if open_only:
            where.append("open")
        order = "workflow, opened, seq" if open_only else "opened, seq"
        sql = (f"SELECT listing FROM dd_cases {'WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY {order}")
        return [dict(r[0]) for r in self._rows(sql, tuple(params))]

    def held_cases(self, workflow: str) -> list[dict[str, Any]]:
        return [dict(r[0]) for r in self._rows(
            "SELECT listing FROM dd_cases WHERE workflow = %s AND held ORDER BY seq",
            (workflow,))]

    def cases_in_store(self) -> Iterator[dict[str, Any]]:
        """Every case record (verify, copying a store), in batches."""
        last = ""
        while True:
            rows = self._rows("SELECT id, record FROM dd_cases WHERE id > %s ORDER BY id "
                              "LIMIT 500", (last,))
            if not rows:
                return
            for case_id, record in rows:
                yield dict(record)
                last = case_id

    # --- documents ------------------------------------------------------------------------

    def case_of(self, number: str) -> str | None:
        row = self._one("SELECT case_id FROM dd_documents WHERE number = %s", (number,))
        return row[0] if row else None

    def document(self, number: str) -> dict[str, Any] | None:
        row = self._one("SELECT record FROM dd_documents WHERE number = %s", (number,))
        return dict(row[0]) if row else None

    def case_documents(self, case_id: str) -> list[dict[str, Any]]:
        return [dict(r[0]) for r in self._rows(
            "SELECT record FROM dd_documents WHERE case_id = %s ORDER BY seq", (case_id,))]

    def put_document(self, doc: Mapping[str, Any]) -> None:
        doc = {**doc, "schema_version": SCHEMA_VERSION}
        self._upsert("dd_documents", ("number",), {
            "number": doc["number"], "case_id": doc["case_id"], "issued": doc["issued_at"][:10],
            "status": doc.get("status"), "record": _dumps(doc)})

    def find_documents(self, status: str | None = None, issued_from: date | None = None,
                       issued_to: date | None = None, store: tuple[str, str] | None = None
                       ) -> list[dict[str, Any]]:
        where, params = self._period("issued", issued_from, issued_to, store)
        if status is not None:
            where.append("status = %s")
            params.append(status)
        return [dict(r[0]) for r in self._rows(
            f"SELECT record FROM dd_documents {self._where(where)} ORDER BY issued, seq",
            tuple(params))]

    @staticmethod
    def _period(column: str, start: date | None, end: date | None,
                store: tuple[str, str] | None = None) -> tuple[list[str], list]:
        where, params = _of_store("record", store)
        if start is not None:
            where.append(f"{column} >= %s")
            params.append(start.isoformat())
        if end is not None:
            where.append(f"{column} <= %s")
            params.append(end.isoformat())
        return where, params

    @staticmethod
    def _where(where: list[str]) -> str:
        return f"WHERE {' AND '.join(where)}" if where else ""

    # --- copies handed out ----------------------------------------------------------------

    def copies(self, number: str) -> list[dict[str, Any]]:
        return [dict(r[0]) for r in self._rows(
            "SELECT record FROM dd_copies WHERE number = %s ORDER BY seq", (number,))]

    def put_copy(self, record: Mapping[str, Any]) -> None:
        case_id = self.case_of(record["number"])
        if case_id is None:
            raise StorageError(f"找不到文件 {record['number']}，不能登记其副本")
        record = {**record, "schema_version": SCHEMA_VERSION}
        self._upsert("dd_copies", ("key",), {
            "key": record["key"], "number": record["number"], "case_id": case_id,
            "issued": record["issued_at"][:10], "record": _dumps(record)})

    def find_copies(self, issued_from: date | None = None, issued_to: date | None = None,
                    store: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        where, params = self._period("issued", issued_from, issued_to, store)
        return [dict(r[0]) for r in self._rows(
            f"SELECT record FROM dd_copies {self._where(where)} ORDER BY issued, seq",
            tuple(params))]

    # --- batch progress -------------------------------------------------------------------

    def set_mark(self, batch: str, item: str, value: Mapping[str, Any]) -> None:
        check_batch(batch)
        merged = {**self.marks(batch).get(item, {}), **value}
        self._upsert("dd_marks", ("batch", "item"),
                     {"batch": batch, "item": item, "value": _dumps(merged)})

    def marks(self, batch: str) -> dict[str, dict[str, Any]]:
        check_batch(batch)
        return {item: dict(value) for item, value in self._rows(
            "SELECT item, value FROM dd_marks WHERE batch = %s ORDER BY seq", (batch,))}

    # --- sign-in sessions -----------------------------------------------------------------

    def sessions(self, owner: str) -> dict[str, dict[str, Any]]:
        check_owner(owner)
        return {sid: dict(record) for sid, record in self._rows(
            "SELECT session_id, record FROM dd_sessions WHERE owner = %s ORDER BY seq",
            (owner,))}

    def set_session(self, owner: str, session_id: str, record: Mapping[str, Any] | None) -> None:
        check_owner(owner)
        if record is None:
            self._write("DELETE FROM dd_sessions WHERE owner = %s AND session_id = %s",
                        (owner, session_id))
            return
        self._upsert("dd_sessions", ("owner", "session_id"), {
            "owner": owner, "session_id": session_id,
            "record": _dumps({**record, "schema_version": SCHEMA_VERSION})})

    # --- hash-chained logs ----------------------------------------------------------------

    def append_chained(self, name: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """Append ``record`` to the hash chain ``name`` (see :mod:`engine.chain`), with the
        case it concerns for that case's history; a rehearsal keeps it in memory."""
        self._check_writable()
        entry = next_entry(name, record, self.chain_head(name),
                           self.next_counter(f"chain:{name}"))
        if self._rehearsal:
            self._heads[name] = entry["hash"]
            self._entries.append((name, entry_case(entry, self.case_of), entry))
        else:
            self.put_entry(name, entry)
        return entry

    def case_log(self, name: str, case_id: str) -> list[dict[str, Any]]:
        rows = [dict(r[0]) for r in self._rows(
            "SELECT entry FROM dd_log WHERE name = %s AND case_id = %s ORDER BY seq",
            (name, case_id))]
        rows += [dict(e) for n, c, e in self._entries if n == name and c == case_id]
        return rows

    def log_entries(self, name: str) -> list[dict[str, Any]]:
        rows = [dict(r[0]) for r in self._rows(
            "SELECT entry FROM dd_log WHERE name = %s ORDER BY seq", (name,))]
        rows += [dict(e) for n, _, e in self._entries if n == name]
        return rows

    def chain_head(self, name: str) -> str | None:
        if name in self._heads:
            return self._heads[name]
        row = self._one("SELECT hash FROM dd_chains WHERE name = %s", (name,))
        return row[0] if row else None

    # --- workflow definitions the cases are at ---------------------------------------------

    def definition(self, workflow: str) -> str | None:
        row = self._one("SELECT hash FROM dd_definitions WHERE workflow = %s", (workflow,))
        return row[0] if row else None

    def set_definition(self, workflow: str, digest: str) -> None:
        self._upsert("dd_definitions", ("workflow",), {
            "workflow": workflow, "hash": digest,
            "record": _dumps({"key": workflow, "hash": digest, "schema_version": SCHEMA_VERSION})})

    # --- counters -------------------------------------------------------------------------

    def peek_counter(self, key: str) -> int:
        if key in self._counters:
            return self._counters[key]
        row = self._one("SELECT value FROM dd_counters WHERE key = %s", (key,))
        return int(row[0]) if row else 0

    def next_counter(self, key: str) -> int:
        """Increment and return the counter ``key`` (1 for the first call); in the unit of
        work that records what the number is for, under the store's write lock."""
        self._check_writable()
        if self._rehearsal:
            self._counters[key] = self.peek_counter(key) + 1
            return self._counters[key]
        self.wrote = True
        row = self._one("""INSERT INTO dd_counters (key, value) VALUES (%s, 1)
                           ON CONFLICT (key) DO UPDATE SET value = dd_counters.value + 1
                           RETURNING value""", (key,))
        assert row is not None
        return int(row[0])

    # --- copying a whole store (``dealerdocs store copy``) ----------------------------------

    def counters(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._rows("SELECT key, value FROM dd_counters ORDER BY key")}

    def set_counter(self, key: str, value: int) -> None:
        self._upsert("dd_counters", ("key",), {"key": key, "value": value})

    def definitions(self) -> dict[str, str]:
        return dict(self._rows("SELECT workflow, hash FROM dd_definitions ORDER BY workflow"))

    def all_marks(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {b: self.marks(b) for (b,) in self._rows(
            "SELECT DISTINCT batch FROM dd_marks ORDER BY batch")}

    def all_sessions(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {o: self.sessions(o) for (o,) in self._rows(
            "SELECT DISTINCT owner FROM dd_sessions ORDER BY owner")}

    def put_entry(self, name: str, entry: Mapping[str, Any]) -> None:
        """Append an entry of chain ``name`` as it is (hash and sequence kept), and make it
        the chain's head: a copied chain links exactly as the original."""
        case_id = entry_case(entry, self.case_of)
        self._write("INSERT INTO dd_log (name, seq, case_id, entry) VALUES (%s, %s, %s, %s)",
                    (name, entry["seq"], case_id, _dumps(entry)))
        self._upsert("dd_chains", ("name",), {"name": name, "hash": entry["hash"]})

    # --- files kept by content (tables version 2; engine/dbarchive.py) -----------------------
    # Generic named blobs: the store knows names and hashes, not documents.

    def put_file(self, name: str, digest: str, data: bytes) -> None:
        """Keep ``data`` (whose sha256 is ``digest``, computed by the caller) under ``name``,
        in this unit of work; the same content is stored once."""
        self._write("""INSERT INTO dd_files (sha256, size, bytes) VALUES (%s, %s, %s)
                       ON CONFLICT (sha256) DO NOTHING""", (digest, len(data), data))
        self._upsert("dd_file_names", ("name",), {"name": name, "sha256": digest})

    def file(self, digest: str) -> bytes | None:
        """The bytes kept as ``digest``, as they are (unchecked), or None."""
        row = self._one("SELECT bytes FROM dd_files WHERE sha256 = %s", (digest,))
        return bytes(row[0]) if row else None

    def file_hashes(self, digests: list[str]) -> dict[str, str]:
        """{recorded sha256: sha256 of the bytes now} of those of ``digests`` kept, hashed by
        the server (no bytes travel)."""
        return dict(self._rows("""SELECT sha256, encode(sha256(bytes), 'hex') FROM dd_files
                                  WHERE sha256 = ANY(%s)""", (list(digests),)))

    def file_names(self) -> list[tuple[str, str]]:
        """Every ``(name, sha256)`` kept, by name."""
        return [(n, d) for n, d in self._rows(
            "SELECT name, sha256 FROM dd_file_names ORDER BY name")]

    def drop_file(self, name: str) -> None:
        """Forget ``name``; its content goes too once no other name refers to it."""
        row = self._one("SELECT sha256 FROM dd_file_names WHERE name = %s", (name,))
        if row is None:
            return
        self._write("DELETE FROM dd_file_names WHERE name = %s", (name,))
        self._write("""DELETE FROM dd_files WHERE sha256 = %s AND NOT EXISTS
                       (SELECT 1 FROM dd_file_names WHERE sha256 = %s)""", (row[0], row[0]))

    # --- end of files ---------------------------------------------------------------------

    def _check_writable(self) -> None:
        if not self.writable:
            raise StorageError("只读视图不能写入")  # programming error surfaced clearly

    def flush_unjournaled(self) -> None:
        """Bulk loading: nothing to flush (the load is one transaction)."""


class PostgresStore:
    """The store in a PostgreSQL database: the units of work of the embedded
    :class:`~engine.store.folder.Store` (see the module's docstring)."""

    kind = "postgresql"

    def __init__(self, url: str, lock_timeout: float = 120.0, listing: Listing | None = None,
                 pool_size: int = 4) -> None:
        check_url(url)
        self.url = url
        self.lock_timeout = lock_timeout
        self.listing = listing or basic_listing
        self.pool_size = pool_size
        self._pool: Any = None
        self._ready = False
        self._made = False
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresStore({self.location})"

    @property
    def location(self) -> str:
        """Where the store is, for messages (the URL; it holds no password)."""
        return self.url

    # --- connections ----------------------------------------------------------------------

    def _connections(self) -> Any:
        with self._guard:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self._pool = ConnectionPool(self.url, min_size=1, max_size=self.pool_size,
                                            kwargs={"autocommit": True}, open=False,
                                            name="dealerdocs")
                try:
                    self._pool.open(wait=True, timeout=min(self.lock_timeout, 30.0))
                except Exception as err:
                    self._pool = None
                    raise StorageError(f"无法连接 PostgreSQL 数据库 {self.url}：{_reason(err)}"
                                       ) from None
            if not self._ready:
                with self._pool.connection() as conn:
                    migrate(conn)
                self._ready = True
            return self._pool

    def close(self) -> None:
        with self._guard:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    @contextmanager
    def _unit(self, mode: str, lock: str | None, commit: bool = False) -> Iterator[Any]:
        """One database transaction in ``mode``, holding ``lock`` on the store if named;
        rolled back unless ``commit`` and the block succeeds. The COMMIT runs with SIGINT and
        SIGTERM deferred: once it is sent, the process learns its outcome (a cancelled
        COMMIT could be done on the server while the process thinks it failed)."""
        import psycopg

        pool = self._connections()
        try:
            with pool.connection() as conn:
                conn.execute(f"BEGIN ISOLATION LEVEL {mode}")
                try:
                    conn.execute("SELECT set_config('lock_timeout', %s, true)",
                                 (f"{int(self.lock_timeout * 1000)}ms",))
                    if lock:
                        conn.execute(f"SELECT {lock}(%s)", (_WRITE_LOCK,))
                    yield conn
                except BaseException:
                    if not conn.closed:
                        try:
                            conn.execute("ROLLBACK")
                        except psycopg.Error:
                            pass   # a broken connection: the pool discards it
                    raise
                if commit:
                    with deferred_signals():
                        conn.execute("COMMIT")
                else:
                    conn.execute("ROLLBACK")
        except psycopg.errors.LockNotAvailable:
            raise StorageError(f"数据库正被另一个 dealerdocs 进程占用（等待 {self.lock_timeout:.0f} "
                               f"秒后仍未释放：{self.url}），请稍后重试") from None
        except psycopg.Error as err:
            raise StorageError(f"PostgreSQL 数据库 {self.url} 出错，本次操作未写入：{_reason(err)}"
                               ) from None

    # --- units of work --------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether anything was ever written to this store (once it was, it stays so: asked
        again at every start-up step, the database is asked only until then)."""
        if not self._made:
            with self._unit("READ COMMITTED READ ONLY", None) as conn:
                self._made = conn.execute(
                    "SELECT 1 FROM dd_meta WHERE key = 'made'").fetchone() is not None
        return self._made

    @contextmanager
    def transaction(self) -> Iterator[PgTx]:
        """Exclusive read-modify-write in one database transaction: committed if the block
        succeeds, else nothing is written. ``tx.committed`` tells whether it was."""
        tx: PgTx | None = None
        with self._unit("READ COMMITTED", "pg_advisory_xact_lock", commit=True) as conn:
            tx = PgTx(conn, writable=True, listing=self.listing)
            yield tx
            if tx.wrote:
                conn.execute("INSERT INTO dd_meta (key, value) VALUES ('made', 'true') "
                             "ON CONFLICT DO NOTHING")
        tx.committed = True
        checkpoints.reached("committed", "the database transaction committed")

    @contextmanager
    def snapshot(self) -> Iterator[PgTx]:
        """A consistent read-only view; takes no lock (readers never wait)."""
        with self._unit("REPEATABLE READ READ ONLY", None) as conn:
            yield PgTx(conn, writable=False, listing=self.listing)

    @contextmanager
    def rehearsal(self) -> Iterator[PgTx]:
        """A unit of work that is never committed, with no writer committing under it."""
        # READ COMMITTED: a REPEATABLE READ snapshot would be taken before the lock is granted,
        # and a writer committing meanwhile would fail the rehearsal's own writes; once the
        # shared lock is held no writer commits, so every statement sees the same store
        with self._unit("READ COMMITTED", "pg_advisory_xact_lock_shared") as conn:
            yield PgTx(conn, writable=True, listing=self.listing, rehearsal=True)

    @contextmanager
    def bulk(self) -> Iterator[PgTx]:
        """Loading into a new, empty store, in one transaction."""
        with self.transaction() as tx:
            if tx.conn.execute("SELECT 1 FROM dd_meta WHERE key = 'made'").fetchone():
                raise StorageError(f"{self.url} 已有数据；批量装载只能用于新的空数据库")
            yield tx

    def discard_journal(self) -> None:
        """The database has no journal: a transaction is committed whole or not at all."""
        return None

    # --- what the servers share besides records -------------------------------------------

    @contextmanager
    def failures(self, keys: list[str], *, forget_before: float, capacity: int
                 ) -> Iterator[Counts]:
        """Counts of failed attempts under ``keys`` (:mod:`engine.store.failures`), in one
        transaction under an advisory lock of their own (never the store's: a sign-in does
        not wait for a writer)."""
        with self._unit("READ COMMITTED", None, commit=True) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_FAILURES_LOCK,))
            conn.execute("DELETE FROM dd_failures WHERE last < %s", (forget_before,))
            found = {k: (int(n), float(t)) for k, n, t in conn.execute(
                "SELECT key, failures, last FROM dd_failures WHERE key = ANY(%s)", (keys,))}
            counts = dict(found)
            yield counts
            written, forgotten = changes(found, counts, keys)
            if forgotten:
                conn.execute("DELETE FROM dd_failures WHERE key = ANY(%s)", (forgotten,))
            for key, (n, at) in written.items():
                conn.execute("""INSERT INTO dd_failures (key, failures, last) VALUES (%s, %s, %s)
                                ON CONFLICT (key) DO UPDATE SET failures = EXCLUDED.failures,
                                last = EXCLUDED.last""", (key, n, at))
            if set(written) - set(found):   # a new key: keep the table within capacity
                conn.execute("""DELETE FROM dd_failures WHERE key IN (SELECT key FROM dd_failures
                                ORDER BY last DESC OFFSET %s)""", (capacity,))

    @contextmanager
    def ticker(self) -> Iterator[bool]:
        """Become the one server running the timers for the block, if no other is: yields
        whether this one is. A session advisory lock (``pg_try_advisory_lock``) on a
        connection of its own, held until the block ends; a server that dies lets go."""
        import psycopg

        pool = self._connections()
        try:
            with pool.connection() as conn:
                first = conn.execute("SELECT pg_try_advisory_lock(%s)",
                                     (_TICKER_LOCK,)).fetchone()[0]
                try:
                    yield bool(first)
                finally:
                    if first:
                        try:
                            conn.execute("SELECT pg_advisory_unlock(%s)", (_TICKER_LOCK,))
                        except psycopg.Error:
                            conn.close()   # never back to the pool still holding the lock
        except psycopg.Error as err:
            raise StorageError(f"PostgreSQL 数据库 {self.url} 出错：{_reason(err)}") from None


def migrate(conn: Any) -> int:
    """Create the tables, or bring them to :data:`TABLES_VERSION`, under a session advisory
    lock (two servers starting together: the second waits, then finds them done). Returns
    the version found before."""
    conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
    try:
        with conn.transaction():
            exists = conn.execute("SELECT to_regclass('dd_meta')").fetchone()[0]
            found = 0
            if exists:
                row = conn.execute("SELECT value FROM dd_meta WHERE key = 'tables'").fetchone()
                found = int(row[0]) if row else 0
            if found > TABLES_VERSION:
                raise StorageError(f"数据库的表结构版本为 {found}，比本程序（{TABLES_VERSION}）新；"
                                   f"请升级 dealerdocs")
            if found == TABLES_VERSION:
                return found
            if found == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
            for version in range(max(found, 1) + 1, TABLES_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
            conn.execute("""INSERT INTO dd_meta (key, value) VALUES ('tables', %s)
                            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""",
                         (str(TABLES_VERSION),))
            return found
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
