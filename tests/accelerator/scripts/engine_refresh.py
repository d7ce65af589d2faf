"""Refreshes on an engine, each in a child forked from this process (the SIGKILL tests kill it midway).

One start-up (Python, the provider, the engines' drivers) serves every trial: each line on stdin is
a JSON list ``[ENGINE, DATA_DIR, PARQUET, MODE, PG_SCHEMA or null]``; a forked child prints
``start <pid>`` and refreshes. ``reap <pid>`` on stdin waits for that child and prints
``exit <pid> <code>`` (``-9`` when a SIGKILL ended it). Until it is reaped, a finished child stays a
zombie, so a kill that comes late can only hit the child it was meant for.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for the shared builders

from accelerator._helpers import make_dataset
from accelerator.engines import EngineUnderTest

from airflow_provider_accel.spicepod.model import RefreshMode


def refresh(engine_name: str, data_dir: str, parquet: str, mode: str, schema: str | None) -> None:
    engine = EngineUnderTest(engine_name, Path(data_dir), pg_schema=schema)
    dataset = engine.on(make_dataset("ids", parquet, mode=RefreshMode(mode)))
    print(f"start {os.getpid()}", flush=True)
    result = engine.hook(dataset).refresh(dataset)
    print(f"done {result.total_rows}", flush=True)


for line in sys.stdin:
    if line.startswith("reap "):
        pid = int(line.split()[1])
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {os.waitstatus_to_exitcode(status)}", flush=True)
        continue
    args = json.loads(line)
    if os.fork() == 0:  # the child: one refresh, then out without the parent's exit handlers
        code = 0
        try:
            refresh(*args)
        except BaseException as err:
            print(f"failed {type(err).__name__}: {err}", flush=True)
            code = 1
        os._exit(code)
