"""The journaled unit of work: how many file changes become one durable commit.

A unit of work is a set of whole files to replace and bytes to append to logs. It is written
as one journal file (every new content, every append with the log's size before it), fsynced
and renamed into place: that is the commit point. Then the journal is applied (each file
replaced atomically, each append written at its recorded offset), the file system synced once,
and the journal deleted. A crash before the journal exists changes nothing; a crash after it
is finished by the next process (replaying is idempotent). Once the journal is durable nothing
undoes the unit of work: SIGINT and SIGTERM wait until it is applied, and a failed write or
``syncfs`` while applying leaves the journal for the next process.

The journal writes through a :class:`Storage` as small as tinydb's: replace a file, append at an
offset, tell a size, sync. A folder (:class:`FolderStorage`) is the only one today.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol

from .. import checkpoints
from ..errors import StorageError
from ..files import FILE_MODE, atomic_write_bytes, fsync_dir, make_dirs, write_all
from .jsonfiles import dumps, read_json

log = logging.getLogger(__name__)


def sync_filesystem(path: Path) -> None:
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


class Storage(Protocol):
    """Where a journal's changes go (paths are relative to the store folder)."""

    def size(self, rel: str) -> int: ...

    def replace(self, rel: str, payload: bytes) -> None: ...

    def append_at(self, rel: str, offset: int, payload: bytes) -> None: ...

    def sync(self) -> None: ...


class FolderStorage:
    """A folder: files replaced atomically (no sync each), appends at an offset, one
    ``syncfs`` for all."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def size(self, rel: str) -> int:
        path = self.root / rel
        return path.stat().st_size if path.exists() else 0

    def replace(self, rel: str, payload: bytes) -> None:
        atomic_write_bytes(self.root / rel, payload, sync=False)

    def append_at(self, rel: str, offset: int, payload: bytes) -> None:
        path = self.root / rel
        make_dirs(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            write_all(fd, payload)
        finally:
            os.close(fd)

    def sync(self) -> None:
        sync_filesystem(self.root)


class Journal:
    """The commit point of the store folder's units of work (``journal/commit.json``)."""

    def __init__(self, root: Path, storage: Storage | None = None) -> None:
        self.root = root
        self.storage = storage or FolderStorage(root)
        self.path = root / "journal" / "commit.json"

    def commit(self, replace: Mapping[str, bytes], appends: Mapping[str, bytes],
               on_durable: Callable[[], None]) -> None:
        """Write the journal (the commit point; ``on_durable`` is called as soon as it is),
        then apply it. From the moment the journal is durable the unit of work is committed:
        SIGINT and SIGTERM wait until it is applied, and a failure while applying leaves the
        journal for the next process instead of undoing anything."""
        if not replace and not appends:
            return
        sizes = {rel: self.storage.size(rel) for rel in appends}
        manifest = {"replace": {k: v.decode("utf-8") for k, v in replace.items()},
                    "append": {k: [sizes[k], v.decode("utf-8")] for k, v in appends.items()}}
        with deferred_signals():
            try:
                atomic_write_bytes(self.path, dumps(manifest))   # the commit point
            except OSError as err:
                raise StorageError(f"无法写入数据库日志 {self.path}：{err}",
                                   path=str(self.path)) from err
            on_durable()
            checkpoints.reached("journal written", "committed")
            try:
                self.apply(manifest)
            except OSError as err:
                log.error("committed, but applying %s failed (%s); the next dealerdocs "
                          "process finishes it", self.path, err)

    def apply(self, manifest: Mapping[str, Any]) -> None:
        """Make the files say what the journal says (idempotent), then drop the journal.

        The journal is the durable copy, so the files are written without a sync each and
        the whole file system is synced once before the journal goes (if the machine dies
        before that, the next process replays the journal). Raises ``OSError``, leaving the
        journal in place, if anything cannot be written or synced."""
        for rel, text in manifest["replace"].items():
            self.storage.replace(rel, text.encode("utf-8"))
        for rel, (offset, text) in manifest["append"].items():
            self.storage.append_at(rel, offset, text.encode("utf-8"))
        self.storage.sync()
        self.path.unlink()
        log.debug("journal applied")

    def finish(self) -> None:
        """Finish a unit of work whose journal was committed (a crash or an error after the
        commit point); nothing to do without a journal."""
        if not self.path.exists():
            return
        manifest = self.read()
        log.warning("finishing an interrupted write from %s", self.path)
        try:
            self.apply(manifest)
        except OSError as err:
            raise StorageError(f"无法补完上次中断的写入（{err}）；数据库日志 {self.path} "
                               f"保留，问题解决后任何 dealerdocs 命令都会再试",
                               path=str(self.path)) from err

    def read(self) -> Mapping[str, Any]:
        """The committed journal, checked for its shape: a journal that is empty or cut
        short cannot be replayed, and guessing would corrupt the store."""
        way_out = ("它记录的是上一次未完成的写入。请先备份整个数据库目录，再运行 "
                   "dealerdocs recover --discard-journal 把它移到一旁（之后用 dealerdocs verify 检查）")
        try:
            manifest = read_json(self.path)
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
            raise StorageError(f"数据库日志 {self.path} {what}，无法补完；{way_out}",
                               path=str(self.path))
        for rel in [*manifest["replace"], *manifest["append"]]:
            target = (self.root / rel).resolve()
            if not target.is_relative_to(self.root.resolve()) or rel.startswith("/"):
                raise StorageError(f"数据库日志 {self.path} 指向数据库目录之外（{rel}）；{way_out}",
                                   path=str(self.path))
        return manifest

    def discard(self) -> Path | None:
        """Move a journal that cannot be replayed aside (kept for inspection); the unit of
        work it held is lost. Returns where it went, or None if there was none. The caller
        holds the store's exclusive lock."""
        if not self.path.exists():
            return None
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"discarded-{stamp}.json")
        os.replace(self.path, target)
        fsync_dir(self.path.parent)
        return target
