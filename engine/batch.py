"""Batch issuing: one trigger fired on many cases, or new cases created from JSON Lines and
issued, with every converter instance busy and safe to run again after a kill.

Why it is fast: converting is most of the cost of issuing, and a warm pool converts several
documents at once. Each wave of items is first *planned* (:meth:`Engine.plan_fires`): rehearsed
in order, after the wave still to be committed, on one throwaway unit of work that is never
committed, each transition up to the point where it would convert, so we learn the exact .docx
each item will issue (with the number it will get and a time fixed for it). The wave's
documents then convert in the background (:meth:`Engine.convert_ahead`), each item's as soon as
an instance is free, while the items before it are committed (:meth:`Engine.commit`), each as
soon as its own PDFs are ready: so rendering and finishing overlap the conversions, and the
instances do not wait for Python (the first wave is one item per instance, so they start at
once, and the last items commit while the others still convert). A commit gets the same
renders and finds the PDFs ready (looked up by the .docx's content, so a document that came out
differently, e.g. because someone else took the next number meanwhile, is simply converted
then). Every item is still its own all-or-nothing fire, with the same rules, numbers and audit
trail.

Why it is resumable: each item's progress is recorded in the same unit of work as the change
itself (``Tx.set_mark``), under a batch id derived from what was asked (trigger, cases, data).
Running the same batch again skips what is marked and finishes the rest; nothing is issued
twice, even after ``kill -9``.
"""
from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .engine import Fire, Plan
from .errors import DealerDocsError, InputError


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
        self.ahead = 0   # documents converted ahead, in the background
        self._count = threading.Lock()
        self.late = 0    # documents the commits had to convert themselves

    def run(self, kind: str, trigger: str | None, items: list[BatchItem]) -> dict[str, Any]:
        batch = batch_id(kind, trigger, self.actor, items)
        marks = self.engine.batch_marks(batch)
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
        # a warm pool converts each item's documents as their own call, on a free instance;
        # a cold converter (a LibreOffice started per call) converts a wave in one call
        instances = getattr(self.engine.converter, "instances", None)
        with ThreadPoolExecutor(max_workers=instances or 1,
                                thread_name_prefix="dealerdocs-batch") as pool:
            pending: tuple[list, list[Plan], list[Future]] | None = None
            start = 0
            while start < len(todo):
                size = (instances or self.wave) if start == 0 else self.wave   # none waits
                wave = [self._create(batch, item, case_id, results)
                        for item, case_id in todo[start:start + size]]
                start += size
                wave = [(item, case_id) for item, case_id in wave if case_id is not None]
                # the wave still to be committed comes first: its numbers are taken before ours
                plans = self.engine.plan_fires(
                    [Fire(case_id, item.trigger, self._data(item), mark=(batch, item.key))
                     for item, case_id in wave], self.actor,
                    after=pending[1] if pending else ())
                if instances:
                    futures = [pool.submit(self._convert_ahead, [plan]) for plan in plans]
                else:
                    futures = [pool.submit(self._convert_ahead, plans)] * len(plans)
                if pending is not None:
                    self._issue(*pending, results)
                pending = (wave, plans, futures)
            if pending is not None:
                self._issue(*pending, results)
        order = {item.key: i for i, item in enumerate(items)}
        ordered = sorted(results.values(), key=lambda r: order[r.key])
        return {"batch": batch, "items": len(items),
                "done": sum(r.status == "done" for r in ordered),
                "skipped": sum(r.status == "skipped" for r in ordered),
                "failed": sum(r.status == "failed" for r in ordered),
                "converted_ahead": self.ahead, "converted_late": self.late,
                "results": [r.to_dict() for r in ordered]}

    @staticmethod
    def _data(item: BatchItem) -> Mapping[str, Any] | None:
        """A JSON Lines item's data made the case; a fire item's data goes with the fire."""
        return item.data if item.workflow is None else None

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

    def _convert_ahead(self, plans: list[Plan]) -> None:
        try:
            converted = self.engine.convert_ahead(plans)
        except DealerDocsError:
            return   # the commit converts its documents itself then, and reports its error
        with self._count:
            self.ahead += converted

    def _issue(self, wave: list[tuple[BatchItem, str]], plans: list[Plan],
               futures: list[Future], results: dict[str, ItemResult]) -> None:
        for (item, case_id), plan, future in zip(wave, plans, futures, strict=True):
            future.result()   # this item's PDFs are ready (the later ones still converting)
            try:
                fired = self.engine.commit(plan)
            except DealerDocsError as err:
                results[item.key] = ItemResult(item.key, "failed", case_id, error=err.message)
            else:
                results[item.key] = ItemResult(item.key, "done", case_id,
                                               [d.number for d in fired.documents])
            finally:
                self.late += plan.converted_late
            self.progress(results[item.key])
