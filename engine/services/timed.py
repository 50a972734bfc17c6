"""Timed transitions (``[[timers]]`` in a workflow file): which are due, and firing them as the
actor ``system`` (:data:`engine.timers.SYSTEM`) through the same pipeline as a user's fire, with
the transition's conditions and checks. When a timer is due is pure (:mod:`engine.timers`);
this service reads the store and judges again under its lock.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable, Mapping

from .. import timers
from ..errors import InputError, StateError
from ..store import Store, Tx
from ..workflow import Workflow
from .cases import Cases
from .definitions import Definitions, related
from .pipeline import FireResult, Pipeline
from .units import Units, Work

log = logging.getLogger(__name__)


class NotDue(Exception):
    """A timer judged due a moment ago no longer is (another process fired it)."""


class TimedTransitions:
    """The timers of one store's workflows."""

    def __init__(self, workflows: Mapping[str, Workflow], store: Store, cases: Cases,
                 definitions: Definitions, pipeline: Pipeline, units: Units,
                 clock: Callable[[], datetime]) -> None:
        self.workflows = workflows
        self.store = store
        self.cases = cases
        self.definitions = definitions
        self.pipeline = pipeline
        self.units = units
        self.clock = clock

    def tick(self) -> list[dict[str, Any]]:
        """Fire the timed transitions that are due (``[[timers]]``), each as the actor
        ``system`` in its own unit of work with the transition's conditions and checks.
        Idempotent: a case is judged again under the store's lock before it moves, so a second
        run (or another process ticking at once) finds nothing left to do. Returns one entry a
        case: what was fired, or why a due transition was refused (its conditions or checks)."""
        out: list[dict[str, Any]] = []
        for wf, timer, case_id in self._due():
            if any(entry["case"] == case_id for entry in out):
                continue  # the case moved (or was refused): its other timers wait for the next tick
            done = self._fire_timer(wf, timer, case_id)
            if done is not None:
                out.append(done)
        return out

    def tick_alone(self) -> list[dict[str, Any]] | None:
        """:meth:`tick`, if this process becomes the store's ticker (``store.ticker()``: a
        lock nobody waits for); None if another process holds it and is ticking now. With
        several servers (or workers) ticking in the background, each timer is then worked
        through by one of them; :meth:`tick`'s judging under the store's lock keeps it
        correct without, this keeps the others from doing the same work meanwhile."""
        with self.store.ticker() as first:
            if not first:
                log.debug("another process is ticking %s now; this tick skipped",
                          self.store.location)
                return None
            return self.tick()

    def _due(self) -> list[tuple[Workflow, timers.Timer, str]]:
        """Every (workflow, timer, case) due now, judged on one consistent view of the store."""
        candidates = [(wf, timer, row["id"]) for wf in self.workflows.values() if wf.timers
                      for row in self.cases.listings(wf.key, open_only=True)
                      for timer in wf.timers if row["state"] in timer.states]
        if not candidates:
            return []
        with self.store.snapshot() as tx:
            return [(wf, timer, case_id) for wf, timer, case_id in candidates
                    if self._judge(tx, wf, timer, case_id)]

    def _judge(self, tx: Tx, wf: Workflow, timer: timers.Timer, case_id: str) -> bool:
        record = tx.case(case_id)
        if record is None or record["state"] not in timer.states:
            return False
        now = self.clock()
        since = (timers.entered_at(record, tx.case_log("audit", case_id))
                 if timer.after is not None else None)
        names = {}
        if timer.when is not None:
            values, totals = self.definitions.evaluate(wf, record["data"], now.date())
            names = self.definitions.names(tx, values, totals, now, related(record))
        return timers.due(timer, record, names, now, since)

    def _fire_timer(self, wf: Workflow, timer: timers.Timer, case_id: str
                    ) -> dict[str, Any] | None:
        def step(tx: Tx, work: Work) -> FireResult:
            if not self._judge(tx, wf, timer, case_id):   # again, under the lock
                raise NotDue
            return self.pipeline.fire_in(tx, work, case_id, timer.trigger, timers.SYSTEM, None,
                                         None, timed=True)

        entry = {"case": case_id, "workflow": wf.key, "trigger": timer.trigger}
        try:
            result = self.units.run(step)
        except NotDue:
            return None
        except (StateError, InputError) as err:
            log.info("timer %s on %s refused: %s", timer.trigger, case_id, err.message)
            return {**entry, "refused": err.message}
        return {**entry, "state": result.state, "state_label": result.state_label,
                "documents": [d.number for d in result.documents]}
