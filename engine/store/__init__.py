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
                                       buckets: which cases a purge request concerns, and
                                       whose customer a search by ID or mobile finds
    index/search/<xy>.json             {keyed hash of a searchable value: [case ids]} (fields
                                       marked search = true, e.g. a plate number), 256 buckets
    sessions/<h>.json                  {session id: record} one user's sign-in sessions and API
                                       tokens (engine/sessions.py); <h> is 32 hex of a sha256
                                       of the login; a record keeps the sha256 of its secret,
                                       never the secret
    log/audit/YYYY-MM.jsonl            the hash-chained audit trail, append-only
    log/register_log/YYYY-MM.jsonl     the hash-chained register log, append-only
    journal/commit.json                a unit of work being applied (see below)
    failures.json, failures.lock       failed sign-ins counted for every process serving the
                                       store (``failures``; not a record: not journaled,
                                       copied or verified)
    ticker.lock                        held by the one process running the timers now

A listing (the index entry of a case) is what lists, filters, the due list and the
``[[exclusive]]`` check need without opening the case: the engine supplies it
(``Store(listing=...)``) so the store stays ignorant of workflows.

Layers (each its own module): ``layout`` (names on disk), ``jsonfiles`` (reading and
writing JSON, the index cache), ``journal`` (the generic journaled unit of work behind a
``Storage`` as small as tinydb's), ``repository`` (typed records: :class:`Tx`), ``migrations``
(one ``{version: function}`` registry for every layout change) and ``folder`` (the lock,
recovery and the units of work: :class:`Store`).

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

A dealer group keeps the same records in PostgreSQL instead (``engine.store.postgres``;
``open_store`` picks by config.toml's ``store``).

Older stores (one ``dealerdocs.json``, schemas 1 and 2) are migrated on first use; the old
file is kept beside it as ``dealerdocs.v2.json``.
"""
from __future__ import annotations

from .folder import Store
from .journal import FolderStorage, Journal, Storage, deferred_signals, sync_filesystem
from .jsonfiles import clear_index_cache
from .layout import (CASES_PER_FOLDER, LEGACY_FILE, LOCK_FILE, LOGS, META_FILE, NUMBER_BUCKETS,
                     SCHEMA_VERSION, Listing, basic_listing, new_meta)
from .migrations import MIGRATIONS, Upgrade
from .opening import AnyStore, open_store, store_at, store_view
from .repository import Tx

__all__ = ["AnyStore", "CASES_PER_FOLDER", "FolderStorage", "Journal", "LEGACY_FILE", "LOCK_FILE", "LOGS",
           "META_FILE", "MIGRATIONS", "NUMBER_BUCKETS", "SCHEMA_VERSION", "Listing", "Storage",
           "Store", "Tx", "Upgrade", "basic_listing", "clear_index_cache", "deferred_signals",
           "new_meta", "open_store", "store_at", "store_view", "sync_filesystem"]
