"""A ClickBench-like wide table: 105 columns, most of them strings, generated locally and deterministically.

ClickBench's ``hits`` table (105 columns: URLs, titles, user agents, many small integer codes,
timestamps) is the reference load of a wide, string-heavy table. This is a stand-in of the same shape,
written by DuckDB from ``range()`` with hash-derived values (no randomness, no download), as 20
Parquet files. The full refresh is measured against DuckDB's fastest equivalent statement with the
same settings as the accelerator's connection (``CREATE TABLE ... AS SELECT * FROM read_parquet``
with ``preserve_insertion_order`` off), interleaved in the same run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

FILES = 20
#: (count, SQL template over ``i`` and the column index ``k``): 105 columns in all, as ClickBench.
_STRINGS = 45  # URL-, title- and agent-like strings of varied length and cardinality
_INTS = 45  # small codes and counters
_BIGINTS = 8
_DOUBLES = 4
_TIMESTAMPS = 3


def _columns() -> list[str]:
    cols = ["i AS WatchID"]
    for k in range(_STRINGS):
        card = 10 ** (1 + k % 6)  # 10 .. 1,000,000 distinct values
        if k % 3 == 0:
            expr = (
                f"'https://example.com/p/' || (hash(i, {k}) % {card}) || '?q=' || (hash(i, {k} + 1000) % 97)"
            )
        elif k % 3 == 1:
            expr = f"'title ' || (hash(i, {k}) % {card}) || repeat('x', (hash(i, {k} + 2000) % 40)::INT)"
        else:
            expr = f"'v' || (hash(i, {k}) % {card})"
        cols.append(f"CASE WHEN hash(i, {k} + 3000) % 50 = 0 THEN NULL ELSE {expr} END AS s{k:02d}")
    for k in range(_INTS):
        cols.append(f"(hash(i, {100 + k}) % {2 + k * 7})::INTEGER AS n{k:02d}")
    for k in range(_BIGINTS):
        cols.append(f"(hash(i, {200 + k}) >> 2)::BIGINT AS b{k}")
    for k in range(_DOUBLES):
        cols.append(f"(hash(i, {300 + k}) % 1000000) / 100.0 AS d{k}")
    for k in range(_TIMESTAMPS):
        cols.append(f"TIMESTAMP '2013-07-01' + to_seconds((i * 3 + {k})::BIGINT) AS t{k}")
    return cols


def wide_data(work: Path, rows: int) -> str:
    """The glob of the wide table at ``rows`` rows (written once per work directory)."""
    import duckdb

    root = work / f"wide_{rows}"
    done = root / ".complete"
    if not done.exists():
        root.mkdir(parents=True, exist_ok=True)
        select = ", ".join(_columns())
        con = duckdb.connect()
        try:
            per_file = -(-rows // FILES)
            for f in range(FILES):
                lo, hi = f * per_file, min(rows, (f + 1) * per_file)
                if lo >= hi:
                    break
                con.execute(
                    f"COPY (SELECT {select} FROM range({lo}, {hi}) r(i)) "
                    f"TO '{root / f'part-{f:02d}.parquet'}' (FORMAT parquet, ROW_GROUP_SIZE 122880)"
                )
        finally:
            con.close()
        done.write_text("ok\n")
    return str(root / "*.parquet")


def column_count() -> int:
    return len(_columns())


def interleaved(work: Path, rows: int, reps: int, log: Any) -> dict[str, Any]:
    """Ours against DuckDB's CTAS with the accelerator's settings, on the wide table, interleaved."""
    from bench import refresh

    source = wide_data(work, rows)
    result = refresh.interleaved_full(
        source,
        work / "wide_full",
        reps,
        contenders=("ours", "duckdb_ctas_unordered"),
        name="hits",
        time_column=None,
        warmup=source if rows <= 100_000 else None,
        log=log,
    )
    ours = result["median_s"]["ours"]
    cores = os.cpu_count() or 1
    result.update(
        {
            "table_rows": rows,
            "columns": column_count(),
            "cores": cores,
            "rows_per_s_per_core": round(rows / ours / cores, 1) if ours else None,
        }
    )
    return result
