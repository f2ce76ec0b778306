"""Rate limits per API key: a token bucket counted in events (a batch of 1000 costs 1000).

The buckets live in the memory of one ingest instance: behind a load balancer spreading a
key's requests over N instances the key gets up to N times the rate. That is acceptable for
its purpose (stop one runaway controller or script from starving the others on an
instance); a global limit would need a shared store on every request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``rate`` events per second sustained, up to ``burst`` at once, per key."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, cost: int) -> float:
        """Spend ``cost`` tokens and return 0, or spend nothing and return seconds to wait.

        A cost above the burst is charged as the burst, so no request is refused forever.
        """
        now = self._clock()
        cost = min(cost, self.burst)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate


def retry_after(wait: float) -> str:
    """A ``Retry-After`` value in whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))
