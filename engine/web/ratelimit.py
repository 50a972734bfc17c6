"""How often one client may use a public page (the verification page ``/v/…``): a token bucket
per client address, in this process's memory.

Unlike the sign-in throttle (:mod:`.throttle`), which counts failed guesses in the store so that
every process sees them, this limits plain use: the page has no password to guess (its short
hash is 64 bits), but each look-up reads the register and each upload is hashed, so one
address gets ``burst`` requests at once and then ``per_minute`` a minute. Kept in memory: a
limit per process is enough against a flood, and costs the store no write per request.
Bounded: beyond ``capacity`` addresses, the one seen longest ago is forgotten.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable


class RateLimit:
    """``burst`` requests at once, refilled at ``per_minute`` a minute, per key."""

    def __init__(self, per_minute: float, burst: int, *,
                 clock: Callable[[], float] = time.monotonic, capacity: int = 10_000) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be positive and burst at least 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self.capacity = capacity
        self._buckets: "OrderedDict[str, tuple[float, float]]" = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> int:
        """0 if ``key`` may go on now (and one request is counted), else the seconds to wait
        (nothing counted)."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                tokens -= 1
                wait = 0
            else:
                wait = max(1, math.ceil((1 - tokens) / self.rate))
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.capacity:
                self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(frozen=True)
class PublicLimits:
    """The verification page's limits: look-ups, and uploads to compare (fewer: each is read
    whole and hashed)."""

    views: RateLimit
    uploads: RateLimit

    @classmethod
    def default(cls) -> "PublicLimits":
        return cls(views=RateLimit(per_minute=30, burst=20), uploads=RateLimit(per_minute=6, burst=3))
