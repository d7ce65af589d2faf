"""Starting and stopping real Airflow processes (end-to-end tests, the deployment test, benchmarks).

Each process runs ``airflow <args>`` in its own process group (so that stopping it also stops its
children: uvicorn workers, executor and task processes, Celery pool processes), with its output in
``<home>/<name>.log``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import httpx

AIRFLOW_BIN = Path(sys.executable).with_name("airflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_airflow(
    log_dir: Path, name: str, args: Iterable[str], env: Mapping[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    """``airflow *args`` in a new session, stdout and stderr to ``log_dir/<name>.log``."""
    log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 -- owned by the process
    return subprocess.Popen(
        [str(AIRFLOW_BIN), *args],
        env=dict(env),
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stop_process_groups() kills it with its children
    )


def stop_process_groups(processes: Iterable[subprocess.Popen[bytes]], grace: float = 30.0) -> None:
    """SIGTERM each process group, wait up to ``grace`` seconds in all, then SIGKILL what is left."""
    processes = list(processes)
    for proc in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        # Children (uvicorn workers, executor, task and pool processes) may outlive the leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def log_tail(log_dir: Path, names: Iterable[str], lines: int = 60) -> str:
    """The last ``lines`` lines of each process's log."""
    out = []
    for name in names:
        log = log_dir / f"{name}.log"
        if log.exists():
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"----- {name} -----\n" + "\n".join(tail))
    return "\n".join(out)


def wait_healthy(
    base_url: str,
    processes: Mapping[str, subprocess.Popen[bytes]],
    timeout: float,
    describe: object = "",
    components: Iterable[str] = ("metadatabase", "scheduler", "dag_processor", "triggerer"),
) -> None:
    """Poll ``/api/v2/monitor/health`` until every component is healthy; fail early if a process exits.

    ``describe`` is called (if callable) for the failure message, e.g. to add the logs' tails.
    """
    components = tuple(components)
    deadline = time.monotonic() + timeout
    last = ""

    def details() -> str:
        return str(describe() if callable(describe) else describe)

    while time.monotonic() < deadline:
        for name, proc in processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}\n{details()}")
        try:
            response = httpx.get(f"{base_url}/api/v2/monitor/health", timeout=5)
            last = response.text
            health = response.json()
            if all(health.get(component, {}).get("status") == "healthy" for component in components):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    raise RuntimeError(f"Airflow not healthy after {timeout}s: {last}\n{details()}")
