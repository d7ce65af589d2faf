"""Fixtures of the refresh_sql tests: a small real ``taxi_trips`` table in DuckDB."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

# The package is not necessarily installed into the virtualenv (no editable install yet): make the
# checkout importable so these tests run with a bare `.venv/bin/pytest tests/sql`.
_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

#: Column names of the test table, as a source would report them.
_TAXI_COLUMNS: tuple[str, ...] = (
    "id",
    "passenger_count",
    "fare",
    "vendor",
    "pickup",
    "flag",
    "Mixed Case",
    'we"ird',
    "select",
)

_ROWS = [
    (1, 1, 10.5, "acme", "2024-01-01 08:00:00", True, "A", 1, 1),
    (2, 2, 22.0, "Acme", "2024-01-02 09:30:00", False, "b", 2, 2),
    (3, 2, 5.25, "zeta", "2024-02-10 23:59:59", None, None, 3, 3),
    (4, None, 0.0, None, None, True, "C", None, None),
    (5, 4, 100.0, "beta's", "2023-12-31 00:00:00", False, "d", 5, 5),
    (6, 3, -3.5, "100%", "2024-03-01 12:00:00", True, "E", 6, 6),
    (7, 6, 61.0, "a_b", "2024-01-15 06:00:00", True, "f", 7, 7),
    (8, 1, 7.75, "ACME", "2022-06-30 18:45:00", False, "g", 8, 8),
    (9, 0, None, "omega", "2024-05-05 05:05:05", None, "H", 9, 9),
    (10, 2, 33.3, "", "2024-01-01 00:00:00", True, "", 10, 10),
    (11, 5, 12.0, "x;DROP", "2024-07-04 04:00:00", False, "k", 11, 11),
    (12, 2, 2.0, "Zeta", "2021-01-01 00:00:00", True, "L", 12, 12),
]


def _make_taxi_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create and fill ``taxi_trips`` (with awkward column names) on ``con``."""
    con.execute(
        "CREATE TABLE taxi_trips (id INTEGER, passenger_count INTEGER, fare DOUBLE, vendor VARCHAR, "
        'pickup TIMESTAMP, flag BOOLEAN, "Mixed Case" VARCHAR, "we""ird" INTEGER, "select" INTEGER)'
    )
    con.executemany("INSERT INTO taxi_trips VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", _ROWS)


@pytest.fixture(scope="module")
def taxi_db() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB holding the ``taxi_trips`` test table."""
    con = duckdb.connect(":memory:")
    _make_taxi_table(con)
    yield con
    con.close()


@pytest.fixture(scope="session")
def taxi_columns() -> tuple[str, ...]:
    """The column names of the ``taxi_trips`` test table."""
    return _TAXI_COLUMNS
