"""Fixtures of the source tests: throw-away schemas/databases on the real servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from servers import (
    MYSQL_HOST,
    MYSQL_PASSWORD,
    MYSQL_PORT,
    MYSQL_USER,
    PG_HOST,
    PG_PORT,
    PG_USER,
    require_server,
)

from ._helpers import PG_DB


@pytest.fixture
def pg_conn() -> Iterator[Any]:
    """An autocommit psycopg connection to the test database."""
    require_server("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_DB, autocommit=True) as conn:
        yield conn


@pytest.fixture
def pg_schema(pg_conn: Any) -> Iterator[str]:
    """A PostgreSQL schema with a unique name, dropped after the test."""
    name = f"accel_test_{uuid.uuid4().hex[:10]}"
    pg_conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        pg_conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def mysql_conn() -> Iterator[Any]:
    require_server("MariaDB", MYSQL_HOST, MYSQL_PORT)
    import pymysql

    conn = pymysql.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, password=MYSQL_PASSWORD, autocommit=True
    )
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def mysql_db(mysql_conn: Any) -> Iterator[str]:
    """A MySQL database with a unique name, dropped after the test."""
    name = f"accel_test_{uuid.uuid4().hex[:10]}"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        yield name
    finally:
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP DATABASE `{name}`")
