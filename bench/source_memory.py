"""Peak memory and pushdown of the PostgreSQL source, measured on the local server.

Usage: ``.venv/bin/python -m bench.source_memory [--rows 1000000 5000000] [--alternatives]``

For each size it creates ``accel_bench.events_<rows>`` (kept between runs; ``--drop`` removes them),
then in a fresh subprocess per measurement runs a full refresh through the accelerator
(``DuckDBAcceleratorHook.refresh``) into a DuckDB file and reports the child's peak RSS
(``ru_maxrss``), rows and seconds. ``--alternatives`` also measures streaming the same table with a
psycopg server-side cursor converted to Arrow in Python (the non-ADBC way). Then the pushdown proof:
a refresh_sql selecting 1% of the rows, with the rows the server sent and the tuples it read
(``pg_stat_user_tables``). Prints one JSON document.

``--source delta`` measures the ``delta_lake:`` source instead: a Delta table of the same columns
written with delta-rs under a temporary directory, one commit per 500,000 rows, then the same full
refresh in a fresh subprocess per size. ``--source iceberg`` does the same with an Iceberg table
(pyiceberg's SQL catalog on SQLite, one append per 500,000 rows) read Hadoop-style with
``metadata_path``; ``--source flightsql`` serves a DuckDB file of the same columns with the test
suite's Flight SQL server (``tests/sources/flightsql_server.py``, run in this process, so the
child's peak RSS is the client's alone) and refreshes ``flightsql:bench.events`` through ADBC.
``--source odbc-pg`` refreshes the PostgreSQL bench table through psqlodbc (``odbc:``, a server-side
cursor by UseDeclareFetch); ``--source odbc-mariadb`` refreshes a MariaDB table of the same columns
(``accel_bench.events_<rows>``, kept between runs) through MariaDB Connector/ODBC, read in keyed
chunks by its primary key, and also a copy without a key (``events_nokey_<rows>``), read with one
query, which shows what the driver holds when it stores a whole result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.memory import PG, pg_params
from bench.memory import PG_SCHEMA as SCHEMA

_CHILD_REFRESH = r"""
import json, os, sys, time, tempfile
from pathlib import Path
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
from airflow_provider_accel.accelerator import DuckDBAcceleratorHook
from airflow_provider_accel.spicepod.model import Acceleration, Dataset
args = json.loads(sys.argv[1])
ds = Dataset(from_=args["from"], name="events", params=args["params"], acceleration=Acceleration())
hook = DuckDBAcceleratorHook(data_dir=Path(args["dir"]))
start = time.monotonic()
result = hook.refresh(ds, refresh_sql=args.get("refresh_sql"))
peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
print(json.dumps({"rows": result.rows, "seconds": round(time.monotonic() - start, 2),
                  "peak_rss_mib": round(peak / 1024, 1)}))
"""

_CHILD_PSYCOPG = r"""
import json, resource, sys, time
import duckdb, psycopg, pyarrow as pa
args = json.loads(sys.argv[1])
start = time.monotonic()
schema = pa.schema([("id", pa.int64()), ("ts", pa.timestamp("us", tz="UTC")),
                    ("amount", pa.decimal128(12, 2)), ("label", pa.string()), ("flag", pa.bool_())])
conn = psycopg.connect(**args["pg"])
cur = conn.cursor(name="bench")  # server-side cursor: rows arrive itersize at a time
cur.itersize = 10000
cur.execute(f"SELECT id, ts, amount, label, flag FROM {args['table']}")
def batches():
    while rows := cur.fetchmany(10000):
        cols = list(zip(*rows))
        arrays = [pa.array(c, type=f.type) for c, f in zip(cols, schema)]
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)
reader = pa.RecordBatchReader.from_batches(schema, batches())
con = duckdb.connect(args["file"])
con.register("src", reader)
con.execute("CREATE TABLE t AS SELECT * FROM src").fetchall()
rows = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
print(json.dumps({"rows": rows, "seconds": round(time.monotonic() - start, 2),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def pg_connect() -> Any:
    import psycopg

    params: dict[str, Any] = dict(PG)
    return psycopg.connect(**params, autocommit=True)


def ensure_table(rows: int) -> str:
    table = f"{SCHEMA}.events_{rows}"
    with pg_connect() as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]
        if not exists:
            conn.execute(
                f"CREATE TABLE {table} AS SELECT g::int8 AS id, "
                "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' AS ts, "
                "(g % 100000 / 100.0)::numeric(12,2) AS amount, 'label ' || g || repeat('x', 20) AS label, "
                f"g % 2 = 0 AS flag FROM generate_series(1, {rows}) g"
            )
            conn.execute(f"CREATE INDEX ON {table} (id)")
            conn.execute(f"ANALYZE {table}")
    return table


def run_child(code: str, args: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    measured: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return measured


def tuples_read(table: str) -> tuple[int, int]:
    schema, name = table.split(".")
    with pg_connect() as conn:
        row = conn.execute(
            "SELECT coalesce(seq_tup_read, 0), coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables "
            "WHERE schemaname = %s AND relname = %s",
            (schema, name),
        ).fetchone()
    return int(row[0]), int(row[1])


def _events_chunk(first: int, last: int) -> Any:
    """Rows ``first..last`` (inclusive) of the bench table's columns, as an Arrow table."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.compute as pc

    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    ids = pa.array(range(first, last + 1), pa.int64())
    return pa.table(
        {
            "id": ids,
            "ts": pc.add(
                pa.scalar(start, pa.timestamp("us", tz="UTC")),
                pc.multiply(ids, 1_000_000).cast(pa.duration("us")),
            ),
            "amount": pc.cast(
                pc.divide(pc.cast(pc.bit_wise_and(ids, 0xFFFF), pa.float64()), 100.0),
                pa.decimal128(12, 2),
            ),
            "label": pc.binary_join_element_wise("label ", pc.cast(ids, pa.string()), ""),
            "flag": pc.equal(pc.bit_wise_and(ids, 1), 0),
        }
    )


def write_delta(path: str, rows: int, chunk: int = 500_000) -> None:
    """A Delta table of ``rows`` rows like the PostgreSQL bench table, written chunk by chunk."""
    from deltalake import write_deltalake

    for first in range(1, rows + 1, chunk):
        write_deltalake(path, _events_chunk(first, min(first + chunk - 1, rows)), mode="append")


def write_iceberg(root: str, rows: int, chunk: int = 500_000) -> tuple[str, str]:
    """An Iceberg table (SQL catalog on SQLite, local warehouse), one append (data file) per chunk.

    Returns the table's location and its current metadata file (Spice's ``metadata_path``).
    """
    from pathlib import Path

    from pyiceberg.catalog.sql import SqlCatalog

    Path(root, "warehouse").mkdir(parents=True)
    catalog = SqlCatalog("bench", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}/warehouse")
    catalog.create_namespace("bench")
    table = catalog.create_table("bench.events", schema=_events_chunk(1, 1).schema)
    for first in range(1, rows + 1, chunk):
        table.append(_events_chunk(first, min(first + chunk - 1, rows)))
    return table.location(), table.metadata_location


def write_duckdb(path: str, rows: int) -> None:
    """A DuckDB file with ``bench.events`` of ``rows`` rows (what the Flight SQL server serves)."""
    import duckdb

    with duckdb.connect(path) as con:
        con.execute("CREATE SCHEMA bench")
        con.execute(
            "CREATE TABLE bench.events AS SELECT i::BIGINT AS id, "
            "TIMESTAMPTZ '2024-01-01 00:00:00+00' + i * INTERVAL 1 SECOND AS ts, "
            "((i & 65535) / 100.0)::DECIMAL(12, 2) AS amount, 'label ' || i AS label, i % 2 = 0 AS flag "
            f"FROM range(1, {rows} + 1) r(i)"
        )


def _growth(report: dict[str, Any], key: str = "refresh") -> None:
    ordered = sorted(report[key])
    if len(ordered) >= 2:
        small, big = report[key][ordered[0]], report[key][ordered[-1]]
        suffix = "" if key == "refresh" else f"_{key}"
        report[f"rss_growth_factor{suffix}"] = round(big["peak_rss_mib"] / small["peak_rss_mib"], 2)


def mysql_connect() -> Any:
    import pymysql

    return pymysql.connect(
        host=os.environ.get("ACCEL_TEST_MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("ACCEL_TEST_MYSQL_PORT", "3306")),
        user=os.environ.get("ACCEL_TEST_MYSQL_USER", "root"),
        password=os.environ.get("ACCEL_TEST_MYSQL_PASSWORD", ""),
        autocommit=True,
    )


def ensure_mariadb_tables(rows: int) -> tuple[str, str]:
    """``accel_bench.events_<rows>`` (primary key id) and a key-less copy, like the PostgreSQL table."""
    keyed, keyless = f"{SCHEMA}.events_{rows}", f"{SCHEMA}.events_nokey_{rows}"
    with mysql_connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {SCHEMA}")
        cur.execute(f"SHOW TABLES IN {SCHEMA} LIKE 'events_{rows}'")
        if not cur.fetchall():
            cur.execute(
                f"CREATE TABLE {keyed} (id bigint PRIMARY KEY, ts datetime(6), amount decimal(12,2), "
                "label varchar(64), flag boolean)"
            )
            cur.execute(
                f"INSERT INTO {keyed} SELECT seq, timestamp'2024-01-01 00:00:00' + interval seq second, "
                f"(seq % 100000) / 100.0, concat('label ', seq, repeat('x', 20)), seq % 2 = 0 "
                f"FROM {SCHEMA}.seq_1_to_{rows}"
            )
        cur.execute(f"CREATE TABLE IF NOT EXISTS {keyless} AS SELECT * FROM {keyed}")
    return keyed, keyless


def main_odbc(sizes: list[int], driver: str, drop: bool = False) -> None:
    """Full refreshes through ``odbc:`` with psqlodbc or MariaDB Connector/ODBC."""
    report: dict[str, Any] = {"source": f"odbc ({driver})", "refresh": {}}
    for rows in sizes:
        if driver == "psqlodbc":
            table = ensure_table(rows)
            odbc = (
                f"Driver={{PostgreSQL Unicode}};Server={PG['host']};Port={PG['port']};"
                f"Database={PG['dbname']};Uid={PG['user']}"
            )
            tables = {"refresh": table}
        else:
            keyed, keyless = ensure_mariadb_tables(rows)
            odbc = (
                f"Driver={{MariaDB Unicode}};Server={os.environ.get('ACCEL_TEST_MYSQL_HOST', '127.0.0.1')};"
                f"Port={os.environ.get('ACCEL_TEST_MYSQL_PORT', '3306')};"
                f"Uid={os.environ.get('ACCEL_TEST_MYSQL_USER', 'root')}"
            )
            tables = {"refresh": keyed, "one_query_no_key": keyless}
        for key, table in tables.items():
            with tempfile.TemporaryDirectory() as tmp:
                report.setdefault(key, {})[rows] = run_child(
                    _CHILD_REFRESH,
                    {"from": f"odbc:{table}", "params": {"odbc_connection_string": odbc}, "dir": tmp},
                )
    for key in list(report):
        if key not in ("source",):
            _growth(report, key)
    if drop and driver == "mariadb":
        with mysql_connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {SCHEMA}")
    elif drop:
        with pg_connect() as pg:
            pg.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    print(json.dumps(report, indent=2))


def main_iceberg(sizes: list[int]) -> None:
    """Full refreshes of ``iceberg:`` Hadoop-style tables (metadata_path) of each size."""
    report: dict[str, Any] = {"source": "iceberg", "refresh": {}}
    for rows in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            location, metadata = write_iceberg(tmp, rows)
            report["refresh"][rows] = run_child(
                _CHILD_REFRESH,
                {"from": f"iceberg:{location}", "params": {"metadata_path": metadata}, "dir": f"{tmp}/accel"},
            )
    _growth(report)
    print(json.dumps(report, indent=2))


def main_flightsql(sizes: list[int]) -> None:
    """Full refreshes of ``flightsql:`` from the test suite's Flight SQL server (in this process)."""
    import importlib

    sys.path.insert(0, "tests")  # the server lives with the tests that use it; bench is run from the root
    flightsql_server = importlib.import_module("sources.flightsql_server").flightsql_server

    report: dict[str, Any] = {"source": "flightsql", "refresh": {}}
    for rows in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            write_duckdb(f"{tmp}/server.duckdb", rows)
            with flightsql_server(Path(tmp, "server.duckdb"), batch_rows=65_536) as server:
                report["refresh"][rows] = run_child(
                    _CHILD_REFRESH,
                    {"from": "flightsql:bench.events", "params": server.params, "dir": f"{tmp}/accel"},
                )
    _growth(report)
    print(json.dumps(report, indent=2))


def main_delta(sizes: list[int]) -> None:
    report: dict[str, Any] = {"source": "delta_lake", "refresh": {}}
    for rows in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            write_delta(f"{tmp}/table", rows)
            report["refresh"][rows] = run_child(
                _CHILD_REFRESH, {"from": f"delta_lake:{tmp}/table", "params": {}, "dir": f"{tmp}/accel"}
            )
    _growth(report)
    print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--alternatives", action="store_true")
    parser.add_argument("--drop", action="store_true", help="drop the bench tables afterwards")
    parser.add_argument(
        "--source",
        choices=["postgres", "delta", "iceberg", "flightsql", "odbc-pg", "odbc-mariadb"],
        default="postgres",
    )
    opts = parser.parse_args()
    if opts.source in ("odbc-pg", "odbc-mariadb"):
        main_odbc(opts.rows, "psqlodbc" if opts.source == "odbc-pg" else "mariadb", opts.drop)
        return
    if opts.source == "delta":
        main_delta(opts.rows)
        return
    if opts.source == "iceberg":
        main_iceberg(opts.rows)
        return
    if opts.source == "flightsql":
        main_flightsql(opts.rows)
        return
    report: dict[str, Any] = {"refresh": {}, "psycopg_cursor": {}, "pushdown": {}}
    for rows in opts.rows:
        table = ensure_table(rows)
        with tempfile.TemporaryDirectory() as tmp:
            report["refresh"][rows] = run_child(
                _CHILD_REFRESH, {"from": f"postgres:{table}", "params": pg_params(), "dir": tmp}
            )
        if opts.alternatives:
            with tempfile.TemporaryDirectory() as tmp:
                report["psycopg_cursor"][rows] = run_child(
                    _CHILD_PSYCOPG, {"pg": PG, "table": table, "file": f"{tmp}/x.duckdb"}
                )
        # Pushdown proof: 1% of the rows, by an indexed range and by a non-indexable predicate.
        for label, where in (("id <= 1%", f"id <= {rows // 100}"), ("id % 100 = 0", "id % 100 = 0")):
            before = tuples_read(table)
            with tempfile.TemporaryDirectory() as tmp:
                res = run_child(
                    _CHILD_REFRESH,
                    {
                        "from": f"postgres:{table}",
                        "params": pg_params(),
                        "dir": tmp,
                        "refresh_sql": f"SELECT * FROM events WHERE {where}",
                    },
                )
            time.sleep(1.0)  # the server flushes a finished session's statistics asynchronously
            after = tuples_read(table)
            report["pushdown"][f"{rows}: {label}"] = {
                "table_rows": rows,
                "rows_transferred": res["rows"],
                "fraction_transferred": round(res["rows"] / rows, 4),
                "server_seq_tuples_read": after[0] - before[0],
                "server_index_tuples_fetched": after[1] - before[1],
                "seconds": res["seconds"],
            }
    _growth(report)
    if opts.drop:
        with pg_connect() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
