"""Work done ahead of a store write: PDFs converted and .docx rendered before the store's
exclusive lock is taken, found again by their content when the write runs.

Why: converting is most of the cost of issuing (LibreOffice, 0.1–2 s), and a writer holds the
store's lock alone, so a conversion under it would make every reader wait (and a hung
LibreOffice would block every page). The engine therefore runs an operation first on a
:meth:`Store.rehearsal` with a :class:`ServingConverter` that has nothing ready: the converter
stops the rehearsal with :class:`ConversionNeeded`, naming what it would convert; the engine
converts that with no lock held, puts it into :class:`Conversions` and rehearses again until
nothing is missing; then it runs the operation for real, under the lock, where every
conversion is served from :class:`Conversions`. Knows nothing of cases or stores.
"""
from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from typing import Any

from .convert import Converter


def content_key(document: bytes, suffix: str = ".docx") -> str:
    """A document's identity without its zip timestamps (a .docx rendered a second later is
    the same document, but its zip headers carry the new time). Remembered by the hash of
    the very bytes: an issue asks it of one .docx three or four times, and reading the zip
    costs ≈ 0.5 ms where hashing the bytes costs a few µs."""
    raw = hashlib.sha256(suffix.encode("ascii") + b"\0" + document).digest()
    with _KEYS_LOCK:
        known = _KEYS.get(raw)
    if known is None:
        known = _content_key(document, suffix)
        with _KEYS_LOCK:
            _KEYS[raw] = known
            while len(_KEYS) > 512:
                del _KEYS[next(iter(_KEYS))]
    return known


_KEYS: dict[bytes, str] = {}
_KEYS_LOCK = threading.Lock()


def _content_key(document: bytes, suffix: str) -> str:
    digest = hashlib.sha256(suffix.encode("ascii") + b"\0")
    try:
        with zipfile.ZipFile(io.BytesIO(document)) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                digest.update(info.filename.encode("utf-8") + b"\0")
                digest.update(hashlib.sha256(archive.read(info)).digest())
    except zipfile.BadZipFile:
        digest.update(document)
    return digest.hexdigest()


class ConversionNeeded(Exception):
    """Raised by a :class:`ServingConverter` asked for a PDF it does not have."""

    def __init__(self, documents: list[bytes], suffix: str) -> None:
        super().__init__(f"{len(documents)} document(s) to convert")
        self.documents = documents
        self.suffix = suffix


class Conversions:
    """PDFs by the content of what they were converted from (thread-safe)."""

    def __init__(self) -> None:
        self._ready: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def add(self, documents: list[bytes], pdfs: list[bytes], suffix: str = ".docx") -> None:
        with self._lock:
            for document, pdf in zip(documents, pdfs, strict=True):
                self._ready[content_key(document, suffix)] = pdf

    def get(self, document: bytes, suffix: str = ".docx") -> bytes | None:
        with self._lock:
            return self._ready.get(content_key(document, suffix))

    def missing(self, documents: list[bytes], suffix: str = ".docx") -> list[bytes]:
        with self._lock:
            return [d for d in documents if content_key(d, suffix) not in self._ready]

    def __len__(self) -> int:
        return len(self._ready)


class ServingConverter(Converter):
    """Serves PDFs from :class:`Conversions`; asked for anything else, raises
    :class:`ConversionNeeded` with every document of the call that is not ready."""

    def __init__(self, conversions: Conversions) -> None:
        self.conversions = conversions

    def convert_many(self, documents: list[bytes], suffix: str = ".docx") -> list[bytes]:
        missing = self.conversions.missing(documents, suffix)
        if missing:
            raise ConversionNeeded(missing, suffix)
        return [self.conversions.get(d, suffix) for d in documents]  # type: ignore[misc]


class RenderMemo:
    """A renderer that keeps what it rendered, so the real run of an operation gets the
    very bytes its rehearsal rendered (same template, context and properties) without
    rendering again. Bounded: renders never asked for again are dropped oldest first."""

    def __init__(self, renderer: Any, capacity: int = 64) -> None:
        self.renderer = renderer
        self.capacity = capacity
        self._kept: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load(self, path):
        return self.renderer.load(path)

    @staticmethod
    def _key(template: Any, context: Any, properties: Any, bookmarks: Any) -> str:
        body = json.dumps([template.sha256, context, properties, bookmarks],
                          ensure_ascii=False, sort_keys=True, default=str)
        return hashlib.sha256(body.encode("utf-8")).hexdigest()

    def render(self, template: Any, context: Any, properties: Any = None,
               bookmarks: Any = None) -> bytes:
        key = self._key(template, context, properties, bookmarks)
        with self._lock:
            found = self._kept.get(key)
        if found is not None:
            return found
        data = self.renderer.render(template, context, properties, bookmarks)
        with self._lock:
            self._kept[key] = data
            while len(self._kept) > self.capacity:
                del self._kept[next(iter(self._kept))]
        return data


class Prepared:
    """What an operation (or a batch of them) carries from its rehearsals to its real run."""

    def __init__(self, renderer: Any) -> None:
        self.conversions = Conversions()
        self.renders = RenderMemo(renderer)
        self.converted_late = 0   # documents the operations had to convert themselves
