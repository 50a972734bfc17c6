"""Counts of failed attempts, kept in the store so that every process serving it sees the
same counts: the web app's sign-in throttle (:mod:`engine.web.throttle`) counts there, so
``dealerdocs serve --workers 4``, or two servers on one database, give a guesser no more tries
than one process would.

What a backend offers (:meth:`Store.failures` and :meth:`PostgresStore.failures`, the same
contract): ``with store.failures(keys, forget_before=t, capacity=n) as counts`` yields
``{key: (failures, last failure as a Unix time)}`` for those of ``keys`` it holds; counts whose
last failure is older than ``forget_before`` are forgotten first. No other process reads or
writes the counts while the block runs; what the block leaves in ``counts`` for ``keys`` is
kept when it ends normally (a key taken out is forgotten), nothing if it raises. Beyond
``capacity`` keys, those whose last failure is the oldest go first. :class:`MemoryBook` keeps
the same contract in one process's memory (tests, and callers without a store).

The folder keeps them in ``<store>/failures.json`` under a lock of their own
(``failures.lock``), apart from the store's lock: a sign-in never waits for a writer's commit,
nor a commit for a sign-in. The counts are not part of the store's records: they are not
journaled, copied by ``dealerdocs store copy`` or verified, and losing them only forgets
recent failures.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from ..errors import StorageError
from ..files import atomic_write_bytes
from ..lock import LockTimeout, RWFileLock

Counts = dict[str, tuple[int, float]]
FAILURES_FILE = "failures.json"
FAILURES_LOCK = "failures.lock"


def changes(found: Mapping[str, tuple[int, float]], counts: Mapping[str, tuple[int, float]],
            keys: list[str]) -> tuple[Counts, list[str]]:
    """What a block did to ``keys``: the counts to write, the keys to forget."""
    kept = {k: (int(counts[k][0]), float(counts[k][1])) for k in keys
            if k in counts and counts[k][0] > 0}
    written = {k: v for k, v in kept.items() if found.get(k) != v}
    forgotten = [k for k in keys if k in found and k not in kept]
    return written, forgotten


class FailureFile:
    """The folder store's counts: one small JSON file, rewritten whole under its own lock."""

    def __init__(self, directory: Path, timeout: float) -> None:
        self.path = Path(directory) / FAILURES_FILE
        self.lock = RWFileLock(Path(directory) / FAILURES_LOCK, timeout=timeout)

    def _read(self) -> Counts:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise StorageError(f"登录失败计数文件 {self.path} 无法读取（{err}）；"
                               f"可删除该文件后重试（只会忘记最近的失败次数）") from err
        return {k: (int(v[0]), float(v[1])) for k, v in raw.items()}

    @contextmanager
    def counts(self, keys: list[str], *, forget_before: float, capacity: int
               ) -> Iterator[Counts]:
        try:
            with self.lock.exclusive():
                every = self._read()
                fresh = {k: v for k, v in every.items() if v[1] >= forget_before}
                found = {k: fresh[k] for k in keys if k in fresh}
                counts = dict(found)
                yield counts
                written, forgotten = changes(found, counts, keys)
                if not written and not forgotten and len(fresh) == len(every):
                    return
                fresh.update(written)
                for key in forgotten:
                    fresh.pop(key, None)
                if len(fresh) > capacity:
                    newest = sorted(fresh.items(), key=lambda kv: kv[1][1])[-capacity:]
                    fresh = dict(newest)
                # no fsync: losing the last few counts in a power cut only forgets failures
                atomic_write_bytes(self.path, json.dumps(
                    {k: list(v) for k, v in fresh.items()}, separators=(",", ":")
                ).encode("utf-8"), sync=False)
        except LockTimeout:
            raise StorageError(f"登录失败计数正被另一个进程占用（{self.lock.path}），请稍后重试"
                               ) from None


class MemoryBook:
    """Counts in this process only, least recently failed first out beyond ``capacity``."""

    def __init__(self) -> None:
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._counts)

    @contextmanager
    def failures(self, keys: list[str], *, forget_before: float, capacity: int
                 ) -> Iterator[Counts]:
        with self._lock:
            for key in keys:
                if key in self._counts and self._counts[key][1] < forget_before:
                    del self._counts[key]
            found = {k: self._counts[k] for k in keys if k in self._counts}
            counts = dict(found)
            yield counts
            written, forgotten = changes(found, counts, keys)
            for key in forgotten:
                del self._counts[key]
            for key, value in written.items():
                self._counts[key] = value
                self._counts.move_to_end(key)
            while len(self._counts) > capacity:
                self._counts.popitem(last=False)
