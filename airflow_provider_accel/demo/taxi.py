"""A deterministic, realistic generator of NYC yellow-taxi-shaped trips (the seed's ``taxi_trips``).

The schema matches the TLC's 2024 yellow trip Parquet files column for column (names, types,
nullability); the values follow their published fare rules and rough distributions:

* pickups are non-decreasing in time at about 100,000 trips a day with a day/night rhythm, so a
  stream cut into consecutive files gives "drops" of ever newer data for append demos;
* about 3.5% of trips lack the meter metadata, as in the real files: ``passenger_count``,
  ``RatecodeID``, ``store_and_fwd_flag``, ``congestion_surcharge`` and ``Airport_fee`` are null
  and ``payment_type`` is 0 (flex fare);
* fares follow the 2024 meter ($3.00 initial, $0.70 per unit), JFK trips are flat $70, tips are
  recorded for card (and flex) payments only, refunds of disputed or no-charge trips are negative;
* money is computed in integer cents, so ``total_amount`` is exactly the sum of its parts.

Only ``pyarrow.compute`` is used (numpy is not a dependency of the provider): every column is a
vectorised function of uniform random arrays from ``pc.random``, seeded per fixed-size block and
per column. The output is therefore a pure function of ``(rows, seed, start)``: the batch size or
the number of output files changes how rows are cut, never their values.

Command line::

    python -m airflow_provider_accel.demo.taxi --rows 200000 --out data/taxi_trips --files 4
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

DEFAULT_START = datetime(2024, 1, 1)

#: Rows generated per random draw. Fixed (not the caller's batch size) so that output values
#: do not depend on how the stream is cut.
_BLOCK = 1 << 16
#: Resolution of the lookup tables that turn a uniform draw into a categorical value.
_RES = 10_000
#: NYC yellow cabs made ~96k trips a day in January 2024.
TRIPS_PER_DAY = 100_000
_US_PER_DAY = 86_400 * 1_000_000

SCHEMA = pa.schema(
    [
        pa.field("VendorID", pa.int32()),
        pa.field("tpep_pickup_datetime", pa.timestamp("us")),
        pa.field("tpep_dropoff_datetime", pa.timestamp("us")),
        pa.field("passenger_count", pa.int64()),
        pa.field("trip_distance", pa.float64()),
        pa.field("RatecodeID", pa.int64()),
        pa.field("store_and_fwd_flag", pa.string()),
        pa.field("PULocationID", pa.int32()),
        pa.field("DOLocationID", pa.int32()),
        pa.field("payment_type", pa.int64()),
        pa.field("fare_amount", pa.float64()),
        pa.field("extra", pa.float64()),
        pa.field("mta_tax", pa.float64()),
        pa.field("tip_amount", pa.float64()),
        pa.field("tolls_amount", pa.float64()),
        pa.field("improvement_surcharge", pa.float64()),
        pa.field("total_amount", pa.float64()),
        pa.field("congestion_surcharge", pa.float64()),
        pa.field("Airport_fee", pa.float64()),
    ]
)

#: Columns whose sum is ``total_amount`` (nulls count as 0).
AMOUNT_PARTS = (
    "fare_amount",
    "extra",
    "mta_tax",
    "tip_amount",
    "tolls_amount",
    "improvement_surcharge",
    "congestion_surcharge",
    "Airport_fee",
)

# Share of trips without meter metadata (the real files have 3-5%).
MISSING_META_RATIO = 0.035

# Relative pickups per hour of day (TLC 2024, rounded): quiet at 4-5am, peak at 6pm.
_HOURLY: tuple[float, ...] = (2.8, 1.9, 1.3, 0.9, 0.6, 0.6, 1.5, 2.9, 3.8, 4.1, 4.3, 4.6)
_HOURLY += (5.0, 5.2, 5.7, 6.0, 6.1, 6.8, 7.1, 6.3, 5.5, 5.4, 5.0, 3.9)

JFK, LGA, EWR = 132, 138, 1
# Busiest zones first (Manhattan, then the airports' neighbours); 264/265 are TLC's "unknown".
_POPULAR_ZONES = (
    161, 237, 236, 162, 230, 186, 142, 170, 163, 239, 234, 48, 68, 79, 107, 140, 141, 100, 90, 249,
    113, 164, 263, 262, 43, 229, 151, 246, 233, 137, 158, 125, 211, 231, 13, 87, 88, 261, 144, 114,
    45, 148, 4, 24, 41, 42, 74, 75, 166, 238, 143, 50, 224, 232, 116, 152, 244, 7, 223, 264, 265,
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Randomness


def _splitmix64(x: int) -> int:
    """One splitmix64 step: decorrelates the per-(seed, block, column) seeds of ``pc.random``."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


class _Draws:
    """Independent uniform arrays for one block: one stream per column, named for stability."""

    def __init__(self, seed: int, block: int, n: int) -> None:
        self._base = _splitmix64(_splitmix64(seed & 0xFFFFFFFFFFFFFFFF) ^ block)
        self._n = n

    def uniform(self, stream: str) -> pa.Array:
        # A stream's seed depends on its name only, so adding a column never shifts the others.
        key = int.from_bytes(hashlib.blake2b(stream.encode(), digest_size=8).digest(), "little")
        return pc.random(self._n, initializer=_splitmix64(self._base ^ key))

    def normal(self, stream: str) -> pa.Array:
        """Standard normal draws (Box-Muller)."""
        u1 = pc.subtract(1.0, self.uniform(stream + ".r"))  # (0, 1]: log is finite
        u2 = self.uniform(stream + ".t")
        radius = pc.sqrt(pc.multiply(-2.0, pc.ln(u1)))
        return pc.multiply(radius, pc.cos(pc.multiply(2 * math.pi, u2)))

    def exponential(self, stream: str, mean: float) -> pa.Array:
        return pc.multiply(-mean, pc.ln(pc.subtract(1.0, self.uniform(stream))))


def _table(weights: dict[int, float], res: int = _RES) -> pa.Array:
    """A lookup table in which each value occupies a share of slots proportional to its weight."""
    total = sum(weights.values())
    values: list[int] = []
    for value, weight in weights.items():
        values += [value] * max(1, round(weight / total * res))
    return pa.array(values, pa.int64())


def _pick(u: pa.Array, table: pa.Array) -> pa.Array:
    """Categorical draw: the table slot that a uniform value falls into."""
    idx = pc.cast(pc.floor(pc.multiply(u, float(len(table)))), pa.int64())
    return pc.take(table, pc.min_element_wise(idx, len(table) - 1))


def _bernoulli(u: pa.Array, p: float) -> pa.Array:
    return pc.less(u, p)


def _zone_table() -> pa.Array:
    # Zipf-like weights over the popular zones, 6% spread over every zone id, airports explicit.
    weights: dict[int, float] = {zone: 1.0 / (rank + 4) for rank, zone in enumerate(_POPULAR_ZONES)}
    popular = sum(weights.values())
    weights = {zone: w / popular * 0.885 for zone, w in weights.items()}
    for zone in range(1, 264):
        weights[zone] = weights.get(zone, 0.0) + 0.06 / 263
    weights[JFK] = weights.get(JFK, 0.0) + 0.03
    weights[LGA] = weights.get(LGA, 0.0) + 0.025
    return _table(weights, res=100_000)


def _inverse_day_cdf() -> pa.Array:
    """Knots of the inverse CDF of pickup time-of-day (fraction of trips -> fraction of day)."""
    total = sum(_HOURLY)
    cum = [0.0]
    for w in _HOURLY:
        cum.append(cum[-1] + w / total)
    knots: list[float] = []
    hour = 0
    for k in range(_RES + 1):
        f = k / _RES
        while hour < 23 and f >= cum[hour + 1]:
            hour += 1
        knots.append((hour + (f - cum[hour]) / (cum[hour + 1] - cum[hour])) / 24)
    knots[-1] = 1.0
    return pa.array(knots, pa.float64())


_VENDOR = _table({1: 0.27, 2: 0.728, 6: 0.002})
_RATECODE = _table({1: 0.935, 2: 0.04, 3: 0.003, 4: 0.002, 5: 0.007, 99: 0.013})
_PASSENGERS = _table({0: 0.012, 1: 0.765, 2: 0.15, 3: 0.032, 4: 0.018, 5: 0.013, 6: 0.01})
# Among trips with meter metadata: card, cash, no charge, dispute.
_PAYMENT = _table({1: 0.815, 2: 0.152, 3: 0.009, 4: 0.024})
# Tip screen: no tip, the 20/25/30% buttons, or a custom amount (code 0 = custom).
_TIP_CHOICE = _table({-1: 0.12, 20: 0.38, 25: 0.15, 30: 0.08, 0: 0.27})
_ZONES = _zone_table()
_DAY_KNOTS = _inverse_day_cdf()


# --------------------------------------------------------------------------------------------
# One block


def _f64(values: pa.Array | float) -> pa.Array:
    return pc.cast(values, pa.float64())


def _i64(values: pa.Array) -> pa.Array:
    return pc.cast(pc.round(values), pa.int64())


def _null_where(mask: pa.Array, values: pa.Array) -> pa.Array:
    return pc.if_else(mask, pa.scalar(None, values.type), values)


def _cents_to_dollars(cents: pa.Array) -> pa.Array:
    return pc.divide(pc.cast(cents, pa.float64()), 100.0)


def _pickup_days(draws: _Draws, offset_days: float) -> tuple[pa.Array, float]:
    """Pickup times in days since ``start``, non-decreasing, and the offset for the next block.

    A Poisson stream in "trip time" (cumulative exponential gaps) is warped into wall-clock time
    through the hourly profile's inverse CDF, day by day: monotone, so order is preserved.
    """
    gaps = draws.exponential("gap", 1.0 / TRIPS_PER_DAY)
    virtual = pc.add(pc.cumulative_sum(gaps), offset_days)
    day = pc.floor(virtual)
    frac = pc.multiply(pc.subtract(virtual, day), float(_RES))  # in [0, _RES)
    k = pc.min_element_wise(pc.cast(pc.floor(frac), pa.int64()), _RES - 1)
    lo = pc.take(_DAY_KNOTS, k)
    hi = pc.take(_DAY_KNOTS, pc.add(k, 1))
    within = pc.add(lo, pc.multiply(pc.subtract(hi, lo), pc.subtract(frac, _f64(k))))
    return pc.add(day, within), virtual[-1].as_py()


def _block(draws: _Draws, n: int, start_us: int, offset_days: float) -> tuple[pa.RecordBatch, float]:
    days, next_offset = _pickup_days(draws, offset_days)
    # Whole seconds, like the real files; floor keeps the order.
    pickup_s = pc.cast(pc.floor(pc.multiply(days, 86_400.0)), pa.int64())
    pickup_us = pc.add(pc.multiply(pickup_s, 1_000_000), start_us)
    pickup = pc.cast(pickup_us, pa.timestamp("us"))

    missing = _bernoulli(draws.uniform("missing"), MISSING_META_RATIO)
    vendor = pc.cast(_pick(draws.uniform("vendor"), _VENDOR), pa.int32())
    ratecode = _pick(draws.uniform("ratecode"), _RATECODE)
    ratecode = pc.if_else(missing, 1, ratecode)  # priced as standard, reported as null below
    passengers = _pick(draws.uniform("passengers"), _PASSENGERS)
    store_fwd = pc.if_else(_bernoulli(draws.uniform("store_fwd"), 0.005), "Y", "N")
    payment = pc.if_else(missing, 0, _pick(draws.uniform("payment"), _PAYMENT))

    # Locations: JFK flat-rate trips start or end at JFK, Newark ones end at EWR.
    pu = _pick(draws.uniform("pu"), _ZONES)
    do = _pick(draws.uniform("do"), _ZONES)
    jfk_trip = pc.equal(ratecode, 2)
    jfk_outbound = pc.and_(jfk_trip, _bernoulli(draws.uniform("jfk_dir"), 0.5))
    pu = pc.if_else(pc.and_(jfk_trip, pc.invert(jfk_outbound)), JFK, pu)
    do = pc.if_else(jfk_outbound, JFK, do)
    do = pc.if_else(pc.equal(ratecode, 3), EWR, do)
    pu_airport = pc.is_in(pu, pa.array([JFK, LGA], pa.int64()))
    do_airport = pc.is_in(do, pa.array([JFK, LGA, EWR], pa.int64()))
    airport = pc.or_(pu_airport, do_airport)

    # Distance (miles): lognormal around 1.7 mi in town, ~17 mi JFK, ~10 mi LGA, ~17 EWR, some zeros.
    town = pc.exp(pc.add(math.log(1.7), pc.multiply(0.9, draws.normal("dist"))))
    far = pc.add(17.0, pc.multiply(3.0, draws.normal("dist_air")))
    lga = pc.add(10.0, pc.multiply(2.5, draws.normal("dist_air")))
    to_lga = pc.or_(pc.equal(pu, LGA), pc.equal(do, LGA))
    to_far = pc.or_(pc.or_(pc.equal(pu, JFK), pc.equal(do, JFK)), pc.equal(do, EWR))
    distance = pc.if_else(to_far, far, pc.if_else(to_lga, lga, town))
    distance = pc.if_else(_bernoulli(draws.uniform("zero_dist"), 0.012), 0.0, distance)
    distance = pc.min_element_wise(pc.max_element_wise(distance, 0.0), 80.0)
    distance = pc.round(distance, 2)

    # Duration: a speed that grows with distance (highways), noise, and time at the kerb.
    speed = pc.multiply(
        pc.multiply(9.0, pc.power(pc.add(1.0, pc.divide(distance, 4.0)), 0.5)),
        pc.exp(pc.multiply(0.25, draws.normal("speed"))),
    )
    duration_s = pc.add(pc.multiply(pc.divide(distance, speed), 3600.0), draws.exponential("kerb", 75.0))
    duration_s = pc.cast(pc.round(duration_s), pa.int64())
    dropoff = pc.cast(pc.add(pickup_us, pc.multiply(duration_s, 1_000_000)), pa.timestamp("us"))

    # Fare (cents): 2024 meter is $3.00 + $0.70 per 1/5 mile or per minute stopped/slow.
    minutes = pc.divide(_f64(duration_s), 60.0)
    units = _i64(pc.add(pc.multiply(distance, 5.0), pc.multiply(minutes, 0.35)))
    metered = pc.add(300, pc.multiply(units, 70))
    negotiated = pc.multiply(_i64(pc.divide(pc.multiply(_f64(metered), 1.1), 100.0)), 100)
    fare = pc.case_when(
        pc.make_struct(pc.equal(ratecode, 2), pc.equal(ratecode, 3), pc.equal(ratecode, 5)),
        7000,
        pc.add(metered, 2000),  # Newark surcharge
        negotiated,
        metered,
    )

    hour = pc.hour(pickup)
    weekday = pc.less(pc.day_of_week(pickup), 5)  # Monday = 0
    overnight = pc.or_(pc.greater_equal(hour, 20), pc.less(hour, 6))
    rush = pc.and_(weekday, pc.and_(pc.greater_equal(hour, 16), pc.less(hour, 20)))
    extra = pc.if_else(overnight, 100, pc.if_else(rush, 250, 0))
    extra = pc.add(extra, pc.if_else(pc.equal(pu, LGA), 500, 0))  # LaGuardia pickup surcharge
    mta_tax = pc.if_else(pc.equal(ratecode, 5), 0, 50)
    improvement = pa.repeat(pa.scalar(100, pa.int64()), n)
    toll_p = pc.if_else(airport, 0.4, 0.06)
    tolls = pc.if_else(pc.less(draws.uniform("tolls"), toll_p), 694, 0)
    # Trips touching Manhattan south of 96th St pay the congestion surcharge.
    congestion = pc.if_else(_bernoulli(draws.uniform("congestion"), 0.92), 250, 0)
    airport_fee = pc.if_else(pu_airport, 175, 0)
    # Both are reported as null without meter metadata; count them as 0 so the total adds up.
    congestion = pc.if_else(missing, 0, congestion)
    airport_fee = pc.if_else(missing, 0, airport_fee)

    # Tips are recorded for card (and flex) payments only; cash tips never reach the meter.
    subtotal = pc.add(pc.add(pc.add(fare, extra), pc.add(mta_tax, improvement)), tolls)
    subtotal = pc.add(subtotal, pc.add(congestion, airport_fee))
    choice = _pick(draws.uniform("tip"), _TIP_CHOICE)
    custom = pc.min_element_wise(
        pc.max_element_wise(pc.add(0.18, pc.multiply(0.05, draws.normal("tip_pct"))), 0.05), 0.5
    )
    pct = pc.if_else(pc.equal(choice, 0), custom, pc.divide(_f64(choice), 100.0))
    pct = pc.if_else(pc.less(choice, 0), 0.0, pct)
    tipped = pc.is_in(payment, pa.array([0, 1], pa.int64()))
    tip = pc.if_else(tipped, _i64(pc.multiply(_f64(subtotal), pct)), 0)

    # About half of disputed / no-charge trips appear as refunds: every amount negated.
    refund = pc.and_(
        pc.is_in(payment, pa.array([3, 4], pa.int64())), _bernoulli(draws.uniform("refund"), 0.5)
    )
    sign = pc.if_else(refund, -1, 1)
    parts = {
        "fare_amount": fare,
        "extra": extra,
        "mta_tax": mta_tax,
        "tip_amount": tip,
        "tolls_amount": tolls,
        "improvement_surcharge": improvement,
        "congestion_surcharge": congestion,
        "Airport_fee": airport_fee,
    }
    cents = {name: pc.multiply(pc.cast(v, pa.int64()), sign) for name, v in parts.items()}
    total = cents["fare_amount"]
    for name in AMOUNT_PARTS[1:]:
        total = pc.add(total, cents[name])
    dollars = {name: _cents_to_dollars(v) for name, v in cents.items()}

    columns = {
        "VendorID": vendor,
        "tpep_pickup_datetime": pickup,
        "tpep_dropoff_datetime": dropoff,
        "passenger_count": _null_where(missing, passengers),
        "trip_distance": distance,
        "RatecodeID": _null_where(missing, ratecode),
        "store_and_fwd_flag": _null_where(missing, store_fwd),
        "PULocationID": pc.cast(pu, pa.int32()),
        "DOLocationID": pc.cast(do, pa.int32()),
        "payment_type": payment,
        "fare_amount": dollars["fare_amount"],
        "extra": dollars["extra"],
        "mta_tax": dollars["mta_tax"],
        "tip_amount": dollars["tip_amount"],
        "tolls_amount": dollars["tolls_amount"],
        "improvement_surcharge": dollars["improvement_surcharge"],
        "total_amount": _cents_to_dollars(total),
        "congestion_surcharge": _null_where(missing, dollars["congestion_surcharge"]),
        "Airport_fee": _null_where(missing, dollars["Airport_fee"]),
    }
    arrays = [pc.cast(columns[f.name], f.type) for f in SCHEMA]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA), next_offset


# --------------------------------------------------------------------------------------------
# Public API


def _start_us(start: datetime) -> int:
    # The TLC files hold naive New York wall-clock times; an aware start is converted to UTC.
    if start.tzinfo is not None:
        start = start.astimezone(UTC).replace(tzinfo=None)
    delta = start - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _blocks(rows: int, seed: int, start: datetime) -> Iterator[pa.RecordBatch]:
    start_us = _start_us(start)
    offset = 0.0
    for block, first in enumerate(range(0, rows, _BLOCK)):
        n = min(_BLOCK, rows - first)
        batch, offset = _block(_Draws(seed, block, n), n, start_us, offset)
        yield batch


def generate_batches(
    rows: int,
    *,
    seed: int = 42,
    start: datetime = DEFAULT_START,
    batch_size: int = 1_000_000,
) -> Iterator[pa.RecordBatch]:
    """Stream ``rows`` taxi trips as record batches of exactly ``batch_size`` rows (the last may be short).

    Memory stays bounded by about two batches whatever ``rows`` is. The values depend only on
    ``(rows, seed, start)``; pickups start at ``start`` and never go back in time.
    """
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for block in _blocks(rows, seed, start):
        pending.append(block)
        pending_rows += block.num_rows
        while pending_rows >= batch_size:
            merged = _concat(pending)
            yield merged.slice(0, batch_size)
            rest = merged.slice(batch_size)
            pending, pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
    if pending_rows:
        yield _concat(pending)


def _concat(batches: Sequence[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches, schema=SCHEMA).combine_chunks().to_batches()[0]


def generate_table(rows: int, *, seed: int = 42, start: datetime = DEFAULT_START) -> pa.Table:
    """All ``rows`` trips in memory (for tests and small samples)."""
    return pa.Table.from_batches(list(generate_batches(rows, seed=seed, start=start)), schema=SCHEMA)


def write_parquet(
    path: str | Path,
    rows: int,
    *,
    seed: int = 42,
    start: datetime = DEFAULT_START,
    row_group_size: int = 1_000_000,
) -> Path:
    """Write ``rows`` trips to one Parquet file, streaming one row group per batch."""
    return write_parquet_files(path, rows, files=None, seed=seed, start=start, row_group_size=row_group_size)[
        0
    ]


def write_parquet_files(
    out: str | Path,
    rows: int,
    *,
    files: int | None,
    seed: int = 42,
    start: datetime = DEFAULT_START,
    row_group_size: int = 1_000_000,
) -> list[Path]:
    """Write the trip stream to one file (``files=None``) or ``files`` consecutive files in a directory.

    Files are named ``taxi_trips-00000.parquet``, ... in time order: each file's trips are no
    older than the previous file's, so copying them into a source directory one at a time
    simulates drops of new data. The concatenated contents equal the single-file output.
    """
    out = Path(out)
    if files is None:
        paths = [out]
        out.parent.mkdir(parents=True, exist_ok=True)
        bounds = [0, rows]
    else:
        if files < 1:
            raise ValueError(f"files must be >= 1, got {files}")
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f"taxi_trips-{i:05d}.parquet" for i in range(files)]
        bounds = [rows * i // files for i in range(files + 1)]

    stream = generate_batches(rows, seed=seed, start=start, batch_size=row_group_size)
    carry: pa.RecordBatch | None = None
    for i, path in enumerate(paths):
        need = bounds[i + 1] - bounds[i]
        # Write to a temporary name first: a reader scanning the directory never sees half a file.
        tmp = path.with_name(f".{path.name}.tmp")
        with pq.ParquetWriter(tmp, SCHEMA) as writer:
            while need > 0:
                if carry is None:
                    carry = next(stream)
                take = min(need, carry.num_rows)
                writer.write_batch(carry.slice(0, take), row_group_size=row_group_size)
                carry = carry.slice(take) if take < carry.num_rows else None
                need -= take
        tmp.replace(path)
    return paths


def _parse_start(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--start must be an ISO-8601 date or datetime: {err}") from err


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_accel.demo.taxi",
        description="Generate deterministic NYC-yellow-taxi-shaped trips as Parquet.",
    )
    parser.add_argument("--rows", type=int, required=True, help="number of trips")
    parser.add_argument("--out", type=Path, required=True, help="output file, or directory with --files")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument(
        "--start",
        type=_parse_start,
        default=DEFAULT_START,
        help="first pickup time, ISO-8601 (default 2024-01-01)",
    )
    parser.add_argument(
        "--files",
        type=int,
        default=None,
        help="write K time-ordered files into the --out directory instead of one file",
    )
    parser.add_argument("--row-group-size", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be >= 0")
    if args.files is not None and args.files < 1:
        parser.error("--files must be >= 1")

    began = time.monotonic()
    paths = write_parquet_files(
        args.out,
        args.rows,
        files=args.files,
        seed=args.seed,
        start=args.start,
        row_group_size=args.row_group_size,
    )
    elapsed = time.monotonic() - began
    where = args.out if args.files is None else f"{len(paths)} files in {args.out}"
    print(f"Wrote {args.rows:,} taxi trips to {where} in {elapsed:.1f}s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
