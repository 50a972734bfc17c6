"""A reader/writer lock between processes and threads, on one file (``flock``).

Readers (``shared``) never wait for each other; a writer (``exclusive``) waits for the readers
in progress and keeps new ones out while it commits. Each acquisition opens its own file
description, so threads of one process lock each other out like separate processes do. A
thread that already holds the lock may take it again (a read inside a write goes through);
asking for the exclusive lock while holding only the shared one is a programming error, since
two such threads would wait for each other for ever.
"""
from __future__ import annotations

import fcntl
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .files import FILE_MODE, make_dirs


class LockTimeout(Exception):
    """The lock was not free within the timeout."""


class RWFileLock:
    def __init__(self, path: Path, timeout: float) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._held = threading.local()   # mode and depth of this thread's hold

    def _acquire(self, mode: int) -> int:
        make_dirs(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        deadline = time.monotonic() + self.timeout
        pause = 0.001
        try:
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(str(self.path)) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.05)
        except BaseException:
            os.close(fd)
            raise

    @contextmanager
    def _hold(self, mode: int) -> Iterator[None]:
        held = getattr(self._held, "mode", None)
        if held is not None:
            if mode == fcntl.LOCK_EX and held == fcntl.LOCK_SH:
                raise RuntimeError("cannot take the store's exclusive lock while holding "
                                   "its shared lock in the same thread")
            self._held.depth += 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        fd = self._acquire(mode)
        self._held.mode, self._held.depth = mode, 1
        try:
            yield
        finally:
            self._held.mode = None
            os.close(fd)  # closing the description releases the flock

    def shared(self):
        return self._hold(fcntl.LOCK_SH)

    def exclusive(self):
        return self._hold(fcntl.LOCK_EX)

    def held(self) -> str | None:
        """"shared", "exclusive" or None, for this thread."""
        mode = getattr(self._held, "mode", None)
        return {fcntl.LOCK_SH: "shared", fcntl.LOCK_EX: "exclusive"}.get(mode)


@contextmanager
def try_exclusive(path: Path) -> Iterator[bool]:
    """Take ``path``'s ``flock`` alone if nobody holds it, without waiting: yields whether it
    was taken (held until the block ends). Each call opens its own file description, so two
    threads of one process exclude each other too; a process that dies lets go."""
    make_dirs(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the description releases the flock
