"""The dataset's ``metadata.json``: every kept snapshot, and which one is current.

The pointer is one small JSON object, written whole (an S3 PUT is atomic; locally a renamed temporary
file), and only after the snapshot it names is completely written and its checksum verified. Each
write bumps ``generation``; a writer re-reads the pointer just before moving it and refuses when the
generation moved meanwhile (a rollback, or another writer), so it never overwrites a change it did
not see. ``writer`` names the deployment that publishes the dataset: another one is refused (see
``docs/deployment.md``, one writer per dataset).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.snapshots.layout import pointer_key

if TYPE_CHECKING:
    from airflow_provider_accel.snapshots.store import SnapshotStore

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SnapshotEntry:
    """One published snapshot."""

    id: int
    key: str
    timestamp: str  # ISO 8601, UTC
    engine: str
    size_bytes: int
    rows: int
    checksum: str  # "sha256:<hex>" of the object's bytes
    schema: list[list[str]]  # [[column, DuckDB type], ...] of the dataset's table
    fingerprint: str  # of the table's rows, whatever their order: "did the data change?"
    watermark: str | None = None
    dag_run_id: str | None = None
    writer: str | None = None

    @property
    def hex_digest(self) -> str:
        return self.checksum.removeprefix("sha256:")

    def public(self, *, current: bool) -> dict[str, Any]:
        """The API's view of the snapshot."""
        return {
            "id": self.id,
            "timestamp": self.timestamp,
            "size_bytes": self.size_bytes,
            "rows": self.rows,
            "checksum": self.checksum,
            "watermark": self.watermark,
            "engine": self.engine,
            "location": self.key,
            "dag_run_id": self.dag_run_id,
            "schema": [{"name": name, "type": type_} for name, type_ in self.schema],
            "is_current": current,
        }


@dataclass(frozen=True)
class Pointer:
    dataset: str
    generation: int = 0
    current: int | None = None
    writer: str | None = None
    updated_at: str | None = None
    rolled_back_at: str | None = None
    snapshots: tuple[SnapshotEntry, ...] = field(default_factory=tuple)

    def entry(self, snapshot_id: int | None) -> SnapshotEntry | None:
        return next((e for e in self.snapshots if e.id == snapshot_id), None)

    @property
    def current_entry(self) -> SnapshotEntry | None:
        return self.entry(self.current)

    @property
    def next_id(self) -> int:
        return max((e.id for e in self.snapshots), default=0) + 1

    def newest_first(self) -> list[SnapshotEntry]:
        return sorted(self.snapshots, key=lambda e: e.id, reverse=True)

    def to_json(self) -> bytes:
        data = asdict(self)
        data["format_version"] = FORMAT_VERSION
        data["snapshots"] = [asdict(e) for e in self.snapshots]
        return json.dumps(data, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes, dataset: str, where: str) -> Pointer:
        try:
            data = json.loads(raw)
            entries = tuple(SnapshotEntry(**e) for e in data.get("snapshots", []))
            return cls(
                dataset=str(data.get("dataset", dataset)),
                generation=int(data.get("generation", 0)),
                current=data.get("current"),
                writer=data.get("writer"),
                updated_at=data.get("updated_at"),
                rolled_back_at=data.get("rolled_back_at"),
                snapshots=entries,
            )
        except (ValueError, TypeError, AttributeError) as err:
            raise TerminalRefreshError(
                f"Dataset {dataset}: the snapshot pointer {where} is not a valid metadata.json ({err}). "
                "Restore it from the store's versioning, or delete it to start the history anew.",
                dataset=dataset,
            ) from err

    def bumped(self, **changes: Any) -> Pointer:
        return replace(self, generation=self.generation + 1, **changes)


def read_pointer(store: SnapshotStore, dataset: str) -> Pointer | None:
    """The dataset's pointer; ``None`` when nothing was ever published. One small GET."""
    key = pointer_key(dataset)
    raw = store.read_bytes(key)
    return None if raw is None else Pointer.from_json(raw, dataset, store.url(key))


def write_pointer(store: SnapshotStore, pointer: Pointer) -> None:
    store.write_bytes(pointer_key(pointer.dataset), pointer.to_json())
