"""What the last committed refresh left, so that the next append pays only for what changed.

After every refresh that ends with the live file read back (a commit verified, or a file whose every
block was read), the provider records, per dataset, beside the file (``<file>.verified.json``):

* the live file's identity (device, inode, size, modification and change times, in nanoseconds).
  Any write to the file (a refresh, retention, a restored snapshot, a damaged block overwritten by
  anything else) changes it. While it is unchanged, the next append skips reading every block of
  the live table (:func:`.integrity.read_every_block`, a cost that grows with the table): DuckDB's
  own checksums were current when the provider last wrote or read the file.
* a stamp of the source as that refresh read it (the dataset's definition and, for local files,
  each file's identity, see :meth:`.Source.stamp`). An append at or after a watermark (a
  ``time_column``, without ``refresh_sql``) whose live file and source stamp are both unchanged has
  nothing new to read: every source row at or after the watermark was fetched by that refresh. It
  commits nothing and reads no file footers.

A missing, unreadable or stale record only means the work is done again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_accel.accelerator.layout import replace_json, wal_file

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

SUFFIX = ".verified.json"


def record_path(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def identity(path: Path) -> list[int] | None:
    """The live file's identity, or None when it is missing or has a write-ahead log to fold in."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if wal_file(path).exists():
        return None
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def source_stamp(dataset: Dataset, source_part: str | None) -> str | None:
    """The dataset's definition and the source's own stamp, as one digest (None: the source has none)."""
    if source_part is None:
        return None
    return hashlib.sha256(f"{dataset!r}\n{source_part}".encode()).hexdigest()


def _records(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(record_path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _record(path: Path, dataset: Dataset) -> dict[str, object]:
    record = _records(path).get(dataset.name.casefold())
    return record if isinstance(record, dict) else {}


def live_unchanged(path: Path, dataset: Dataset) -> bool:
    """The live file is the one this dataset's last refresh left (nothing has written it since)."""
    current = identity(path)
    return current is not None and _record(path, dataset).get("live") == current


def source_unchanged(path: Path, dataset: Dataset, stamp: str | None) -> bool:
    """The live file and the source are both as this dataset's last refresh left and read them."""
    if stamp is None:
        return False
    return live_unchanged(path, dataset) and _record(path, dataset).get("source") == stamp


def record(path: Path, dataset: Dataset, stamp: str | None) -> None:
    """After a refresh that ended with the live file read back: its identity and the source's stamp.

    Called under the writer lock, after the provider's last write to the file. Other datasets of a
    shared file keep their records; the file's new identity makes theirs stale, as it should.
    """
    current = identity(path)
    records = _records(path)
    key = dataset.name.casefold()
    if current is None:
        records.pop(key, None)
    else:
        records[key] = {"live": current, "source": stamp}
    target = record_path(path)
    try:
        replace_json(target, records)
    except OSError as err:
        # A record that cannot be written only costs the next append its shortcuts; a stale one
        # must not stay behind (its live identity would no longer match anyway).
        with contextlib.suppress(OSError):
            target.unlink(missing_ok=True)
        log.warning("Dataset %s: could not record the verified state in %s (%s)", dataset.name, target, err)
