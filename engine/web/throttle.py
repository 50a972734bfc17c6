"""Slowing down repeated failed sign-ins, without letting anyone lock a user out.

Each attempt is counted under three keys before the password is checked (so parallel guesses
are counted too) and a success takes it back:

- the address and the login together: after the 3rd failure in a row the next attempt from
  there waits 1 s, then 2, 4, 8 … up to 5 minutes (answered 429 with the seconds to wait);
- the address alone, for guesses spread over many logins: from the 10th failure, the same;
- the login alone, for guesses spread over many addresses: from the 10th failure each
  attempt is answered at most 2 s later, never refused. So failures from one address cost
  the real user, signing in from another address, at most that short delay.

A key's failures are forgotten an hour after its last one. The table is in memory, per
process (``dealerdocs serve`` runs one), and bounded: beyond ``capacity`` keys the least
recently used go first. Behind a reverse proxy the address is the client's only when the
server trusts the proxy's ``X-Forwarded-For`` (``dealerdocs serve --forwarded-allow-ips``).
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable


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


class Throttle:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic, capacity: int = 10_000,
                 forget_after: float = 3600.0, pair: Rule = PAIR, address: Rule = ADDRESS,
                 login: Rule = LOGIN) -> None:
        self.clock = clock
        self.capacity = capacity
        self.forget_after = forget_after
        self.rules = {"pair": pair, "address": address, "login": login}
        self._failures: OrderedDict[tuple[str, ...], tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._failures)

    @staticmethod
    def _keys(address: str, login: str) -> dict[str, tuple[str, ...]]:
        return {"pair": ("pair", address, login), "address": ("address", address),
                "login": ("login", login)}

    def _count(self, key: tuple[str, ...], now: float) -> tuple[int, float]:
        found = self._failures.get(key)
        if found is None:
            return 0, now
        if now - found[1] > self.forget_after:
            del self._failures[key]
            return 0, now
        return found

    def _set(self, key: tuple[str, ...], failures: int, at: float) -> None:
        if failures <= 0:
            self._failures.pop(key, None)
            return
        self._failures[key] = (failures, at)
        self._failures.move_to_end(key)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)

    def attempt(self, address: str, login: str) -> Verdict:
        """May ``address`` try ``login`` now? If so the attempt counts as a failure until
        :meth:`succeeded` says otherwise."""
        now = self.clock()
        keys = self._keys(address, login)
        with self._lock:
            counts = {name: self._count(key, now) for name, key in keys.items()}
            waits = [last + self.rules[name].wait_after(n) - now
                     for name, (n, last) in counts.items() if name != "login" and n]
            wait = max(waits, default=0.0)
            if wait > 0:
                return Verdict(wait=max(1, math.ceil(wait)), delay=0.0)
            n, _ = counts["login"]
            delay = self.rules["login"].wait_after(n) if n else 0.0
            for name, key in keys.items():
                self._set(key, counts[name][0] + 1, now)
        return Verdict(wait=0, delay=delay)

    def succeeded(self, address: str, login: str) -> None:
        """The password was right: the pair and the login start afresh, and this attempt no
        longer counts against the address (its earlier failures still do)."""
        keys = self._keys(address, login)
        now = self.clock()
        with self._lock:
            self._failures.pop(keys["pair"], None)
            self._failures.pop(keys["login"], None)
            n, last = self._count(keys["address"], now)
            self._set(keys["address"], n - 1, last)
