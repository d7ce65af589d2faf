"""Spice's acceleration-snapshot routes, served for real (Spice's open-source build answers 501).

* ``GET /v1/datasets/{name}/acceleration/snapshots?limit=N`` — the kept snapshots, newest first;
* ``GET /v1/datasets/{name}/acceleration/snapshots/{id}`` — one snapshot;
* ``POST /v1/datasets/{name}/acceleration/snapshots/current`` with ``{"snapshot_id": N}`` — roll back.

Same auth as the other routes, on the dataset's refresh DAG: read (``GET``) to list, edit (``PUT``, as
``PATCH .../acceleration``) to roll back.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

# FastAPI resolves the route annotations at runtime: these imports must not be TYPE_CHECKING-only.
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from fastapi import APIRouter, Depends, Query, Request

from airflow_provider_accel.exceptions import RefreshError, SpicepodError
from airflow_provider_accel.plugin.api.auth import requires_dataset_access
from airflow_provider_accel.plugin.api.datasets import find_accelerated_dataset
from airflow_provider_accel.plugin.api.errors import ApiError, MessageErrorRoute
from airflow_provider_accel.plugin.api.schemas import MessageResponse

log = logging.getLogger(__name__)

router = APIRouter(route_class=MessageErrorRoute, tags=["Acceleration snapshots"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": MessageResponse, "description": text}
    for code, text in {
        400: "Invalid request, or the dataset does not use snapshots",
        401: "Not authenticated",
        403: "Not allowed to do this on the dataset's DAG",
        404: "Dataset or snapshot not found",
        503: "The snapshot store cannot be reached; retry",
    }.items()
}


def _call(what: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an admin function, its errors as API answers."""
    from airflow_provider_accel.snapshots.admin import SnapshotNotFound, SnapshotsDisabled

    try:
        return what(*args, **kwargs)
    except SnapshotNotFound as err:
        raise ApiError(404, str(err)) from None
    except (SnapshotsDisabled, SpicepodError) as err:
        raise ApiError(400, str(err)) from None
    except RefreshError as err:
        raise ApiError(503 if err.transient else 400, str(err)) from None


@router.get(
    "/datasets/{name}/acceleration/snapshots",
    operation_id="list_dataset_snapshots",
    summary="List a dataset's acceleration snapshots, newest first.",
    responses=_RESPONSES,
)
def list_dataset_snapshots(
    name: str,
    user: Annotated[BaseUser, Depends(requires_dataset_access("GET"))],
    limit: Annotated[int | None, Query(ge=1, le=1000, description="At most this many snapshots")] = None,
) -> list[dict[str, Any]]:
    from airflow_provider_accel.snapshots.admin import list_snapshots

    dataset = find_accelerated_dataset(name)
    result: list[dict[str, Any]] = _call(list_snapshots, dataset, limit)
    return result


@router.get(
    "/datasets/{name}/acceleration/snapshots/{snapshot_id}",
    operation_id="get_dataset_snapshot",
    summary="One acceleration snapshot of a dataset.",
    responses=_RESPONSES,
)
def get_dataset_snapshot(
    name: str,
    snapshot_id: int,
    user: Annotated[BaseUser, Depends(requires_dataset_access("GET"))],
) -> dict[str, Any]:
    from airflow_provider_accel.snapshots.admin import get_snapshot

    dataset = find_accelerated_dataset(name)
    result: dict[str, Any] = _call(get_snapshot, dataset, snapshot_id)
    return result


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/datasets/{name}/acceleration/snapshots/current",
    operation_id="set_current_dataset_snapshot",
    summary="Roll a dataset back to one of its snapshots.",
    description="Moves the dataset's snapshot pointer; no restart is needed: read replicas follow at their "
    "next check, and the writer's next refresh starts from the rolled-back data.",
    responses=_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"example": {"snapshot_id": 3}}},
        }
    },
)
def set_current_dataset_snapshot(
    name: str,
    raw_body: Annotated[bytes, Depends(_raw_body)],
    user: Annotated[BaseUser, Depends(requires_dataset_access("PUT"))],
) -> dict[str, Any]:
    from airflow_provider_accel.snapshots.admin import rollback

    dataset = find_accelerated_dataset(name)
    try:
        body = json.loads(raw_body) if raw_body.strip() else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, 'The request body is not valid JSON; send {"snapshot_id": N}.') from None
    if not isinstance(body, dict) or set(body) != {"snapshot_id"}:
        raise ApiError(400, 'The request body must be {"snapshot_id": N}, the id of a kept snapshot.')
    snapshot_id = body["snapshot_id"]
    if isinstance(snapshot_id, bool) or not isinstance(snapshot_id, int) or snapshot_id < 1:
        raise ApiError(400, f"snapshot_id {snapshot_id!r} is not a snapshot id (a positive whole number).")
    result: dict[str, Any] = _call(rollback, dataset, snapshot_id, by=user.get_name())
    log.info("Dataset %s rolled back to snapshot %s by %s", dataset.name, snapshot_id, user.get_name())
    return result
