"""Named points of an operation, logged at debug level, that a test can stop a process at.

Kill tests need to know where a kill lands: a sleep before the kill only guesses. With
``DEALERDOCS_HOLD_AT=<name>`` a process that reaches the point logs ``holding at <name>`` and
waits there (``DEALERDOCS_HOLD_SECONDS``, default 600), so the test kills it exactly in that
window. Without the variable a checkpoint is one debug line. The points, in the order an
issue passes them: ``rendering`` (the first render of a step), ``converting`` (LibreOffice at
work, no lock held), ``outbox written`` (a document's files written, the store not committed)
and ``journal written`` (the commit point passed, SIGINT and SIGTERM deferred: a hold there
ends after its time and the step completes; on PostgreSQL ``committed``, the COMMIT done).
Store upgrades: ``upgrade 3`` (a single-file
store rebuilt as partitions beside it), ``upgrade 5 audit`` (the audit trail linked again),
``upgrade 5 cases`` (half the cases given their owners).
"""
from __future__ import annotations

import logging
import os
import time

log = logging.getLogger(__name__)


def reached(name: str, detail: str = "") -> None:
    log.debug("%s%s", name, f": {detail}" if detail else "")
    if os.environ.get("DEALERDOCS_HOLD_AT") != name:
        return
    seconds = float(os.environ.get("DEALERDOCS_HOLD_SECONDS", "600"))
    log.warning("holding at %s (DEALERDOCS_HOLD_AT) for up to %.0f s", name, seconds)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
