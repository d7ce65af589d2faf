"""Publishing, bootstrapping and following snapshots on a ``file://`` location, with real DuckDB files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_accel import snapshots
from airflow_provider_accel.exceptions import TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.snapshots.pointer import read_pointer
from airflow_provider_accel.snapshots.store import SnapshotStore
from airflow_provider_accel.spicepod.snapshots import snapshot_settings

from ._support import count, dataset_of, refresh, spicepod_dict, write_drop


@pytest.fixture
def where(tmp_path: Path) -> dict[str, Path | str]:
    store = tmp_path / "store"
    return {
        "src": tmp_path / "src",
        "store": store,
        "location": f"file://{store}/",
        "a": tmp_path / "a",
        "b": tmp_path / "b",
    }


def _store(dataset):  # type: ignore[no-untyped-def]
    settings = snapshot_settings(dataset)
    assert settings.store is not None
    return SnapshotStore(settings.store, dataset.name)


def test_publish_uses_spices_layout_and_pointer(where: dict) -> None:
    """A refresh publishes <month>/<day>/dataset=<name>/<name>_<ts>.duckdb and a pointer with its facts."""
    write_drop(where["src"], "d1", range(0, 100))
    dataset = dataset_of(spicepod_dict(where["src"], where["location"]))
    out = refresh(dataset, where["a"])
    assert out["publish"]["status"] == "published"
    pointer = read_pointer(_store(dataset), "trips")
    assert pointer is not None and pointer.current == 1
    entry = pointer.current_entry
    assert entry is not None
    parts = entry.key.split("/")
    assert parts[0].startswith("month=") and parts[1].startswith("day=") and parts[2] == "dataset=trips"
    assert parts[3].startswith("trips_") and parts[3].endswith("Z.duckdb")
    assert (where["store"] / entry.key).stat().st_size == entry.size_bytes
    assert entry.rows == 100 and entry.dag_run_id == "r" and entry.watermark
    raw = json.loads((where["store"] / "dataset=trips" / "metadata.json").read_text())
    assert raw["snapshots"][0]["checksum"].startswith("sha256:") and raw["snapshots"][0]["engine"] == "duckdb"


def test_on_change_skips_unchanged_data_and_always_does_not(where: dict) -> None:
    """on_change publishes nothing when the rows did not change; always publishes every refresh."""
    write_drop(where["src"], "d1", range(0, 50))
    dataset = dataset_of(spicepod_dict(where["src"], where["location"], mode="full"))
    assert refresh(dataset, where["a"])["publish"]["status"] == "published"
    second = refresh(dataset, where["a"])["publish"]
    assert second["status"] == "skipped" and "on_change" in second["reason"]
    always = dataset_of(
        spicepod_dict(
            where["src"], where["location"], mode="full", extra={"snapshots_creation_policy": "always"}
        )
    )
    assert refresh(always, where["a"])["publish"]["status"] == "published"
    pointer = read_pointer(_store(dataset), "trips")
    assert pointer is not None and [e.id for e in pointer.snapshots] == [1, 2]


def test_retention_keeps_the_configured_count(where: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past [accel] snapshot_retention_count, the oldest snapshots leave the pointer and the store."""
    monkeypatch.setenv("AIRFLOW__ACCEL__SNAPSHOT_RETENTION_COUNT", "2")
    dataset = dataset_of(spicepod_dict(where["src"], where["location"]))
    for step in range(4):
        write_drop(where["src"], f"d{step}", range(step * 10, step * 10 + 10))
        refresh(dataset, where["a"])
    pointer = read_pointer(_store(dataset), "trips")
    assert pointer is not None and [e.id for e in pointer.snapshots] == [3, 4]
    objects = sorted(p.name for p in where["store"].rglob("*.duckdb"))
    assert len(objects) == 2


def test_bootstrap_then_append_fetches_only_newer_rows(where: dict) -> None:
    """A host without a local file restores the newest snapshot; its append loads only the newer rows."""
    write_drop(where["src"], "d1", range(0, 100))
    writer = dataset_of(spicepod_dict(where["src"], where["location"]))
    refresh(writer, where["a"])
    write_drop(where["src"], "d2", range(100, 130))
    reader = dataset_of(spicepod_dict(where["src"], where["location"], snapshots="bootstrap_only"))
    out = refresh(reader, where["b"])
    assert out["bootstrap"]["status"] == "restored" and out["bootstrap"]["rows"] == 100
    assert out["result"].rows == 30  # only the rows after the snapshot's watermark were loaded
    assert count(out["path"]) == 130
    assert out["publish"] is None  # bootstrap_only never writes


def test_corrupt_local_file_is_replaced_by_the_snapshot(where: dict) -> None:
    """A corrupt local file is set aside and the newest snapshot restored before the refresh."""
    write_drop(where["src"], "d1", range(0, 40))
    dataset = dataset_of(spicepod_dict(where["src"], where["location"]))
    path = refresh(dataset, where["a"])["path"]
    path.write_bytes(b"not a duckdb file" * 100)
    out = refresh(dataset, where["a"])
    assert out["bootstrap"]["status"] == "restored"
    assert count(path) == 40
    assert list(path.parent.glob("trips.duckdb.corrupt-*"))


@pytest.mark.parametrize(
    ("behavior", "outcome"), [("warn", "failed"), ("retry", "raises"), ("fallback", "restored")]
)
def test_bootstrap_on_failure_behavior(where: dict, behavior: str, outcome: str) -> None:
    """warn refreshes from the source, retry fails the run as transient, fallback restores an older one."""
    writer = dataset_of(spicepod_dict(where["src"], where["location"]))
    write_drop(where["src"], "d1", range(0, 10))
    refresh(writer, where["a"])
    write_drop(where["src"], "d2", range(10, 20))
    refresh(writer, where["a"])
    pointer = read_pointer(_store(writer), "trips")
    assert pointer is not None and pointer.current_entry is not None
    newest = where["store"] / pointer.current_entry.key
    data = bytearray(newest.read_bytes())
    data[len(data) // 3] ^= 0xFF  # one flipped byte in the store
    newest.write_bytes(bytes(data))
    reader = dataset_of(
        spicepod_dict(where["src"], where["location"], snapshots="bootstrap_only", on_failure=behavior)
    )
    live = where["b"] / "trips.duckdb"
    if outcome == "raises":
        with pytest.raises(TransientRefreshError, match="bootstrap_on_failure_behavior is retry"):
            snapshots.before_refresh(reader, live, lock_timeout=5)
        assert not live.exists()
        return
    result = snapshots.before_refresh(reader, live, lock_timeout=5)
    assert result is not None and result["status"] == outcome
    if outcome == "restored":
        assert result["snapshot_id"] == 1 and count(live) == 10


def test_replica_follows_and_skips_unchanged_pointer(where: dict) -> None:
    """A refresh_mode snapshot replica takes each new snapshot, and does nothing while the pointer stays."""
    writer = dataset_of(spicepod_dict(where["src"], where["location"]))
    replica = dataset_of(spicepod_dict(where["src"], where["location"], mode="snapshot", snapshots=None))
    live = where["b"] / "trips.duckdb"
    with pytest.raises(TransientRefreshError, match="no snapshot is published"):
        snapshots.follow_snapshots(replica, live, lock_timeout=5)
    total = 0
    for step in range(3):
        write_drop(where["src"], f"d{step}", range(step * 25, step * 25 + 25))
        total += 25
        refresh(writer, where["a"])
        summary = snapshots.follow_snapshots(replica, live, lock_timeout=5)
        assert summary["snapshot"]["status"] == "restored" and count(live) == total
    again = snapshots.follow_snapshots(replica, live, lock_timeout=5)
    assert again["snapshot"]["status"] == "unchanged"


def test_replica_refuses_corrupt_snapshot_and_keeps_data(where: dict) -> None:
    """An object whose bytes were flipped is refused by checksum; the replica keeps serving its data."""
    writer = dataset_of(spicepod_dict(where["src"], where["location"]))
    replica = dataset_of(spicepod_dict(where["src"], where["location"], mode="snapshot", snapshots=None))
    live = where["b"] / "trips.duckdb"
    write_drop(where["src"], "d1", range(0, 10))
    refresh(writer, where["a"])
    snapshots.follow_snapshots(replica, live, lock_timeout=5)
    write_drop(where["src"], "d2", range(10, 20))
    refresh(writer, where["a"])
    pointer = read_pointer(_store(writer), "trips")
    assert pointer is not None and pointer.current_entry is not None
    obj = where["store"] / pointer.current_entry.key
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF
    obj.write_bytes(bytes(data))
    with pytest.raises(TerminalRefreshError, match="is refused: its checksum"):
        snapshots.follow_snapshots(replica, live, lock_timeout=5)
    assert count(live) == 10


@pytest.mark.parametrize(("on_schema_change", "accepted"), [(None, False), ("sync_all_columns", True)])
def test_replica_refuses_schema_change_unless_allowed(
    where: dict, on_schema_change: str | None, accepted: bool
) -> None:
    """A snapshot with other columns is refused by a replica, unless its on_schema_change allows it."""
    writer = dataset_of(spicepod_dict(where["src"], where["location"], mode="full"))
    replica = dataset_of(
        spicepod_dict(
            where["src"],
            where["location"],
            mode="snapshot",
            snapshots=None,
            on_schema_change=on_schema_change,
        )
    )
    live = where["b"] / "trips.duckdb"
    write_drop(where["src"], "d1", range(0, 10))
    refresh(writer, where["a"])
    snapshots.follow_snapshots(replica, live, lock_timeout=5)
    write_drop(where["src"], "d1", range(0, 12), extra_column=True)
    drifted = dataset_of(
        spicepod_dict(where["src"], where["location"], mode="full", on_schema_change="sync_all_columns")
    )
    assert refresh(drifted, where["a"])["publish"]["status"] == "published"
    if accepted:
        snapshots.follow_snapshots(replica, live, lock_timeout=5)
        assert count(live) == 12
    else:
        with pytest.raises(TerminalRefreshError, match="on_schema_change is block"):
            snapshots.follow_snapshots(replica, live, lock_timeout=5)
        assert count(live) == 10


def test_second_writer_is_refused_and_pointer_kept(where: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """One writer per dataset: another deployment's publish is refused; the pointer stays on A's snapshot."""
    dataset = dataset_of(spicepod_dict(where["src"], where["location"]))
    write_drop(where["src"], "d1", range(0, 10))
    monkeypatch.setenv("AIRFLOW__ACCEL__SNAPSHOT_WRITER_ID", "host-a")
    refresh(dataset, where["a"])
    monkeypatch.setenv("AIRFLOW__ACCEL__SNAPSHOT_WRITER_ID", "host-b")
    write_drop(where["src"], "d2", range(10, 20))
    out = refresh(dataset, where["b"])  # B bootstraps, refreshes, then may not publish
    assert out["result"].total_rows == 20  # the refresh itself succeeded
    assert out["publish"]["status"] == "failed" and "published by host-a" in out["publish"]["error"]
    pointer = read_pointer(_store(dataset), "trips")
    assert pointer is not None and pointer.current == 1 and pointer.writer == "host-a"


def test_publish_failure_does_not_fail_refresh_and_is_retried(where: dict, tmp_path: Path) -> None:
    """An unwritable store fails the publish, not the refresh; the next refresh publishes."""
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the store's folder should be")
    dataset = dataset_of(spicepod_dict(where["src"], f"file://{blocked}/sub/"))
    write_drop(where["src"], "d1", range(0, 10))
    out = refresh(dataset, where["a"])
    assert out["result"].total_rows == 10 and out["publish"]["status"] == "failed"
    blocked.unlink()
    again = refresh(dataset, where["a"])
    assert again["publish"]["status"] == "published"  # same rows, but never published: not skipped
