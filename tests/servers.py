"""Where the test servers are, and the skip-or-fail rule for tests that need one.

Importable from any test module as ``servers`` (``tests/`` is on pytest's ``pythonpath``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

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


@dataclass
class MotoS3:
    """A moto S3 server in its own process (``start_moto``), with the fixed test credentials."""

    endpoint: str
    process: subprocess.Popen[bytes]

    def params(self) -> dict[str, Any]:
        """The spicepod ``params`` that reach this server."""
        return {"s3_endpoint": self.endpoint, "s3_key": "k", "s3_secret": "s", "s3_region": "us-east-1"}

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="k",
            aws_secret_access_key="s",
            region_name="us-east-1",
        )

    def new_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name unless given) and return its name."""
        name = name or f"test-{uuid.uuid4().hex[:8]}"
        self.client().create_bucket(Bucket=name)
        return name


def start_moto() -> MotoS3:
    """Start a moto S3 server on a free local port.

    In its own process: in this one, Arrow's S3 client (called by DuckDB with the GIL held) and a
    threaded Python server would wait on each other. Most tests share the session's ``moto_s3``
    fixture; a test that kills the server starts its own.
    """
    pytest.importorskip("moto")
    from airflow_provider_accel.testing import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return MotoS3(f"http://127.0.0.1:{port}", process)
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("the moto S3 server did not start")
            time.sleep(0.1)


def stop_moto(server: MotoS3) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        server.process.wait(timeout=10)
