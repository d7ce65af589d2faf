"""Spice's acceleration metrics of real refreshes (dag.test), received by a UDP StatsD listener."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.utils.state import DagRunState

from airflow_provider_accel.dags.factory import load_dags

SPICEPOD = """
version: v1
kind: Spicepod
name: metrics
datasets:
  - from: file:{src}/readings.csv
    name: readings
    params: {{file_format: csv}}
    time_column: ts
    acceleration:
      enabled: true
      refresh_mode: {mode}
"""

#: ``airflow.<name>,dataset=<dataset>:<value>|<type>`` (StatsD with InfluxDB-style tags).
LINE = re.compile(
    r"^airflow\.(?P<name>[a-z_]+),dataset=(?P<dataset>[^:]+):(?P<value>[0-9.]+)\|(?P<type>c|g|ms)$"
)


class StatsdListener:
    """A UDP socket on a free port that collects every StatsD line sent to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]

    def drain(self) -> list[dict[str, str]]:
        lines: list[str] = []
        while True:
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                break
            lines.extend(data.decode().splitlines())
        return [m.groupdict() for line in lines if (m := LINE.match(line))]


@pytest.fixture
def statsd(monkeypatch: pytest.MonkeyPatch) -> Iterator[StatsdListener]:
    """Airflow's StatsD backend pointed at the listener, initialised as the task runner does it."""
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    listener = StatsdListener()
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(listener.port))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED", "True")
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    try:
        yield listener
    finally:
        from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger

        stats.initialize(factory=NoStatsLogger, export_legacy_names=False)
        listener.sock.close()


def ours(received: list[dict[str, str]]) -> dict[str, tuple[str, float]]:
    return {m["name"]: (m["type"], float(m["value"])) for m in received if m["name"].startswith("dataset_")}


def write_readings(src: Path, ids: range, start: dt.datetime) -> None:
    """Reading ``i`` is taken at ``start + i`` minutes."""
    src.mkdir(parents=True, exist_ok=True)
    lines = ["id,ts,value"] + [
        f"{i},{(start + dt.timedelta(minutes=i)).strftime('%Y-%m-%d %H:%M:%S')},{i}" for i in ids
    ]
    (src / "readings.csv").write_text("\n".join(lines) + "\n")


def test_full_then_append_refresh_send_spice_metrics_tagged_with_the_dataset(
    spicepod_env, src_dir: Path, statsd: StatsdListener
) -> None:
    """rows/bytes written, duration and size after each refresh; refresh lag after the append."""
    data_dir = spicepod_env(SPICEPOD, mode="full")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    start = now - dt.timedelta(hours=2, minutes=99)  # reading 99 is two hours old, reading 159 one hour
    write_readings(src_dir, range(100), start)
    assert load_dags()["accelerate_readings"].test().state == DagRunState.SUCCESS
    received = statsd.drain()
    assert {m["dataset"] for m in received if m["name"].startswith("dataset_")} == {"readings"}
    full = ours(received)
    assert full["dataset_acceleration_refresh_rows_written"] == ("c", 100)
    assert full["dataset_acceleration_refresh_bytes_written"][0] == "c"
    assert full["dataset_acceleration_refresh_bytes_written"][1] > 0
    assert full["dataset_acceleration_refresh_duration_ms"][0] == "ms"
    size = os.stat(data_dir / "readings.duckdb").st_size
    assert full["dataset_acceleration_size_bytes"] == ("g", size)
    assert "dataset_acceleration_refresh_lag_ms" not in full  # a full refresh has no lag
    assert "dataset_acceleration_refresh_errors" not in full

    spicepod_env(SPICEPOD, mode="append")
    write_readings(src_dir, range(160), start)
    assert load_dags()["accelerate_readings"].test().state == DagRunState.SUCCESS
    append = ours(statsd.drain())
    assert append["dataset_acceleration_refresh_rows_written"] == ("c", 60)
    kind, lag_ms = append["dataset_acceleration_refresh_lag_ms"]
    # The newest row is one hour old (the CSV's times are UTC): the lag is at least that, and less than
    # an hour more (however slow the machine).
    assert kind == "g" and 3_600_000 <= lag_ms < 7_200_000


def test_failed_refresh_counts_an_error(spicepod_env, src_dir: Path, statsd: StatsdListener) -> None:
    """A refresh that fails increments dataset_acceleration_refresh_errors for its dataset, once per try."""
    spicepod_env(SPICEPOD.replace("readings.csv", "missing.csv"), mode="full")
    assert load_dags()["accelerate_readings"].test().state == DagRunState.FAILED
    errors = [m for m in statsd.drain() if m["name"] == "dataset_acceleration_refresh_errors"]
    assert errors and all(m["dataset"] == "readings" and m["value"] == "1" for m in errors)
    assert not [m for m in statsd.drain() if m["name"] == "dataset_acceleration_refresh_rows_written"]
