"""Spice's retry policy: transient errors back off in Fibonacci steps, terminal errors fail at once."""

from __future__ import annotations

import pytest
from airflow.sdk import RetryAction

from airflow_provider_accel.exceptions import (
    RefreshSqlError,
    SourceLockedError,
    SpicepodError,
    TerminalRefreshError,
    TransientRefreshError,
)
from airflow_provider_accel.operators.retry import SpiceRetryPolicy, fibonacci_delay, retries_for


class TestBackoff:
    def test_fibonacci_sequence_capped_at_300s(self) -> None:
        """Delays before retries 1..15 are 1,1,2,3,5,8,... and never exceed 300 s."""
        assert [fibonacci_delay(n) for n in range(1, 11)] == [1, 1, 2, 3, 5, 8, 13, 21, 34, 55]
        assert fibonacci_delay(15) == 300 and fibonacci_delay(100) == 300

    @pytest.mark.parametrize("try_number", [1, 4, 8, 30])
    def test_delay_is_randomised_within_30_percent(self, try_number: int) -> None:
        """Each decision's delay lies within ±30% of the Fibonacci step."""
        policy = SpiceRetryPolicy()
        base = fibonacci_delay(try_number)
        delays = [
            policy.evaluate(TransientRefreshError("x"), try_number, 10).retry_delay.total_seconds()
            for _ in range(200)
        ]
        assert all(0.7 * base <= d <= 1.3 * base for d in delays)
        assert len({round(d, 6) for d in delays}) > 1


class TestClassification:
    @pytest.mark.parametrize(
        "error",
        [
            TransientRefreshError("down"),
            SourceLockedError("locked"),
            ConnectionRefusedError(),
            TimeoutError(),
        ],
    )
    def test_transient_errors_are_retried(self, error: BaseException) -> None:
        """Connection refused, timeouts and locked files are retried."""
        assert SpiceRetryPolicy().evaluate(error, 1, 3).action == RetryAction.RETRY

    @pytest.mark.parametrize(
        "error",
        [TerminalRefreshError("bad sql"), RefreshSqlError("no"), SpicepodError("bad"), KeyError("bug")],
    )
    def test_everything_else_fails_at_once(self, error: BaseException) -> None:
        """Terminal and unclassified errors are not retried."""
        assert SpiceRetryPolicy().evaluate(error, 1, 3).action == RetryAction.FAIL

    def test_retries_for_spicepod_settings(self) -> None:
        """max_attempts N means N-1 Airflow retries; disabled means 0."""
        assert retries_for(True, 1) == 0 and retries_for(True, 5) == 4 and retries_for(False, 5) == 0
