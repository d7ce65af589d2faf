"""Directory sources: only the dataset's format is read, Spark/Hadoop markers are skipped, and Hive
partition folders become columns when ``hive_partitioning_enabled`` is set (as Spice documents)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_accel.sources import source_for
from airflow_provider_accel.sources.base import ScanRequest

from ._helpers import dataset, load


def _write_spark_output(root: Path) -> None:
    """What Spark's ``df.write.parquet(root)`` leaves: part files, _SUCCESS, .crc checksums, _temporary/."""
    root.mkdir(parents=True)
    for part in range(2):
        table = pa.table({"id": list(range(part * 10, part * 10 + 10)), "v": [float(part)] * 10})
        name = f"part-0000{part}-5a1b-c000.snappy.parquet"
        pq.write_table(table, root / name)
        (root / f".{name}.crc").write_bytes(b"crc\x00")
    (root / "_SUCCESS").write_bytes(b"")
    (root / "._SUCCESS.crc").write_bytes(b"\x00")
    (root / "_temporary" / "0").mkdir(parents=True)
    (root / "_temporary" / "0" / "part-00009.parquet").write_bytes(b"half-written")


def _write_hive(root: Path) -> None:
    """``year=YYYY/month=MM/data.parquet`` folders, the partition values absent from the files."""
    for year, month, ids in ((2023, "12", [1, 2]), (2024, "01", [3]), (2024, "02", [4, 5, 6])):
        folder = root / f"year={year}" / f"month={month}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"id": ids}), folder / "data.parquet")


def test_spark_output_directory_reads_only_the_part_files(tmp_path: Path) -> None:
    """A Spark output directory loads its part-*.parquet rows; _SUCCESS, .crc and _temporary/ are skipped."""
    _write_spark_output(tmp_path / "out")
    src = source_for(dataset(str(tmp_path / "out"), {"file_format": "parquet"}))
    con = duckdb.connect()
    load(src.scan(ScanRequest(), con), con)
    assert con.execute("SELECT count(*), min(id), max(id) FROM t").fetchall() == [(20, 0, 19)]
    assert src.schema(con).names == ["id", "v"]


def test_directory_reads_only_the_format_of_the_dataset(tmp_path: Path) -> None:
    """A CSV file beside Parquet files in the same directory is not read as Parquet."""
    root = tmp_path / "mixed"
    root.mkdir()
    pq.write_table(pa.table({"id": [1, 2]}), root / "a.parquet")
    (root / "notes.csv").write_text("id\n99\n")
    (root / "README").write_text("not data")
    src = source_for(dataset(f"file:{root}", {"file_format": "parquet"}))
    con = duckdb.connect()
    load(src.scan(ScanRequest(), con), con)
    assert con.execute("SELECT list(id ORDER BY id) FROM t").fetchall() == [([1, 2],)]


def test_hive_partitioned_directory_gains_partition_columns(tmp_path: Path) -> None:
    """With hive_partitioning_enabled, year=/month= folders become columns that filters can use."""
    _write_hive(tmp_path / "events")
    params = {"file_format": "parquet", "hive_partitioning_enabled": "true"}
    src = source_for(dataset(str(tmp_path / "events"), params))
    con = duckdb.connect()
    assert set(src.schema(con).names) == {"id", "year", "month"}
    where = '"year" = 2024 AND "month" = \'02\''
    load(src.scan(ScanRequest(where=where), con), con, where=where)
    assert con.execute("SELECT list(id ORDER BY id) FROM t").fetchall() == [([4, 5, 6],)]


@pytest.mark.parametrize("setting", [None, "false"])
def test_hive_partitioning_is_off_by_default(tmp_path: Path, setting: str | None) -> None:
    """Without hive_partitioning_enabled (Spice's default: false) the folders are not columns."""
    _write_hive(tmp_path / "events")
    params = {"file_format": "parquet"} | ({"hive_partitioning_enabled": setting} if setting else {})
    src = source_for(dataset(str(tmp_path / "events"), params))
    con = duckdb.connect()
    assert src.schema(con).names == ["id"]
    load(src.scan(ScanRequest(), con), con)
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(6,)]


def test_append_by_last_modified_reads_only_new_or_changed_files(tmp_path: Path) -> None:
    """time_column: last_modified: an append reads only files modified after the watermark."""
    import dataclasses
    import datetime as dt
    import os

    from airflow_provider_accel.accelerator import DuckDBAcceleratorHook
    from airflow_provider_accel.spicepod.model import RefreshMode

    from ._helpers import accelerated

    root = tmp_path / "drops"
    root.mkdir()
    old = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()
    for name, ids, mtime in (("a", [1, 2], old), ("b", [3], old + 3600)):
        pq.write_table(pa.table({"id": ids}), root / f"{name}.parquet")
        os.utime(root / f"{name}.parquet", (mtime, mtime))
    hook = DuckDBAcceleratorHook(data_dir=tmp_path / "accel")
    ds = accelerated(
        str(root),
        {"file_format": "parquet"},
        name="drops",
        time_column="last_modified",
        acceleration={"refresh_mode": RefreshMode.APPEND, "refresh_append_overlap": dt.timedelta(0)},
    )
    assert hook.refresh(ds, mode=RefreshMode.FULL).rows == 3
    pq.write_table(pa.table({"id": [4, 5]}), root / "c.parquet")  # a new file, modified now
    src = source_for(dataclasses.replace(ds))
    result = hook.refresh(dataclasses.replace(ds), mode=RefreshMode.APPEND, source=src)
    # The watermark is b's mtime; >= (then dedup) re-reads b, never the older a.
    assert [Path(f).name for f in src.files_read] == ["b.parquet", "c.parquet"]  # type: ignore[attr-defined]
    with duckdb.connect(result.path, read_only=True) as con:
        assert con.execute("SELECT list(id ORDER BY id) FROM drops").fetchall() == [([1, 2, 3, 4, 5],)]
