"""SIGKILL during full refreshes and appends: the data is the before or the after state (sqlite, postgres)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_accel.spicepod.model import RefreshMode

from ._helpers import make_dataset, script, write_parquet
from .engines import EngineUnderTest, engine_under_test

pytestmark = [pytest.mark.processes, pytest.mark.slow]
KILLS = 20  # kills that must land mid-refresh, per engine
BASE, STEP = 50_000, 100_000


def _ids(first: int, count: int) -> pa.Table:
    return pa.table({"id": pa.array(range(first, first + count), pa.int64()), "pad": ["y" * 30] * count})


class RefreshForks:
    """``scripts/engine_refresh.py``: one process that forks a child per refresh, to be killed."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] = script("engine_refresh.py", stdin=subprocess.PIPE)

    def _send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def _line(self, prefix: str) -> list[str]:
        """The next stdout line that starts with ``prefix`` (a child's other lines are logs), split."""
        assert self.proc.stdout is not None
        seen = []
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line.split()
            seen.append(line)
        raise AssertionError(f"engine_refresh.py ended before {prefix!r}: {''.join(seen)}")

    def start(self, *args: str | None) -> int:
        """Fork a child that refreshes with ``args``; its pid, once it says it starts."""
        self._send(json.dumps(list(args)))
        return int(self._line("start ")[1])

    def exit_code(self, pid: int) -> int:
        """Reap the child: its exit code, ``-9`` if a SIGKILL ended it."""
        self._send(f"reap {pid}")
        return int(self._line(f"exit {pid} ")[2])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture
def forks() -> Iterator[RefreshForks]:
    server = RefreshForks()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", "postgres"])
def killed_engine(request: pytest.FixtureRequest, data_dir: Path) -> EngineUnderTest:
    with engine_under_test(request.param, data_dir) as under_test:
        yield under_test  # type: ignore[misc]


def test_kill_mid_refresh_leaves_before_or_after(
    killed_engine: EngineUnderTest, src: Path, forks: RefreshForks
) -> None:
    """20 kills mid full refresh or append: rows are before or after, the next refresh clean, no leftovers."""
    engine = killed_engine
    rng = random.Random(13)
    path = write_parquet(src / "ids.parquet", _ids(1, BASE))
    dataset = engine.on(make_dataset("ids", path))
    engine.hook(dataset).refresh(dataset)
    landed = trials = 0
    while landed < KILLS and trials < KILLS * 4:
        trials += 1
        mode = rng.choice([RefreshMode.FULL, RefreshMode.APPEND])
        before = engine.rows(dataset, "count(*), max(id)")[0]
        incoming = _ids(1, BASE + STEP) if mode is RefreshMode.FULL else _ids(int(before[1]) + 1, STEP)
        write_parquet(path, incoming)
        after = (
            (BASE + STEP, BASE + STEP) if mode is RefreshMode.FULL else (before[0] + STEP, before[1] + STEP)
        )
        pid = forks.start(engine.name, str(engine.data_dir), str(path), mode.value, engine.pg_schema)
        time.sleep(rng.uniform(0.0, 1.5))
        os.kill(pid, signal.SIGKILL)  # unreaped, a finished child is a zombie: the kill is harmless
        code = forks.exit_code(pid)
        assert code in (0, -signal.SIGKILL), f"trial {trials}: the refresh failed on its own ({code})"
        landed += code == -signal.SIGKILL
        state = engine.rows(dataset, "count(*), max(id)")[0]
        assert tuple(state) in (tuple(before), after), f"trial {trials} ({mode.value}): {state}"
        if state == tuple(before) and mode is RefreshMode.FULL:
            write_parquet(path, _ids(1, BASE))  # keep the table small for the next trial
            engine.hook(dataset).refresh(dataset)
    assert landed == KILLS, f"only {landed} of {trials} kills landed mid-refresh"
    write_parquet(path, _ids(1, BASE))
    assert engine.hook(dataset).refresh(dataset).total_rows == BASE
    assert engine.staging_leftovers(dataset) == []
