"""Units of work that may render and convert, run so that LibreOffice never works under the
store's exclusive lock, and all-or-nothing until the store commits.

An operation is a *step*: a function of a unit of work ``tx`` and a :class:`Work` (the time it
happens at, how it renders and converts, what it wrote besides the store). :meth:`Units.run`
rehearses it (shared lock, never committed, no archive file written) until it asks for
conversions, makes them with no lock held, then runs it for real under the exclusive lock with
each conversion served from what was made (:mod:`engine.prepared`); a real run that needs
another round (the stamped copies of what it issues) is abandoned, and the step rehearsed
through before the next try. Plans (a batch) rehearse several steps in order ahead of time
(:meth:`Units.rehearse`) and convert what they will need (:meth:`Units.convert_ahead`), so
the real runs find it ready.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from .. import checkpoints
from ..archive import Archive
from ..convert import Converter
from ..errors import DealerDocsError
from ..prepared import ConversionNeeded, Prepared, ServingConverter
from ..store import Store, Tx
from .press import Press

log = logging.getLogger(__name__)

# Tries of an operation whose rehearsal went stale (the last converts under the lock), and
# rounds of conversions one rehearsal may ask for (documents, then stamps).
MAX_ATTEMPTS = 3
MAX_CONVERSION_ROUNDS = 8


@dataclass
class Work:
    """One run of an operation (a rehearsal or the real one): the time it happens at, how it
    renders and converts, and what it wrote besides the store (removed if it does not commit)."""

    now: datetime
    converter: Converter
    renderer: Any
    rehearsal: bool
    written: list[Path] = field(default_factory=list)    # local files the archive wrote
    new_files: list[Path] = field(default_factory=list)  # attachments stored

    def write(self, archive: Archive, tx: Tx, relative: str, payload: bytes) -> None:
        """An issued file archived in ``tx``; a rehearsal writes none."""
        if self.rehearsal:
            return
        self.written.append(archive.put(tx, relative, payload))


Step = Callable[[Tx, Work], Any]


class Units:
    """Runs steps on one store (their files go to the archive the steps name)."""

    def __init__(self, store: Store, press: Press, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.press = press
        self.clock = clock

    def prepared(self) -> Prepared:
        """An empty carrier of renders and conversions from rehearsals to real runs."""
        return Prepared(self.press.renderer)

    def run(self, step: Step, *, at: datetime | None = None,
            prepared: Prepared | None = None) -> Any:
        """Run ``step`` (a unit of work that may render and convert) so that LibreOffice never
        runs under the store's exclusive lock.

        ``step`` first runs on a rehearsal (a consistent view under the shared lock, never
        committed, archiving no file) until it asks for conversions, which are made with no
        lock held; then for real under the exclusive lock, where each conversion is served
        from what was made. A real run that asks for more (a second round: the stamped copies
        of the documents it issues) is abandoned and the step rehearsed through, converting
        every round, before the next try. If the store changed in between (another process took the
        number the rehearsal rendered), the real run misses a conversion, is abandoned
        (nothing written) and the whole is tried again; after ``MAX_ATTEMPTS`` the last try
        converts under the lock. ``prepared`` with conversions made ahead (a batch) is tried
        for real straight away, and rehearsed only if it misses one. A step that fails leaves
        nothing behind: the files it archived and new attachments are removed — unless the store
        committed it (its journal is durable), after which nothing is removed or rolled
        back, whatever interrupts.
        """
        ahead = prepared is not None and len(prepared.conversions) > 0
        prepared = prepared or self.prepared()
        # "hasty": rehearsed up to its first conversions only, which is all most steps need:
        # rehearsing again through them (finishing every PDF twice) cost ~15 % of an issue
        plans = [*(["ahead"] if ahead else ["hasty"]), *["rehearsed"] * (MAX_ATTEMPTS - 1),
                 "locked"]
        new_files: list[Path] = []
        committed = False
        try:
            for attempt, plan in enumerate(plans, start=1):
                now = at or self.clock()
                if plan in ("hasty", "rehearsed"):
                    self._rehearse(step, now, prepared, new_files, hasty=plan == "hasty")
                converter = (self.press.converter if plan == "locked"
                             else ServingConverter(prepared.conversions))
                work = Work(now, converter, prepared.renders, rehearsal=False,
                            new_files=new_files)
                tx: Tx | None = None
                try:
                    with self.store.transaction() as tx:
                        return step(tx, work)
                except ConversionNeeded:
                    self._remove_written(work.written)
                    log.info("a conversion was not ready (%s); trying again (%d)", plan, attempt)
                except BaseException:
                    if tx is not None and tx.committed:
                        committed = True
                    else:
                        self._remove_written(work.written)
                    raise
            raise AssertionError("unreachable: the last attempt converts under the lock")
        except BaseException:
            if not committed:
                for path in new_files:
                    path.unlink(missing_ok=True)
            raise

    def rehearse(self, steps: list[tuple[Step, datetime]], prepared: Prepared
                 ) -> list[list[bytes]]:
        """The documents (.docx) each of ``steps`` (with the time it happens at) would convert
        if committed in this order: rehearsed one after the other on one unit of work that is
        never committed, each up to its first conversion, so each sees the numbers taken
        before it. Renders are kept in ``prepared``. A step that would be refused adds nothing
        (it is refused, and reported, when it runs for real)."""
        documents: list[list[bytes]] = []
        with self.store.rehearsal() as tx:
            for step, at in steps:
                work = Work(at, ServingConverter(prepared.conversions), prepared.renders,
                            rehearsal=True)
                found: list[bytes] = []
                try:
                    step(tx, work)
                except ConversionNeeded as need:
                    if need.suffix == ".docx":
                        found = need.documents
                except DealerDocsError:
                    pass
                finally:
                    for path in work.new_files:
                        path.unlink(missing_ok=True)
                documents.append(found)
        return documents

    def convert_ahead(self, prepared: Prepared, documents: list[bytes]) -> int:
        """Convert ``documents`` with no lock held, into ``prepared``; how many were converted.
        A conversion error is raised (the real runs would convert them again, and say so)."""
        if not documents:
            return 0
        pdfs = self.press.converter.convert_many(documents)
        prepared.conversions.add(documents, pdfs)
        return len(documents)

    def _rehearse(self, step: Step, now: datetime, prepared: Prepared,
                  new_files: list[Path], hasty: bool = False) -> None:
        """Rehearse ``step`` until it runs through with every conversion ready, converting
        what it asks for between rehearsals (no lock held while LibreOffice works); ``hasty``:
        only until it has asked for conversions once."""
        for _ in range(MAX_CONVERSION_ROUNDS):
            work = Work(now, ServingConverter(prepared.conversions), prepared.renders,
                        rehearsal=True, new_files=new_files)
            try:
                with self.store.rehearsal() as tx:
                    step(tx, work)
                return
            except ConversionNeeded as need:
                checkpoints.reached("converting", f"{len(need.documents)} document(s) "
                                                  f"({need.suffix}), no lock held")
                pdfs = self.press.converter.convert_many(need.documents, need.suffix)
                prepared.conversions.add(need.documents, pdfs, need.suffix)
                prepared.converted_late += len(need.documents)
                if hasty:
                    return

    @staticmethod
    def _remove_written(written: list[Path]) -> None:
        """The local files of an attempt that did not commit (with files in the database,
        their rows went with the rolled-back transaction; these are the cache's copies)."""
        for path in written:
            path.unlink(missing_ok=True)
