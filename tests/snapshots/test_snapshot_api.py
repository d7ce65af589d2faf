"""Spice's snapshot routes on the real api-server app: list, get, roll back, with the routes' auth."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_accel import snapshots
from airflow_provider_accel.spicepod.loader import load_spicepod

from ._support import count, refresh, write_drop

SPICEPOD = """
version: v1
kind: Spicepod
name: api-snapshots
snapshots:
  enabled: true
  location: file://{store}/
datasets:
  - from: file:{src}
    name: taxi_trips
    params: {{file_format: parquet}}
    time_column: pickup
    acceleration:
      enabled: true
      refresh_mode: append
      snapshots: enabled
  - from: file:{src}
    name: Events
    params: {{file_format: parquet}}
    acceleration:
      enabled: true
"""


@pytest.fixture
def published(api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The api-server reads a spicepod whose taxi_trips has three published snapshots (10, 20, 30 rows)."""
    spicepod = tmp_path / "spicepod.yaml"
    spicepod.write_text(textwrap.dedent(SPICEPOD).format(store=tmp_path / "store", src=tmp_path / "src"))
    monkeypatch.setenv("AIRFLOW__ACCEL__SPICEPOD_PATH", str(spicepod))
    dataset = load_spicepod(spicepod).dataset("taxi_trips")
    assert dataset is not None
    for step in range(3):
        write_drop(tmp_path / "src", f"d{step}", range(step * 10, step * 10 + 10))
        out = refresh(dataset, tmp_path / "writer")
    return {"dataset": dataset, "writer_file": out["path"], "tmp": tmp_path}


def test_list_and_get(api: Any, published: dict[str, Any]) -> None:
    """The list is newest first with Spice's fields and is_current; limit bounds it; get returns one."""
    response = api.client.get("/v1/datasets/taxi_trips/acceleration/snapshots", headers=api.headers("viewer"))
    assert response.status_code == 200, response.text
    items = response.json()
    assert [i["id"] for i in items] == [3, 2, 1]
    assert [i["rows"] for i in items] == [30, 20, 10]
    assert [i["is_current"] for i in items] == [True, False, False]
    assert {"timestamp", "size_bytes", "checksum"} <= set(items[0])
    limited = api.client.get(
        "/v1/datasets/taxi_trips/acceleration/snapshots?limit=1", headers=api.headers("viewer")
    )
    assert [i["id"] for i in limited.json()] == [3]
    one = api.client.get("/v1/datasets/taxi_trips/acceleration/snapshots/2", headers=api.headers("viewer"))
    assert one.status_code == 200 and one.json()["rows"] == 20 and one.json()["is_current"] is False
    missing = api.client.get(
        "/v1/datasets/taxi_trips/acceleration/snapshots/9", headers=api.headers("viewer")
    )
    assert missing.status_code == 404 and "kept snapshots: 3, 2, 1" in missing.json()["message"]


def test_rollback_is_followed_by_the_writer(api: Any, published: dict[str, Any]) -> None:
    """POST .../snapshots/current moves the pointer; the writer's next refresh starts from that snapshot."""
    url = "/v1/datasets/taxi_trips/acceleration/snapshots/current"
    denied = api.client.post(url, json={"snapshot_id": 1}, headers=api.headers("viewer"))
    assert denied.status_code == 403
    response = api.client.post(url, json={"snapshot_id": 1}, headers=api.headers("admin"))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == 1 and response.json()["is_current"] is True
    listing = api.client.get(url.rsplit("/", 1)[0], headers=api.headers("viewer")).json()
    assert [i["id"] for i in listing if i["is_current"]] == [1]
    dataset, live = published["dataset"], published["writer_file"]
    restored = snapshots.before_refresh(dataset, live, lock_timeout=5)
    assert restored is not None and restored["status"] == "restored" and restored["snapshot_id"] == 1
    assert count(live, table="taxi_trips") == 10


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"snapshot_id": "1"}, "positive whole number"),
        ({"id": 1}, '{"snapshot_id": N}'),
        (None, "snapshot_id"),
    ],
)
def test_rollback_rejects_bad_bodies(api: Any, published: dict[str, Any], body: Any, words: str) -> None:
    """A rollback body that is not {"snapshot_id": N} is a 400 saying what to send."""
    response = api.client.post(
        "/v1/datasets/taxi_trips/acceleration/snapshots/current", json=body, headers=api.headers("admin")
    )
    assert response.status_code == 400 and words in response.json()["message"]


def test_dataset_without_snapshots_is_400(api: Any, published: dict[str, Any]) -> None:
    """A dataset without snapshots answers 400 naming what to configure."""
    response = api.client.get("/v1/datasets/Events/acceleration/snapshots", headers=api.headers("viewer"))
    assert response.status_code == 400 and "snapshots enabled" in response.json()["message"]


def test_dataset_details_say_who_may_roll_back(api: Any, published: dict[str, Any]) -> None:
    """?details=true says which datasets use snapshots and whether the caller may roll back (edit the DAG)."""

    def details(role: str) -> dict[str, Any]:
        response = api.client.get("/v1/datasets?details=true", headers=api.headers(role))
        assert response.status_code == 200, response.text
        return {d["name"]: d["acceleration"] for d in response.json() if d.get("acceleration")}

    viewer, admin = details("viewer"), details("admin")
    assert viewer["taxi_trips"]["snapshots"] is True and viewer["Events"]["snapshots"] is False
    assert viewer["taxi_trips"]["can_rollback"] is False
    assert admin["taxi_trips"]["can_rollback"] is True
