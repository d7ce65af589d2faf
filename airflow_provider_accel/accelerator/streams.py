"""Watching a load while DuckDB runs it: rows and bytes of an Arrow stream, and progress lines."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import duckdb
import pyarrow as pa

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 5.0


class CountingReader:
    """Wraps an Arrow stream to count rows and bytes as DuckDB pulls batches through it.

    It also keeps the exception a source raises mid-stream: DuckDB turns any Python exception in a
    stream it consumes into a generic ``InvalidInputException``, which would lose the source's own
    transient/terminal classification.
    """

    def __init__(self, reader: pa.RecordBatchReader) -> None:
        self.rows = 0
        self.bytes = 0
        self.error: BaseException | None = None
        self._reader = reader

    def stream(self) -> pa.RecordBatchReader:
        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for batch in self._reader:
                    self.rows += batch.num_rows
                    self.bytes += batch.nbytes
                    yield batch
            except Exception as err:
                self.error = err
                raise

        return pa.RecordBatchReader.from_batches(self._reader.schema, batches())


@contextlib.contextmanager
def progress(
    dataset_name: str,
    con: duckdb.DuckDBPyConnection,
    counter: CountingReader | None,
    interval: float = PROGRESS_INTERVAL_SECONDS,
) -> Iterator[None]:
    """Log a progress line every few seconds while a long load runs."""
    done = threading.Event()
    started = time.monotonic()

    def report() -> None:
        while not done.wait(interval):
            if counter is not None:
                log.info(
                    "Loading dataset %s: %s rows received so far (%.0fs)",
                    dataset_name,
                    f"{counter.rows:,}",
                    time.monotonic() - started,
                )
            else:
                with contextlib.suppress(duckdb.Error):
                    percent = con.query_progress()
                    log.info(
                        "Loading dataset %s: %.0f%% of the source scanned (%.0fs)",
                        dataset_name,
                        max(percent, 0.0),
                        time.monotonic() - started,
                    )

    thread = threading.Thread(target=report, name=f"accel-progress-{dataset_name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
