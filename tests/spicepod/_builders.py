"""Builders for spicepod mappings: each test states only the fields it is about."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.spicepod import Spicepod, parse_spicepod

BASE_DATASET: dict[str, Any] = {
    "from": "s3://spiceai-demo-datasets/taxi_trips/2024/",
    "name": "taxi_trips",
    "params": {"file_format": "parquet"},
}


def make_pod(*datasets: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A valid spicepod mapping with ``datasets`` (default: one plain taxi_trips) and top-level extras."""
    pod: dict[str, Any] = {"version": "v1", "kind": "Spicepod", "name": "test"}
    pod["datasets"] = [copy.deepcopy(d) for d in datasets] if datasets else [copy.deepcopy(BASE_DATASET)]
    pod.update(top)
    return pod


def make_dataset(acceleration: Any = None, **fields: Any) -> dict[str, Any]:
    """taxi_trips with ``fields`` overridden and, when given, that ``acceleration`` block."""
    dataset = copy.deepcopy(BASE_DATASET)
    dataset.update(fields)
    if acceleration is not None:
        dataset["acceleration"] = acceleration
    return dataset


def parse_dataset(acceleration: Any = None, **fields: Any) -> Spicepod:
    """Parse one taxi_trips dataset strictly: a dataset that cannot be served raises."""
    return parse_spicepod(make_pod(make_dataset(acceleration, **fields)), strict=True)


def reject(data: dict[str, Any]) -> SpicepodError:
    """The SpicepodError that strict parsing of ``data`` raises (fails the test if it parses).

    It also checks per-dataset isolation: parsed non-strictly, the same error is either the whole
    pod's (raised the same way) or one dataset's, listed in ``dataset_errors`` with that reason.
    """
    with pytest.raises(SpicepodError) as info:
        parse_spicepod(data, strict=True)
    err = info.value
    try:
        pod = parse_spicepod(data, strict=False)
    except SpicepodError as pod_error:
        assert str(pod_error) == str(err)
    else:
        assert str(err) in [e.reason for e in pod.dataset_errors]
        errored = next(e for e in pod.dataset_errors if e.reason == str(err))
        assert errored.field == err.field
        # Every dataset of the pod is either served or listed with its reason, never both or neither.
        assert len(pod.datasets) + len(pod.dataset_errors) == len(data.get("datasets") or [])
    return err
