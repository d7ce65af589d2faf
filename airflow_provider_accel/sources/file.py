"""Local files: Parquet, CSV and JSON — one file, a directory or a glob — scanned by DuckDB itself.

``from:`` forms: ``file:path``, ``file://path`` (``file:///abs/path``) or a plain path. The format is
``params.file_format`` (``parquet``, ``csv``, ``json``), else the file extension. The scan is a
DuckDB-native ``read_parquet``/``read_csv``/``read_json`` that runs inside the accelerator's own
connection, so DuckDB pushes projection and filters into the scan and streams into the table.

A directory is read as Spice reads one: only files with the format's extension, skipping names that
start with ``_`` or ``.`` (a Spark or Hadoop output directory's ``_SUCCESS`` and ``.crc`` files). With
Spice's ``hive_partitioning_enabled: true``, ``key=value`` folders (``year=2024/month=01/``) become
columns; without it (Spice's default) they are not read as columns.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, ClassVar

import duckdb

from airflow_provider_accel.exceptions import SpicepodError, TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.sources.base import ScanRequest, Source, SourceCapabilities, SourceScan

if TYPE_CHECKING:
    import pyarrow as pa

FILE_FORMATS = ("parquet", "csv", "json")
_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}
_READERS = {
    "parquet": "read_parquet({files}, union_by_name = true, hive_partitioning = {hive})",
    "csv": "read_csv({files}, union_by_name = true, hive_partitioning = {hive})",
    "json": "read_json_auto({files}, union_by_name = true, hive_partitioning = {hive})",
}


def hive_partitioning(dataset_params: dict[str, object]) -> bool:
    """Spice's ``hive_partitioning_enabled`` param (default false): ``key=value`` folders become columns."""
    return str(dataset_params.get("hive_partitioning_enabled", "false")).strip().lower() in (
        "true",
        "1",
        "yes",
    )


def is_hidden(relative: PurePath) -> bool:
    """A file or folder Spark/Hadoop writes beside the data (``_SUCCESS``, ``.crc``, ``_temporary/``)."""
    return any(part.startswith(("_", ".")) for part in relative.parts)


def sql_string(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


class FileSource(Source):
    """Parquet, CSV or JSON files on the local file system (or a mounted shared one)."""

    prefixes: ClassVar[tuple[str, ...]] = ("file:",)
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities(
        duckdb_native=True, filter_pushdown=True, projection_pushdown=True
    )

    @classmethod
    def accepts(cls, from_: str) -> bool:
        # A plain path has no URI scheme ("data/x.parquet", "/abs/x.csv"); "s3://" etc. are not ours.
        return from_.startswith("file:") or (":" not in from_.split("/", 1)[0] and "://" not in from_)

    @property
    def path(self) -> str:
        raw = self.dataset.from_
        if raw.startswith("file://"):
            raw = raw[len("file://") :]
        elif raw.startswith("file:"):
            raw = raw[len("file:") :]
        return os.path.expanduser(raw)

    @property
    def file_format(self) -> str:
        fmt = str(self.dataset.params.get("file_format") or "").lower()
        if fmt:
            if fmt not in FILE_FORMATS:
                raise SpicepodError(
                    f"Dataset {self.dataset.name}: params.file_format {fmt!r} is not supported; "
                    f"use one of {', '.join(FILE_FORMATS)}.",
                    dataset=self.dataset.name,
                    field="params.file_format",
                )
            return fmt
        suffix = Path(self.path.rstrip("/*")).suffix.lower()
        if suffix in _EXTENSIONS:
            return _EXTENSIONS[suffix]
        raise SpicepodError(
            f"Dataset {self.dataset.name}: cannot tell the file format of {self.path!r}; "
            f"set params.file_format to one of {', '.join(FILE_FORMATS)}.",
            dataset=self.dataset.name,
            field="params.file_format",
        )

    def files(self) -> list[str]:
        """The files to read, sorted; a terminal error when there are none."""
        path = self.path
        fmt = self.file_format
        if os.path.isdir(path):
            # As Spice does: only files with the format's extension, without the markers and
            # checksums Spark and Hadoop leave in an output directory.
            root = Path(path)
            found = [
                str(p)
                for p in sorted(root.rglob("*"))
                if p.is_file()
                and _EXTENSIONS.get(p.suffix.lower()) == fmt
                and not is_hidden(p.relative_to(root))
            ]
        elif glob.has_magic(path):
            found = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
        elif os.path.isfile(path):
            found = [path]
        else:
            found = []
        if not found:
            raise TerminalRefreshError(
                f"Dataset {self.dataset.name}: no {fmt} files found at {path!r} (from: "
                f"{self.dataset.from_}). Check the path, or that the files exist on this worker.",
                dataset=self.dataset.name,
            )
        return found

    def _relation_sql(self) -> str:
        files = "[" + ", ".join(sql_string(f) for f in self.files()) + "]"
        hive = "true" if hive_partitioning(self.dataset.params) else "false"
        return "SELECT * FROM " + _READERS[self.file_format].format(files=files, hive=hive)

    def schema(self, con: duckdb.DuckDBPyConnection) -> pa.Schema:
        try:
            return con.sql(f"SELECT * FROM ({self._relation_sql()}) LIMIT 0").to_arrow_table().schema
        except duckdb.IOException as err:
            raise TransientRefreshError(
                f"Dataset {self.dataset.name}: could not read {self.path!r}: {err}", dataset=self.dataset.name
            ) from err
        except duckdb.Error as err:
            raise TerminalRefreshError(
                f"Dataset {self.dataset.name}: could not read {self.file_format} at {self.path!r}: {err}",
                dataset=self.dataset.name,
            ) from err

    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        # DuckDB's optimizer pushes the accelerator's projection and WHERE into this scan.
        return SourceScan(duckdb_sql=self._relation_sql())
