"""Object storage (``s3://``, against a local moto S3 server) and HTTP (``https://``/``http://``, against a
local http.server) sources: formats, pushdown into the scan, failures."""

from __future__ import annotations

import functools
import http.server
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from servers import MotoS3

from airflow_provider_accel.exceptions import TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.sources import source_for
from airflow_provider_accel.sources.base import ScanRequest
from airflow_provider_accel.sources.http import HttpSource
from airflow_provider_accel.sources.object_store import ObjectStoreSource
from airflow_provider_accel.testing import free_port

from ._helpers import dataset, load


def _table(start: int, rows: int) -> pa.Table:
    return pa.table(
        {"id": pa.array(range(start, start + rows), pa.int64()), "label": [f"r{i}" for i in range(rows)]}
    )


@pytest.fixture(scope="module")
def s3(moto_s3: MotoS3) -> dict[str, Any]:
    """The session's moto S3 server, with a bucket of Parquet, CSV and JSON objects."""
    client = moto_s3.client()
    moto_s3.new_bucket("accel-test")
    for part in range(3):
        buf = io.BytesIO()
        pq.write_table(_table(part * 100, 100), buf, row_group_size=25)
        client.put_object(Bucket="accel-test", Key=f"pq/part-{part}.parquet", Body=buf.getvalue())
    client.put_object(Bucket="accel-test", Key="pq/_SUCCESS", Body=b"")
    client.put_object(Bucket="accel-test", Key="csv/a.csv", Body=b"id,name\n1,x\n2,y\n")
    client.put_object(
        Bucket="accel-test", Key="json/a.json", Body=b'{"id": 1, "tags": ["a"]}\n{"id": 2, "tags": []}\n'
    )
    return moto_s3.params()


class TestObjectStore:
    def test_parquet_prefix_with_pushdown(self, s3: dict[str, Any]) -> None:
        """A prefix of Parquet objects is one dataset; DuckDB pushes the filter into the Arrow scan."""
        src = source_for(dataset("s3://accel-test/pq/", {**s3, "file_format": "parquet"}))
        assert isinstance(src, ObjectStoreSource)
        con = duckdb.connect()
        src.prepare(con)
        assert src.schema(con).names == ["id", "label"]
        scan = src.scan(ScanRequest(), con)
        assert scan.duckdb_sql is not None
        plan = con.execute(f"EXPLAIN SELECT label FROM ({scan.duckdb_sql}) WHERE id > 250").fetchall()[0][1]
        assert "Filters" in plan and "id" in plan
        load(scan, con, where='"id" > 250')
        assert con.execute("SELECT count(*), min(id) FROM t").fetchall() == [(49, 251)]
        src.close()

    @pytest.mark.parametrize(("key", "fmt", "rows"), [("csv/a.csv", None, 2), ("json/", "json", 2)])
    def test_csv_and_json(self, s3: dict[str, Any], key: str, fmt: str | None, rows: int) -> None:
        """CSV and JSON objects are read too (format from params.file_format or the extension)."""
        params = {**s3, **({"file_format": fmt} if fmt else {})}
        src = source_for(dataset(f"s3://accel-test/{key}", params))
        con = duckdb.connect()
        load(src.scan(ScanRequest(), con), con)
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(rows,)]

    def test_airflow_aws_connection(self, s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
        """aws_conn_id supplies keys, region and endpoint from an Airflow AWS connection."""
        monkeypatch.setenv(
            "AIRFLOW_CONN_ACCEL_TEST_AWS",
            '{"conn_type": "aws", "login": "k", "password": "s", '
            f'"extra": {{"region_name": "us-east-1", "endpoint_url": "{s3["s3_endpoint"]}"}}}}',
        )
        src = source_for(dataset("s3://accel-test/pq/part-0.parquet", {"aws_conn_id": "accel_test_aws"}))
        con = duckdb.connect()
        load(src.scan(ScanRequest(), con), con)
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(100,)]

    def test_hive_partitioned_prefix_and_spark_markers(self, s3: dict[str, Any]) -> None:
        """An S3 prefix of year=/ folders gains partition columns; _temporary/ and .crc keys are skipped."""
        import boto3

        client = boto3.client(
            "s3", endpoint_url=s3["s3_endpoint"], aws_access_key_id="k", aws_secret_access_key="s",
            region_name="us-east-1",
        )  # fmt: skip
        for year, ids in ((2023, [1, 2]), (2024, [3])):
            buf = io.BytesIO()
            pq.write_table(pa.table({"id": ids}), buf)
            key = f"hive/year={year}/part-0.parquet"
            client.put_object(Bucket="accel-test", Key=key, Body=buf.getvalue())
        client.put_object(Bucket="accel-test", Key="hive/year=2024/.part-0.parquet.crc", Body=b"x")
        client.put_object(Bucket="accel-test", Key="hive/_temporary/0/part-9.parquet", Body=b"half")
        params = {**s3, "file_format": "parquet", "hive_partitioning_enabled": "true"}
        src = source_for(dataset("s3://accel-test/hive/", params))
        con = duckdb.connect()
        src.prepare(con)
        assert src.schema(con).names == ["id", "year"]
        load(src.scan(ScanRequest(), con), con, where='"year" = 2024')
        assert con.execute("SELECT id, year FROM t").fetchall() == [(3, 2024)]
        src.close()

    def test_last_modified_append_reads_only_new_objects(self, s3: dict[str, Any], tmp_path: Path) -> None:
        """last_modified on s3: rows carry their object time; an append skips objects before the watermark."""
        import boto3

        from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
        from airflow_provider_accel.spicepod.model import Acceleration, Dataset, RefreshMode

        client = boto3.client(
            "s3", endpoint_url=s3["s3_endpoint"], aws_access_key_id="k", aws_secret_access_key="s",
            region_name="us-east-1",
        )  # fmt: skip

        def put(name: str, start: int) -> None:
            buf = io.BytesIO()
            pq.write_table(_table(start, 10), buf)
            client.put_object(Bucket="accel-test", Key=f"lm/{name}.parquet", Body=buf.getvalue())

        put("a", 0)
        time.sleep(1.1)  # S3 times have one-second resolution: each object is newer than the last
        put("b", 10)
        events = Dataset(
            from_="s3://accel-test/lm/",
            name="events",
            params={**s3, "file_format": "parquet"},
            time_column="last_modified",
            acceleration=Acceleration(refresh_mode=RefreshMode.APPEND),
        )
        hook = DuckDBAcceleratorHook(data_dir=tmp_path, lock_timeout=5)
        first = hook.refresh(events)
        assert first.rows == 20 and first.watermark is not None
        time.sleep(1.1)
        put("c", 20)
        src = source_for(events)
        second = hook.refresh(events, source=src)
        assert (second.rows, second.total_rows) == (10, 30)
        # b holds the watermark instant, so it is re-read (and its rows dropped as already accelerated).
        assert isinstance(src, ObjectStoreSource)
        assert src.objects_read == ["accel-test/lm/b.parquet", "accel-test/lm/c.parquet"]
        with duckdb.connect(str(hook.dataset_path(events)), read_only=True) as con:
            stamps = con.execute(
                "SELECT count(DISTINCT last_modified), typeof(any_value(last_modified)) FROM events"
            )
            assert stamps.fetchall() == [(3, "TIMESTAMP WITH TIME ZONE")]

    def test_missing_bucket_or_prefix_is_terminal(self, s3: dict[str, Any]) -> None:
        """No such bucket or prefix: terminal, naming the source."""
        for from_ in ("s3://no-such-bucket/x/", "s3://accel-test/nothing/"):
            with pytest.raises(TerminalRefreshError, match=from_):
                source_for(dataset(from_, s3)).schema(duckdb.connect())

    def test_unreachable_endpoint_is_transient(self, s3: dict[str, Any]) -> None:
        """An endpoint nobody listens on is transient, and the secret never appears in the message."""
        params = {**s3, "s3_endpoint": f"http://127.0.0.1:{free_port()}", "s3_secret": "s3cret-key"}
        with pytest.raises(TransientRefreshError) as info:
            source_for(dataset("s3://accel-test/pq/", params)).schema(duckdb.connect())
        assert "s3cret-key" not in str(info.value)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/status/"):
            self.send_error(int(self.path.rsplit("/", 1)[1]))
            return
        super().do_GET()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local HTTP server serving a directory with Parquet, CSV and JSON files."""
    root: Path = tmp_path_factory.mktemp("www")
    pq.write_table(_table(0, 1000), root / "data.parquet", row_group_size=100)
    (root / "data.csv").write_text("id,when,amount\n1,2024-01-01 10:00:00,1.50\n2,2024-01-02 11:00:00,\n")
    (root / "data.json").write_text('{"id": 1, "ok": true}\n{"id": 2, "ok": null}\n')
    (root / "broken.parquet").write_bytes(b"not parquet at all")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class TestHttp:
    def test_parquet_over_http_with_pushdown(self, web: str) -> None:
        """One Parquet file is spooled to disk once and scanned natively with the filter pushed into it."""
        src = source_for(dataset(f"{web}/data.parquet", {}))
        assert isinstance(src, HttpSource)
        con = duckdb.connect()
        assert src.schema(con).names == ["id", "label"]
        scan = src.scan(ScanRequest(), con)
        assert scan.duckdb_sql is not None
        load(scan, con, where='"id" >= 990')
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(10,)]
        spool = src._spool
        assert spool is not None and spool.exists()
        src.close()
        assert not spool.exists()

    @pytest.mark.parametrize(
        ("name", "types"),
        [("data.csv", ["BIGINT", "TIMESTAMP", "DOUBLE"]), ("data.json", ["BIGINT", "BOOLEAN"])],
    )
    def test_csv_and_json(self, web: str, name: str, types: list[str]) -> None:
        """CSV and JSON files keep their detected types and NULLs."""
        src = source_for(dataset(f"{web}/{name}", {}))
        con = duckdb.connect()
        load(src.scan(ScanRequest(), con), con)
        assert [r[1] for r in con.execute("DESCRIBE t").fetchall()] == types
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(2,)]
        src.close()

    @pytest.mark.parametrize(("path", "error"), [
        ("/status/404", TerminalRefreshError), ("/status/403", TerminalRefreshError),
        ("/status/503", TransientRefreshError), ("/broken.parquet", TerminalRefreshError),
    ])  # fmt: skip
    def test_http_failures(self, web: str, path: str, error: type[Exception]) -> None:
        """4xx and an unreadable body are terminal; 5xx is transient."""
        with pytest.raises(error):
            source_for(dataset(f"{web}{path}", {"file_format": "parquet"})).schema(duckdb.connect())

    def test_unreachable_host_is_transient(self) -> None:
        """Connection refused is transient."""
        with pytest.raises(TransientRefreshError):
            source_for(dataset(f"http://127.0.0.1:{free_port()}/x.parquet", {})).schema(duckdb.connect())
