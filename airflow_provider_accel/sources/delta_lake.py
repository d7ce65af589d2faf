"""``delta_lake:<path>``: a Delta Lake table (local path or ``s3://``), read with delta-rs (``deltalake``).

Params (Spice's): ``delta_lake_aws_region``, ``delta_lake_aws_access_key_id``,
``delta_lake_aws_secret_access_key``, ``delta_lake_aws_endpoint`` (e.g. MinIO's ``http://host:9000``)
and ``client_timeout`` (default ``30s``). Install with ``pip install 'airflow-provider-accel[delta]'``.

The table's current snapshot becomes a ``pyarrow.dataset`` (one fragment per data file, each with
its partition values as a guarantee) registered in the accelerator's DuckDB connection. DuckDB
pushes the projection and the filter into that Arrow scanner: files whose partition values or
Parquet statistics cannot match the filter are never opened, and batches stream with no Python
per-row work. The scanner reads one file ahead at a time (:class:`Readahead`), so memory stays
flat as the table grows.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_accel.sources._common import resolve_params
from airflow_provider_accel.sources.arrow_dataset import ArrowDatasetSource, Readahead
from airflow_provider_accel.sources.base import ScanRequest, SourceCapabilities, SourceScan

if TYPE_CHECKING:
    import duckdb
    import pyarrow.dataset as pads

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

#: Spice param -> delta-rs storage option.
_STORAGE_OPTIONS = {
    "delta_lake_aws_region": "AWS_REGION",
    "delta_lake_aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "delta_lake_aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "delta_lake_aws_endpoint": "AWS_ENDPOINT_URL",
    "client_timeout": "timeout",
}
#: Words of delta-rs/object_store messages that mean "refused", not "unavailable".
_TERMINAL_WORDS = ("403", "401", "Forbidden", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")


class DeltaLakeSource(ArrowDatasetSource):
    """The current version of a Delta Lake table, scanned by DuckDB through an Arrow dataset."""

    prefixes: ClassVar[tuple[str, ...]] = ("delta_lake:",)
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities(
        duckdb_native=True, filter_pushdown=True, projection_pushdown=True
    )

    view_prefix: ClassVar[str] = "accel_delta"
    #: One data file decoded at a time, in batches of 16,384 rows: delta-rs writes a file per commit,
    #: often one row group each, and PyArrow's defaults (4 files ahead, 16 batches of 131,072 rows)
    #: made peak RSS follow the table's size (bench.source_memory --source delta, 1M -> 5M rows:
    #: 1.51x with the defaults, 1.19x with these).
    readahead: ClassVar[Readahead | None] = Readahead(fragments=1, batches=2, batch_rows=16_384)

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        #: The Delta table version the last schema/scan read.
        self.version: int | None = None

    @property
    def table_uri(self) -> str:
        uri = self.dataset.from_.split(":", 1)[1]
        if not uri:
            self.terminal("expected delta_lake:<path or s3://bucket/path>")
        return uri

    def storage_options(self) -> dict[str, str]:
        params = resolve_params(self.dataset)
        options = {
            opt: str(params[p]) for p, opt in _STORAGE_OPTIONS.items() if params.get(p) not in (None, "")
        }
        if str(options.get("AWS_ENDPOINT_URL", "")).startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
        return options

    def is_transient(self, err: BaseException) -> bool:
        from deltalake.exceptions import DeltaProtocolError, SchemaMismatchError, TableNotFoundError

        if isinstance(err, TableNotFoundError | DeltaProtocolError | SchemaMismatchError):
            return False
        if isinstance(err, FileNotFoundError | PermissionError) or any(
            w in str(err) for w in _TERMINAL_WORDS
        ):
            return False
        # Network and storage failures (delta-rs reports them as OSError or its generic DeltaError).
        return isinstance(err, OSError) or type(err).__name__ == "DeltaError"

    def arrow_dataset(self) -> pads.Dataset:
        if self._dataset is not None:
            return self._dataset
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            table = DeltaTable(self.table_uri, storage_options=self.storage_options())
            self.version = table.version()
            self._dataset = table.to_pyarrow_dataset()
        except TableNotFoundError as err:
            self.terminal(f"no Delta table at {self.table_uri!r} (no _delta_log found): {err}", err)
        except Exception as err:  # delta-rs raises its own and OSError; classify() decides which is which
            raise self.classify(err) from err
        log.info("Dataset %s: Delta table %s at version %s", self.dataset.name, self.table_uri, self.version)
        return self._dataset

    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        # A fresh snapshot per scan: an append must see the commits made since the last one.
        self.close()
        self._dataset = None
        self.check_columns(self.schema(con), request.columns)
        return SourceScan(duckdb_sql=f"SELECT * FROM {self._registered_view(con)}")
