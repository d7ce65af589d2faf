"""``https://host/path/file.parquet`` (or ``http://``): one Parquet, CSV or JSON file over HTTP.

DuckDB here has no httpfs, so the file is downloaded in 1 MiB chunks to a temporary file on local
disk (never held whole in Python memory) and then read by DuckDB's native ``read_parquet``/
``read_csv``/``read_json_auto`` inside the accelerator's connection, which pushes projection and
filters into the scan. The spool file lives until ``close()``; ``schema()`` and ``scan()`` of one
refresh share it, so the file is downloaded once per refresh.

Params: ``file_format`` (else from the URL's extension), ``http_timeout`` seconds (default 60),
optional ``http_username``/``http_password`` (basic auth) or ``http_headers`` (a mapping, e.g. an
``Authorization`` header from a ``${secrets:..}`` placeholder).
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

from airflow_provider_accel.sources._common import StreamingSource, quote_literal, resolve_params
from airflow_provider_accel.sources.base import ScanRequest, SourceCapabilities, SourceScan
from airflow_provider_accel.sources.object_store import file_format_for

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_READERS = {
    "parquet": "read_parquet({path})",
    "csv": "read_csv({path})",
    "json": "read_json_auto({path})",
}
#: HTTP statuses that may clear up by themselves.
_TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class HttpSource(StreamingSource):
    """One file fetched over HTTP(S), spooled to disk, scanned by DuckDB natively."""

    prefixes: ClassVar[tuple[str, ...]] = ("https://", "http://")
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities(
        duckdb_native=True, filter_pushdown=True, projection_pushdown=True
    )

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        self._spool: Path | None = None
        parts = urlsplit(dataset.from_)
        # Credentials in the URL never reach messages or logs.
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        self._label = urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    @property
    def file_format(self) -> str:
        return file_format_for(self.dataset, urlsplit(self.dataset.from_).path)

    def _request(self) -> urllib.request.Request:
        params = resolve_params(self.dataset)
        parts = urlsplit(self.dataset.from_)
        headers = {str(k): str(v) for k, v in dict(params.get("http_headers") or {}).items()}
        user = params.get("http_username") or parts.username
        password = params.get("http_password") or parts.password
        if user:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            headers.setdefault("Authorization", f"Basic {token}")
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        return urllib.request.Request(url, headers=headers)

    def download(self) -> Path:
        """The file on local disk (downloaded once per source object)."""
        if self._spool is not None and self._spool.exists():
            return self._spool
        params = resolve_params(self.dataset)
        timeout = float(params.get("http_timeout") or 60)
        suffix = PurePosixPath(urlsplit(self.dataset.from_).path).suffix or f".{self.file_format}"
        fd, name = tempfile.mkstemp(prefix="accel-http-", suffix=suffix)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(self._request(), timeout=timeout) as resp:
                shutil.copyfileobj(resp, out, _CHUNK)
        except urllib.error.HTTPError as err:
            path.unlink(missing_ok=True)
            if err.code in _TRANSIENT_STATUSES:
                self.transient(f"HTTP {err.code} {err.reason}", err)
            self.terminal(f"HTTP {err.code} {err.reason}", err)
        except (urllib.error.URLError, OSError) as err:
            # Refused, reset, DNS failure, timeout, or the body cut short: the network, retry.
            path.unlink(missing_ok=True)
            self.transient(f"cannot download the file: {getattr(err, 'reason', err)}", err)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        log.info(
            "Dataset %s: downloaded %s (%d bytes)", self.dataset.name, self.description, path.stat().st_size
        )
        self._spool = path
        return path

    def _relation_sql(self) -> str:
        return "SELECT * FROM " + _READERS[self.file_format].format(path=quote_literal(str(self.download())))

    def schema(self, con: duckdb.DuckDBPyConnection) -> pa.Schema:
        import duckdb

        try:
            return con.sql(f"SELECT * FROM ({self._relation_sql()}) LIMIT 0").to_arrow_table().schema
        except duckdb.Error as err:
            # The bytes arrived but are not a readable file of that format.
            self.terminal(f"not a readable {self.file_format} file: {err}", err)

    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        self.check_columns(self.schema(con), request.columns)
        return SourceScan(duckdb_sql=self._relation_sql())

    def close(self) -> None:
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.unlink(missing_ok=True)
