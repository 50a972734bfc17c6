"""The outbox: where issued files live (``<outbox>/<year>/<series>/<number>.docx|.pdf``).

Files are written atomically, so a reader or a crash never sees half a PDF. The register in
the store records their relative paths and sha256; :func:`verify_files` re-hashes them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import StorageError
from .text import clean_line
from .files import atomic_write_bytes


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FileProblem:
    number: str
    path: str
    problem: str  # "missing" | "changed"
    expected: str
    actual: str | None


class Outbox:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @staticmethod
    def relative_path(year: int, series_key: str, number: str, suffix: str) -> str:
        return str(PurePosixPath(str(year), series_key, f"{number}{suffix}"))

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    def write(self, relative: str, data: bytes) -> Path:
        path = self.absolute(relative)
        try:
            atomic_write_bytes(path, data)
        except OSError as err:
            raise StorageError(f"无法写入输出文件 {path}：{err}", path=str(path)) from err
        return path

    def remove(self, relative: str) -> None:
        self.absolute(relative).unlink(missing_ok=True)

    def verify_files(self, entries: list[tuple[str, str, str]]) -> list[FileProblem]:
        """Check ``(number, relative path, expected sha256)`` triples against the disk."""
        return verify_files([(n, self.absolute(r), h) for n, r, h in entries])


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
