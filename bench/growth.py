"""File growth under repeated refreshes (issue #15): 200 appends of 1% with retention, 200 full refreshes.

Each run records the file's size against its rows and compares the final size with a fresh full
load of the same rows (``file_growth_appends``: appends + retention on a dataset's own file;
``file_growth_full``: full refreshes on a file shared with a second dataset, the in-place path).
Compaction policy: a file written in place is rewritten when more than 1/4 of its blocks are free
(``hook.COMPACT_FREE_FRACTION``); a dataset alone in its file is replaced whole by a full refresh.

    python -m bench.growth [--rows 100000] [--runs 200] [--out docs/benchmarks/growth.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb


def _write(path: Path, first: int, rows: int) -> None:
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT i AS id, TIMESTAMP '2024-01-01' + to_seconds(i * 60) AS ts, "
        f"md5(i::VARCHAR) AS payload FROM range({first}, {first + rows}) t(i)) TO '{path}' (FORMAT parquet)"
    ).fetchall()
    con.close()


def _fresh_size(src: Path, work: Path, rows: int) -> int:
    from airflow_provider_accel.spicepod.model import Acceleration, Dataset
    from bench.refresh import hook

    fresh = work / "fresh"
    dataset = Dataset(
        from_=f"file:{src}", name="fresh", params={"file_format": "parquet"}, acceleration=Acceleration()
    )
    hook(fresh).refresh(dataset)
    size = (fresh / "fresh.duckdb").stat().st_size
    shutil.rmtree(fresh)
    return size


def appends_with_retention(work: Path, rows: int, runs: int) -> dict[str, Any]:
    """``runs`` appends of 1% each, every one followed by a retention run dropping the oldest 1%."""
    from airflow_provider_accel.spicepod.model import Acceleration, Dataset, RefreshMode, TimeFormat
    from bench.refresh import hook

    src = work / "src_append"
    src.mkdir(parents=True)
    _write(src / "base.parquet", 0, rows)
    step = max(1, rows // 100)
    acc = Acceleration(
        refresh_mode=RefreshMode.APPEND,
        retention_check_enabled=True,
        retention_period=dt.timedelta(minutes=rows),
    )  # keeps the latest `rows` minutes
    dataset = Dataset(
        from_=f"file:{src}",
        name="events",
        params={"file_format": "parquet"},
        time_column="ts",
        time_format=TimeFormat.TIMESTAMP,
        acceleration=acc,
    )
    h = hook(work / "data_append")
    h.refresh(dataset)
    sizes = []
    for n in range(runs):
        first = rows + n * step
        _write(src / f"drop-{n:04d}.parquet", first, step)
        h.refresh(dataset)
        newest = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=first + step - 1)
        result = h.apply_retention(dataset, now=newest + dt.timedelta(minutes=1))
        sizes.append(
            {"run": n + 1, "rows": result.total_rows, "bytes": h.dataset_path(dataset).stat().st_size}
        )
    # The same rows, loaded fresh.
    con = duckdb.connect(str(h.dataset_path(dataset)), read_only=True)
    snap = work / "snap_append"
    snap.mkdir()
    con.execute(f"COPY events TO '{snap / 'rows.parquet'}' (FORMAT parquet)").fetchall()
    con.close()
    fresh = _fresh_size(snap, work, sizes[-1]["rows"])
    return {
        "runs": runs,
        "rows": rows,
        "series": sizes,
        "fresh_bytes": fresh,
        "ratio": round(sizes[-1]["bytes"] / fresh, 3),
    }


def full_refreshes_shared(work: Path, rows: int, runs: int) -> dict[str, Any]:
    """``runs`` full refreshes of a dataset sharing its file with another (in place, then compacted)."""
    from airflow_provider_accel.spicepod.model import Acceleration, Dataset
    from bench.refresh import hook

    src, other_src = work / "src_full", work / "src_other"
    src.mkdir(parents=True)
    other_src.mkdir()
    _write(other_src / "o.parquet", 0, max(1, rows // 10))
    shared = str(work / "data_full" / "shared.duckdb")
    acc = Acceleration(params={"duckdb_file": shared})
    main = Dataset(from_=f"file:{src}", name="events", params={"file_format": "parquet"}, acceleration=acc)
    other = Dataset(
        from_=f"file:{other_src}", name="other", params={"file_format": "parquet"}, acceleration=acc
    )
    h = hook(work / "data_full")
    h.refresh(other)
    sizes = []
    for n in range(runs):
        for old in src.glob("*.parquet"):
            old.unlink()
        _write(src / "snap.parquet", n, rows)  # a new snapshot of the same size each time
        h.refresh(main)
        sizes.append({"run": n + 1, "bytes": Path(shared).stat().st_size})
    fresh_dir = work / "fresh_full"
    fresh_acc = Acceleration(params={"duckdb_file": str(fresh_dir / "shared.duckdb")})
    h2 = hook(fresh_dir)
    h2.refresh(
        Dataset(
            from_=f"file:{other_src}", name="other", params={"file_format": "parquet"}, acceleration=fresh_acc
        )
    )
    h2.refresh(
        Dataset(from_=f"file:{src}", name="events", params={"file_format": "parquet"}, acceleration=fresh_acc)
    )
    fresh = (fresh_dir / "shared.duckdb").stat().st_size
    return {
        "runs": runs,
        "rows": rows,
        "series": sizes,
        "fresh_bytes": fresh,
        "ratio": round(sizes[-1]["bytes"] / fresh, 3),
        "max_ratio": round(max(s["bytes"] for s in sizes) / fresh, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/growth.json"))
    args = parser.parse_args()
    from bench.refresh import quiet_logs

    quiet_logs()
    work = Path(tempfile.mkdtemp(prefix="accel-growth-"))
    try:
        appends = appends_with_retention(work, args.rows, args.runs)
        full = full_refreshes_shared(work, args.rows, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {"file_growth_appends": appends["ratio"], "file_growth_full": full["ratio"]}
    args.out.write_text(json.dumps({"summary": summary, "appends": appends, "full": full}, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
