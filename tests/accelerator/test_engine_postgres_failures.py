"""PostgreSQL failures: an outage mid-load is transient and leaves the old data; bad settings are terminal."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pytest

from airflow_provider_accel.exceptions import TerminalRefreshError, TransientRefreshError

from ._helpers import make_dataset, write_parquet
from .engines import EngineUnderTest, engine_under_test, pg_uri


@pytest.fixture
def postgres(data_dir: Path) -> EngineUnderTest:
    with engine_under_test("postgres", data_dir) as under_test:
        yield under_test  # type: ignore[misc]


def _ids(count: int) -> pa.Table:
    return pa.table({"id": pa.array(range(count), pa.int64()), "pad": ["z" * 50] * count})


def test_backend_killed_mid_load_is_transient_and_keeps_data(postgres: EngineUnderTest, src: Path) -> None:
    """The server ending the writer's session during COPY: a transient error, the old rows intact."""
    path = write_parquet(src / "ids.parquet", _ids(1000))
    dataset = postgres.on(make_dataset("ids", path))
    postgres.hook(dataset).refresh(dataset)
    write_parquet(path, _ids(2_000_000))
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            postgres.hook(dataset).refresh(dataset)
        except BaseException as err:
            errors.append(err)

    worker = threading.Thread(target=refresh)
    worker.start()
    killed = 0
    with pg.connect(pg_uri()) as con, con.cursor() as cur:
        while worker.is_alive() and not killed:
            cur.execute(  # this test's COPY, while it runs (an idle session shows its last query too)
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE state = 'active' AND query ILIKE 'COPY%' AND strpos(query, $1) > 0 "
                "AND pid <> pg_backend_pid()",
                (postgres.pg_schema,),
            )
            killed = int(cur.fetchone()[0])
            con.commit()
            time.sleep(0.005)
    worker.join()
    assert killed, "the load ended before its session could be terminated"
    assert len(errors) == 1 and isinstance(errors[0], TransientRefreshError), errors
    assert "ids" in str(errors[0])
    assert postgres.rows(dataset, "count(*)") == [(1000,)]
    assert postgres.staging_leftovers(dataset) == []


def test_unreachable_server_is_transient(postgres: EngineUnderTest, src: Path) -> None:
    """A server that refuses connections gives a transient error naming the dataset."""
    dataset = postgres.on(make_dataset("ids", write_parquet(src / "ids.parquet", _ids(10))))
    assert dataset.acceleration is not None
    params = {**dataset.acceleration.params, "pg_port": 1}
    dataset = dataclasses.replace(
        dataset, acceleration=dataclasses.replace(dataset.acceleration, params=params)
    )
    with pytest.raises(TransientRefreshError, match="ids"):
        postgres.hook(dataset).refresh(dataset)


def test_too_long_name_is_refused(postgres: EngineUnderTest, src: Path) -> None:
    """A dataset name PostgreSQL would truncate is refused with what to do."""
    dataset = postgres.on(make_dataset("x" * 64, write_parquet(src / "ids.parquet", _ids(10))))
    with pytest.raises(TerminalRefreshError, match="63 bytes"):
        postgres.hook(dataset).refresh(dataset)


def test_unknown_database_is_terminal(postgres: EngineUnderTest, src: Path) -> None:
    """An unknown database fails at once (terminal), without the password in the message."""
    dataset = postgres.on(make_dataset("ids", write_parquet(src / "ids.parquet", _ids(10))))
    assert dataset.acceleration is not None
    params = {**dataset.acceleration.params, "pg_db": "accel_no_such_db", "pg_pass": "s3cret-pw"}
    dataset = dataclasses.replace(
        dataset, acceleration=dataclasses.replace(dataset.acceleration, params=params)
    )
    with pytest.raises(TerminalRefreshError) as caught:
        postgres.hook(dataset).refresh(dataset)
    assert "s3cret-pw" not in str(caught.value)
