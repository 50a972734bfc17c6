"""Pages of an issued PDF as PNGs, for browsers that show no PDF inline (phones, WeChat).

Pictures are kept by the PDF's sha256 in a cache folder of the store for a few days only (a
page of a contract shows the buyer's ID number): older ones are removed whenever a new one is
made, and a purge removes those of the documents it erases.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from .errors import NotFoundError
from .files import make_dirs, remove_older_than

KEEP_SECONDS = 7 * 24 * 3600


class PagePreviews:
    def __init__(self, folder: Path, keep_seconds: float = KEEP_SECONDS) -> None:
        self.folder = Path(folder)
        self.keep_seconds = keep_seconds

    def path(self, pdf_sha256: str, page: int = 1) -> Path:
        return self.folder / f"{pdf_sha256}-{page}.png"

    def paths(self, pdf_sha256: str) -> list[Path]:
        """Every picture kept of one PDF (a purge removes them with the PDF)."""
        return sorted(self.folder.glob(f"{pdf_sha256}*.png"))

    def page(self, pdf: Path, pdf_sha256: str, page: int, label: str) -> Path:
        """Page ``page`` (from 1) of ``pdf`` as a PNG, made once and kept a few days."""
        target = self.path(pdf_sha256, page)
        if target.is_file():
            return target
        make_dirs(self.folder)
        self.prune()
        with tempfile.TemporaryDirectory(dir=self.folder) as tmp:
            try:
                subprocess.run(["pdftoppm", "-png", "-r", "110", "-f", str(page), "-l", str(page),
                                "-singlefile", str(pdf), str(Path(tmp) / "page")], check=True,
                               timeout=60, capture_output=True)
            except (OSError, subprocess.SubprocessError) as err:
                raise NotFoundError(f"无法生成 {label} 第 {page} 页的预览图（需要 poppler-utils）"
                                    ) from err
            os.replace(Path(tmp) / "page.png", target)
        return target

    def prune(self) -> int:
        """Remove the pictures made more than ``keep_seconds`` ago; returns how many."""
        return remove_older_than(self.folder, self.keep_seconds, "*.png")
