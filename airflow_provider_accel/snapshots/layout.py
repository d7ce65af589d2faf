"""Where snapshots live under ``snapshots.location``, in Spice's layout.

* a snapshot: ``month=YYYY-MM/day=YYYY-MM-DD/dataset=<name>/<name>_<YYYYMMDDTHHMMSSZ>.duckdb`` (UTC, ISO
  8601 without punctuation, the engine as the extension), as Spice writes them;
* the dataset's current pointer and history: ``dataset=<name>/metadata.json``;
* next to the local DuckDB file, ``<file>.snapshot.json``: which snapshot the local file came from
  or was published as (the replica's "unchanged?" check and the writer's rollback check).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ENGINE_EXTENSION = {"duckdb": "duckdb"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
POINTER_NAME = "metadata.json"


def safe_name(dataset: str) -> str:
    return _UNSAFE.sub("_", dataset)


def snapshot_key(
    dataset: str, at: dt.datetime, engine: str = "duckdb", *, taken: set[str] | None = None
) -> str:
    """The object key of a snapshot of ``dataset`` taken at ``at`` (UTC)."""
    at = at.astimezone(dt.UTC)
    name = safe_name(dataset)
    stamp = at.strftime("%Y%m%dT%H%M%SZ")
    folder = f"month={at:%Y-%m}/day={at:%Y-%m-%d}/dataset={name}"
    key = f"{folder}/{name}_{stamp}.{ENGINE_EXTENSION.get(engine, engine)}"
    counter = 1
    while taken and key in taken:
        # Two snapshots within one second: Spice's name, with a counter so neither overwrites the other.
        counter += 1
        key = f"{folder}/{name}_{stamp}-{counter}.{ENGINE_EXTENSION.get(engine, engine)}"
    return key


def pointer_key(dataset: str) -> str:
    return f"dataset={safe_name(dataset)}/{POINTER_NAME}"


@dataclass(frozen=True)
class LocalState:
    """What ``<file>.snapshot.json`` records about the local file."""

    snapshot_id: int
    checksum: str
    generation: int
    role: str  # "published", "bootstrapped" or "replica"

    @staticmethod
    def path_for(live: Path) -> Path:
        return live.with_name(live.name + ".snapshot.json")

    @classmethod
    def read(cls, live: Path) -> LocalState | None:
        try:
            data: dict[str, Any] = json.loads(cls.path_for(live).read_text(encoding="utf-8"))
            return cls(
                snapshot_id=int(data["snapshot_id"]),
                checksum=str(data["checksum"]),
                generation=int(data["generation"]),
                role=str(data.get("role", "")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, live: Path) -> None:
        target = self.path_for(live)
        temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(asdict(self)), encoding="utf-8")
        os.replace(temporary, target)

    @classmethod
    def clear(cls, live: Path) -> None:
        cls.path_for(live).unlink(missing_ok=True)
