"""A moto S3 server for the snapshot tests, in its own process as in tests/sources/test_remote_files.py."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_accel.testing import free_port


@dataclass
class MotoS3:
    endpoint: str
    process: subprocess.Popen[bytes]

    def params(self) -> dict[str, Any]:
        return {"s3_endpoint": self.endpoint, "s3_key": "k", "s3_secret": "s", "s3_region": "us-east-1"}

    def new_bucket(self) -> str:
        import boto3

        name = f"snaps-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="k",
            aws_secret_access_key="s",
            region_name="us-east-1",
        ).create_bucket(Bucket=name)
        return name


def start_moto() -> MotoS3:
    pytest.importorskip("moto")
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


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    server = start_moto()
    try:
        yield server
    finally:
        stop_moto(server)
