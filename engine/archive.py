"""The outbox: where issued files live (``<outbox>/<year>/<series>/<number>.docx|.pdf``).

Files are written atomically, so a reader or a crash never sees half a PDF. The register in
the store records their relative paths and sha256; :func:`verify_files` re-hashes them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import StorageError
from .store import atomic_write_bytes


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
        problems = []
        for number, relative, expected in entries:
            path = self.absolute(relative)
            try:
                actual = hashlib.sha256(path.read_bytes()).hexdigest()
            except FileNotFoundError:
                problems.append(FileProblem(number, str(path), "missing", expected, None))
                continue
            if actual != expected:
                problems.append(FileProblem(number, str(path), "changed", expected, actual))
        return problems
