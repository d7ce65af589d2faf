"""``flightsql:`` through the real ADBC Flight SQL driver against a real Flight SQL server (gRPC, Basic
-> Bearer handshake) over a DuckDB file: types, the query text the server received (projection,
filter, LIMIT only with the whole filter), append by watermark, and classified failures that keep the
old data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from airflow_provider_accel.accelerator import DuckDBAcceleratorHook
from airflow_provider_accel.exceptions import TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.sources import source_for
from airflow_provider_accel.sources.base import ScanRequest
from airflow_provider_accel.sources.flightsql import FlightSqlSource
from airflow_provider_accel.spicepod.model import RefreshMode

from ._helpers import accelerated, dataset, load

pytest.importorskip("adbc_driver_flightsql")
pytest.importorskip("pyarrow.flight")

from .flightsql_server import ISSUED_TOKEN, FlightSql, ServerTls, flightsql_server
from .tls_certs import Authority

_EVENTS = """
SELECT i::BIGINT AS id, (i / 4)::DECIMAL(10, 2) AS amount,
       CASE WHEN i % 2 = 1 THEN 'eu' ELSE 'us' END AS region,
       TIMESTAMPTZ '2024-01-01 00:00:00+00' + i * INTERVAL 1 HOUR AS ts,
       DATE '2024-01-01' + (i % 3)::INT AS day,
       i % 3 = 0 AS ok, i / 2 AS score, chr((65 + i % 26)::INT)::BLOB AS raw, ['t' || i] AS tags
FROM range({start}, {stop}) r(i)
"""


def _insert(database: Path, start: int, stop: int) -> None:
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS sales")
        con.execute(f"CREATE TABLE IF NOT EXISTS sales.events AS {_EVENTS.format(start=1, stop=1)} LIMIT 0")
        con.execute(f"INSERT INTO sales.events {_EVENTS.format(start=start, stop=stop)}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[FlightSql]:
    """A Flight SQL server whose ``sales.events`` has ids 1..20."""
    database = tmp_path / "server.duckdb"
    _insert(database, 1, 21)
    with flightsql_server(database) as server:
        yield server


def _source(served: FlightSql, **params: str) -> FlightSqlSource:
    src = source_for(dataset("flightsql:sales.events", {**served.params, **params}))
    assert isinstance(src, FlightSqlSource)
    return src


# -- types -------------------------------------------------------------------------------------


def test_types_round_trip(served: FlightSql) -> None:
    """Every column keeps its values from the server's DuckDB through Flight SQL into DuckDB."""
    src = _source(served)
    con = duckdb.connect()
    assert src.schema(con).names == ["id", "amount", "region", "ts", "day", "ok", "score", "raw", "tags"]
    load(src.scan(ScanRequest(), con), con)
    row = con.execute(
        "SELECT id, amount, region, ts, day, ok, score, raw, tags FROM t WHERE id = 3"
    ).fetchall()
    assert row == [
        (
            3,
            decimal.Decimal("0.75"),
            "eu",
            dt.datetime(2024, 1, 1, 3, tzinfo=dt.UTC),
            dt.date(2024, 1, 1),
            True,
            1.5,
            b"D",
            ["t3"],
        )
    ]
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(20,)]


# -- pushdown ----------------------------------------------------------------------------------


def test_filter_and_projection_reach_the_server(served: FlightSql) -> None:
    """The server receives the projection and the filter; only the matching rows travel."""
    src = _source(served)
    con = duckdb.connect()
    where = '"region" = \'eu\' AND "id" > 10'
    load(src.scan(ScanRequest(columns=("id", "region"), where=where), con), con, where=where)
    assert served.server.queries[-1] == (
        'SELECT "id", "region" FROM "sales"."events" WHERE "region" = \'eu\' AND "id" > 10'
    )
    assert src.rows_streamed == 5
    assert con.execute("SELECT min(id), max(id) FROM t").fetchall() == [(11, 19)]


def test_watermark_predicate_reaches_the_server(served: FlightSql) -> None:
    """The accelerator's timestamp watermark predicate is sent in the query text."""
    src = _source(served)
    con = duckdb.connect()
    where = "\"ts\" >= TIMESTAMPTZ '2024-01-01 15:00:00+00:00'"
    load(src.scan(ScanRequest(where=where), con), con, where=where)
    assert "WHERE \"ts\" >= CAST('2024-01-01 15:00:00+00:00' AS TIMESTAMPTZ)" in served.server.queries[-1]
    assert src.rows_streamed == 6


def test_limit_only_with_the_whole_filter(served: FlightSql) -> None:
    """LIMIT is sent with a pushed filter; when the server rejects the filter, neither goes."""
    src = _source(served)
    con = duckdb.connect()
    scan = src.scan(ScanRequest(where='"id" > 10', limit=3), con)
    assert served.server.queries[-1].endswith('WHERE "id" > 10 LIMIT 3')
    assert scan.reader is not None and scan.reader.read_all().num_rows == 3
    served.server.reject_where = True
    scan = src.scan(ScanRequest(where='"id" > 10', limit=3), con)
    assert served.server.queries[-1] == 'SELECT * FROM "sales"."events"'.replace("*", _all_columns())
    assert scan.reader is not None and scan.reader.read_all().num_rows == 20


def _all_columns() -> str:
    return ", ".join(f'"{c}"' for c in ("id", "amount", "region", "ts", "day", "ok", "score", "raw", "tags"))


# -- append ------------------------------------------------------------------------------------


def test_append_by_watermark(served: FlightSql, tmp_path: Path) -> None:
    """Append asks the server only for rows at or past the watermark and adds them."""
    hook = DuckDBAcceleratorHook(data_dir=tmp_path / "accel")
    ds = accelerated(
        "flightsql:sales.events",
        served.params,
        name="events",
        time_column="ts",
        acceleration={"refresh_mode": RefreshMode.APPEND, "refresh_append_overlap": dt.timedelta(0)},
    )
    assert hook.refresh(ds, mode=RefreshMode.FULL).rows == 20
    _insert(served.database, 21, 26)
    appended = hook.refresh(dataclasses.replace(ds), mode=RefreshMode.APPEND)
    assert "WHERE" in served.server.queries[-1]
    with duckdb.connect(appended.path, read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id), max(id) FROM events").fetchall() == [
            (25, 25, 25)
        ]


# -- failures ----------------------------------------------------------------------------------


def test_server_failing_mid_stream_is_transient_and_keeps_old_data(served: FlightSql, tmp_path: Path) -> None:
    """A stream the server breaks after its first batch is transient; the accelerated data stays."""
    _insert(served.database, 1000, 4000)  # several 1000-row batches
    hook = DuckDBAcceleratorHook(data_dir=tmp_path / "accel")
    ds = accelerated("flightsql:sales.events", served.params, name="events")
    first = hook.refresh(ds)
    assert first.rows == 3020
    served.server.fail_after_first_batch = True
    with pytest.raises(TransientRefreshError):
        hook.refresh(dataclasses.replace(ds))
    with duckdb.connect(first.path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(3020,)]


def test_server_down_is_transient(tmp_path: Path) -> None:
    """A server that is gone is transient."""
    database = tmp_path / "gone.duckdb"
    _insert(database, 1, 2)
    with flightsql_server(database) as server:
        params = server.params
    src = source_for(dataset("flightsql:sales.events", params))
    with pytest.raises(TransientRefreshError):
        src.schema(duckdb.connect())


def test_bad_credentials_are_terminal_with_a_clear_message(served: FlightSql) -> None:
    """A password the server refuses is terminal and names the credential params."""
    src = _source(served, flightsql_password="wrong")
    with pytest.raises(TerminalRefreshError, match=r"refused the credentials.*flightsql_password"):
        src.schema(duckdb.connect())


def _token_source(served: FlightSql, token: str, **params: str) -> FlightSqlSource:
    src = source_for(
        dataset(
            "flightsql:sales.events",
            {"flightsql_endpoint": served.endpoint, "flightsql_token": token, **params},
        )
    )
    assert isinstance(src, FlightSqlSource)
    return src


def test_token_authenticates_every_call(served: FlightSql, tmp_path: Path) -> None:
    """flightsql_token is sent as a bearer token, with no handshake: the table loads whole."""
    hook = DuckDBAcceleratorHook(data_dir=tmp_path)
    params = {"flightsql_endpoint": served.endpoint, "flightsql_token": ISSUED_TOKEN}
    assert hook.refresh(accelerated("flightsql:sales.events", params, name="events")).rows == 20


def test_refused_token_is_terminal_and_names_it(served: FlightSql) -> None:
    """A token the server does not know is terminal, and the message names flightsql_token."""
    with pytest.raises(TerminalRefreshError, match=r"refused the credentials.*flightsql_token"):
        _token_source(served, "pat-unknown").schema(duckdb.connect())


def test_token_with_username_and_password_is_terminal(served: FlightSql) -> None:
    """A token and a username/password together are refused before connecting: choose one."""
    src = _token_source(served, ISSUED_TOKEN, flightsql_username="spicy", flightsql_password="s3cret")
    with pytest.raises(TerminalRefreshError, match=r"not both"):
        src.schema(duckdb.connect())


def test_missing_table_is_terminal(served: FlightSql) -> None:
    """A dataset the server does not have is terminal, with the server's message."""
    src = source_for(dataset("flightsql:sales.nope", served.params))
    with pytest.raises(TerminalRefreshError, match="nope"):
        src.schema(duckdb.connect())


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [("", "missing required param flightsql_endpoint"), ("127.0.0.1:50051", "needs a scheme")],
)
def test_bad_endpoint_is_terminal(endpoint: str, message: str) -> None:
    """A missing endpoint, or one without a scheme, is terminal and says what to write."""
    src = source_for(dataset("flightsql:t", {"flightsql_endpoint": endpoint}))
    with pytest.raises(TerminalRefreshError, match=message):
        src.schema(duckdb.connect())


# -- TLS -----------------------------------------------------------------------------------------


@pytest.fixture
def authority() -> Authority:
    return Authority()


@pytest.fixture
def tls_served(tmp_path: Path, authority: Authority) -> Iterator[FlightSql]:
    """The same server over grpc+tls://, with a certificate for 127.0.0.1 signed by a test CA."""
    database = tmp_path / "server.duckdb"
    _insert(database, 1, 21)
    leaf = authority.issue("flightsql test server", server=True)
    with flightsql_server(database, tls=ServerTls(leaf.cert, leaf.key)) as server:
        yield server


def test_tls_with_the_ca_file_reads_the_table(
    tls_served: FlightSql, authority: Authority, tmp_path: Path
) -> None:
    """grpc+tls:// with flightsql_tls_ca_certificate_file: the certificate verifies and rows arrive."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(authority.pem)
    assert tls_served.endpoint.startswith("grpc+tls://")
    src = _source(tls_served, flightsql_tls_ca_certificate_file=str(ca_file))
    con = duckdb.connect()
    load(src.scan(ScanRequest(columns=("id",), where='"id" > 15'), con), con)
    assert con.execute("SELECT list(id ORDER BY id) FROM t").fetchall() == [([16, 17, 18, 19, 20],)]
    assert tls_served.server.queries[-1] == 'SELECT "id" FROM "sales"."events" WHERE "id" > 15'


def test_https_endpoint_is_tls_too(tls_served: FlightSql, authority: Authority, tmp_path: Path) -> None:
    """Spice's https:// form reaches the same TLS server."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(authority.pem)
    endpoint = tls_served.endpoint.replace("grpc+tls://", "https://")
    src = _source(tls_served, flightsql_endpoint=endpoint, flightsql_tls_ca_certificate_file=str(ca_file))
    assert src.schema(duckdb.connect()).names[0] == "id"


@pytest.mark.parametrize("trust", ["system CAs", "another CA"])
def test_untrusted_certificate_is_terminal_with_a_clear_message(
    tls_served: FlightSql, tmp_path: Path, trust: str
) -> None:
    """A server certificate the client cannot verify is terminal and names the CA param."""
    params: dict[str, str] = {}
    if trust == "another CA":
        other = tmp_path / "other.pem"
        other.write_bytes(Authority("someone else's CA").pem)
        params["flightsql_tls_ca_certificate_file"] = str(other)
    src = _source(tls_served, **params)
    with pytest.raises(
        TerminalRefreshError, match=r"TLS handshake .* failed.*flightsql_tls_ca_certificate_file"
    ):
        src.schema(duckdb.connect())


def test_mutual_tls_presents_the_client_certificate(tmp_path: Path, authority: Authority) -> None:
    """A server requiring client certificates takes the file pair and the inline pair; it refuses none.

    Refused, gRPC shows the client only a broken connection, so that failure is transient by type.
    """
    database = tmp_path / "server.duckdb"
    _insert(database, 1, 4)
    leaf = authority.issue("flightsql test server", server=True)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(authority.pem)
    client = authority.issue("accel client", server=False)
    cert_file, key_file = client.write(tmp_path, "client")
    with flightsql_server(database, tls=ServerTls(leaf.cert, leaf.key, client_ca=authority.pem)) as server:
        base = {**server.params, "flightsql_tls_ca_certificate_file": str(ca_file)}
        as_files = {
            "flightsql_tls_client_certificate_file": str(cert_file),
            "flightsql_tls_client_key_file": str(key_file),
        }
        inline = {
            "flightsql_tls_client_certificate": client.cert.decode(),
            "flightsql_tls_client_key": client.key.decode(),
        }
        for identity in (as_files, inline):
            src = source_for(dataset("flightsql:sales.events", {**base, **identity}))
            assert src.schema(duckdb.connect()).names[0] == "id"
        with pytest.raises(TransientRefreshError):
            source_for(dataset("flightsql:sales.events", base)).schema(duckdb.connect())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"flightsql_tls_client_certificate_file": "/c.pem"}, "without flightsql_tls_client_key_file"),
        (
            {"flightsql_tls_client_certificate_file": "/c.pem", "flightsql_tls_client_key_file": "/k.pem",
             "flightsql_tls_client_certificate": "PEM", "flightsql_tls_client_key": "PEM"},
            "either as files or inline",
        ),
        ({"flightsql_tls_ca_certificate_file": "/no/such/ca.pem"}, "cannot read the PEM file '/no/such/"),
    ],
)  # fmt: skip
def test_bad_tls_params_are_terminal(params: dict[str, str], message: str) -> None:
    """An unpaired client certificate, both forms at once, or an unreadable file: terminal, saying which."""
    src = source_for(dataset("flightsql:t", {"flightsql_endpoint": "grpc+tls://127.0.0.1:1", **params}))
    with pytest.raises(TerminalRefreshError, match=message):
        src.schema(duckdb.connect())


def test_tls_params_on_a_plaintext_endpoint_are_terminal(tmp_path: Path) -> None:
    """A CA file with a grpc:// endpoint is a mistake: terminal, naming the param and the schemes."""
    params = {"flightsql_endpoint": "grpc://127.0.0.1:1", "flightsql_tls_ca_certificate_file": "/ca.pem"}
    with pytest.raises(TerminalRefreshError, match=r"flightsql_tls_ca_certificate_file set.*grpc\+tls://"):
        source_for(dataset("flightsql:t", params)).schema(duckdb.connect())
