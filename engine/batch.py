"""Batch issuing: one trigger fired on many cases, or new cases created from JSON Lines and
issued, with every converter instance busy and safe to run again after a kill.

Why it is fast: converting is most of the cost of issuing, and a warm pool converts several
documents at once. Each wave of items is first *rehearsed* on a throwaway unit of work that
is never committed: the transition runs up to the point where it would convert, so we learn
the exact .docx each item will issue (with the number it will get and a time fixed for it).
The wave's documents then convert in the background, spread over the pool, while the
previous wave is issued for real. The real fire renders the same bytes again and finds the PDF
ready (looked up by the .docx's hash, so a document that came out differently, e.g. because
someone else took the next number meanwhile, is simply converted then). Every item is still
its own all-or-nothing :meth:`Engine.fire`, with the same rules, numbers and audit trail.

Why it is resumable: each item's progress is recorded in the same unit of work as the change
itself (``Tx.set_mark``), under a batch id derived from what was asked (trigger, cases, data).
Running the same batch again skips what is marked and finishes the rest; nothing is issued
twice, even after ``kill -9``.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from .convert import Converter
from .errors import DealerDocsError, InputError
from .store import Tx


@dataclass(frozen=True)
class BatchItem:
    """One thing to do: fire ``trigger`` on ``case_id``, or create a ``workflow`` case from
    ``data`` first (then fire ``trigger`` on it, if given)."""
    key: str
    trigger: str | None
    case_id: str | None = None
    workflow: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ItemResult:
    key: str
    status: str                      # done | skipped (done before) | failed
    case_id: str | None = None
    documents: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status, "case": self.case_id,
                "documents": self.documents, "error": self.error}


def batch_id(kind: str, trigger: str | None, actor: str, items: list[BatchItem]) -> str:
    """The same request gets the same id, so running it again resumes it."""
    body = json.dumps([kind, trigger, actor, [[i.key, i.case_id, i.workflow, i.data]
                                              for i in items]],
                      ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:20]


def read_jsonl(path: Path, workflow: str, trigger: str | None) -> list[BatchItem]:
    """One new case per line (its data as a JSON object); blank lines and ``#`` lines skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(f"无法读取批量文件 {path}：{err.strerror or err}", field="jsonl") from err
    items, problems = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(InputError(f"{Path(path).name} 第 {n} 行不是合法的 JSON（{err.msg}）",
                                       field=f"line {n}"))
            continue
        if not isinstance(data, dict):
            problems.append(InputError(f"{Path(path).name} 第 {n} 行应是一个 JSON 对象", field=f"line {n}"))
            continue
        items.append(BatchItem(f"line{n}", trigger, workflow=workflow, data=data))
    if problems:
        raise InputError.combine(problems)
    if not items:
        raise InputError(f"批量文件 {path} 中没有数据行", field="jsonl")
    return items


def content_key(document: bytes) -> str:
    """A .docx's identity without its zip timestamps (a render a second later is the same
    document, but its zip headers carry the new time)."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(io.BytesIO(document)) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                digest.update(info.filename.encode("utf-8") + b"\0")
                digest.update(hashlib.sha256(archive.read(info)).digest())
    except zipfile.BadZipFile:
        digest.update(document)
    return digest.hexdigest()


class _Rehearsed(Exception):
    """Raised by the rehearsal converter: the documents a fire would convert."""

    def __init__(self, documents: list[bytes]) -> None:
        super().__init__("rehearsal")
        self.documents = documents


class _RehearsalConverter(Converter):
    """Stops a rehearsed fire at its first conversion. Only the documents it issues (.docx)
    are worth converting ahead; a stamp (.svg, e.g. 作废 on a cancellation) ends the
    rehearsal with nothing to convert."""

    def convert_many(self, documents: list[bytes], suffix: str = ".docx") -> list[bytes]:
        raise _Rehearsed(list(documents) if suffix == ".docx" else [])


class _ReadyConverter(Converter):
    """Serves PDFs converted ahead of time (by the .docx's content hash); converts anything else."""

    def __init__(self, real: Converter, ready: dict[str, bytes]) -> None:
        self.real, self.ready = real, ready
        self.hits = self.misses = 0

    def convert_many(self, documents: list[bytes], suffix: str = ".docx") -> list[bytes]:
        keys = [content_key(d) for d in documents]
        if suffix == ".docx" and all(k in self.ready for k in keys):
            self.hits += len(keys)
            return [self.ready.pop(k) for k in keys]
        self.misses += len(keys)
        return self.real.convert_many(documents, suffix)


class _RememberingRenderer:
    """The engine's renderer, remembering what the rehearsal rendered so the real fire of
    the same item (same template, same context, same time) does not render it again."""

    def __init__(self, real) -> None:
        self.real = real
        self.kept: dict[str, bytes] = {}

    def load(self, path):
        return self.real.load(path)

    @staticmethod
    def _key(template, context, properties) -> str:
        body = json.dumps([template.sha256, context, properties], ensure_ascii=False,
                          sort_keys=True, default=str)
        return hashlib.sha256(body.encode("utf-8")).hexdigest()

    def render(self, template, context, properties=None) -> bytes:
        key = self._key(template, context, properties)
        found = self.kept.pop(key, None)
        if found is not None:
            return found
        data = self.real.render(template, context, properties)
        self.kept[key] = data
        while len(self.kept) > 64:   # renders never asked for again (an item that changed)
            del self.kept[next(iter(self.kept))]
        return data

    def __getattr__(self, name):
        return getattr(self.real, name)


class BatchRunner:
    """Runs a list of :class:`BatchItem` as ``actor`` on an :class:`Engine`."""

    def __init__(self, engine, actor: str, *, wave: int | None = None,
                 progress: Callable[[ItemResult], None] | None = None) -> None:
        self.engine = engine
        self.actor = actor
        self.user = engine.config.user(actor)
        instances = getattr(engine.converter, "instances", 1)
        self.wave = wave or max(4, 4 * instances)
        self.progress = progress or (lambda result: None)
        self.hits = self.misses = 0

    def run(self, kind: str, trigger: str | None, items: list[BatchItem]) -> dict[str, Any]:
        batch = batch_id(kind, trigger, self.actor, items)
        with self.engine.store.snapshot() as tx:
            marks = tx.marks(batch)
        results: dict[str, ItemResult] = {}
        todo = []
        for item in items:
            mark = marks.get(item.key, {})
            if "fired" in mark or (item.trigger is None and "case" in mark):
                results[item.key] = ItemResult(item.key, "skipped", mark.get("case"),
                                               mark.get("documents", []))
                self.progress(results[item.key])
            else:
                todo.append((item, mark.get("case") or item.case_id))
        real = self.engine.converter
        ready: dict[str, bytes] = {}
        saved_renderer = self.engine._renderer
        self.engine._renderer = self.renderer = _RememberingRenderer(self.engine.renderer)
        try:
            return self._run(batch, items, todo, results, real, ready)
        finally:
            self.engine._renderer = saved_renderer

    def _run(self, batch: str, items: list[BatchItem], todo: list, results: dict[str, ItemResult],
             real: Converter, ready: dict[str, bytes]) -> dict[str, Any]:
        shadow = Tx(self.engine.store.directory, writable=True,
                    listing=self.engine.store.listing)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dealerdocs-batch") as pool:
            pending: tuple[list, dict, Future] | None = None
            for start in range(0, len(todo), self.wave):
                wave = [self._create(batch, item, case_id, results)
                        for item, case_id in todo[start:start + self.wave]]
                wave = [(item, case_id) for item, case_id in wave if case_id is not None]
                times, docs = self._rehearse(shadow, wave)
                future = pool.submit(self._convert_ahead, real, docs)
                if pending is not None:
                    self._issue(batch, *pending, real, ready, results)
                pending = (wave, times, future)
            if pending is not None:
                self._issue(batch, *pending, real, ready, results)
        order = {item.key: i for i, item in enumerate(items)}
        ordered = sorted(results.values(), key=lambda r: order[r.key])
        return {"batch": batch, "items": len(items),
                "done": sum(r.status == "done" for r in ordered),
                "skipped": sum(r.status == "skipped" for r in ordered),
                "failed": sum(r.status == "failed" for r in ordered),
                "converted_ahead": self.hits, "converted_late": self.misses,
                "results": [r.to_dict() for r in ordered]}

    # --- steps ----------------------------------------------------------------------------

    def _create(self, batch: str, item: BatchItem, case_id: str | None,
                results: dict[str, ItemResult]) -> tuple[BatchItem, str | None]:
        """A new case for a JSON Lines item not created yet (its own marked unit of work)."""
        if case_id is not None or item.workflow is None:
            return item, case_id
        try:
            created = self.engine.create(item.workflow, item.data, self.actor,
                                         mark=(batch, item.key))
        except DealerDocsError as err:
            results[item.key] = ItemResult(item.key, "failed", error=err.message)
            self.progress(results[item.key])
            return item, None
        if item.trigger is None:
            results[item.key] = ItemResult(item.key, "done", created.id)
            self.progress(results[item.key])
            return item, None
        return item, created.id

    def _rehearse(self, shadow: Tx, wave: list[tuple[BatchItem, str]]
                  ) -> tuple[dict[str, datetime], list[bytes]]:
        """Each item's fire on the throwaway unit of work, up to its conversion."""
        engine = self.engine
        times: dict[str, datetime] = {}
        documents: list[bytes] = []
        saved_converter, saved_clock = engine._converter, engine.clock
        engine._converter = _RehearsalConverter()
        try:
            for item, case_id in wave:
                now = saved_clock()
                times[item.key] = now
                engine.clock = lambda now=now: now
                new_files: list[Path] = []
                try:
                    engine._fire_in(shadow, case_id, item.trigger, self.user,
                                    item.data if item.workflow is None else None, None, [],
                                    new_files)
                except _Rehearsed as rehearsed:
                    documents.extend(rehearsed.documents)
                except DealerDocsError:
                    pass  # it will fail for real, and be reported, when its turn comes
                finally:
                    for path in new_files:
                        path.unlink(missing_ok=True)
        finally:
            engine._converter, engine.clock = saved_converter, saved_clock
        return times, documents

    @staticmethod
    def _convert_ahead(real: Converter, documents: list[bytes]) -> dict[str, bytes]:
        if not documents:
            return {}
        try:
            pdfs = real.convert_many(documents)
        except DealerDocsError:
            return {}   # each fire converts its own documents then, and reports its error
        return {content_key(d): pdf for d, pdf in zip(documents, pdfs)}

    def _issue(self, batch: str, wave: list[tuple[BatchItem, str]], times: dict[str, datetime],
               future: Future, real: Converter, ready: dict[str, bytes],
               results: dict[str, ItemResult]) -> None:
        engine = self.engine
        ready.update(future.result())
        serving = _ReadyConverter(real, ready)
        saved_converter, saved_clock = engine._converter, engine.clock
        engine._converter = serving
        try:
            for item, case_id in wave:
                engine.clock = lambda now=times[item.key]: now
                try:
                    fired = engine.fire(case_id, item.trigger, self.actor,
                                        item.data if item.workflow is None else None,
                                        mark=(batch, item.key))
                except DealerDocsError as err:
                    results[item.key] = ItemResult(item.key, "failed", case_id, error=err.message)
                else:
                    results[item.key] = ItemResult(item.key, "done", case_id,
                                                   [d.number for d in fired.documents])
                self.progress(results[item.key])
        finally:
            engine._converter, engine.clock = saved_converter, saved_clock
            self.hits += serving.hits
            self.misses += serving.misses
        ready.clear()   # what was not used will not match anything later
