"""``s3://bucket/prefix/`` (or ``s3://bucket/key.parquet``): Parquet, CSV or JSON objects in S3 or an
S3-compatible store.

Params (Spice's): ``file_format`` (``parquet``/``csv``/``json``; else from the key's extension, else
parquet), ``s3_endpoint`` (e.g. ``http://127.0.0.1:9000`` for MinIO), ``s3_region``, ``s3_auth``
(``public``: anonymous; ``key``: ``s3_key`` + ``s3_secret``; ``iam_role``: the AWS default credential
chain), ``s3_key``, ``s3_secret``, ``s3_session_token``. Or ``aws_conn_id``: an Airflow AWS connection
(login = access key id, password = secret, extra ``region_name``, ``endpoint_url``,
``aws_session_token``); explicit ``s3_*`` params win over it. Without ``s3_auth``: ``key`` when a key is
given, else ``public``, as Spice does.

DuckDB here cannot load httpfs, so the objects are read by Arrow's C++ S3 filesystem: the
``pyarrow.dataset`` is registered in the accelerator's DuckDB connection and the scan is
``SELECT * FROM <that name>``; DuckDB pushes projection and filters into the Arrow dataset scanner
(Parquet row groups are skipped by statistics), and batches stream without Python per-row work.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.sources._common import quote_ident, resolve_params
from airflow_provider_accel.sources.arrow_dataset import ArrowDatasetSource
from airflow_provider_accel.sources.base import ScanRequest, SourceCapabilities, SourceScan
from airflow_provider_accel.sources.file import LAST_MODIFIED, hive_partitioning, is_hidden, sql_string

if TYPE_CHECKING:
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

FILE_FORMATS = ("parquet", "csv", "json")
#: The type of the last_modified column: a UTC instant, as the file source gives it.
_MTIME = pa.timestamp("us", tz="UTC")


def _micros(mtime: dt.datetime | None) -> int:
    """An object's last-modified time as microseconds since the epoch (0 when the store gives none)."""
    if mtime is None:
        return 0
    if mtime.tzinfo is None:
        mtime = mtime.replace(tzinfo=dt.UTC)
    return int(mtime.timestamp() * 1_000_000)


_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}
# AWS SDK error names (pyarrow reports S3 failures as OSError carrying the SDK's error name: there is
# no typed exception to catch, so these names are the classification).
_TERMINAL_AWS_ERRORS = (
    "ACCESS_DENIED",
    "INVALID_ACCESS_KEY_ID",
    "SIGNATURE_DOES_NOT_MATCH",
    "NO_SUCH_BUCKET",
    "NoSuchBucket",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "UNRECOGNIZED_CLIENT",
    "Forbidden",
    "HTTP response code: 403",
    "HTTP response code: 401",
)


def file_format_for(dataset: Dataset, key: str) -> str:
    fmt = str(dataset.params.get("file_format") or "").lower()
    if fmt:
        if fmt not in FILE_FORMATS:
            raise SpicepodError(
                f"Dataset {dataset.name}: params.file_format {fmt!r} is not supported; "
                f"use one of {', '.join(FILE_FORMATS)}.",
                dataset=dataset.name,
                field="params.file_format",
            )
        return fmt
    return _EXTENSIONS.get(PurePosixPath(key).suffix.lower(), "parquet")


class ObjectStoreSource(ArrowDatasetSource):
    """Objects under an ``s3://`` prefix, read as one Arrow dataset registered in DuckDB."""

    prefixes: ClassVar[tuple[str, ...]] = ("s3://", "s3a://")
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities(
        duckdb_native=True, filter_pushdown=True, projection_pushdown=True
    )

    view_prefix: ClassVar[str] = "accel_s3"

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        self._mtimes: dict[str, dt.datetime | None] = {}  # object path -> last modified
        self.objects_read: list[str] | None = None  # with last_modified: the objects the scan read

    @property
    def location(self) -> tuple[str, str]:
        parts = urlsplit(self.dataset.from_)
        if not parts.netloc:
            self.terminal("expected s3://bucket/prefix/")
        return parts.netloc, parts.path.lstrip("/")

    def filesystem(self) -> pafs.S3FileSystem:
        import pyarrow.fs as pafs

        params = resolve_params(self.dataset)
        options: dict[str, Any] = {}
        conn_id = params.get("aws_conn_id")
        if conn_id:
            options.update(self._from_airflow(str(conn_id)))
        endpoint = params.get("s3_endpoint")
        if endpoint:
            options["endpoint_override"] = str(endpoint)
        if params.get("s3_region"):
            options["region"] = str(params["s3_region"])
        if params.get("s3_key"):
            options["access_key"] = str(params["s3_key"])
            options["secret_key"] = str(params.get("s3_secret") or "")
        if params.get("s3_session_token"):
            options["session_token"] = str(params["s3_session_token"])
        auth = str(params.get("s3_auth") or ("key" if options.get("access_key") else "public")).lower()
        if auth == "public":
            options = {
                k: v for k, v in options.items() if k not in ("access_key", "secret_key", "session_token")
            }
            options["anonymous"] = True
        elif auth == "key":
            if not options.get("access_key") or not options.get("secret_key"):
                raise SpicepodError(
                    f"Dataset {self.dataset.name}: s3_auth is 'key' but s3_key/s3_secret are not set.",
                    dataset=self.dataset.name,
                    field="params.s3_key",
                )
        elif auth == "iam_role":
            # The AWS default chain (instance profile, web identity, env vars): pass no keys.
            options = {
                k: v for k, v in options.items() if k not in ("access_key", "secret_key", "session_token")
            }
        else:
            raise SpicepodError(
                f"Dataset {self.dataset.name}: params.s3_auth {auth!r} is not one of public, key, iam_role.",
                dataset=self.dataset.name,
                field="params.s3_auth",
            )
        endpoint = options.get("endpoint_override")
        if isinstance(endpoint, str) and "://" in endpoint:
            scheme, _, rest = endpoint.partition("://")
            options["scheme"] = scheme
            options["endpoint_override"] = rest.rstrip("/")
            # Path-style addressing: S3-compatible stores on an IP or localhost have no bucket DNS.
            options.setdefault("force_virtual_addressing", False)
        options.setdefault("region", "us-east-1")
        # Fail fast: the operator's own retry (Fibonacci backoff) is the retry policy.
        options["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(max_attempts=2)
        options.setdefault("connect_timeout", 10)
        options.setdefault("request_timeout", 60)
        return pafs.S3FileSystem(**options)

    def _from_airflow(self, conn_id: str) -> dict[str, Any]:
        conn = self.airflow_connection(conn_id)
        extra = conn.extra_dejson or {}
        out: dict[str, Any] = {}
        if conn.login:
            out["access_key"] = conn.login
            out["secret_key"] = conn.password or ""
        if extra.get("aws_session_token"):
            out["session_token"] = extra["aws_session_token"]
        if extra.get("region_name"):
            out["region"] = extra["region_name"]
        endpoint = extra.get("endpoint_url") or (extra.get("service_config") or {}).get("s3", {}).get(
            "endpoint_url"
        )
        if endpoint:
            out["endpoint_override"] = endpoint
        return out

    def _fail(self, err: BaseException) -> None:
        text = str(err)
        if isinstance(err, FileNotFoundError | PermissionError) or any(
            n in text for n in _TERMINAL_AWS_ERRORS
        ):
            self.terminal(f"cannot read the objects: {text}", err)
        if isinstance(err, OSError):
            self.transient(f"cannot reach the object store: {text}", err)
        self.terminal(f"cannot read the objects: {text}", err)

    def arrow_dataset(self) -> pads.Dataset:
        import pyarrow.dataset as pads
        import pyarrow.fs as pafs

        if self._dataset is not None:
            return self._dataset
        bucket, key = self.location
        fmt = file_format_for(self.dataset, key)
        fs = self.filesystem()
        path = f"{bucket}/{key}".rstrip("/")
        try:
            info = fs.get_file_info(path)
            if info.type == pafs.FileType.NotFound:
                self.terminal(f"no object or prefix {self.dataset.from_!r}")
            # A prefix is listed recursively; keys of another format (e.g. _SUCCESS markers) are skipped.
            source: Any = path
            self._mtimes = {path: info.mtime}
            if info.type == pafs.FileType.Directory:
                objects = [
                    f
                    for f in fs.get_file_info(pafs.FileSelector(path, recursive=True))
                    if f.type == pafs.FileType.File
                    and _EXTENSIONS.get(PurePosixPath(f.path).suffix.lower(), fmt) == fmt
                    and not is_hidden(PurePosixPath(f.path).relative_to(path))
                ]
                if not objects:
                    self.terminal(f"no {fmt} objects under {self.dataset.from_!r}")
                self._mtimes = {f.path: f.mtime for f in objects}
                source = sorted(self._mtimes)
            partitioning = (
                {"partitioning": "hive", "partition_base_dir": path}
                if hive_partitioning(self.dataset.params)
                else {}
            )
            self._dataset = pads.dataset(source, format=fmt, filesystem=fs, **partitioning)
        except (OSError, pa.ArrowException) as err:
            self._fail(err)
        return self._dataset

    # -- time_column: last_modified (Spice's object metadata column) ---------------------------

    @property
    def tracks_last_modified(self) -> bool:
        """Each row carries its object's last-modified time, unless the objects have such a column."""
        return (
            self.dataset.time_column == LAST_MODIFIED
            and LAST_MODIFIED not in self.arrow_dataset().schema.names
        )

    def schema(self, con: duckdb.DuckDBPyConnection) -> pa.Schema:
        schema = self.arrow_dataset().schema
        if self.tracks_last_modified:
            schema = schema.append(pa.field(LAST_MODIFIED, _MTIME))
        return schema

    def objects_to_read(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> list[str]:
        """The objects whose last_modified passes the request's filter (all when it is not decidable)."""
        paths = sorted(self._mtimes)
        if request.where is None:
            return paths
        values = ", ".join(
            f"({sql_string(p)}, make_timestamptz({_micros(m)}))" for p, m in self._mtimes.items()
        )
        mtimes = f"SELECT * FROM (VALUES {values}) AS v(__accel_object, {quote_ident(LAST_MODIFIED)})"
        try:
            chosen = {
                r[0]
                for r in con.execute(
                    f"SELECT __accel_object FROM ({mtimes}) WHERE {request.where}"
                ).fetchall()
            }
        except duckdb.Error as err:
            log.info(
                "Dataset %s: filter not decidable per object (%s); reading every object",
                self.dataset.name,
                err,
            )
            return paths
        return [p for p in paths if p in chosen]

    def _last_modified_reader(self, chosen: list[str]) -> pa.RecordBatchReader:
        """The chosen objects' rows, each batch with its object's last_modified (streamed)."""
        import pyarrow.dataset as pads

        base = self.arrow_dataset()
        schema = base.schema.append(pa.field(LAST_MODIFIED, _MTIME))
        wanted = set(chosen)

        def batches() -> Iterator[pa.RecordBatch]:
            for fragment in base.get_fragments():
                if fragment.path not in wanted:
                    continue
                micros = _micros(self._mtimes[fragment.path])
                for batch in pads.Scanner.from_fragment(fragment, schema=base.schema).to_batches():
                    column = pa.array([micros] * batch.num_rows, pa.int64()).cast(_MTIME)
                    yield pa.RecordBatch.from_arrays([*batch.columns, column], schema=schema)

        return pa.RecordBatchReader.from_batches(schema, batches())

    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        self.check_columns(self.schema(con), request.columns)
        if self.tracks_last_modified:
            chosen = self.objects_to_read(request, con)
            self.objects_read = chosen
            log.info(
                "Dataset %s: reading %s of %s objects by last_modified",
                self.dataset.name,
                len(chosen),
                len(self._mtimes),
            )
            return SourceScan(reader=self._last_modified_reader(chosen))
        name = self._register(con)
        log.info("Dataset %s: reading %s as Arrow dataset %s", self.dataset.name, self.description, name)
        return SourceScan(duckdb_sql=f"SELECT * FROM {quote_ident(name)}")
