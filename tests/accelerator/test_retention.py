"""Retention deletes exactly the rows older than now - retention_period, for every time_format."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.spicepod.model import TimeFormat

from ._helpers import ALL_TIME_FORMATS, NOW, encode_times, make_dataset, rows, write_parquet


def instants() -> list[dt.datetime]:
    """Every 5 hours from 5 days before NOW, plus one exactly at the cutoff (NOW - 2 days)."""
    start = NOW - dt.timedelta(days=5)
    return [start + dt.timedelta(hours=5 * k) for k in range(30)] + [NOW - dt.timedelta(days=2)]


def as_compared(value: dt.datetime, fmt: TimeFormat) -> dt.datetime:
    """A date compares as its UTC midnight."""
    return dt.datetime.combine(value.date(), dt.time(), tzinfo=dt.UTC) if fmt == TimeFormat.DATE else value


class TestRetention:
    @pytest.mark.parametrize("fmt", ALL_TIME_FORMATS)
    @pytest.mark.parametrize("shared", [False, True], ids=["own-file", "shared-file"])
    def test_deletes_exactly_rows_before_cutoff(
        self, hook: DuckDBAcceleratorHook, src: Path, tmp_path: Path, fmt: TimeFormat, shared: bool
    ) -> None:
        """Rows with time_column < now - retention_period go; rows at or after the cutoff stay."""
        times = instants()
        write_parquet(
            src / "t.parquet", pa.table({"id": list(range(len(times))), "ts": encode_times(times, fmt)})
        )
        period = dt.timedelta(days=2)
        dataset = make_dataset(
            "events",
            f"file:{src}/t.parquet",
            time_column="ts",
            time_format=fmt,
            retention=period,
            duckdb_file=tmp_path / "shared.duckdb" if shared else None,
        )
        hook.refresh(dataset)
        result = hook.apply_retention(dataset, now=NOW)
        cutoff = NOW - period
        kept = [(i,) for i, t in enumerate(times) if not as_compared(t, fmt) < cutoff]
        assert rows(hook.dataset_path(dataset), "events", "id") == kept
        assert result.deleted_rows == len(times) - len(kept) > 0
        assert result.total_rows == len(kept)

    def test_retention_needs_time_column_and_period(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """Retention without time_column or retention_period is a terminal error naming the dataset."""
        dataset = make_dataset("events", f"file:{src}/t.parquet")
        with pytest.raises(TerminalRefreshError, match="events"):
            hook.apply_retention(dataset, now=NOW)

    def test_retention_before_first_refresh_is_a_no_op(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """Retention on a dataset never refreshed deletes nothing and creates no table."""
        dataset = make_dataset(
            "events", f"file:{src}/t.parquet", time_column="ts", retention=dt.timedelta(days=1)
        )
        assert hook.apply_retention(dataset, now=NOW).deleted_rows == 0
