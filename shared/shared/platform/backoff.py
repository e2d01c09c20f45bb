"""Exponential back-off, the one schedule every retry loop of the system uses."""

from __future__ import annotations

import random


def exponential_backoff(attempt: int, *, base: float, cap: float, jitter: bool = False) -> float:
    """Seconds to wait after the `attempt`-th consecutive failure (counting from 1).

    `base * 2**(attempt-1)`, never more than `cap`. With `jitter` the wait is drawn from its
    upper half, so replicas that failed together do not retry in lockstep.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    # Bound the exponent: a huge attempt count must not overflow the float.
    seconds = min(cap, base * 2.0 ** min(attempt - 1, 62))
    if jitter:
        seconds *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
    return seconds
