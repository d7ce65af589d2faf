"""``acceleration.mode``: ``file_create`` starts from an empty file when the dataset is (re)deployed.

Spice deletes a ``file_create`` acceleration's file when the runtime starts, so the first refresh
loads everything anew. Airflow has no runtime start: a deploy is a new or changed dataset
definition. The accelerator records, next to the DuckDB file, a fingerprint of each ``file_create``
dataset's definition after its first refresh; a refresh that finds no record, or one for another
definition, treats the live table as absent. That refresh is then a full load whose new table
replaces the old one in the same commit as its data (a dataset with its own file gets a whole new
file; in a shared ``duckdb_file`` only this dataset's table is replaced, the others' data is kept).

``file`` and ``file_update`` keep and update the existing file (``file_update`` is Spice 2's name).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_accel.accelerator.layout import replace_json
from airflow_provider_accel.spicepod.model import AccelerationMode

if TYPE_CHECKING:
    from airflow_provider_accel.accelerator.strategies import LiveState
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

SUFFIX = ".file_create.json"


def record_path(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def fingerprint(dataset: Dataset) -> str:
    """A digest of the dataset's definition (a new value means a new deploy)."""
    return hashlib.sha256(repr(dataset).encode()).hexdigest()


def _records(path: Path) -> dict[str, str]:
    try:
        data = json.loads(record_path(path).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def starts_fresh(dataset: Dataset, path: Path) -> bool:
    """Whether this refresh of a ``file_create`` dataset must ignore the data already in ``path``."""
    acceleration = dataset.acceleration
    if acceleration is None or acceleration.mode is not AccelerationMode.FILE_CREATE:
        return False
    return _records(path).get(dataset.name.casefold()) != fingerprint(dataset)


def fresh_live(dataset: Dataset, path: Path, live: LiveState) -> LiveState:
    """``live`` as the refresh must see it: without this dataset's table on a fresh start."""
    if not live.table_exists or not starts_fresh(dataset, path):
        return live
    log.info(
        "Dataset %s: mode file_create and a new deploy of its definition; the accelerated data in %s is "
        "replaced by a full load",
        dataset.name,
        path,
    )
    return dataclasses.replace(live, table_exists=False, columns=[], row_count=0, watermark=None)


def record(dataset: Dataset, path: Path) -> None:
    """After a committed refresh: this definition of a ``file_create`` dataset has been deployed."""
    if not starts_fresh(dataset, path):
        return
    records = _records(path)
    records[dataset.name.casefold()] = fingerprint(dataset)
    replace_json(record_path(path), records)
