"""Readers in another process during refreshes: only complete snapshots, never an error."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.spicepod.model import Dataset, RefreshMode

from ._helpers import leftovers, make_dataset, script, wait_for_line, write_parquet

#: Shared with tests/reliability/test_readers_during_writes.py.
READER_LOOP = Path(__file__).resolve().parents[1] / "scripts" / "reader_loop.py"
ROWS = 150_000
REFRESHES = 6
T0 = dt.datetime(2024, 1, 1)


def snapshot(i: int) -> pa.Table:
    """Snapshot ``i``: ROWS + i rows whose ``v`` sum is distinct for each i."""
    n = ROWS + 7 * i
    ids = pa.array(range(n), pa.int64())
    v = pc.add(ids, i * 1_000_003)
    ts = ids.cast(pa.timestamp("s")).cast(pa.timestamp("us"))
    return pa.table({"id": ids, "v": v, "ts": ts})


def fingerprint(table: pa.Table) -> tuple[int, int]:
    return table.num_rows, int(pc.sum(table["v"]).as_py())


def run_reader_during(
    path: Path,
    table: str,
    how: str,
    tmp_path: Path,
    refreshes: list[tuple[Dataset, dict[str, object]]],
    hook: DuckDBAcceleratorHook,
) -> tuple[list[tuple[int, int]], list[dict[str, object]]]:
    stop, out = tmp_path / "stop", tmp_path / "observations.json"
    reader = script(READER_LOOP, path, table, how, stop, out)
    try:
        wait_for_line(reader, "ready")
        time.sleep(0.2)
        for dataset, kwargs in refreshes:
            hook.refresh(dataset, **kwargs)  # type: ignore[arg-type]
        time.sleep(0.2)
    finally:
        stop.touch()
        _, stderr = reader.communicate(timeout=60)
    assert reader.returncode == 0, stderr
    report = json.loads(out.read_text())
    return [tuple(o) for o in report["observations"]], report["errors"]


class TestReadersDuringRefresh:
    @pytest.mark.parametrize(
        ("layout", "how"), [("own-file", "raw"), ("shared-file", "helper")], ids=["own-raw", "shared-helper"]
    )
    def test_full_refreshes_show_only_complete_snapshots(
        self, hook: DuckDBAcceleratorHook, src: Path, tmp_path: Path, layout: str, how: str
    ) -> None:
        """During full refreshes a reader only ever sees a complete snapshot (own file: not even an error)."""
        shared = tmp_path / "shared.duckdb" if layout == "shared-file" else None
        snapshots, datasets = [], []
        for i in range(REFRESHES + 1):
            table = snapshot(i)
            snapshots.append(fingerprint(table))
            write_parquet(src / f"snap-{i}.parquet", table)
            datasets.append(make_dataset("events", f"file:{src}/snap-{i}.parquet", duckdb_file=shared))
        if shared:
            hook.refresh(make_dataset("neighbour", f"file:{src}/snap-0.parquet", duckdb_file=shared))
        hook.refresh(datasets[0])
        path = hook.dataset_path(datasets[0])
        seen, errors = run_reader_during(path, "events", how, tmp_path, [(d, {}) for d in datasets[1:]], hook)
        print(f"{layout}: {len(seen)} reader observations during {REFRESHES} full refreshes of ~{ROWS} rows")
        assert errors == []
        assert set(seen) <= set(snapshots), set(seen) - set(snapshots)
        assert len(set(seen)) >= 3, "the reader did not overlap the refreshes"
        assert seen[-1] == snapshots[-1]
        assert leftovers(path.parent) == []

    def test_appends_show_only_complete_snapshots(
        self, hook: DuckDBAcceleratorHook, src: Path, tmp_path: Path
    ) -> None:
        """During appends (written in place) the read helper shows only complete snapshots, no error."""
        full = snapshot(0)
        drops = 6
        size = full.num_rows // drops
        parts = [full.slice(k * size, size) for k in range(drops)]
        dataset = make_dataset(
            "events",
            f"file:{src}",
            mode=RefreshMode.APPEND,
            time_column="ts",
            overlap=dt.timedelta(minutes=5),
            params={"file_format": "parquet"},
        )
        write_parquet(src / "drop-0.parquet", parts[0])
        hook.refresh(dataset)
        expected = [fingerprint(pa.concat_tables(parts[: k + 1])) for k in range(drops)]

        path = hook.dataset_path(dataset)
        refreshes = []
        for k in range(1, drops):
            write_parquet(src / f"drop-{k}.parquet", parts[k])
            refreshes.append((dataset, {}))
        # All drops are on disk; make each refresh see exactly one more by moving the others aside.
        hidden = tmp_path / "hidden"
        hidden.mkdir()
        for k in range(1, drops):
            (src / f"drop-{k}.parquet").rename(hidden / f"drop-{k}.parquet")

        class Revealing(DuckDBAcceleratorHook):
            def refresh(self, dataset: Dataset, **kwargs: object):  # type: ignore[no-untyped-def, override]
                nxt = min(hidden.iterdir())
                nxt.rename(src / nxt.name)
                return super().refresh(dataset, **kwargs)  # type: ignore[arg-type]

        revealing = Revealing(data_dir=hook.data_dir, lock_timeout=5)
        seen, errors = run_reader_during(path, "events", "helper", tmp_path, refreshes, revealing)
        print(f"append: {len(seen)} reader observations during {drops - 1} appends")
        assert errors == []
        assert set(seen) <= set(expected), set(seen) - set(expected)
        assert seen[-1] == expected[-1]
