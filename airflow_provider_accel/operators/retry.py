"""Spice's retry policy as an Airflow ``RetryPolicy``: the exception's type decides.

Transient failures (:class:`~airflow_provider_accel.exceptions.TransientRefreshError`, plus the
standard library's connection and timeout errors) are retried with Fibonacci backoff — 1, 1, 2, 3,
5, 8, ... seconds, capped at 300 s, randomised by ±30% — up to the task's ``retries``; everything
else fails the task at once, because trying again cannot help.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import RetryDecision, RetryPolicy

from airflow_provider_accel.exceptions import TransientRefreshError

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

#: Airflow needs a number where Spice allows "unlimited" retries (refresh_retry_max_attempts unset).
UNLIMITED_RETRIES = 10_000

TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (TransientRefreshError, ConnectionError, TimeoutError)


def fibonacci_delay(attempt: int, *, cap_seconds: float = 300.0) -> float:
    """The un-randomised backoff before retry number ``attempt`` (1-based): 1, 1, 2, 3, 5, ..."""
    previous, current = 0, 1
    for _ in range(max(attempt, 1) - 1):
        previous, current = current, previous + current
        if current >= cap_seconds:
            return cap_seconds
    return float(min(current, cap_seconds))


def retries_for(enabled: bool, max_attempts: int | None) -> int:
    """Airflow ``retries`` for Spice's ``refresh_retry_enabled`` / ``refresh_retry_max_attempts``."""
    if not enabled:
        return 0
    if max_attempts is None:
        return UNLIMITED_RETRIES
    return max(max_attempts - 1, 0)


class SpiceRetryPolicy(RetryPolicy):
    """Retry transient refresh failures with Fibonacci backoff; fail terminal ones at once."""

    def __init__(self, cap_seconds: float = 300.0, spread: float = 0.3) -> None:
        self.cap_seconds = cap_seconds
        self.spread = spread

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Context | None = None,
    ) -> RetryDecision:
        if isinstance(exception, TRANSIENT_EXCEPTIONS):
            base = fibonacci_delay(try_number, cap_seconds=self.cap_seconds)
            delay = base * random.uniform(1 - self.spread, 1 + self.spread)
            return RetryDecision.retry(
                delay=timedelta(seconds=delay),
                reason=f"Transient failure, retrying in {delay:.1f}s: {exception}",
            )
        return RetryDecision.fail(reason=f"Terminal failure ({type(exception).__name__}), not retried.")

    def serialize(self) -> dict[str, Any]:
        return {"__type": "SpiceRetryPolicy", "cap_seconds": self.cap_seconds, "spread": self.spread}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> SpiceRetryPolicy:
        return cls(cap_seconds=data.get("cap_seconds", 300.0), spread=data.get("spread", 0.3))
