"""Read a dataset's DuckDB file in a loop until a stop file appears; report what was seen.

Usage: reader_loop.py PATH TABLE raw|helper STOP_FILE OUT_FILE

``helper`` reads with :func:`airflow_provider_accel.accelerator.reader.read_dataset` (the documented
way); ``raw`` opens the file read-only with plain ``duckdb.connect`` and no retry, so the errors a
reader can meet are recorded, each with whether the project documents it as retryable
(:func:`~airflow_provider_accel.accelerator.reader.is_lock_conflict`). Each observation is
``[row count, sum(v)]``. Prints ``ready`` once the first read was attempted. OUT_FILE gets
``{"observations": [...], "errors": [{"error": "Type: text", "retryable": bool}, ...]}``.

Used by tests/accelerator/test_atomicity.py and tests/reliability/test_readers_during_writes.py.
"""

from __future__ import annotations

import json
import os
import sys
import time

import duckdb

from airflow_provider_accel.accelerator.reader import is_lock_conflict, read_dataset


def main() -> None:
    path, table, how, stop_file, out_file = sys.argv[1:6]
    query = f'SELECT count(*) AS n, coalesce(sum(v), 0) AS s FROM "{table}"'
    observations: list[list[int]] = []
    errors: list[dict[str, object]] = []
    ready = False
    while not os.path.exists(stop_file):
        try:
            if how == "raw":
                con = duckdb.connect(path, read_only=True)
                try:
                    n, s = con.execute(query).fetchone()  # type: ignore[misc]
                finally:
                    con.close()
            else:
                row = read_dataset(path, query).to_pylist()[0]
                n, s = row["n"], row["s"]
            observations.append([int(n), int(s)])
        except Exception as err:
            errors.append({"error": f"{type(err).__name__}: {err}", "retryable": is_lock_conflict(err)})
            time.sleep(0.001)
        if not ready:
            print("ready", flush=True)
            ready = True
    with open(out_file, "w") as out:
        json.dump({"observations": observations, "errors": errors}, out)


if __name__ == "__main__":
    main()
