"""A failed refresh leaves the old data exactly as it was, no staging files, and the next one works."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.exceptions import RefreshError, TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.sources.base import ScanRequest, Source, SourceScan
from airflow_provider_accel.spicepod.model import Dataset, OnSchemaChange, RefreshMode

from ._helpers import encode_times, file_fingerprint, leftovers, make_dataset, write_parquet

SCHEMA = pa.schema([("id", pa.int64()), ("ts", pa.timestamp("us"))])
T0 = dt.datetime(2024, 1, 1)


class FailingSource(Source):
    """An Arrow-stream source that yields ``good_batches`` batches and then raises ``error``."""

    def __init__(self, dataset: Dataset, error: Exception, good_batches: int = 3) -> None:
        super().__init__(dataset)
        self.error = error
        self.good_batches = good_batches
        self.closed = False

    def schema(self, con: duckdb.DuckDBPyConnection) -> pa.Schema:
        return SCHEMA

    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        def batches() -> Iterator[pa.RecordBatch]:
            for b in range(self.good_batches):
                ids = list(range(b * 1000, (b + 1) * 1000))
                yield pa.record_batch(
                    [pa.array(ids), pa.array([T0] * 1000, pa.timestamp("us"))], schema=SCHEMA
                )
            raise self.error

        return SourceScan(reader=pa.RecordBatchReader.from_batches(SCHEMA, batches()))

    def close(self) -> None:
        self.closed = True


@pytest.fixture(params=["own-file", "shared-file"])
def loaded(request: pytest.FixtureRequest, hook: DuckDBAcceleratorHook, src: Path, tmp_path: Path) -> Dataset:
    """A dataset accelerated once from a Parquet directory, in its own or a shared file."""
    shared = tmp_path / "shared.duckdb" if request.param == "shared-file" else None
    table = pa.table(
        {"id": list(range(500)), "ts": encode_times([dt.datetime(2024, 1, 1, tzinfo=dt.UTC)] * 500, None)}
    )
    write_parquet(src / "part-0.parquet", table)
    dataset = make_dataset(
        "events",
        f"file:{src}",
        time_column="ts",
        params={"file_format": "parquet"},
        duckdb_file=shared,
        overlap=dt.timedelta(hours=1),
    )
    if shared:
        hook.refresh(
            make_dataset("neighbour", f"file:{src}", params={"file_format": "parquet"}, duckdb_file=shared)
        )
    hook.refresh(dataset)
    return dataset


def assert_failure_is_clean(
    hook: DuckDBAcceleratorHook, dataset: Dataset, error: type[RefreshError], **refresh: object
) -> RefreshError:
    path = hook.dataset_path(dataset)
    before = file_fingerprint(path, dataset.name)
    with pytest.raises(error) as caught:
        hook.refresh(dataset, **refresh)  # type: ignore[arg-type]
    assert file_fingerprint(path, dataset.name) == before
    assert leftovers(path.parent) == []
    return caught.value


class TestFailedRefreshKeepsOldData:
    def test_bad_refresh_sql_column(self, hook: DuckDBAcceleratorHook, loaded: Dataset) -> None:
        """A refresh_sql naming a missing column fails terminally; old data intact."""
        err = assert_failure_is_clean(
            hook, loaded, TerminalRefreshError, refresh_sql="SELECT nope FROM events"
        )
        assert "events" in str(err)
        assert hook.refresh(loaded).total_rows == 500

    def test_missing_source_files(self, hook: DuckDBAcceleratorHook, loaded: Dataset, src: Path) -> None:
        """Source files gone: terminal error naming the dataset; old data intact; next refresh works."""
        moved = src.parent / "moved"
        src.rename(moved)
        err = assert_failure_is_clean(hook, loaded, TerminalRefreshError)
        assert "events" in str(err)
        moved.rename(src)
        assert hook.refresh(loaded).total_rows == 500

    def test_schema_change_under_append(
        self, hook: DuckDBAcceleratorHook, loaded: Dataset, src: Path
    ) -> None:
        """A new source column fails append and full refreshes under block; drop_and_recreate rebuilds."""
        table = pa.table(
            {
                "id": [999],
                "ts": encode_times([dt.datetime(2024, 1, 2, tzinfo=dt.UTC)], None),
                "extra": ["x"],
            }
        )
        write_parquet(src / "part-1.parquet", table)
        assert_failure_is_clean(hook, loaded, TerminalRefreshError, mode=RefreshMode.APPEND)
        # on_schema_change block (the default) refuses the new column on a full refresh too (Spice).
        assert_failure_is_clean(hook, loaded, TerminalRefreshError, mode=RefreshMode.FULL)
        recreate = dataclasses.replace(loaded, on_schema_change=OnSchemaChange.DROP_AND_RECREATE)
        assert hook.refresh(recreate, mode=RefreshMode.FULL).total_rows == 501

    @pytest.mark.parametrize(
        ("raised", "expected"),
        [
            (ValueError("corrupt page"), TerminalRefreshError),
            (ConnectionResetError("connection reset by peer"), TransientRefreshError),
            (TransientRefreshError("server went away"), TransientRefreshError),
        ],
    )
    @pytest.mark.parametrize("mode", [RefreshMode.FULL, RefreshMode.APPEND])
    def test_source_raising_mid_stream(
        self,
        hook: DuckDBAcceleratorHook,
        loaded: Dataset,
        raised: Exception,
        expected: type[RefreshError],
        mode: RefreshMode,
    ) -> None:
        """A source failing after some batches keeps its error class; old data intact; source closed."""
        source = FailingSource(loaded, raised)
        err = assert_failure_is_clean(hook, loaded, expected, source=source, mode=mode)
        assert err.dataset == "events"
        assert source.closed
        assert hook.refresh(loaded).total_rows == 500

    def test_leftovers_of_a_crash_are_removed(self, hook: DuckDBAcceleratorHook, loaded: Dataset) -> None:
        """Staging files left by a crashed refresh are deleted by the next refresh."""
        path = hook.dataset_path(loaded)
        junk = path.with_name(path.name + ".staging-1-dead")
        junk.write_bytes(b"half a file")
        junk.with_name(junk.name + ".wal").write_bytes(b"")
        hook.refresh(loaded)
        assert leftovers(path.parent) == []
