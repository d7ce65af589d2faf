"""Publish a dataset's file with a deliberately slow upload, for the SIGKILL test.

Usage: slow_publish.py <spicepod.yaml> <data_dir>. Prints UPLOADING once the first chunk of the object
is written, then keeps writing small chunks slowly until killed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pyarrow.fs as pafs

from airflow_provider_accel.snapshots import store
from airflow_provider_accel.snapshots.publisher import publish
from airflow_provider_accel.spicepod.loader import load_spicepod

store.CHUNK_BYTES = 4096
real_open = pafs.LocalFileSystem.open_output_stream


class SlowSink:
    def __init__(self, sink: object) -> None:
        self.sink = sink
        self.first = True

    def write(self, data: bytes) -> None:
        self.sink.write(data)  # type: ignore[attr-defined]
        self.sink.flush()  # type: ignore[attr-defined]
        if self.first:
            print("UPLOADING", flush=True)
            self.first = False
        time.sleep(0.05)

    def __enter__(self) -> SlowSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sink.close()  # type: ignore[attr-defined]


def slow_open(self: pafs.LocalFileSystem, path: str, *args: object, **kwargs: object) -> SlowSink:
    return SlowSink(real_open(self, path, *args, **kwargs))


store.SnapshotStore.fs = property(lambda self: _Fs())  # type: ignore[assignment]


class _Fs:
    def __getattr__(self, name: str) -> object:
        return getattr(pafs.LocalFileSystem(), name)

    def open_output_stream(self, path: str) -> SlowSink:
        return slow_open(pafs.LocalFileSystem(), path)


dataset = load_spicepod(sys.argv[1]).datasets[0]
publish(dataset, Path(sys.argv[2]) / "trips.duckdb", lock_timeout=10)
print("PUBLISHED", flush=True)
