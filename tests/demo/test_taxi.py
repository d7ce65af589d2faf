"""The demo's taxi-trips generator: deterministic, NYC-yellow-taxi shaped, streamed."""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from airflow_provider_accel.demo import taxi

if TYPE_CHECKING:
    from pathlib import Path

ROWS = 200_000


@pytest.fixture(scope="module")
def trips() -> pa.Table:
    return taxi.generate_table(ROWS, seed=7)


def _digest(table: pa.Table) -> str:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def test_same_arguments_give_identical_data() -> None:
    """The same (rows, seed, start) yields byte-identical data, whatever the batch size."""
    a = pa.Table.from_batches(list(taxi.generate_batches(100_000, seed=3, batch_size=30_000)))
    b = pa.Table.from_batches(list(taxi.generate_batches(100_000, seed=3, batch_size=70_001)))
    assert _digest(a) == _digest(b)


def test_different_seed_or_start_gives_different_data() -> None:
    """Changing the seed changes the values; moving start by a week only shifts the timestamps."""
    base = taxi.generate_table(5_000, seed=1)
    assert not base.equals(taxi.generate_table(5_000, seed=2))
    # A whole week later: same weekday and hour, so time-dependent surcharges are unchanged.
    later = taxi.generate_table(5_000, seed=1, start=datetime(2024, 1, 8))
    assert later["tpep_pickup_datetime"][0].as_py() >= datetime(2024, 1, 8)
    assert later.drop_columns(["tpep_pickup_datetime", "tpep_dropoff_datetime"]).equals(
        base.drop_columns(["tpep_pickup_datetime", "tpep_dropoff_datetime"])
    )


def test_parquet_files_are_byte_identical(tmp_path: Path) -> None:
    """Two Parquet writes with the same arguments produce the same bytes on disk."""
    one = taxi.write_parquet(tmp_path / "a.parquet", 20_000, seed=5, row_group_size=8_000)
    two = taxi.write_parquet(tmp_path / "b.parquet", 20_000, seed=5, row_group_size=8_000)
    assert one.read_bytes() == two.read_bytes()
    assert pq.ParquetFile(one).metadata.num_row_groups == 3


def test_schema_matches_yellow_taxi_files(trips: pa.Table) -> None:
    """Column names and types are those of the TLC yellow trip Parquet files."""
    expected = {
        "VendorID": pa.int32(),
        "tpep_pickup_datetime": pa.timestamp("us"),
        "tpep_dropoff_datetime": pa.timestamp("us"),
        "passenger_count": pa.int64(),
        "trip_distance": pa.float64(),
        "RatecodeID": pa.int64(),
        "store_and_fwd_flag": pa.string(),
        "PULocationID": pa.int32(),
        "DOLocationID": pa.int32(),
        "payment_type": pa.int64(),
        "fare_amount": pa.float64(),
        "extra": pa.float64(),
        "mta_tax": pa.float64(),
        "tip_amount": pa.float64(),
        "tolls_amount": pa.float64(),
        "improvement_surcharge": pa.float64(),
        "total_amount": pa.float64(),
        "congestion_surcharge": pa.float64(),
        "Airport_fee": pa.float64(),
    }
    assert dict(zip(trips.schema.names, trips.schema.types, strict=True)) == expected
    assert trips.num_rows == ROWS


def test_pickups_start_at_start_and_never_go_back(trips: pa.Table) -> None:
    """Pickups begin at ``start``, are non-decreasing, and run at a city-like ~100k trips a day."""
    pickup = trips["tpep_pickup_datetime"]
    assert pickup[0].as_py() >= taxi.DEFAULT_START
    assert pc.all(pc.greater_equal(pickup[1:], pickup[:-1])).as_py()
    days = (pc.max(pickup).as_py() - pc.min(pickup).as_py()).total_seconds() / 86_400
    assert 1.5 < days < 2.5  # 200k trips


def test_dropoff_after_pickup_by_a_realistic_duration(trips: pa.Table) -> None:
    """Drop-off is never before pickup; the median trip takes 5-20 minutes, none over 6 hours."""
    seconds = pc.divide(
        pc.cast(
            pc.subtract(
                pc.cast(trips["tpep_dropoff_datetime"], pa.int64()),
                pc.cast(trips["tpep_pickup_datetime"], pa.int64()),
            ),
            pa.float64(),
        ),
        1e6,
    )
    assert pc.min(seconds).as_py() >= 0
    median = pc.approximate_median(seconds).as_py()
    assert 5 * 60 < median < 20 * 60
    assert pc.max(seconds).as_py() < 6 * 3600


def test_total_is_the_sum_of_its_parts(trips: pa.Table) -> None:
    """total_amount equals the sum of fare, extra, taxes, tip, tolls and surcharges (nulls as 0)."""
    total = pa.array([0.0] * trips.num_rows)
    for name in taxi.AMOUNT_PARTS:
        total = pc.add(total, pc.fill_null(trips[name], 0.0))
    diff = pc.abs(pc.subtract(total, trips["total_amount"]))
    assert pc.max(diff).as_py() < 1e-6


def test_null_ratios_match_the_real_files(trips: pa.Table) -> None:
    """~3.5% of trips lack meter metadata: the same rows are null in five columns and payment_type is 0."""
    missing = pc.is_null(trips["passenger_count"])
    ratio = pc.mean(pc.cast(missing, pa.float64())).as_py()
    assert 0.025 < ratio < 0.05
    for name in ("RatecodeID", "store_and_fwd_flag", "congestion_surcharge", "Airport_fee"):
        assert pc.is_null(trips[name]).equals(missing), name
    assert pc.all(pc.equal(pc.filter(trips["payment_type"], missing), 0)).as_py()
    for name in ("VendorID", "tpep_pickup_datetime", "trip_distance", "fare_amount", "total_amount"):
        assert trips[name].null_count == 0, name


def test_tips_follow_payment_type(trips: pa.Table) -> None:
    """Cash, no-charge and disputed trips record no tip; card tips average about 20% of the fare."""
    payment = trips["payment_type"]
    untipped = pc.filter(trips["tip_amount"], pc.is_in(payment, pa.array([2, 3, 4])))
    assert pc.all(pc.equal(untipped, 0.0)).as_py()
    card = trips.filter(pc.equal(payment, 1))
    tipped = card.filter(pc.greater(card["tip_amount"], 0.0))
    share_tipped = tipped.num_rows / card.num_rows
    assert 0.8 < share_tipped < 0.95
    pct = pc.divide(tipped["tip_amount"], pc.subtract(tipped["total_amount"], tipped["tip_amount"]))
    assert 0.15 < pc.mean(pct).as_py() < 0.25


def test_categorical_values_are_in_the_tlc_code_lists(trips: pa.Table) -> None:
    """Codes stay within the TLC data dictionary; card dominates payments; N dominates store-and-forward."""
    assert set(pc.unique(trips["VendorID"]).to_pylist()) <= {1, 2, 6}
    assert set(pc.unique(trips["RatecodeID"]).to_pylist()) <= {1, 2, 3, 4, 5, 99, None}
    assert set(pc.unique(trips["payment_type"]).to_pylist()) <= {0, 1, 2, 3, 4}
    assert set(pc.unique(trips["store_and_fwd_flag"]).to_pylist()) == {"Y", "N", None}
    for name in ("PULocationID", "DOLocationID"):
        assert pc.min(trips[name]).as_py() >= 1 and pc.max(trips[name]).as_py() <= 265
    counts = {row["values"]: row["counts"] for row in pc.value_counts(trips["payment_type"]).to_pylist()}
    assert counts[1] / trips.num_rows > 0.7
    flags = pc.value_counts(trips["store_and_fwd_flag"]).to_pylist()
    assert {f["values"]: f["counts"] for f in flags}["N"] > 0.9 * trips.num_rows


def test_fares_and_distances_are_plausible(trips: pa.Table) -> None:
    """JFK trips are flat $70; median distance 1-3 miles; negatives only for refunded disputes."""
    jfk = pc.filter(trips["fare_amount"], pc.equal(trips["RatecodeID"], 2))
    assert len(jfk) > 0 and pc.all(pc.equal(pc.abs(jfk), 70.0)).as_py()
    assert 1.0 < pc.approximate_median(trips["trip_distance"]).as_py() < 3.0
    assert pc.min(trips["trip_distance"]).as_py() >= 0
    negative = pc.less(trips["total_amount"], 0.0)
    assert pc.any(negative).as_py()
    refunded = pc.filter(trips["payment_type"], negative)
    assert pc.all(pc.is_in(refunded, pa.array([3, 4]))).as_py()


def test_batches_stream_at_the_requested_size() -> None:
    """Every batch has exactly batch_size rows except a shorter last one; the total is exact."""
    sizes = [b.num_rows for b in taxi.generate_batches(250_001, batch_size=100_000)]
    assert sizes == [100_000, 100_000, 50_001]
    assert [b.num_rows for b in taxi.generate_batches(10, batch_size=4)] == [4, 4, 2]
    assert list(taxi.generate_batches(0)) == []


def test_split_files_are_time_ordered_and_equal_the_single_stream(tmp_path: Path) -> None:
    """--files K writes K files whose concatenation is the single stream, each newer than the last."""
    paths = taxi.write_parquet_files(tmp_path / "drops", 30_000, files=4, seed=9, row_group_size=7_000)
    assert [p.name for p in paths] == [f"taxi_trips-0000{i}.parquet" for i in range(4)]
    tables = [pq.read_table(p) for p in paths]
    assert [t.num_rows for t in tables] == [7_500] * 4
    for older, newer in itertools.pairwise(tables):
        assert pc.max(older["tpep_pickup_datetime"]).as_py() <= pc.min(newer["tpep_pickup_datetime"]).as_py()
    assert pa.concat_tables(tables).equals(taxi.generate_table(30_000, seed=9))
    assert not list(tmp_path.glob("drops/.*"))  # no temporary files left behind


def test_cli_writes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI writes the requested rows (one file, or K files in a directory) and reports it."""
    assert taxi.main(["--rows", "1000", "--out", str(tmp_path / "one.parquet"), "--seed", "1"]) == 0
    assert pq.read_metadata(tmp_path / "one.parquet").num_rows == 1000
    args = ["--rows", "1000", "--out", str(tmp_path / "dir"), "--files", "2", "--start", "2024-03-01T06:00"]
    assert taxi.main(args) == 0
    first = pq.read_table(tmp_path / "dir" / "taxi_trips-00000.parquet")
    assert first["tpep_pickup_datetime"][0].as_py() >= datetime(2024, 3, 1, 6)
    assert "Wrote 1,000 taxi trips" in capsys.readouterr().out


def test_invalid_arguments_are_rejected() -> None:
    """Negative row counts and non-positive batch sizes fail with a clear error."""
    with pytest.raises(ValueError, match="rows"):
        list(taxi.generate_batches(-1))
    with pytest.raises(ValueError, match="batch_size"):
        list(taxi.generate_batches(10, batch_size=0))
