"""The spicepod store: one parse per file change, shared by the operator, the API and the DAG factory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.spicepod import store

POD = "version: v1\nkind: Spicepod\nname: s\ndatasets:\n  - {from: 'file:/x.parquet', name: trips}\n"


@pytest.fixture
def pod_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "spicepod.yaml"
    path.write_text(POD)
    monkeypatch.setenv("AIRFLOW__ACCEL__SPICEPOD_PATH", str(path))
    store.clear_cache()
    return path


def test_unchanged_file_is_parsed_once(pod_file: Path) -> None:
    """Two reads of an unchanged file return the same parse."""
    assert store.current_spicepod() is store.current_spicepod(pod_file)


def test_changed_file_is_parsed_again(pod_file: Path) -> None:
    """A change of the file (size or mtime) is seen at the next read."""
    assert [d.name for d in store.current_spicepod().datasets] == ["trips"]
    pod_file.write_text(POD + "  - {from: 'file:/y.parquet', name: zones}\n")
    later = pod_file.stat().st_mtime_ns + 10**9
    os.utime(pod_file, ns=(later, later))
    assert [d.name for d in store.current_spicepod().datasets] == ["trips", "zones"]


def test_missing_file_says_what_to_set(tmp_path: Path) -> None:
    """A missing spicepod is a SpicepodError naming the path and [accel] spicepod_path."""
    with pytest.raises(SpicepodError, match=r"spicepod_path"):
        store.current_spicepod(tmp_path / "absent.yaml")


def test_operator_and_api_share_the_store(pod_file: Path) -> None:
    """The refresh operator's and the REST API's spicepod are the store's own parse."""
    from airflow_provider_accel.operators import refresh
    from airflow_provider_accel.plugin.api import datasets

    assert refresh.current_spicepod() is datasets.current_spicepod() is store.current_spicepod()
