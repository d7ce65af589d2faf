"""The spicepod as the API sees it: re-read when the file changes, datasets resolved by name."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow_provider_accel.config import spicepod_path
from airflow_provider_accel.plugin import param_formats
from airflow_provider_accel.plugin.api.errors import ApiError

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset, Spicepod

log = logging.getLogger(__name__)


class SpicepodUnavailable(RuntimeError):
    """The spicepod cannot be read or is invalid; the API answers 500 and logs why."""


_registered: Spicepod | None = None  # the parse whose datasets have trigger-form checkers


def current_spicepod() -> Spicepod:
    """The spicepod at ``[accel] spicepod_path``, from the shared store (parsed again only when changed).

    The DAG file reads the same file, so a dataset added to it is known here at once, and its DAG
    after the dag-processor's next parse (the window where the API answers 503).
    """
    global _registered
    from airflow_provider_accel.exceptions import SpicepodError
    from airflow_provider_accel.spicepod.store import current_spicepod as stored_spicepod

    try:
        spicepod = stored_spicepod(spicepod_path())
    except (SpicepodError, OSError) as err:
        raise SpicepodUnavailable(f"The spicepod {spicepod_path()} is invalid or unreadable: {err}") from err
    if spicepod is not _registered:
        # A dataset added since the plugin was loaded gets its trigger-form check now.
        param_formats.register(d.name for d in spicepod.datasets)
        _registered = spicepod
    return spicepod


def find_dataset(name: str) -> Dataset:
    """The dataset called ``name`` (case-insensitive); 404 with Spice's message when there is none."""
    dataset = current_spicepod().dataset(name)
    if dataset is None:
        raise ApiError(404, f"Dataset {name} not found")
    return dataset


def find_accelerated_dataset(name: str) -> Dataset:
    """Like :func:`find_dataset`, and 400 with Spice's message when acceleration is not enabled."""
    dataset = find_dataset(name)
    if not dataset.accelerated:
        raise ApiError(400, f"Dataset {name} does not have acceleration enabled")
    return dataset
