"""Issued files kept in the PostgreSQL store itself (config.toml ``files = "database"``).

A dealer group whose servers share one database need not share a folder too: each issued file
is a row of ``dd_files``, keyed by its sha256 (the same content is kept once), under the
relative name the register records (``dd_file_names``). A file is written in the very
transaction that records its document, so a kill or a failed commit can never leave a
record without its file nor a file without its record, and a backup of the database holds
both.

Whoever needs a path (a download, a page picture, printing a copy, ``dealerdocs docs``) gets a
local copy made on first use in the store folder's cache, by content:
``<store>/cache/files/<sha256[:2]>/<sha256><suffix>`` (0600, like every file dealerdocs makes;
the suffix kept, so a web download knows it is a PDF). A contract's copy holds the buyer's ID
number, so copies are kept only a few days after their last use (as the page pictures are):
older ones go whenever a new one is made. A copy is written only if its bytes
hash to the recorded sha256; bytes that do not are refused with an :class:`IntegrityError`
(``verify`` says which). Copies of dispatched copies' prints, which the register does not
keep, are made in ``<store>/cache/prints/``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path, PurePosixPath
from typing import Any

from .archive import Archive, FileProblem, sha256, write_file
from .errors import IntegrityError, StorageError
from .files import atomic_write_bytes, remove_older_than
from .previews import KEEP_SECONDS

log = logging.getLogger(__name__)


class DatabaseArchive(Archive):
    """Issued files in the PostgreSQL store (``store``), with local copies in ``cache``."""

    def __init__(self, store: Any, cache: Path, keep_seconds: float = KEEP_SECONDS) -> None:
        self.store = store
        self.keep_seconds = keep_seconds
        self.files = Path(cache) / "files"
        self.prints = Path(cache) / "prints"

    def put(self, tx: Any, relative: str, data: bytes) -> Path:
        """A row in ``tx`` (rolled back with it), and the local copy the issuer is shown
        (removed by the caller if ``tx`` does not commit)."""
        digest = sha256(data)
        tx.put_file(relative, digest, data)
        return self._cache(relative, digest, data)

    def read(self, relative: str, digest: str, tx: Any = None) -> bytes | None:
        if tx is not None:
            return tx.file(digest)
        with self.store.snapshot() as view:
            return view.file(digest)

    def where(self, relative: str, digest: str) -> Path:
        if not _is_digest(digest):
            return self.files / "invalid"   # never a path made from a record's odd value
        return self.files / digest[:2] / f"{digest}{PurePosixPath(relative).suffix}"

    def fetch(self, relative: str, digest: str) -> Path:
        path = self.where(relative, digest)
        if path.is_file():
            try:
                os.utime(path)   # used now: kept KEEP_SECONDS from now
                return path
            except FileNotFoundError:
                pass   # pruned meanwhile: made again below
        data = self.read(relative, digest)
        if data is None:
            return path   # missing: not there, and the caller says so
        return self._cache(relative, digest, data)

    def describe(self, relative: str, digest: str) -> str:
        return f"数据库 {self.store.location} 中的 {relative}"

    def verify_files(self, entries: list[tuple[str, str, str]]) -> list[FileProblem]:
        """Each file is kept, and its bytes hash to the recorded sha256 (hashed by the
        database server: no bytes travel)."""
        with self.store.snapshot() as tx:
            found = tx.file_hashes([h for _, _, h in entries])
        problems = []
        for number, relative, expected in entries:
            actual = found.get(expected)
            if actual is None:
                problems.append(FileProblem(number, self.describe(relative, expected), "missing",
                                            expected, None))
            elif actual != expected:
                problems.append(FileProblem(number, self.describe(relative, expected), "changed",
                                            expected, actual))
        return problems

    def hand_out(self, relative: str, data: bytes) -> Path:
        return write_file(self.handed_out(relative), data)

    def handed_out(self, relative: str) -> Path:
        return self.prints / relative

    def discard(self, tx: Any, relative: str, digest: str) -> list[Path]:
        tx.drop_file(relative)
        return [self.where(relative, digest)]

    def _cache(self, relative: str, digest: str, data: bytes) -> Path:
        """The local copy of ``data``, written only if it hashes to ``digest``."""
        actual = sha256(data)
        if actual != digest:
            raise IntegrityError(f"数据库中的文件 {relative} 与登记的 sha256 不符（登记 {digest[:12]}…，"
                                 f"实际 {actual[:12]}…），已拒绝使用；请运行 dealerdocs verify 查明",
                                 path=relative, expected=digest, actual=actual)
        path = self.where(relative, digest)
        for folder in (self.files, self.prints):
            remove_older_than(folder, self.keep_seconds)
        try:
            atomic_write_bytes(path, data, sync=False)   # a cache: the database holds the file
        except OSError as err:
            raise StorageError(f"无法写入本地缓存 {path}：{err}", path=str(path)) from err
        return path


def _is_digest(value: Any) -> bool:
    return (isinstance(value, str) and len(value) == 64
            and all(c in "0123456789abcdef" for c in value))
