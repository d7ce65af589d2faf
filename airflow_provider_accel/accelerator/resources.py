"""Bounded memory by default: each refresh's DuckDB gets a memory limit and a spill directory.

DuckDB's own default is 80% of the host's RAM *per process*, so four refreshes on one worker may ask
for 320% of it, and a container's cgroup limit is not what DuckDB sees. Here the limit is derived
from the memory the worker may really use (the cgroup limit when there is one, else the host's RAM)
shared by the refreshes allowed at once (``runtime.dataset_load_parallelism``, the refresh pool's
slots), with a floor and a cap:

    memory_limit = clamp(MEMORY_SHARE * available / parallel_refreshes, FLOOR, CAP)

The cap keeps a worker's memory flat as datasets grow: past it DuckDB evicts written blocks to the
file and spills intermediates to the spill directory instead of caching them. Its value depends on
what the refresh builds (docs/adr/0013-memory-cap-by-refresh-shape.md has the measurements):

* a **streaming** refresh (``refresh_mode: full``, no ``primary_key``, no ``indexes``, no
  ``on_refresh_sort_columns``) only writes rows through and reads them back once (statistics,
  verification). Everything it holds in DuckDB's memory is a cache of blocks already written, or
  row groups waiting to be written, so a large limit buys no speed and only makes its peak RSS
  follow the data (2.6x from 1M to 20M rows with the 1 GiB cap). Its cap is
  :data:`STREAMING_CAP_BYTES`, and the refresh flushes every row group as soon as it is full
  (``write_buffer_row_group_count = 1``) instead of buffering 5 per thread;
* a refresh that builds an **ART index** (a primary key or ``indexes``: DuckDB cannot spill an
  index), **sorts**, or **appends** (a join against the live table) keeps :data:`CAP_BYTES`.

Precedence, highest first: the dataset's ``acceleration.params.duckdb_memory_limit`` (Spice's
DuckDB parameter), the accelerator connection's ``memory_limit`` extra, the derived default. The
choice and its reason are logged once per refresh.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_accel.accelerator.modes import RefreshMode

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

MIB = 1024 * 1024
#: Fraction of the available memory all refreshes of a worker may share (DuckDB's own default is 80%
#: for one process; the rest is Python, Arrow batches and the source drivers).
MEMORY_SHARE = 0.5
#: Below this DuckDB cannot run a scan with a few threads; a smaller derived share is raised to it.
FLOOR_BYTES = 256 * MIB
#: Above this a refresh gains little speed and the worker's memory would follow the data.
CAP_BYTES = 1024 * MIB
#: The cap of a streaming refresh (nothing to index or sort): the limit of a flat peak RSS.
STREAMING_CAP_BYTES = 128 * MIB
#: DuckDB settings of a streaming refresh: flush each row group when it is full (DuckDB's default
#: buffers 5 per thread, up to 20% of the limit, before writing them).
STREAMING_SETTINGS: dict[str, Any] = {"write_buffer_row_group_count": 1}
#: Name of the spill directory under the data directory (per process, removed by DuckDB when done).
SPILL_DIR_NAME = ".accel-spill"
DATASET_PARAM = "duckdb_memory_limit"

_CGROUP_V2 = Path("/sys/fs/cgroup/memory.max")
_CGROUP_V1 = Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")


def host_memory_bytes() -> int:
    """The host's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def available_memory(
    cgroup_v2: Path = _CGROUP_V2, cgroup_v1: Path = _CGROUP_V1, host: int | None = None
) -> tuple[int, str]:
    """The memory this process may use, and where that figure comes from."""
    host = host_memory_bytes() if host is None else host
    for path in (cgroup_v2, cgroup_v1):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < host:  # "max" or a huge v1 sentinel: no limit
            return int(text), f"the container's cgroup limit ({path})"
    return host, "the host's RAM"


def format_bytes(value: int) -> str:
    """A size as DuckDB reads it back, in MiB (``1024MiB``)."""
    return f"{max(1, value // MIB)}MiB"


@dataclass(frozen=True)
class MemoryBudget:
    """What a refresh's DuckDB is given: ``memory_limit``, ``temp_directory``, and why."""

    memory_limit: str
    temp_directory: str
    reason: str
    settings: dict[str, Any] = field(default_factory=dict)

    def apply(self, connect_config: dict[str, Any]) -> dict[str, Any]:
        """``connect_config`` with the budget's settings (the connection's explicit ones win)."""
        return {
            "memory_limit": self.memory_limit,
            "temp_directory": self.temp_directory,
            **self.settings,
            **connect_config,
        }


def spill_directory(data_dir: Path) -> Path:
    """Where a refresh's DuckDB spills: on the data directory's disk, one directory per process.

    Its parent is created here: DuckDB creates only the last level of ``temp_directory``, so without
    it the first refresh that had to spill failed ("Failed to create directory ...").
    """
    parent = data_dir / SPILL_DIR_NAME
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # an unwritable data directory fails later with its own, clearer error
        log.debug("Could not create the spill directory %s: %s", parent, err)
    return parent / str(os.getpid())


def memory_budget(
    connect_config: dict[str, Any],
    data_dir: Path,
    *,
    dataset: Dataset | None = None,
    parallel_refreshes: int | None = None,
    available: tuple[int, str] | None = None,
) -> MemoryBudget:
    """Choose the memory limit and spill directory of a refresh (see the module's docstring)."""
    from airflow_provider_accel.accelerator.pool import refresh_parallelism

    spill = str(connect_config.get("temp_directory") or spill_directory(data_dir))
    if dataset is not None and dataset.acceleration is not None:
        override = dataset.acceleration.params.get(DATASET_PARAM)
        if override:
            where = f"acceleration.params.{DATASET_PARAM} of dataset {dataset.name}"
            return MemoryBudget(str(override), spill, where)
    if connect_config.get("memory_limit"):
        return MemoryBudget(
            str(connect_config["memory_limit"]), spill, "the accelerator connection's memory_limit extra"
        )
    slots = parallel_refreshes if parallel_refreshes is not None else refresh_parallelism()[0]
    total, source = available or available_memory()
    share = int(total * MEMORY_SHARE / max(1, slots))
    streaming = dataset is not None and is_streaming(dataset)
    cap = STREAMING_CAP_BYTES if streaming else CAP_BYTES
    floor = min(FLOOR_BYTES, cap)
    limit = min(max(share, floor), cap)
    cap_name = "the streaming cap" if streaming else "the cap"
    bound = cap_name if limit == cap and share > cap else None
    bound = bound or ("the floor" if limit == floor and share < floor else None)
    reason = (
        f"{MEMORY_SHARE:.0%} of {format_bytes(total)} ({source}) shared by {slots} refreshes at once "
        f"(runtime.dataset_load_parallelism) = {format_bytes(share)}"
        + (f", held to {bound} of {format_bytes(limit)}" if bound else "")
        + (" (no primary key, index or sort to build: rows stream through)" if streaming else "")
    )
    return MemoryBudget(format_bytes(limit), spill, reason, dict(STREAMING_SETTINGS) if streaming else {})


def is_streaming(dataset: Dataset) -> bool:
    """Whether a refresh of ``dataset`` only streams rows into a new table: a full refresh, no index, no sort.

    A primary key or ``indexes`` build an ART index (DuckDB cannot spill one); ``on_refresh_sort_columns``
    sorts the whole table; an append joins its rows against the live table to drop re-deliveries (a
    join spills, slowly, and was not measured under the low cap). All keep the larger cap.
    """
    acceleration = dataset.acceleration
    if acceleration is None or acceleration.refresh_mode is not RefreshMode.FULL:
        return False
    return not (
        acceleration.primary_key or acceleration.indexes or acceleration.params.get("on_refresh_sort_columns")
    )


def log_budget(budget: MemoryBudget, dataset_name: str) -> None:
    """The task log's line saying what DuckDB was given and why."""
    log.info(
        "Dataset %s: DuckDB memory_limit %s from %s; spilling to %s. Set %s in the dataset's "
        "acceleration.params or memory_limit in the accelerator connection's extra to change it.",
        dataset_name,
        budget.memory_limit,
        budget.reason,
        budget.temp_directory,
        DATASET_PARAM,
    )


__all__ = [
    "MemoryBudget",
    "available_memory",
    "is_streaming",
    "log_budget",
    "memory_budget",
    "spill_directory",
]
