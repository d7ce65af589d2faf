"""Tests every database source (PostgreSQL, MySQL/MariaDB) must pass, written once.

A test module describes its server in a :class:`DatabaseServer` subclass (``from:`` scheme, params,
fixtures ``db_conn``/``space``, how to build tables and kill a streaming session), then combines it
with the contracts: ``class TestFailures(PgServer, FailureContract)``. pytest collects the contract's
tests once per combining class, under that module's name.
"""

from __future__ import annotations

from typing import Any, ClassVar

import duckdb
import pytest

from airflow_provider_accel.exceptions import TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.sources import source_for
from airflow_provider_accel.sources._common import StreamingSource
from airflow_provider_accel.sources.base import ScanRequest

from ._helpers import dataset, load

PASSWORD = "s3cret-pw"


class DatabaseServer:
    """What the contracts need to know about one server; a test module subclasses it.

    The subclass also defines two fixtures: ``db_conn`` (an admin connection to the server) and
    ``space`` (a throw-away schema/database, dropped after the test).
    """

    #: The ``from:`` prefix, without the colon.
    scheme: ClassVar[str]
    source_class: ClassVar[type[StreamingSource]]
    #: A ``space.table`` reference for tests that never reach a table.
    any_table: ClassVar[str]
    port_param: ClassVar[str]
    user_param: ClassVar[str]
    password_param: ClassVar[str]

    def params(self) -> dict[str, Any]:
        """Connection params of the test server."""
        raise NotImplementedError

    def source(self, space: str, table: str, **params: Any) -> Any:
        src = source_for(dataset(f"{self.scheme}:{space}.{table}", {**self.params(), **params}))
        assert isinstance(src, self.source_class)
        return src

    def create_numbers(self, conn: Any, space: str, rows: int) -> None:
        """``space.nums``: ``rows`` rows of id (1..rows), k (id % 7), label ('row <id>'), at."""
        raise NotImplementedError

    def create_streaming_table(self, conn: Any, space: str) -> dict[str, Any]:
        """``space.nums``, big enough to still be streaming after the first batch; returns source params."""
        raise NotImplementedError

    def kill_streaming_session(self, conn: Any, space: str) -> None:
        """Make the server end the session that is streaming ``space.nums``."""
        raise NotImplementedError


class PushdownContract(DatabaseServer):
    def test_limit_is_pushed_with_the_whole_filter(self, db_conn: Any, space: str) -> None:
        """A LIMIT reaches the server when the filter was pushed: only that many rows travel."""
        self.create_numbers(db_conn, space, rows=100)
        src = self.source(space, "nums")
        con = duckdb.connect()
        load(src.scan(ScanRequest(where='"k" = 3', limit=4), con), con)
        assert src.rows_streamed == 4

    def test_server_rejected_filter_falls_back(self, db_conn: Any, space: str) -> None:
        """A transpiled filter the server rejects is dropped (with its limit); the re-applied filter holds."""
        self.create_numbers(db_conn, space, rows=30)
        src = self.source(space, "nums")
        con = duckdb.connect()
        where = "jaro_winkler_similarity(\"label\", 'row 7') > 0.999"  # transpiles, but the server lacks it
        load(src.scan(ScanRequest(where=where, limit=1), con), con, where=where)
        assert src.rows_streamed == 30  # nothing pushed: neither the filter nor the limit
        assert con.execute("SELECT label FROM t").fetchall() == [("row 7",)]


class FailureContract(DatabaseServer):
    def test_unreachable_server_is_transient(self) -> None:
        """Nothing listening on the port: transient, naming dataset and source, never the password."""
        from_ = f"{self.scheme}:{self.any_table}"
        params = {**self.params(), self.port_param: 1, self.password_param: PASSWORD}
        with pytest.raises(TransientRefreshError) as info:
            source_for(dataset(from_, params)).schema(duckdb.connect())
        message = str(info.value)
        assert "ds" in message and from_ in message and PASSWORD not in message

    def test_bad_credentials_are_terminal(self) -> None:
        """The server refusing the login (unknown user) is terminal, naming the user, never the password."""
        params = {**self.params(), self.user_param: "no_such_user_accel", self.password_param: PASSWORD}
        with pytest.raises(TerminalRefreshError) as info:
            source_for(dataset(f"{self.scheme}:{self.any_table}", params)).schema(duckdb.connect())
        assert "no_such_user_accel" in str(info.value) and PASSWORD not in str(info.value)

    def test_missing_table_is_terminal(self, space: str) -> None:
        """A table that does not exist is terminal and named in the message."""
        with pytest.raises(TerminalRefreshError, match="nope"):
            self.source(space, "nope").schema(duckdb.connect())

    def test_missing_column_is_terminal(self, db_conn: Any, space: str) -> None:
        """Asking for a column the table lacks is terminal and names the column."""
        self.create_numbers(db_conn, space, rows=3)
        for columns in (("ghost",), ("id", "ghost")):
            with pytest.raises(TerminalRefreshError, match="ghost"):
                self.source(space, "nums").scan(ScanRequest(columns=columns), duckdb.connect())

    def test_dropped_connection_mid_stream_is_transient(self, db_conn: Any, space: str) -> None:
        """The server killing the session while rows stream is transient, recorded on the source."""
        params = self.create_streaming_table(db_conn, space)
        src = self.source(space, "nums", **params)
        scan = src.scan(ScanRequest(), duckdb.connect())
        assert scan.reader is not None
        assert scan.reader.read_next_batch().num_rows > 0
        self.kill_streaming_session(db_conn, space)
        with pytest.raises(TransientRefreshError):
            for _ in scan.reader:
                pass
        assert isinstance(src.stream_error, TransientRefreshError)
