"""Read a table in a loop until stopped; print one line per read: ``ok``, ``torn ...``, ``error ...``.

A complete snapshot here has ids 1..n with n a multiple of 1000 (every write sets or adds 1000s).
Usage: engine_reader.py ENGINE TARGET TABLE STOPFILE, TARGET a file path or a libpq URI; TABLE quoted.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from pathlib import Path

engine, target, table, stop = sys.argv[1:5]
query = f"SELECT count(*), min(id), max(id), count(DISTINCT id) FROM {table}"


def read() -> tuple[int, int, int, int] | None:
    if engine == "sqlite":
        if not Path(target).exists():
            return None
        with contextlib.closing(sqlite3.connect(target, timeout=5)) as con:
            return con.execute(query).fetchone()  # type: ignore[no-any-return]
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(target) as con, con.cursor() as cur:
        cur.execute(query)
        return tuple(cur.fetchone())  # type: ignore[return-value]


print("ready", flush=True)
while not Path(stop).exists():
    try:
        row = read()
    except Exception as err:
        print(f"error {type(err).__name__}: {err}".replace("\n", " "), flush=True)
        time.sleep(0.01)
        continue
    if row is None:
        continue
    count, low, high, distinct = row
    whole = count % 1000 == 0 and count == distinct and (count == 0 or (low == 1 and high == count))
    print("ok" if whole else f"torn {row}", flush=True)
