"""Predicates on a dataset's ``time_column`` for append watermarks, data windows and retention.

Every ``time_format`` is reduced to one comparable "instant" expression and a literal of the same
kind, so the three features share one implementation: unix formats compare as numbers, ISO-8601
strings as timestamps, timestamp/timestamptz/date columns as themselves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.spicepod.model import TimeFormat
from airflow_provider_accel.sql.refresh_sql import quote_identifier

_NUMERIC_FORMATS = {TimeFormat.UNIX_SECONDS: 1, TimeFormat.UNIX_MILLIS: 1000}


@dataclass(frozen=True)
class TimeColumn:
    """A dataset's time column and how its values are to be compared."""

    name: str
    time_format: TimeFormat | None = None

    @property
    def is_numeric(self) -> bool:
        return self.time_format in _NUMERIC_FORMATS

    def instant_sql(self, qualifier: str | None = None) -> str:
        """The column as an expression that orders chronologically."""
        column = quote_identifier(self.name)
        if qualifier:
            column = f"{qualifier}.{column}"
        if self.time_format == TimeFormat.ISO8601:
            return f"CAST({column} AS TIMESTAMPTZ)"
        return column

    def literal(self, value: Any) -> str:
        """A SQL literal comparable with :meth:`instant_sql` (value as returned by DuckDB)."""
        if self.is_numeric:
            if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
                raise TerminalRefreshError(
                    f"time_column {self.name!r} is declared {self.time_format} but holds "
                    f"{type(value).__name__} values; use a numeric column or another time_format."
                )
            return repr(float(value)) if isinstance(value, float) else str(value)
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                return f"TIMESTAMPTZ '{value.astimezone(dt.UTC).isoformat(sep=' ')}'"
            return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
        if isinstance(value, dt.date):
            return f"DATE '{value.isoformat()}'"
        raise TerminalRefreshError(
            f"time_column {self.name!r} holds {type(value).__name__} values, which are not timestamps; "
            "set time_format (unix_seconds, unix_millis, ISO8601, ...) to say how to read them."
        )

    def minus(self, value: Any, delta: dt.timedelta) -> Any:
        """``value - delta`` in the column's own units."""
        if self.is_numeric:
            units = delta.total_seconds() * _NUMERIC_FORMATS[self.time_format]  # type: ignore[index]
            result = value - (Decimal(str(units)) if isinstance(value, Decimal) else units)
            return int(result) if isinstance(value, int) and float(units).is_integer() else result
        if isinstance(value, dt.datetime):
            return value - delta
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time()) - delta
        return value

    def from_instant(self, instant: dt.datetime) -> Any:
        """An aware UTC instant (such as ``now - window``) in the column's own units."""
        instant = instant.astimezone(dt.UTC)
        if self.time_format == TimeFormat.UNIX_SECONDS:
            return instant.timestamp()
        if self.time_format == TimeFormat.UNIX_MILLIS:
            return instant.timestamp() * 1000
        if self.time_format in (TimeFormat.TIMESTAMP, TimeFormat.DATE):
            # Naive timestamps are UTC, as Spice reads them.
            return instant.replace(tzinfo=None)
        return instant

    def after(self, value: Any, qualifier: str | None = None) -> str:
        """``time_column > value`` (strictly greater, as Spice's data window is)."""
        return f"{self.instant_sql(qualifier)} > {self.literal(value)}"

    def at_or_after(self, value: Any, qualifier: str | None = None) -> str:
        """``time_column >= value``: the append cutoff.

        A strict ``>`` loses rows that share the watermark's instant (or day, for a ``date`` column)
        but arrive in a later batch; Spice moved to ``>=`` plus dedup for that reason (its PR #12500).
        """
        return f"{self.instant_sql(qualifier)} >= {self.literal(value)}"

    def before(self, value: Any, qualifier: str | None = None) -> str:
        """``time_column < value`` (retention)."""
        return f"{self.instant_sql(qualifier)} < {self.literal(value)}"
