"""The object store under ``snapshots.location``: pyarrow's filesystems for ``file://`` and ``s3://``.

Everything here moves bytes and classifies failures: an unreachable store (connection refused, a
timeout, a store going away mid-transfer) is a :class:`TransientRefreshError`; missing credentials, a
missing bucket or a denied request are terminal. S3 connection settings are Spice's S3 params
(``s3_endpoint``, ``s3_region``, ``s3_auth``, ``s3_key``, ``s3_secret``, ``aws_conn_id``), read by the
same code as the S3 source. As in Spice, ``s3_auth`` defaults to ``iam_role`` for snapshots.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from airflow_provider_accel.exceptions import (
    RefreshError,
    SpicepodError,
    TerminalRefreshError,
    TransientRefreshError,
)

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from airflow_provider_accel.spicepod.snapshots import SnapshotsConfig

log = logging.getLogger(__name__)

CHUNK_BYTES = 8 * 1024 * 1024
_TERMINAL_MARKERS = (
    "ACCESS_DENIED",
    "AccessDenied",
    "NoSuchBucket",
    "NO_SUCH_BUCKET",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "HTTP response code: 403",
    "HTTP response code: 401",
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class SnapshotStore:
    """One ``snapshots.location``: paths inside it are ``/``-separated keys relative to the location."""

    config: SnapshotsConfig
    dataset: str  # for error messages and secret resolution only

    def __post_init__(self) -> None:
        self._fs: pafs.FileSystem | None = None
        parts = urlsplit(self.config.location)
        if parts.scheme == "s3":
            self._root = f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
        else:
            self._root = unquote(parts.path).rstrip("/")

    @property
    def location(self) -> str:
        return self.config.location

    def url(self, key: str) -> str:
        return self.config.location + key

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}" if self._root else key

    # -- opening -----------------------------------------------------------------------------

    @property
    def fs(self) -> pafs.FileSystem:
        if self._fs is None:
            self._fs = self._open()
        return self._fs

    def _open(self) -> pafs.FileSystem:
        import pyarrow.fs as pafs

        if self.config.scheme == "file":
            Path(self._root).mkdir(parents=True, exist_ok=True)
            return pafs.LocalFileSystem()
        from airflow_provider_accel.sources.object_store import ObjectStoreSource
        from airflow_provider_accel.spicepod.model import Dataset

        params: dict[str, Any] = dict(self.config.params)
        if not params.get("s3_auth"):
            params["s3_auth"] = "key" if params.get("s3_key") or params.get("aws_conn_id") else "iam_role"
        # The S3 source's reader of Spice's S3 params; the dataset only carries location and params.
        probe = Dataset(from_=self.config.location, name=self.dataset, params=params)
        try:
            return ObjectStoreSource(probe).filesystem()
        except SpicepodError as err:
            raise SpicepodError(
                f"Dataset {self.dataset}: snapshots.params: {err}",
                dataset=self.dataset,
                field="snapshots.params",
            ) from err

    def fail(self, err: BaseException, doing: str) -> RefreshError:
        """The error to raise for a failed store operation, classified transient or terminal."""
        text = f"Dataset {self.dataset}: {doing} at {self.location} failed: {err}"
        if isinstance(err, RefreshError):
            return err
        if isinstance(err, PermissionError) or any(m in str(err) for m in _TERMINAL_MARKERS):
            return TerminalRefreshError(
                text + ". Check snapshots.location and snapshots.params.", dataset=self.dataset
            )
        return TransientRefreshError(text + "; it is retried at the next run.", dataset=self.dataset)

    # -- operations --------------------------------------------------------------------------

    def read_bytes(self, key: str) -> bytes | None:
        """A small object's bytes; ``None`` when it does not exist."""
        try:
            with self.fs.open_input_stream(self._path(key)) as stream:
                return bytes(stream.read())
        except FileNotFoundError:
            return None
        except OSError as err:
            if "NoSuchKey" in str(err) or "does not exist" in str(err).lower():
                return None
            raise self.fail(err, f"reading {key}") from err

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write a small object whole: on S3 a PUT is atomic; locally a temporary file is renamed."""
        try:
            if self.config.scheme == "file":
                target = Path(self._path(key))
                target.parent.mkdir(parents=True, exist_ok=True)
                temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                with temporary.open("wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, target)
                return
            with self.fs.open_output_stream(self._path(key)) as stream:
                stream.write(data)
        except OSError as err:
            raise self.fail(err, f"writing {key}") from err

    def upload(self, local: Path, key: str) -> tuple[str, int]:
        """Copy a local file to ``key``; its SHA-256 and size as read while copying."""
        digest = hashlib.sha256()
        size = 0
        try:
            if self.config.scheme == "file":
                Path(self._path(key)).parent.mkdir(parents=True, exist_ok=True)
            with local.open("rb") as source, self.fs.open_output_stream(self._path(key)) as sink:
                while chunk := source.read(CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
                    sink.write(chunk)
        except OSError as err:
            raise self.fail(err, f"uploading {key}") from err
        return digest.hexdigest(), size

    def checksum(self, key: str) -> tuple[str, int]:
        """SHA-256 and size of the object as the store returns it (read back in full)."""
        digest = hashlib.sha256()
        size = 0
        try:
            with self.fs.open_input_stream(self._path(key)) as stream:
                while chunk := stream.read(CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError as err:
            raise self.fail(err, f"reading back {key}") from err
        return digest.hexdigest(), size

    def download(self, key: str, local: Path) -> tuple[str, int]:
        """Copy ``key`` to a local file; SHA-256 and size of what arrived."""
        digest = hashlib.sha256()
        size = 0
        try:
            with self.fs.open_input_stream(self._path(key)) as stream, local.open("wb") as sink:
                while chunk := stream.read(CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
                    sink.write(chunk)
                sink.flush()
                os.fsync(sink.fileno())
        except FileNotFoundError as err:
            raise TerminalRefreshError(
                f"Dataset {self.dataset}: snapshot object {self.url(key)} does not exist; the pointer names "
                "a deleted snapshot. Roll back to another snapshot, or let the writer publish a new one.",
                dataset=self.dataset,
            ) from err
        except OSError as err:
            raise self.fail(err, f"downloading {key}") from err
        return digest.hexdigest(), size

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            try:
                self.fs.delete_file(self._path(key))
            except OSError as err:
                if "NoSuchKey" in str(err):
                    return
                raise self.fail(err, f"deleting {key}") from err


@contextlib.contextmanager
def removing(path: Path) -> Iterator[Path]:
    """``path``, deleted on the way out whatever happens."""
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
