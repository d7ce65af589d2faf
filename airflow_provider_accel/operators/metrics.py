"""Refresh metrics through Airflow's own ``Stats`` (StatsD, Datadog or OpenTelemetry, as configured).

Names are Spice's dataset acceleration metric names, each tagged ``dataset=<name>``. Which backend
receives them, and whether tags travel, is the deployment's ``[metrics]`` configuration, exactly as
for Airflow's own metrics: plain StatsD drops tags unless ``statsd_influxdb_enabled`` is on; Datadog
and OpenTelemetry carry them natively. See docs/metrics.md for the table.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from airflow.sdk.observability.stats import Stats

if TYPE_CHECKING:
    from airflow_provider_accel.accelerator.result import RefreshResult

log = logging.getLogger(__name__)

ROWS_WRITTEN = "dataset_acceleration_refresh_rows_written"
BYTES_WRITTEN = "dataset_acceleration_refresh_bytes_written"
DURATION_MS = "dataset_acceleration_refresh_duration_ms"
ERRORS = "dataset_acceleration_refresh_errors"
SIZE_BYTES = "dataset_acceleration_size_bytes"
LAG_MS = "dataset_acceleration_refresh_lag_ms"


def _tags(dataset: str) -> dict[str, str]:
    return {"dataset": dataset}


def parse_watermark(watermark: str | None) -> dt.datetime | None:
    """The watermark (an ISO timestamp, as the refresh summary carries it) as an aware UTC datetime."""
    if not watermark:
        return None
    try:
        moment = dt.datetime.fromisoformat(watermark)
    except ValueError:  # a numeric or otherwise non-timestamp time_column: no lag to report
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def refresh_lag_ms(result: RefreshResult, now: dt.datetime | None = None) -> int | None:
    """The age of the newest accelerated row at the end of an append, in milliseconds."""
    if result.mode != "append":
        return None
    newest = parse_watermark(result.watermark)
    if newest is None:
        return None
    now = now or dt.datetime.now(dt.UTC)
    return max(0, round((now - newest).total_seconds() * 1000))


def file_size(path: str) -> int | None:
    import os

    try:
        return os.stat(path).st_size
    except OSError:
        return None


def emit_refresh_success(result: RefreshResult, *, now: dt.datetime | None = None) -> None:
    """Counters, timing and gauges of one successful refresh."""
    tags = _tags(result.dataset)
    Stats.incr(ROWS_WRITTEN, count=result.rows, tags=tags)
    Stats.incr(BYTES_WRITTEN, count=result.bytes, tags=tags)
    Stats.timing(DURATION_MS, result.duration_ms, tags=tags)
    size = file_size(result.path)
    if size is not None:
        Stats.gauge(SIZE_BYTES, size, tags=tags)
    lag = refresh_lag_ms(result, now)
    if lag is not None:
        Stats.gauge(LAG_MS, lag, tags=tags)


def emit_refresh_error(dataset: str) -> None:
    """One failed refresh attempt (retried or not)."""
    Stats.incr(ERRORS, tags=_tags(dataset))
