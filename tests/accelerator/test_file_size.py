"""Repeated full refreshes of the same data do not grow the file."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook

from ._helpers import leftovers, make_dataset, write_parquet

REFRESHES = 50


@pytest.mark.slow
class TestFileSize:
    @pytest.mark.parametrize("shared", [False, True], ids=["own-file", "shared-file"])
    def test_fifty_refreshes_stay_within_one_and_a_half(
        self, hook: DuckDBAcceleratorHook, src: Path, tmp_path: Path, shared: bool
    ) -> None:
        """After 50 full refreshes of the same data the file is within 1.5x its size after one."""
        rows = 20_000
        write_parquet(
            src / "t.parquet",
            pa.table({"id": list(range(rows)), "label": [f"trip-{i:08d}" for i in range(rows)]}),
        )
        shared_file = tmp_path / "shared.duckdb" if shared else None
        if shared_file:  # a small neighbour: the refreshed table dominates the shared file
            write_parquet(src / "n.parquet", pa.table({"x": [1]}))
            hook.refresh(make_dataset("neighbour", f"file:{src}/n.parquet", duckdb_file=shared_file))
        dataset = make_dataset("trips", f"file:{src}/t.parquet", duckdb_file=shared_file)
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        first = path.stat().st_size
        sizes = []
        for _ in range(REFRESHES - 1):
            assert hook.refresh(dataset).total_rows == rows
            sizes.append(path.stat().st_size)
        print(
            f"{'shared' if shared else 'own'} file: {first} B after 1, {sizes[-1]} B after {REFRESHES}, "
            f"max {max(sizes)} B; ratio {sizes[-1] / first:.2f}"
        )
        assert max(sizes) <= 1.5 * first
        assert leftovers(path.parent) == []
