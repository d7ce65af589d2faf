"""The provider's asset URI scheme ``accel://datasets/<name>`` (registered as ``asset-uris``).

Light on purpose (no OpenLineage import): Airflow calls :func:`sanitize_uri` whenever it builds an
``accel://`` asset, in every process. The OpenLineage converter is in
:mod:`airflow_provider_accel.operators.lineage`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset

if TYPE_CHECKING:
    from urllib.parse import SplitResult

SCHEME = "accel"
AUTHORITY = "datasets"


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Normalise ``accel://datasets/<name>``: the dataset name lowercased, one path segment."""
    if uri.netloc != AUTHORITY:
        raise ValueError(
            f"URI format accel:// must be accel://{AUTHORITY}/<dataset name>, got netloc {uri.netloc!r}"
        )
    name = uri.path.strip("/")
    if not name or "/" in name:
        raise ValueError(
            f"URI format accel:// must be accel://{AUTHORITY}/<dataset name>, got path {uri.path!r}"
        )
    return uri._replace(path=f"/{name.lower()}", query="", fragment="")


def create_asset(*, dataset: str, extra: dict[str, Any] | None = None) -> Asset:
    """The asset of a dataset, as every successful refresh of it emits."""
    name = dataset.lower()
    return Asset(name=f"accel_{name}", uri=f"{SCHEME}://{AUTHORITY}/{name}", extra=extra or {})
