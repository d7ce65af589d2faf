"""Test-only probe: records when real refreshes hold a DuckDB file's writer lock and write to the file.

test_production_topology.py puts this directory on the Celery workers' ``PYTHONPATH`` and sets
``ACCEL_LOCK_PROBE_LOG``; Python imports ``sitecustomize`` at start-up, and this one wraps, when the
accelerator hook module is first imported, the hook's ``writer_lock`` and the methods that write the
live file. Each lock window and each write is appended as one JSON line (wall-clock seconds) to the
log. Nothing else changes: the real lock and the real writes run as they would.

Timestamps: a write is stamped before it starts and after it ends (a superset of the write); a lock
window from just after ``flock`` returned to just after it was released. ``requested`` is before the
lock was asked for, so ``acquired - requested`` is the time spent waiting for another writer.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
import time

_LOG = os.environ.get("ACCEL_LOCK_PROBE_LOG")
_TARGET = "airflow_provider_accel.accelerator.hook"
_POOL = "airflow_provider_accel.accelerator.pool"  # its writer_busy probe reschedules a refresh
_holding: list[str | None] = []  # datasets whose lock this process holds (innermost last)


def _ancestors() -> list[int]:
    """Parent, grandparent, ... of this process (a task process is a child of the worker's children)."""
    pids, pid = [], os.getppid()
    while pid > 1 and len(pids) < 16:
        pids.append(pid)
        with open(f"/proc/{pid}/stat") as stat:
            pid = int(stat.read().rsplit(")", 1)[1].split()[1])
    return pids


def _record(**event: object) -> None:
    line = json.dumps({**event, "pid": os.getpid(), "ancestors": _ancestors()}) + "\n"
    fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)  # type: ignore[arg-type]
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _instrument(module: object) -> None:
    original_lock = module.writer_lock  # type: ignore[attr-defined]

    @contextlib.contextmanager
    def writer_lock(path, timeout=None, *args, dataset=None, **kwargs):  # type: ignore[no-untyped-def]
        requested = time.time()
        held = original_lock(path, timeout, *args, dataset=dataset, **kwargs)
        held.__enter__()
        acquired = time.time()
        _holding.append(dataset)
        try:
            yield
        except BaseException:
            _holding.pop()
            held.__exit__(*sys.exc_info())
            _record(kind="lock", dataset=dataset, path=str(path), requested=requested, acquired=acquired,
                    released=time.time(), ok=False)  # fmt: skip
            raise
        _holding.pop()
        held.__exit__(None, None, None)
        _record(kind="lock", dataset=dataset, path=str(path), requested=requested, acquired=acquired,
                released=time.time(), ok=True)  # fmt: skip

    def timed(what: str, function):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            started = time.time()
            try:
                return function(*args, **kwargs)
            finally:
                _record(kind="write", what=what, dataset=_holding[-1] if _holding else None,
                        started=started, ended=time.time())  # fmt: skip

        return wrapper

    module.writer_lock = writer_lock  # type: ignore[attr-defined]
    module.atomic_replace = timed("atomic_replace", module.atomic_replace)  # type: ignore[attr-defined]
    hook = module.DuckDBAcceleratorHook  # type: ignore[attr-defined]
    for method in ("_merge_into_live", "_compact"):
        setattr(hook, method, timed(method, getattr(hook, method)))
    _record(kind="instrumented", module=_TARGET)


def _instrument_pool(module: object) -> None:
    original_busy = module.writer_busy  # type: ignore[attr-defined]

    def writer_busy(path):  # type: ignore[no-untyped-def]
        busy = original_busy(path)
        _record(kind="busy", path=str(path), busy=busy, at=time.time())
        return busy

    module.writer_busy = writer_busy  # type: ignore[attr-defined]


_INSTRUMENT = {_TARGET: _instrument, _POOL: _instrument_pool}


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
        if name not in _INSTRUMENT:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_instrument(module):  # type: ignore[no-untyped-def]
            exec_module(module)
            _INSTRUMENT[name](module)

        spec.loader.exec_module = exec_and_instrument  # type: ignore[method-assign]
        return spec


if _LOG:
    sys.meta_path.insert(0, _Finder())
