"""Source data of the durability tests, written by DuckDB itself (fast, and incompressible enough)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb

T0 = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


def write_events(path: Path, first_id: int, rows: int, *, day: int = 0) -> Path:
    """``rows`` events with ids from ``first_id``: an id, a timestamp (one per second from ``day``),
    and a 32-character md5 payload that DuckDB cannot compress much."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'").fetchall()
        con.execute(
            f"COPY (SELECT i AS id, TIMESTAMP '2024-06-01' + INTERVAL ({day}) DAY "
            f"+ to_seconds(i - {first_id}) AS ts, md5(i::VARCHAR) AS payload "
            f"FROM range({first_id}, {first_id + rows}) t(i)) "
            f"TO '{path}' (FORMAT parquet)"
        ).fetchall()
    finally:
        con.close()
    return path


def fill_disk(mount: Path, leave_bytes: int) -> Path:
    """Fill the file system at ``mount`` with a filler file until only ``leave_bytes`` are free."""
    filler = mount / "filler.bin"
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    with filler.open("ab") as out:
        remaining = max(0, free - leave_bytes)
        chunk = b"\0" * (1024 * 1024)
        while remaining > 0:
            out.write(chunk[: min(len(chunk), remaining)])
            remaining -= min(len(chunk), remaining)
    return filler


def files_under(directory: Path) -> set[str]:
    """Every regular file under ``directory`` (relative names), the filler excepted."""
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()} - {"filler.bin"}
