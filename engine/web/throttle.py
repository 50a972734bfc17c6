"""Slowing down repeated failed sign-ins, without letting anyone lock a user out.

Each attempt is counted under three keys before the password is checked (so parallel guesses
are counted too) and a success takes it back:

- the address and the login together: after the 3rd failure in a row the next attempt from
  there waits 1 s, then 2, 4, 8 … up to 5 minutes (answered 429 with the seconds to wait);
- the address alone, for guesses spread over many logins: from the 10th failure, the same;
- the login alone, for guesses spread over many addresses: from the 10th failure each
  attempt is answered at most 2 s later, never refused. So failures from one address cost
  the real user, signing in from another address, at most that short delay.

A key's failures are forgotten an hour after its last one. Where they are counted is the
throttle's ``book``: the app's is the store (:mod:`engine.store.failures`), so every worker
of ``dealerdocs serve --workers N`` and every server on one database count the same failures
and a guesser gains nothing from reaching another process; a book in memory
(:class:`~engine.store.failures.MemoryBook`, per process) serves tests and callers without a store. Either is
bounded: beyond ``capacity`` keys those whose last failure is the oldest go first. The clock
is wall-clock time (``time.time``), the one clock the servers share. Behind a reverse proxy
the address is the client's only when the server trusts the proxy's ``X-Forwarded-For``
(``dealerdocs serve --forwarded-allow-ips``).
"""
from __future__ import annotations

import json
import math
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Callable, Protocol

from ..store.failures import MemoryBook


@dataclass(frozen=True)
class Rule:
    """After ``free`` failures in a row, the n-th waits ``2 ** (n - free)`` s, at most ``cap``."""

    free: int
    cap: float

    def wait_after(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return min(self.cap, 2.0 ** min(failures - self.free, 30))


@dataclass(frozen=True)
class Verdict:
    """``wait``: seconds before this address may try this login again (0 = now; the attempt
    was not counted). ``delay``: seconds to hold the answer back (the login's own slowdown)."""

    wait: int
    delay: float


PAIR = Rule(free=3, cap=300.0)
ADDRESS = Rule(free=10, cap=300.0)
LOGIN = Rule(free=10, cap=2.0)


Counts = dict[str, tuple[int, float]]


class Book(Protocol):
    """Where failures are counted (the store's contract, :mod:`engine.store.failures`):
    ``failures(keys, forget_before=…, capacity=…)`` is a block that sees ``{key: (failures,
    last)}`` for ``keys`` alone among all processes and keeps what it leaves there."""

    def failures(self, keys: list[str], *, forget_before: float, capacity: int
                 ) -> AbstractContextManager[Counts]: ...


class Throttle:
    def __init__(self, *, clock: Callable[[], float] = time.time, book: Book | None = None,
                 capacity: int = 10_000, forget_after: float = 3600.0, pair: Rule = PAIR,
                 address: Rule = ADDRESS, login: Rule = LOGIN) -> None:
        self.clock = clock
        self.book: Book = book if book is not None else MemoryBook()
        self.capacity = capacity
        self.forget_after = forget_after
        self.rules = {"pair": pair, "address": address, "login": login}

    def __len__(self) -> int:
        """How many keys a book in memory holds (a test's look at its bound)."""
        return len(self.book)  # type: ignore[arg-type]

    @staticmethod
    def _keys(address: str, login: str) -> dict[str, str]:
        return {"pair": json.dumps(["pair", address, login], ensure_ascii=False),
                "address": json.dumps(["address", address], ensure_ascii=False),
                "login": json.dumps(["login", login], ensure_ascii=False)}

    def _counted(self, keys: dict[str, str], now: float) -> AbstractContextManager[Counts]:
        return self.book.failures(list(keys.values()), forget_before=now - self.forget_after,
                                  capacity=self.capacity)

    def attempt(self, address: str, login: str) -> Verdict:
        """May ``address`` try ``login`` now? If so the attempt counts as a failure until
        :meth:`succeeded` says otherwise. One look at the book (the store's, for the app)."""
        now = self.clock()
        keys = self._keys(address, login)
        with self._counted(keys, now) as counts:
            found = {name: counts.get(key, (0, now)) for name, key in keys.items()}
            waits = [last + self.rules[name].wait_after(n) - now
                     for name, (n, last) in found.items() if name != "login" and n]
            wait = max(waits, default=0.0)
            if wait > 0:
                return Verdict(wait=max(1, math.ceil(wait)), delay=0.0)
            n, _ = found["login"]
            delay = self.rules["login"].wait_after(n) if n else 0.0
            for name, key in keys.items():
                counts[key] = (found[name][0] + 1, now)
        return Verdict(wait=0, delay=delay)

    def succeeded(self, address: str, login: str) -> None:
        """The password was right: the pair and the login start afresh, and this attempt no
        longer counts against the address (its earlier failures still do)."""
        now = self.clock()
        keys = self._keys(address, login)
        with self._counted(keys, now) as counts:
            counts.pop(keys["pair"], None)
            counts.pop(keys["login"], None)
            n, last = counts.get(keys["address"], (0, now))
            if n > 1:
                counts[keys["address"]] = (n - 1, last)
            else:
                counts.pop(keys["address"], None)
