"""Faults: a writer killed mid-upload, and the object store going away in the middle of a download."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers import start_moto, stop_moto

from airflow_provider_accel import snapshots
from airflow_provider_accel.exceptions import TransientRefreshError
from airflow_provider_accel.snapshots import store as store_module
from airflow_provider_accel.snapshots.pointer import read_pointer
from airflow_provider_accel.snapshots.store import SnapshotStore, sha256_file
from airflow_provider_accel.spicepod.snapshots import snapshot_settings

from ._support import count, dataset_of, refresh, spicepod_dict, write_drop

SCRIPT = Path(__file__).parent / "scripts" / "slow_publish.py"

pytestmark = pytest.mark.processes  # a publisher process to kill, a moto S3 server to kill


def _store(dataset: Any) -> SnapshotStore:
    settings = snapshot_settings(dataset)
    assert settings.store is not None
    return SnapshotStore(settings.store, dataset.name)


def test_sigkill_during_upload_leaves_pointer_on_previous_snapshot(tmp_path: Path) -> None:
    """A publisher SIGKILLed mid-upload leaves the pointer on the previous, complete, verifiable snapshot."""
    location = f"file://{tmp_path / 'store'}/"
    pod = spicepod_dict(tmp_path / "src", location, extra={"snapshots_creation_policy": "always"})
    dataset = dataset_of(pod)
    write_drop(tmp_path / "src", "d0", range(0, 20_000))
    refresh(dataset, tmp_path / "a")
    before = read_pointer(_store(dataset), "trips")
    assert before is not None and before.current == 1
    spicepod = tmp_path / "spicepod.yaml"
    spicepod.write_text(yaml.safe_dump(pod))
    env = dict(os.environ)
    writer = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(spicepod), str(tmp_path / "a")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert writer.stdout is not None
    lines = iter(writer.stdout.readline, "")
    assert any(line.strip() == "UPLOADING" for line in lines), "the slow publisher never started its upload"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    after = read_pointer(_store(dataset), "trips")
    assert after is not None and after.current == 1 and after.generation == before.generation
    entry = after.current_entry
    assert entry is not None
    assert f"sha256:{sha256_file(tmp_path / 'store' / entry.key)}" == entry.checksum
    partial = [p for p in (tmp_path / "store").rglob("*.duckdb") if p.name not in entry.key]
    assert partial, "the killed upload left its partial object (never named by the pointer)"
    replica = dataset_of(spicepod_dict(tmp_path / "src", location, mode="snapshot", snapshots=None))
    snapshots.follow_snapshots(replica, tmp_path / "b" / "trips.duckdb", lock_timeout=5)
    assert count(tmp_path / "b" / "trips.duckdb") == 20_000


def test_store_gone_mid_download_keeps_replica_data_and_is_transient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The S3 server dying during a replica's download leaves its data intact and the run transient."""
    server = start_moto()
    try:
        location = f"s3://{server.new_bucket()}/snaps/"
        writer = dataset_of(
            spicepod_dict(tmp_path / "src", location, mode="full", store_params=server.params())
        )
        replica = dataset_of(
            spicepod_dict(
                tmp_path / "src", location, mode="snapshot", snapshots=None, store_params=server.params()
            )
        )
        live = tmp_path / "b" / "trips.duckdb"
        write_drop(tmp_path / "src", "d0", range(0, 1000))
        refresh(writer, tmp_path / "a")
        snapshots.follow_snapshots(replica, live, lock_timeout=5)
        write_drop(tmp_path / "src", "d1", range(1000, 60_000))
        refresh(writer, tmp_path / "a")

        # Kill the server once the download's first chunk has arrived (small chunks: many ranged GETs).
        monkeypatch.setattr(store_module, "CHUNK_BYTES", 64 * 1024)
        real_download = SnapshotStore.download

        def download_then_die(self: SnapshotStore, key: str, local: Path) -> tuple[str, int]:
            stream = self.fs.open_input_stream(self._path(key))
            stream.read(64 * 1024)
            server.process.kill()
            server.process.wait(timeout=10)
            return real_download(self, key, local)

        monkeypatch.setattr(SnapshotStore, "download", download_then_die)
        with pytest.raises(TransientRefreshError):
            snapshots.follow_snapshots(replica, live, lock_timeout=5)
        assert count(live) == 1000
        assert not list(live.parent.glob("trips.duckdb.staging-*"))
    finally:
        stop_moto(server)
