"""The one place the spicepod file is read: parsed again only when the file changed.

The refresh operator, the REST API and the DAG factory all ask :func:`current_spicepod`, so they see
the same parse of the same file, and a process parses a file once per change, not once per caller.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_accel import config
from airflow_provider_accel.exceptions import SpicepodError

if TYPE_CHECKING:
    import os

    from airflow_provider_accel.spicepod.model import Spicepod

log = logging.getLogger(__name__)

_FileKey = tuple[str, int, int, bool]  # path, mtime_ns, size, [accel] strict_spicepod


class SpicepodStore:
    """Parsed spicepods by path, each re-read when its file's mtime or size changes (thread-safe)."""

    def __init__(self, max_entries: int = 8) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[_FileKey, Spicepod]] = {}
        self._max_entries = max_entries

    def get(self, path: str | os.PathLike[str] | None = None) -> Spicepod:
        """The spicepod at ``path`` (default ``[accel] spicepod_path``); SpicepodError if unusable."""
        resolved = Path(path) if path else config.spicepod_path()
        try:
            stat = resolved.stat()
        except OSError as err:
            raise SpicepodError(
                f"Spicepod not found at {resolved}: {err.strerror}. Set [accel] spicepod_path "
                "(AIRFLOW__ACCEL__SPICEPOD_PATH) to your spicepod.yaml."
            ) from err
        key: _FileKey = (str(resolved), stat.st_mtime_ns, stat.st_size, config.strict_spicepod())
        with self._lock:
            cached = self._cache.get(key[0])
            if cached is not None and cached[0] == key:
                return cached[1]
            from airflow_provider_accel.spicepod.loader import load_spicepod

            spicepod = load_spicepod(resolved)
            if len(self._cache) >= self._max_entries and key[0] not in self._cache:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key[0]] = (key, spicepod)
            log.info(
                "Loaded spicepod %s: %d datasets, %d that cannot be served",
                resolved,
                len(spicepod.datasets),
                len(spicepod.dataset_errors),
            )
            return spicepod

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


_store = SpicepodStore()


def current_spicepod(path: str | os.PathLike[str] | None = None) -> Spicepod:
    """The spicepod at ``path`` (default ``[accel] spicepod_path``), re-read when the file changes."""
    return _store.get(path)


def clear_cache() -> None:
    """Forget every parsed spicepod (tests, or after changing ``[accel] strict_spicepod``)."""
    _store.clear()
