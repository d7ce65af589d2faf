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
import hashlib
import logging
import os
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, ClassVar

import duckdb

from airflow_provider_accel.exceptions import SpicepodError, TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.sources.base import ScanRequest, Source, SourceCapabilities, SourceScan

if TYPE_CHECKING:
    import pyarrow as pa

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

FILE_FORMATS = ("parquet", "csv", "json")
#: Spice's time_column value that tracks files by modification time.
LAST_MODIFIED = "last_modified"
#: The reader's file-name column while joining modification times (dropped from the result).
_FILENAME = "__accel_file"
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

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        #: The files the last scan read (for logs and tests).
        self.files_read: list[str] = []
        # One refresh lists the files and reads their footers for the schema once, not at each
        # step that asks (both are cleared by close(), which ends every refresh).
        self._files: list[str] | None = None
        self._schema: pa.Schema | None = None

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
        if self._files is None:
            self._files = self._list_files()
        return self._files

    def _list_files(self) -> list[str]:
        path = self.path
        fmt = self.file_format
        if os.path.isdir(path):
            # As Spice does: only files with the format's extension, without the markers and
            # checksums Spark and Hadoop leave in an output directory.
            root = Path(path)
            found = [
                str(p)
                for p in sorted(root.rglob("*"))
                if _EXTENSIONS.get(p.suffix.lower()) == fmt  # before is_file(): no stat for the others
                and not is_hidden(p.relative_to(root))
                and p.is_file()
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

    @property
    def tracks_last_modified(self) -> bool:
        """``time_column: last_modified``: each row carries its file's modification time (Spice's column)."""
        return self.dataset.time_column == LAST_MODIFIED

    def _reader_sql(self, files: list[str], *, with_filename: bool = False) -> str:
        listed = "[" + ", ".join(sql_string(f) for f in files) + "]"
        hive = "true" if hive_partitioning(self.dataset.params) else "false"
        reader = _READERS[self.file_format].format(files=listed, hive=hive)
        if with_filename:
            reader = reader[:-1] + f", filename = {sql_string(_FILENAME)})"
        return reader

    def _relation_sql(self, files: list[str] | None = None) -> str:
        files = self.files() if files is None else files
        if not self.tracks_last_modified:
            return "SELECT * FROM " + self._reader_sql(files)
        # The file's mtime joins each row as last_modified, so an append's watermark picks new or
        # changed files. A file that already has such a column keeps its own.
        return (
            f"SELECT d.* EXCLUDE ({quote(_FILENAME)}), m.{quote(LAST_MODIFIED)} "
            f"FROM {self._reader_sql(files, with_filename=True)} AS d "
            f"JOIN ({_mtimes_sql(files)}) AS m USING ({quote(_FILENAME)})"
        )

    def files_to_read(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> list[str]:
        """With last_modified tracking, only the files whose mtime passes the request's filter.

        The filter is tried on the file list alone; when it names other columns too, it cannot be
        decided per file and every file is read (the accelerator applies the filter to the rows anyway).
        """
        files = self.files()
        if not self.tracks_last_modified or request.where is None:
            return files
        try:
            rows = con.execute(f"SELECT {quote(_FILENAME)} FROM ({_mtimes_sql(files)}) WHERE {request.where}")
            chosen = {r[0] for r in rows.fetchall()}
        except duckdb.Error as err:
            log.info(
                "Dataset %s: filter not decidable per file (%s); reading every file", self.dataset.name, err
            )
            return files
        return [f for f in files if f in chosen]

    def stamp(self) -> str | None:
        """Each file's path, inode, size and modification time: a rewritten or new file changes it."""
        digest = hashlib.sha256()
        for name in self.files():
            try:
                stat = os.stat(name)
            except OSError:
                return None  # gone while listing: let the scan report it
            digest.update(f"{name}\0{stat.st_ino}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def close(self) -> None:
        self._files = None
        self._schema = None

    def schema(self, con: duckdb.DuckDBPyConnection) -> pa.Schema:
        if self._schema is None:
            self._schema = self._read_schema(con)
        return self._schema

    def _read_schema(self, con: duckdb.DuckDBPyConnection) -> pa.Schema:
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
        files = self.files_to_read(request, con)
        self.files_read = files
        if not files:  # nothing new: an empty relation of the dataset's columns
            return SourceScan(duckdb_sql=f"SELECT * FROM ({self._relation_sql()}) LIMIT 0")
        return SourceScan(duckdb_sql=self._relation_sql(files))


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _mtimes_sql(files: list[str]) -> str:
    """``(accel_file, last_modified)`` rows: each file's modification time as a UTC TIMESTAMPTZ."""
    rows = ", ".join(
        f"({sql_string(f)}, make_timestamptz({int(os.stat(f).st_mtime_ns // 1000)}))" for f in files
    )
    return f"SELECT * FROM (VALUES {rows}) AS v({quote(_FILENAME)}, {quote(LAST_MODIFIED)})"
