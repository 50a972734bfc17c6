"""Conversion of .docx (Writer) or .svg (Draw) bytes into PDF bytes. Knows nothing of cases or
templates.

:class:`Converter` is the extension point; :class:`SofficeConverter` runs LibreOffice headless
as a subprocess (pitfalls B5): its own user profile per converter (a shared profile makes a
second soffice hand the job over and exit 0 with no output), a new session so that a timeout
kills the whole process group (soffice → oosplash → soffice.bin), success judged only by a
real PDF on disk, and a fontconfig file that maps the Windows CJK font names templates use
(宋体, 黑体, 仿宋, 微软雅黑 …) to Noto CJK, whatever the LibreOffice profile says.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path

from .defaults import package_path
from .errors import ConversionError

log = logging.getLogger(__name__)

FONTS_CONF = package_path("fonts.conf")  # Windows font names → Noto CJK

# Writer's PDF export options, in the JSON form of `--convert-to`'s filter options (LibreOffice
# 7.4+); the warm pool's worker (engine/office.py) sets the same. Bookmarks become named
# destinations: where the renderer marked the signature labels (engine/bookmarks.py).
WRITER_OPTIONS = '"ExportBookmarksToPDFDestination":{"type":"boolean","value":"true"}'
# … and with PDF/A-2b (ISO 19005-2 level B): every font embedded, an sRGB output intent, XMP
# identification (see engine/pdfa.py).
PDF_A_OPTION = ("SelectPdfVersion", 2)
PDF_A_FILTER = ('pdf:writer_pdf_Export:{%s,"%s":{"type":"long","value":"%d"}}'
                % (WRITER_OPTIONS, *PDF_A_OPTION))
# Input suffix → LibreOffice export filter. An SVG opens in Draw (package libreoffice-draw-nogui),
# whose documents Writer's PDF filter cannot export, and vice versa.
EXPORT_FILTERS = {".docx": f"pdf:writer_pdf_Export:{{{WRITER_OPTIONS}}}",
                  ".svg": "pdf:draw_pdf_Export"}


class ArchivalDocx(bytes):
    """A .docx to convert to PDF/A-2b instead of plain PDF: the archive copy of a document
    kind with ``pdf_a = true`` (config.toml ``[documents.<kind>]``). A marker type, so the
    request travels with the document through rehearsals and conversions made ahead of a
    store write (``engine.prepared``) without another argument at every step; every
    converter honours it per document."""


def wants_pdf_a(document: bytes) -> bool:
    return isinstance(document, ArchivalDocx)


class Converter(ABC):
    """Turns Word documents (or SVG drawings, ``suffix=".svg"``) into PDF.

    Contract: :meth:`convert_many` returns one PDF (bytes starting with ``%PDF-``) per input,
    in order, or raises :class:`ConversionError`; it never returns partial output. ``suffix``
    names the kind of every input of the call. A converter may keep resources (a profile
    folder, a running office) until :meth:`close`.
    """

    def convert(self, data: bytes, suffix: str = ".docx") -> bytes:
        return self.convert_many([data], suffix)[0]

    @abstractmethod
    def convert_many(self, documents: list[bytes], suffix: str = ".docx") -> list[bytes]:
        ...

    def close(self) -> None:
        """Release what the converter holds; it may be used again afterwards."""

    def __enter__(self) -> "Converter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SofficeConverter(Converter):
    """One ``soffice --convert-to pdf`` run per batch, with a private profile and a hard timeout."""

    def __init__(self, binary: str = "soffice", timeout: float = 120.0) -> None:
        self.binary = binary
        self.timeout = timeout
        self._profile: Path | None = None
        # one run at a time: two soffice processes on one profile hand work to each other
        # and one of them exits without a PDF
        self._running = threading.Lock()

    def executable(self) -> str:
        found = shutil.which(self.binary)
        if not found:
            raise ConversionError(f"找不到 LibreOffice（{self.binary}）；请安装 libreoffice-writer "
                                  f"（make setup），或在 config.toml 的 [libreoffice] binary 中指定路径",
                                  binary=self.binary)
        return found

    def _profile_dir(self) -> Path:
        if self._profile is None:
            self._profile = Path(tempfile.mkdtemp(prefix="dealerdocs-lo-profile-"))
        return self._profile

    def convert_many(self, documents: list[bytes], suffix: str = ".docx") -> list[bytes]:
        export_filter = EXPORT_FILTERS.get(suffix)
        if export_filter is None:
            raise ConversionError(f"不支持转换 {suffix} 文件（支持：{'、'.join(EXPORT_FILTERS)}）",
                                  suffix=suffix)
        if not documents:
            return []
        for i, data in enumerate(documents):
            # a .docx is a zip; LibreOffice would make a blank page
            if suffix == ".docx" and not data.startswith(b"PK"):
                raise ConversionError(f"第 {i + 1} 个输入不是 Word（.docx）文档")
        archival = [i for i, d in enumerate(documents) if wants_pdf_a(d)]
        if archival and suffix == ".docx":
            if len(archival) < len(documents):   # one export filter per soffice run
                results: dict[int, bytes] = {}
                plain = [i for i in range(len(documents)) if i not in set(archival)]
                for indexes in (plain, archival):
                    for i, pdf in zip(indexes, self.convert_many([documents[i] for i in indexes],
                                                                 suffix)):
                        results[i] = pdf
                return [results[i] for i in range(len(documents))]
            export_filter = PDF_A_FILTER
        exe = self.executable()
        with self._running, tempfile.TemporaryDirectory(prefix="dealerdocs-convert-") as tmp:
            work = Path(tmp)
            inputs = []
            for i, data in enumerate(documents):
                path = work / f"doc{i:04d}{suffix}"
                path.write_bytes(data)
                inputs.append(path)
            outdir = work / "out"
            cmd = [exe, f"-env:UserInstallation={self._profile_dir().as_uri()}", "--headless",
                   "--invisible", "--norestore", "--nolockcheck", "--nodefault", "--nologo",
                   "--nofirststartwizard", "--convert-to", export_filter,
                   "--outdir", str(outdir), *map(str, inputs)]
            env = {**os.environ, "FONTCONFIG_FILE": str(FONTS_CONF),
                   "SAL_USE_VCLPLUGIN": "svp"}
            started = time.monotonic()
            stderr = self._run(cmd, env)
            log.debug("soffice converted %d document(s) in %.2f s", len(documents),
                      time.monotonic() - started)
            results = []
            for path in inputs:
                pdf = outdir / (path.stem + ".pdf")
                data = pdf.read_bytes() if pdf.is_file() else b""
                if not data.startswith(b"%PDF-"):
                    hint = ("（SVG 由 LibreOffice Draw 转换：是否已安装 libreoffice-draw-nogui？）"
                            if suffix == ".svg" else "")
                    raise ConversionError(
                        f"LibreOffice 没有生成 PDF（{path.name}）{hint}"
                        f"{'：' + stderr.strip()[-300:] if stderr.strip() else ''}",
                        stderr=stderr)
                results.append(data)
            return results

    def _run(self, cmd: list[str], env: dict[str, str]) -> str:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            _, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            self._reset_profile()  # a killed office may leave the profile locked or broken
            raise ConversionError(f"LibreOffice 转换超时（{self.timeout:g} 秒），已终止其进程组",
                                  timeout=self.timeout) from None
        finally:
            if proc.poll() is None:  # pragma: no cover - interrupted (e.g. KeyboardInterrupt)
                _kill_group(proc)
        text = err.decode("utf-8", "replace")
        if proc.returncode != 0:
            raise ConversionError(f"LibreOffice 退出码 {proc.returncode}"
                                  f"{'：' + text.strip()[-300:] if text.strip() else ''}",
                                  returncode=proc.returncode, stderr=text)
        return text

    def _reset_profile(self) -> None:
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def close(self) -> None:
        self._reset_profile()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def soffice_version(binary: str = "soffice") -> str:
    """``LibreOffice 7.4.7.2 …`` or ``unknown`` (recorded next to outputs and benchmarks)."""
    exe = shutil.which(binary)
    if not exe:
        return "unknown"
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
