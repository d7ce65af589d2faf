"""Hostile input against the in-process api-server app: a 4xx with a message, no run, no file touched.

The corpus is data (hostile_cases.py). Each case is sent to the real api-server app (Airflow's
``create_app()`` with the plugin mounted, tests/api/conftest.py) as an admin, so authorization never
hides a bug. The canary directory the attacks name is watched with inotify: any open, read, write or
create there by any code in this process (DuckDB's C++ included) fails the case.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ._inotify import DirectoryWatch
from .hostile_cases import BODY_ATTACKS, DATASET, NAME_ATTACKS, SQL_ATTACKS

REFRESH = "/v1/datasets/{}/acceleration/refresh"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, DirectoryWatch]]:
    """A directory of secrets outside every dataset's source, watched for any access."""
    directory = tmp_path_factory.mktemp("canary")
    (directory / "secret.csv").write_text("a,b\n1,secret\n")
    con = duckdb.connect(str(directory / "secret.duckdb"))
    con.execute("CREATE TABLE s AS SELECT 1 AS a")
    con.execute(f"COPY s TO '{directory / 'secret.parquet'}' (FORMAT parquet)")
    con.close()
    (directory / "evil.duckdb_extension").write_bytes(b"\x7fELF not really")
    watch = DirectoryWatch(directory)
    yield directory, watch
    watch.close()


def _run_count() -> int:
    from airflow.models.dagrun import DagRun
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        runs = session.scalar(select(func.count()).select_from(DagRun))
        variables = session.scalar(
            select(func.count()).select_from(Variable).where(Variable.key.like("accel_refresh_sql__%"))
        )
    return int(runs) + int(variables)


def _assert_rejected(response: Any, canary: tuple[Path, DirectoryWatch], runs_before: int) -> None:
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], body
    assert "Traceback" not in response.text
    assert _run_count() == runs_before, "a hostile request created a run or persisted a refresh_sql"
    touched = canary[1].events()
    assert touched == [], f"the request touched files outside the dataset's source: {touched}"


@pytest.mark.parametrize("case_id, sql", SQL_ATTACKS, ids=[c[0] for c in SQL_ATTACKS])
@pytest.mark.parametrize("route", ["post", "patch"])
def test_refresh_sql_attack_is_rejected(
    api: Any, canary: tuple[Path, DirectoryWatch], route: str, case_id: str, sql: str
) -> None:
    """A refresh_sql reaching beyond its dataset: 4xx + message, no run, nothing stored, no file touched."""
    before = _run_count()
    body = json.dumps({"refresh_sql": sql.replace("{canary}", str(canary[0]))}).encode()
    if route == "post":
        response = api.client.post(REFRESH.format(DATASET), content=body, headers={**JSON, **api.headers()})
    else:
        response = api.client.patch(
            f"/v1/datasets/{DATASET}/acceleration", content=body, headers={**JSON, **api.headers()}
        )
    _assert_rejected(response, canary, before)


@pytest.mark.parametrize("case_id, segment", NAME_ATTACKS, ids=[c[0] for c in NAME_ATTACKS])
def test_hostile_dataset_name_is_rejected(
    api: Any, canary: tuple[Path, DirectoryWatch], case_id: str, segment: str
) -> None:
    """A dataset name with dots, slashes, NUL, 10 kB ... in the path: a 4xx with a message, on every route."""
    before = _run_count()
    headers = {**JSON, **api.headers()}
    for method, path in [
        ("POST", f"/v1/datasets/{segment}/acceleration/refresh"),
        ("PATCH", f"/v1/datasets/{segment}/acceleration"),
        ("GET", f"/v1/datasets/{segment}/acceleration/refresh/x"),
        ("GET", f"/v1/datasets/{DATASET}/acceleration/refresh/{segment}"),
    ]:
        content = b'{"refresh_sql": null}' if method == "PATCH" else b"{}"
        response = api.client.request(
            method, path, content=None if method == "GET" else content, headers=headers
        )
        _assert_rejected(response, canary, before)


@pytest.mark.parametrize("case_id, raw", BODY_ATTACKS, ids=[c[0] for c in BODY_ATTACKS])
def test_hostile_body_is_rejected(
    api: Any, canary: tuple[Path, DirectoryWatch], case_id: str, raw: bytes
) -> None:
    """A body that is no overrides object (not JSON, nested, wrong types, 10 MB): a 4xx with a message."""
    before = _run_count()
    for path in (REFRESH.format(DATASET), f"/v1/datasets/{DATASET}/acceleration"):
        method = "POST" if path.endswith("refresh") else "PATCH"
        response = api.client.request(method, path, content=raw, headers={**JSON, **api.headers()})
        _assert_rejected(response, canary, before)


def test_corpus_is_large_enough() -> None:
    """The corpus keeps at least 60 hostile cases (the issue's floor)."""
    assert len(SQL_ATTACKS) + len(NAME_ATTACKS) + len(BODY_ATTACKS) >= 60
