"""How long to wait after the n-th failure in a row, with jitter.

Shared by the scheduler (a failing job) and the integration runner (a setup that raised
``IntegrationNotReady``) so that both retry the same way: exponential growth so a broken
channel is not hammered, a cap so recovery is noticed within a bounded time, and jitter so
that twelve integrations failing together do not retry in lockstep (Home Assistant's
``config_entries`` retry, hypercorn's ``max_requests_jitter``).

Randomness comes from a ``random.Random`` the caller owns, so tests can seed it or pass
``jitter=0`` and assert exact due times.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

#: doublings beyond this change nothing once capped, and would overflow a float
_MAX_EXPONENT = 64


def jittered(value: float, fraction: float, rng: random.Random) -> float:
    """``value`` spread uniformly over ``value * (1 ± fraction)``.

    :raises ValueError: ``fraction`` outside ``[0, 1)`` — 1 or more could give zero or
        negative waits, i.e. a busy loop.
    """
    _check_fraction(fraction, "jitter")
    if fraction == 0:
        return value
    return value * (1.0 + rng.uniform(-fraction, fraction))


@dataclass(frozen=True, slots=True)
class Backoff:
    """``min(cap, base * 2**(failures-1))`` seconds, then jittered by ``± jitter``.

    With the defaults: 30, 60, 120, 240, 480, 960, 1800, 1800, ... seconds.
    """

    base: float = 30.0
    cap: float = 1800.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base) and self.base > 0):
            raise ValueError(f"backoff base must be a positive number of seconds, got {self.base!r}")
        if not (math.isfinite(self.cap) and self.cap >= self.base):
            raise ValueError(
                f"backoff cap must be at least the base ({self.base!r} s), got {self.cap!r}"
            )
        _check_fraction(self.jitter, "backoff jitter")

    def raw_delay(self, failures: int) -> float:
        """The delay before jitter: what the sequence 30, 60, 120, ... is made of."""
        if failures < 1:
            raise ValueError(f"backoff needs at least one failure, got failures={failures!r}")
        return min(self.cap, self.base * 2.0 ** min(failures - 1, _MAX_EXPONENT))

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after ``failures`` consecutive failures."""
        return jittered(self.raw_delay(failures), self.jitter, rng)


def _check_fraction(fraction: float, what: str) -> None:
    if not (0.0 <= fraction < 1.0):
        raise ValueError(f"{what} must be a fraction in [0, 1), got {fraction!r}")
