"""Where the test servers are, and the skip-or-fail rule for tests that need one.

Importable from any test module as ``servers`` (``tests/`` is on pytest's ``pythonpath``).
"""

from __future__ import annotations

import os
import socket

import pytest

PG_HOST = os.environ.get("ACCEL_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("ACCEL_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("ACCEL_TEST_PG_USER", "postgres")
MYSQL_HOST = os.environ.get("ACCEL_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("ACCEL_TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("ACCEL_TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("ACCEL_TEST_MYSQL_PASSWORD", "")
REDIS_HOST = os.environ.get("ACCEL_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("ACCEL_TEST_REDIS_PORT", "6379"))


def services_required() -> bool:
    """True in CI: a missing server fails the test instead of skipping it."""
    return os.environ.get("ACCEL_REQUIRE_SERVICES", "").lower() in ("1", "true", "yes")


def require_server(name: str, host: str, port: int) -> None:
    """Skip (laptop) or fail (CI) unless a TCP server answers at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as err:
        reason = (
            f"!!! {name} is not reachable at {host}:{port} ({err}); this test needs it. "
            f"Start {name} or point the ACCEL_TEST_* variables at one."
        )
        if services_required():
            pytest.fail(reason)
        pytest.skip(reason)
