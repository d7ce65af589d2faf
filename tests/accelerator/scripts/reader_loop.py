"""Read a dataset's DuckDB file in a loop until a stop file appears; report what was seen.

Usage: reader_loop.py PATH TABLE raw|helper STOP_FILE OUT_FILE

``raw`` opens the file read-only with plain ``duckdb.connect`` (no retry: any error is recorded);
``helper`` uses :func:`airflow_provider_accel.accelerator.reader.read_dataset`. Each observation is
``[row count, sum(v)]``; errors are recorded as strings. Prints ``ready`` once the loop has started.
"""

from __future__ import annotations

import json
import os
import sys
import time

import duckdb


def main() -> None:
    path, table, how, stop_file, out_file = sys.argv[1:6]
    query = f'SELECT count(*) AS n, sum(v) AS s FROM "{table}"'
    if how == "helper":
        from airflow_provider_accel.accelerator.reader import read_dataset
    observations: list[list[int]] = []
    errors: list[str] = []
    print("ready", flush=True)
    while not os.path.exists(stop_file):
        try:
            if how == "raw":
                con = duckdb.connect(path, read_only=True)
                try:
                    n, s = con.execute(query).fetchone()  # type: ignore[misc]
                finally:
                    con.close()
            else:
                result = read_dataset(path, query).to_pylist()[0]
                n, s = result["n"], result["s"]
            observations.append([int(n), int(s) if s is not None else 0])
        except Exception as err:
            errors.append(f"{type(err).__name__}: {err}")
            time.sleep(0.001)
    with open(out_file, "w") as out:
        json.dump({"observations": observations, "errors": errors}, out)


if __name__ == "__main__":
    main()
