"""What a refresh reports: Spice's log line, the XCom summary and the asset event extra."""

from __future__ import annotations

from dataclasses import asdict, dataclass


def human_bytes(size: int) -> str:
    """Bytes in Spice's notation: ``512 B``, ``299.62 kiB``, ``1.50 MiB``."""
    value = float(size)
    for unit in ("B", "kiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(milliseconds: float) -> str:
    """Durations as Spice logs them: ``46ms`` under a second, else ``1.23s``."""
    if milliseconds < 1000:
        return f"{round(milliseconds)}ms"
    return f"{milliseconds / 1000:.2f}s"


@dataclass(frozen=True)
class RefreshResult:
    """The outcome of one successful refresh."""

    dataset: str
    mode: str
    rows: int  # rows loaded by this refresh (inserted, for an append)
    bytes: int  # size of the loaded data as DuckDB stored it
    duration_ms: int
    total_rows: int  # rows in the accelerated table afterwards
    watermark: str | None  # max(time_column) afterwards, when the dataset has one
    path: str
    refresh_sql: str | None = None

    @property
    def message(self) -> str:
        return (
            f"Loaded {self.rows:,} rows ({human_bytes(self.bytes)}) for dataset {self.dataset} "
            f"in {human_duration(self.duration_ms)}."
        )

    def summary(self) -> dict[str, object]:
        """JSON-serialisable summary (XCom return value and asset event extra)."""
        return asdict(self)


@dataclass(frozen=True)
class RetentionResult:
    dataset: str
    deleted_rows: int
    total_rows: int
    cutoff: str | None
    duration_ms: int

    def summary(self) -> dict[str, object]:
        return asdict(self)
