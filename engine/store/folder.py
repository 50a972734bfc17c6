"""The store folder: its reader/writer lock, recovery when a process opens it, and the units of
work (a transaction, a snapshot, a rehearsal, a bulk load) that the repository's :class:`Tx`
works in and the :class:`Journal` commits."""
from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import StorageError
from ..files import make_dirs
from ..lock import LockTimeout, RWFileLock, try_exclusive
from . import migrations
from .failures import Counts, FailureFile
from .journal import Journal
from .jsonfiles import read_index_cached
from .layout import LEGACY_FILE, LOCK_FILE, META_FILE, SCHEMA_VERSION, Listing, basic_listing
from .migrations import Upgrade
from .repository import Tx

TICKER_LOCK = "ticker.lock"

log = logging.getLogger(__name__)


class Store:
    """The store folder: partitions, indexes, logs and the lock (see ``engine.store``)."""

    kind = "folder"

    def __init__(self, directory: Path, lock_timeout: float = 120.0,
                 listing: Listing | None = None, upgrade: "Upgrade | None" = None) -> None:
        self.directory = Path(directory)
        self.listing = listing or basic_listing
        self.upgrade = upgrade
        self.lock = RWFileLock(self.directory / LOCK_FILE, timeout=lock_timeout)
        self.commits = Journal(self.directory)
        self._failures = FailureFile(self.directory, timeout=lock_timeout)

    @property
    def location(self) -> str:
        """Where the store is, for messages."""
        return str(self.directory)

    def exists(self) -> bool:
        """Whether anything was ever written to this store."""
        return (self.directory / META_FILE).exists()

    def close(self) -> None:
        """Nothing to close: every unit of work opens and closes its files."""

    @property
    def journal(self) -> Path:
        """The journal file (present only while a committed unit of work is being applied)."""
        return self.commits.path

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
        meta = read_index_cached(self.directory / META_FILE)
        version = ((meta or {}).get("_meta", {}).get("1") or {}).get("schema_version")
        return meta is not None and version != SCHEMA_VERSION

    def _recover(self) -> None:
        """Finish a unit of work whose journal was committed, then bring an old layout up
        (``migrations``)."""
        self.commits.finish()
        migrations.upgrade(self)

    def discard_journal(self) -> Path | None:
        """Move a journal that cannot be replayed aside (kept for inspection); the unit of
        work it held is lost. Returns where it went, or None if there was none."""
        with self.lock.exclusive():
            return self.commits.discard()

    def _commit(self, tx: Tx) -> None:
        replace, appends = tx.changes()

        def durable() -> None:
            tx.committed = True

        self.commits.commit(replace, appends, on_durable=durable)

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

    # --- what the processes serving the store share besides records -----------------------

    def failures(self, keys: list[str], *, forget_before: float, capacity: int
                 ) -> "AbstractContextManager[Counts]":
        """Counts of failed attempts under ``keys`` (:mod:`engine.store.failures`)."""
        return self._failures.counts(keys, forget_before=forget_before, capacity=capacity)

    @contextmanager
    def ticker(self) -> Iterator[bool]:
        """Become the one process running the timers for the block, if no other is: yields
        whether this one is (a non-blocking ``flock`` on ``ticker.lock``, apart from the
        store's lock, held until the block ends)."""
        with ExitStack() as held:
            try:
                first = held.enter_context(try_exclusive(self.directory / TICKER_LOCK))
            except OSError as err:
                raise StorageError(f"无法锁定数据库目录 {self.directory}：{err}") from err
            yield first
