"""A refresh process factory: imports the hook once, then forks one process per refresh.

Usage: refresh_worker.py DATA_DIR. Reads one JSON command per line on stdin:
``{"name", "from", "mode", "time_column", "duckdb_file"}``. For each it forks a child that runs
``DuckDBAcceleratorHook(data_dir=DATA_DIR).refresh(dataset, mode=...)`` and prints ``@@ pid <pid>``
at once, then ``@@ exit <code or -signal> <seconds>`` when the child is gone. The parent test kills the
child (the refreshing process itself) with SIGKILL at a random moment; forking after the imports keeps
each trial at a few milliseconds of start-up instead of seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.spicepod.model import Acceleration, Dataset, RefreshMode


def dataset_from(command: dict) -> Dataset:
    params = {"duckdb_file": command["duckdb_file"]} if command.get("duckdb_file") else {}
    return Dataset(
        from_=command["from"],
        name=command["name"],
        params={"file_format": "parquet"},
        time_column=command.get("time_column"),
        acceleration=Acceleration(refresh_mode=RefreshMode(command["mode"]), params=params),
    )


def main() -> None:
    data_dir = sys.argv[1]
    print("@@ ready", flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        dataset = dataset_from(command)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                DuckDBAcceleratorHook(data_dir=data_dir, lock_timeout=30).refresh(
                    dataset, mode=RefreshMode(command["mode"])
                )
            except BaseException as err:  # reported, the parent decides
                print(f"error {type(err).__name__}: {err}", file=sys.stderr, flush=True)
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        print(f"@@ pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        print(f"@@ exit {code} {time.monotonic() - started:.4f}", flush=True)


if __name__ == "__main__":
    main()
