"""The archive: where issued files live, named by the relative path the register records
(``<year>/<series>/<number>.docx|.pdf``, ``….void.pdf``, ``….recalled.pdf``) and its sha256.

Two implementations behind one contract (:class:`Archive`): the outbox folder
(:class:`Outbox`, config.toml ``files = "outbox"``) and the PostgreSQL store itself
(:class:`~engine.dbarchive.DatabaseArchive`, ``files = "database"``). The services get one of
them from the engine (:func:`open_archive`) and never ask which.

Files are written in the unit of work that records them (:meth:`Archive.put`): the outbox
writes them atomically before the commit point and the caller removes them if the unit does
not commit; the database writes them in the same transaction. :meth:`Archive.verify_files`
re-hashes them.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Mapping

from .errors import StorageError
from .text import clean_line
from .files import atomic_write_bytes

if TYPE_CHECKING:  # pragma: no cover
    from .config import Config

# a register entry's files: (path key, sha256 key)
DOCUMENT_FILES = (("docx", "docx_sha256"), ("pdf", "pdf_sha256"),
                  ("stamped_pdf", "stamped_sha256"), ("signed_pdf", "signed_sha256"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def document_files(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``(relative path, sha256)`` of each file a register entry records."""
    return [(doc[path], doc[digest]) for path, digest in DOCUMENT_FILES if doc.get(path)]


@dataclass(frozen=True)
class FileProblem:
    number: str
    path: str
    problem: str  # "missing" | "changed"
    expected: str
    actual: str | None


class Archive(ABC):
    """Issued files, each named by its relative path and sha256 (what the register keeps).

    Contract: :meth:`put` archives bytes inside a store unit of work ``tx`` and returns the
    local file it wrote, which the caller deletes if the unit does not commit; :meth:`read`
    returns the bytes as archived (unchecked: that is :meth:`verify_files`' job) or None;
    :meth:`fetch` gives a local file with the bytes for whoever needs a path (a download, a
    page picture, printing), :meth:`where` the path it has or will have, without I/O."""

    @staticmethod
    def relative_path(year: int, series_key: str, number: str, suffix: str) -> str:
        return str(PurePosixPath(str(year), series_key, f"{number}{suffix}"))

    @abstractmethod
    def put(self, tx: Any, relative: str, data: bytes) -> Path:
        """Archive ``data`` as ``relative`` in the unit of work ``tx``; the local file written
        (removed by the caller if ``tx`` does not commit)."""

    @abstractmethod
    def read(self, relative: str, digest: str, tx: Any = None) -> bytes | None:
        """The archived bytes of ``relative`` (recorded with ``digest``), None if missing;
        read in the unit of work ``tx`` if given."""

    @abstractmethod
    def where(self, relative: str, digest: str) -> Path:
        """The local path of the file (no I/O): it is there once :meth:`fetch` made it."""

    def fetch(self, relative: str, digest: str) -> Path:
        """A local file with the archived bytes; the path of a missing file, which is not
        there (callers report it; ``verify`` says why)."""
        return self.where(relative, digest)

    def describe(self, relative: str, digest: str) -> str:
        """Where the file is archived, for messages (``verify``'s reports)."""
        return str(self.where(relative, digest))

    @abstractmethod
    def verify_files(self, entries: list[tuple[str, str, str]]) -> list[FileProblem]:
        """Check ``(number, relative path, expected sha256)`` triples: one problem per
        missing or changed file."""

    @abstractmethod
    def hand_out(self, relative: str, data: bytes) -> Path:
        """A file made for a person and not registered (a dispatched copy's print)."""

    @abstractmethod
    def handed_out(self, relative: str) -> Path:
        """Where :meth:`hand_out` put ``relative`` (a purge deletes it)."""

    @abstractmethod
    def discard(self, tx: Any, relative: str, digest: str) -> list[Path]:
        """Erase a file (a purge) in the unit of work ``tx``; the local files to delete once
        ``tx`` has committed (an erasure that did not happen keeps them)."""


class Outbox(Archive):
    """Issued files in a folder (``[paths] outbox``; on several servers a folder all mount)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    def write(self, relative: str, data: bytes) -> Path:
        return write_file(self.absolute(relative), data)

    def put(self, tx: Any, relative: str, data: bytes) -> Path:
        return self.write(relative, data)

    def read(self, relative: str, digest: str, tx: Any = None) -> bytes | None:
        try:
            return self.absolute(relative).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StorageError(f"无法读取输出文件 {self.absolute(relative)}：{err.strerror}",
                               path=str(self.absolute(relative))) from err

    def where(self, relative: str, digest: str) -> Path:
        return self.absolute(relative)

    def verify_files(self, entries: list[tuple[str, str, str]]) -> list[FileProblem]:
        return verify_files([(n, self.absolute(r), h) for n, r, h in entries])

    def hand_out(self, relative: str, data: bytes) -> Path:
        return self.write(relative, data)

    def handed_out(self, relative: str) -> Path:
        return self.absolute(relative)

    def discard(self, tx: Any, relative: str, digest: str) -> list[Path]:
        return [self.absolute(relative)]


def open_archive(config: "Config", store: Any) -> Archive:
    """The archive config.toml's ``files`` names, for ``store``."""
    if config.files == "database":
        from .dbarchive import DatabaseArchive

        return DatabaseArchive(store, config.store_dir / "cache")
    return Outbox(config.outbox_dir)


def write_file(path: Path, data: bytes) -> Path:
    """``data`` into ``path`` atomically; a StorageError naming the file if it cannot be."""
    try:
        atomic_write_bytes(path, data)
    except OSError as err:
        raise StorageError(f"无法写入文件 {path}：{err}", path=str(path)) from err
    return path


def verify_files(entries: list[tuple[str, Path, str]]) -> list[FileProblem]:
    """Re-hash ``(label, path, expected sha256)``; one problem per missing or changed file."""
    problems = []
    for label, path, expected in entries:
        try:
            actual = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except FileNotFoundError:
            problems.append(FileProblem(label, str(path), "missing", expected, None))
            continue
        if actual != expected:
            problems.append(FileProblem(label, str(path), "changed", expected, actual))
    return problems


class Attachments:
    """Files attached to cases (e.g. rectification evidence), kept beside the store by content:
    ``<store>/attachments/<sha256[:2]>/<sha256>``; the case records name, size and hash."""

    MAX_BYTES = 50 * 1024 * 1024

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_of(self, relative: str) -> Path:
        return self.root.parent / relative

    def path_for(self, digest: str) -> Path:
        """Where the attachment with this sha256 lives (never a path taken from a record: a
        record that names another file must not make ``verify`` read it)."""
        if not (isinstance(digest, str) and len(digest) == 64
                and all(c in "0123456789abcdef" for c in digest)):
            return self.root / "invalid"
        return self.root / digest[:2] / digest

    def store(self, source: str | Path, new_files: list[Path] | None = None) -> dict[str, object]:
        """Copy ``source`` in (atomically, once per content) and return its record."""
        from .errors import InputError

        path = Path(source).expanduser()
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise InputError(f"附件 {source} 不是文件")
            if size > self.MAX_BYTES:
                raise InputError(f"附件 {path.name} 有 {size / 1048576:.0f} MB，超过 50 MB")
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"找不到附件文件 {source}") from None
        except OSError as err:
            raise InputError(f"无法读取附件 {source}：{err.strerror}") from None
        digest = sha256(data)
        relative = str(PurePosixPath(self.root.name, digest[:2], digest))
        target = self.path_of(relative)
        if not target.exists():
            try:
                atomic_write_bytes(target, data)
            except OSError as err:
                raise StorageError(f"无法保存附件 {path.name}：{err}", path=str(target)) from err
            if new_files is not None:
                new_files.append(target)
        return {"name": clean_line(path.name, max_length=None)[:120] or digest[:12],
                "sha256": digest, "size": len(data), "file": relative}
