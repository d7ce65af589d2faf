"""on_schema_change: each of Spice's values, with full and append refreshes, for a column added, one
removed, a type widened and a type narrowed; the live table ends fully migrated or untouched."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.spicepod.model import Dataset, IndexKind, OnSchemaChange, RefreshMode

from ._helpers import file_fingerprint, leftovers, make_dataset, query, rows, write_parquet

T0 = dt.datetime(2024, 1, 1)

#: The source's column ``v`` (and an extra one) after each change; the first load has v INTEGER.
CHANGES: dict[str, dict[str, pa.DataType]] = {
    "added": {"v": pa.int32(), "extra": pa.string()},
    "removed": {},
    "widened": {"v": pa.int64()},
    "narrowed": {"v": pa.int16()},
}
DUCKDB_TYPES = {pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT", pa.string(): "VARCHAR"}

#: (value, change, mode) -> the refresh migrates the table (True) or is refused (False).
ALLOWED = {
    OnSchemaChange.BLOCK: {},
    OnSchemaChange.FAIL: {},
    OnSchemaChange.APPEND_NEW_COLUMNS: {("added", "full"), ("added", "append")},
    OnSchemaChange.SYNC_ALL_COLUMNS: {
        ("added", "full"),
        ("removed", "full"),
        ("widened", "full"),
        ("narrowed", "full"),
        ("added", "append"),
        ("removed", "append"),
        ("widened", "append"),
    },
    OnSchemaChange.DROP_AND_RECREATE: {
        ("added", "full"),
        ("removed", "full"),
        ("widened", "full"),
        ("narrowed", "full"),
    },
}


def source(ids: range, columns: dict[str, pa.DataType]) -> pa.Table:
    data: dict[str, pa.Array] = {
        "id": pa.array(list(ids), pa.int64()),
        "ts": pa.array([T0 + dt.timedelta(hours=i) for i in ids], pa.timestamp("us")),
    }
    for name, type_ in columns.items():
        data[name] = pa.array([str(i) if type_ == pa.string() else i for i in ids], type_)
    return pa.table(data)


def loaded(hook: DuckDBAcceleratorHook, src: Path, policy: OnSchemaChange, shared: Path | None) -> Dataset:
    write_parquet(src / "t.parquet", source(range(10), {"v": pa.int32()}))
    dataset = dataclasses.replace(
        make_dataset("events", f"file:{src}/t.parquet", time_column="ts", duckdb_file=shared),
        on_schema_change=policy,
    )
    hook.refresh(dataset, mode=RefreshMode.FULL)
    return dataset


@pytest.mark.parametrize("policy", list(OnSchemaChange))
@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("mode", ["full", "append"])
def test_on_schema_change(
    hook: DuckDBAcceleratorHook, src: Path, tmp_path: Path, policy: OnSchemaChange, change: str, mode: str
) -> None:
    """The live table is migrated exactly when on_schema_change allows it; otherwise nothing changes."""
    shared = tmp_path / "shared.duckdb" if mode == "append" else None  # appends go in place
    dataset = loaded(hook, src, policy, shared)
    path = hook.dataset_path(dataset)
    before = file_fingerprint(path, "events")
    new_columns = CHANGES[change]
    # A full refresh reads rows 5-14; an append the rows after the watermark (10-14).
    write_parquet(src / "t.parquet", source(range(5, 15) if mode == "full" else range(10, 15), new_columns))
    refresh_mode = RefreshMode(mode)
    if (change, mode) not in ALLOWED[policy]:
        with pytest.raises(TerminalRefreshError, match=rf"on_schema_change is {policy.value}") as caught:
            hook.refresh(dataset, mode=refresh_mode)
        assert "kept" in str(caught.value)
        assert file_fingerprint(path, "events") == before
        assert leftovers(path.parent) == []
        return
    hook.refresh(dataset, mode=refresh_mode)
    described = [(name, type_) for name, type_, *_ in query(path, 'DESCRIBE "events"')]
    expected = {"id": "BIGINT", "ts": "TIMESTAMP", **{n: DUCKDB_TYPES[t] for n, t in new_columns.items()}}
    assert dict(described) == expected
    ids = [r[0] for r in rows(path, "events", "id")]
    assert ids == (list(range(5, 15)) if mode == "full" else list(range(15)))
    if change == "added" and mode == "append":  # rows accelerated before the change get NULL
        assert rows(path, "events", "id, extra")[:2] == [(0, None), (1, None)]
        assert rows(path, "events", "id, extra")[-1] == (14, "14")


def test_schema_error_names_columns_and_setting(hook: DuckDBAcceleratorHook, src: Path) -> None:
    """The refusal names the columns that differ and the on_schema_change value that would allow it."""
    dataset = loaded(hook, src, OnSchemaChange.BLOCK, None)
    write_parquet(src / "t.parquet", source(range(5, 15), {"v": pa.int32(), "extra": pa.string()}))
    with pytest.raises(TerminalRefreshError) as caught:
        hook.refresh(dataset, mode=RefreshMode.FULL)
    message = str(caught.value)
    assert "added extra" in message and "append_new_columns" in message


def test_evolution_keeps_indexes(hook: DuckDBAcceleratorHook, src: Path, tmp_path: Path) -> None:
    """sync_all_columns widens an indexed column in an append: the index is rebuilt in the same commit."""
    write_parquet(src / "t.parquet", source(range(10), {"v": pa.int32()}))
    base = make_dataset(
        "events", f"file:{src}/t.parquet", time_column="ts", duckdb_file=tmp_path / "s.duckdb"
    )
    assert base.acceleration is not None
    dataset = dataclasses.replace(
        base,
        on_schema_change=OnSchemaChange.SYNC_ALL_COLUMNS,
        acceleration=dataclasses.replace(base.acceleration, indexes={"v": IndexKind.UNIQUE}),
    )
    hook.refresh(dataset, mode=RefreshMode.FULL)
    write_parquet(src / "t.parquet", source(range(10, 15), {"v": pa.int64()}))
    hook.refresh(dataset, mode=RefreshMode.APPEND)
    path = hook.dataset_path(dataset)
    assert dict((r[0], r[1]) for r in query(path, 'DESCRIBE "events"'))["v"] == "BIGINT"
    assert query(path, "SELECT expressions, is_unique FROM duckdb_indexes() WHERE table_name = 'events'") == [
        ("[v]", True)
    ]
