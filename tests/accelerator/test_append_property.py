"""Property: appends over random drop sequences equal a tiny reference model of Spice's semantics."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.spicepod.model import OnConflict, RefreshMode, TimeFormat

from ._helpers import encode_times, make_dataset, query, write_parquet

T0 = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
OVERLAPS = [0, 10]  # in the format's unit
#: A row's time is a count of units after T0: whole days for ``date``, else whole minutes.
UNITS = {f: dt.timedelta(days=1) if f == TimeFormat.DATE else dt.timedelta(minutes=1) for f in TimeFormat}
FORMATS = list(TimeFormat)

Row = tuple[int, int, str]  # (id, units after T0, payload)


def reference_append(accelerated: Counter[Row], source: list[Row], overlap: int) -> Counter[Row]:
    """Spice's append: fetch t >= watermark - overlap; drop rows equal to accelerated ones in the window."""
    if not accelerated:
        return Counter(source)
    cutoff = max(t for _, t, _ in accelerated) - overlap
    window = {row for row in accelerated if row[1] >= cutoff}
    incoming = [row for row in source if row[1] >= cutoff and row not in window]
    return accelerated + Counter(incoming)


def times(rows: list[Row], fmt: TimeFormat) -> pa.Array:
    """The rows' time column in ``fmt``; ISO-8601 strings carry an offset chosen by the row's id,
    so a re-delivered row is the very same string."""
    instants = [T0 + r[1] * UNITS[fmt] for r in rows]
    if fmt != TimeFormat.ISO8601:
        return encode_times(instants, fmt)
    zones = [dt.UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(hours=-5))]
    return pa.array([i.astimezone(zones[r[0] % 3]).isoformat() for i, r in zip(instants, rows, strict=True)])


def units(value: object, fmt: TimeFormat) -> int:
    """A stored time value (any format) as whole units after T0."""
    if fmt == TimeFormat.UNIX_MILLIS:
        assert isinstance(value, int)
        instant = dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    elif isinstance(value, int):
        instant = dt.datetime.fromtimestamp(value, dt.UTC)
    elif isinstance(value, str):
        instant = dt.datetime.fromisoformat(value)
    elif isinstance(value, dt.datetime):
        instant = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    else:
        assert isinstance(value, dt.date)
        instant = dt.datetime.combine(value, dt.time(), dt.UTC)
    return round((instant - T0) / UNITS[fmt])


@st.composite
def drop_sequences(draw: st.DrawFn) -> list[list[Row]]:
    """Drops whose times mostly increase, with late rows and re-delivered duplicates near the edge."""
    drops: list[list[Row]] = []
    delivered: list[Row] = []
    clock = 0
    next_id = 0
    for _ in range(draw(st.integers(1, 4))):
        rows: list[Row] = []
        for _ in range(draw(st.integers(0, 6))):
            kind = draw(st.sampled_from(["new", "new", "late", "dup"]))
            if kind == "dup" and delivered:
                rows.append(draw(st.sampled_from(delivered[-8:])))
                continue
            if kind == "late":
                t = clock - draw(st.integers(0, max(OVERLAPS) + 3))
            else:
                clock += draw(st.integers(0, 7))
                t = clock
            rows.append((next_id, t, draw(st.sampled_from(["a", "b"]))))
            next_id += 1
        delivered.extend(rows)
        drops.append(rows)
    return drops


@pytest.mark.slow
class TestAppendProperty:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(drops=drop_sequences(), fmt=st.sampled_from(FORMATS), overlap=st.sampled_from(OVERLAPS))
    def test_append_matches_reference_model(
        self, drops: list[list[Row]], fmt: TimeFormat, overlap: int
    ) -> None:
        """After every append the table equals the oracle, for every time_format, with and without overlap."""
        with tempfile.TemporaryDirectory() as tmp:
            src, data = Path(tmp) / "src", Path(tmp) / "data"
            src.mkdir()
            hook = DuckDBAcceleratorHook(data_dir=data, lock_timeout=5)
            dataset = make_dataset(
                "events",
                f"file:{src}",
                mode=RefreshMode.APPEND,
                time_column="ts",
                time_format=fmt,
                overlap=overlap * UNITS[fmt] if overlap else None,
                params={"file_format": "parquet"},
            )
            source: list[Row] = []
            expected: Counter[Row] = Counter()
            for n, rows in enumerate(drops):
                if not rows and not source:
                    continue  # a source with no files at all is an error, not an empty drop
                table = pa.table(
                    {
                        "id": pa.array([r[0] for r in rows], pa.int64()),
                        "ts": times(rows, fmt),
                        "payload": pa.array([r[2] for r in rows], pa.string()),
                    }
                )
                write_parquet(src / f"drop-{n:02d}.parquet", table)
                source.extend(rows)
                hook.refresh(dataset)
                expected = reference_append(expected, source, overlap)
                got = Counter(
                    (i, units(ts, fmt), p)
                    for i, ts, p in query(hook.dataset_path(dataset), "SELECT id, ts, payload FROM events")
                )
                assert got == expected, f"after drop {n}"


#: Split-second and split-day arrivals: whole seconds for every format but ``date`` (whole days).
SECOND_UNITS = {
    f: dt.timedelta(days=1) if f == TimeFormat.DATE else dt.timedelta(seconds=1) for f in TimeFormat
}


@st.composite
def split_arrivals(draw: st.DrawFn) -> list[list[Row]]:
    """Drops whose first rows share the previous drop's last instant (second or day): the boundary
    a strict ``>`` loses; re-deliveries of boundary rows and late rows mixed in."""
    drops: list[list[Row]] = []
    delivered: list[Row] = []
    clock = next_id = 0
    for _ in range(draw(st.integers(2, 4))):
        rows: list[Row] = []
        for _ in range(draw(st.integers(1, 4))):  # more rows at the instant already loaded
            rows.append((next_id, clock, draw(st.sampled_from(["a", "b"]))))
            next_id += 1
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(["same", "later", "dup", "late"]))
            if kind == "dup" and delivered:
                rows.append(draw(st.sampled_from(delivered[-6:])))
                continue
            if kind == "later":
                clock += draw(st.integers(1, 3))
            t = clock - draw(st.integers(1, 3)) if kind == "late" else clock
            rows.append((next_id, t, draw(st.sampled_from(["a", "b"]))))
            next_id += 1
        delivered.extend(rows)
        drops.append(rows)
    return drops


class TestAppendBoundaryProperty:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        drops=split_arrivals(),
        fmt=st.sampled_from(FORMATS),
        overlap=st.sampled_from(OVERLAPS),
        keyed=st.booleans(),
    )
    def test_split_second_and_day_arrivals_match_the_oracle(
        self, drops: list[list[Row]], fmt: TimeFormat, overlap: int, keyed: bool
    ) -> None:
        """Rows sharing the loaded second/day across drops are neither lost nor duplicated, with or without
        a primary key and overlap."""
        unit = SECOND_UNITS[fmt]
        with tempfile.TemporaryDirectory() as tmp:
            src, data = Path(tmp) / "src", Path(tmp) / "data"
            src.mkdir()
            hook = DuckDBAcceleratorHook(data_dir=data, lock_timeout=5)
            dataset = make_dataset(
                "events",
                f"file:{src}",
                mode=RefreshMode.APPEND,
                time_column="ts",
                time_format=fmt,
                overlap=overlap * unit if overlap else None,
                primary_key=("id",) if keyed else (),
                on_conflict=OnConflict.UPSERT if keyed else None,
                params={"file_format": "parquet"},
            )
            source: list[Row] = []
            expected: Counter[Row] = Counter()
            for n, rows in enumerate(drops):
                instants = [T0 + r[1] * unit for r in rows]
                if fmt == TimeFormat.ISO8601:
                    zones = [dt.UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(hours=-5))]
                    ts = pa.array(
                        [
                            i.astimezone(zones[r[0] % 3]).isoformat()
                            for i, r in zip(instants, rows, strict=True)
                        ]
                    )
                else:
                    ts = encode_times(instants, fmt)
                table = pa.table(
                    {
                        "id": pa.array([r[0] for r in rows], pa.int64()),
                        "ts": ts,
                        "payload": pa.array([r[2] for r in rows], pa.string()),
                    }
                )
                write_parquet(src / f"drop-{n:02d}.parquet", table)
                source.extend(rows)
                hook.refresh(dataset)
                expected = reference_append(expected, source, overlap)
                got = Counter(
                    (i, round((_instant(ts_value, fmt) - T0) / unit), p)
                    for i, ts_value, p in query(
                        hook.dataset_path(dataset), "SELECT id, ts, payload FROM events"
                    )
                )
                assert got == expected, f"after drop {n}"
                assert max(got.values(), default=1) == 1, "a row was duplicated"


def _instant(value: object, fmt: TimeFormat) -> dt.datetime:
    if fmt == TimeFormat.UNIX_MILLIS:
        assert isinstance(value, int)
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    if isinstance(value, int):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    assert isinstance(value, dt.date)
    return dt.datetime.combine(value, dt.time(), dt.UTC)
