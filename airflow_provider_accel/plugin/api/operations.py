"""Operating a dataset's refreshes: cancel one, replace the running one, and the refresh history.

**Cancel** (``DELETE /v1/datasets/{name}/acceleration/refresh/{dag_run_id}``) does what Airflow's own
``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id} {"state": "failed", "note": ...}`` does, with its own
functions: the run and its running task become FAILED (Airflow's supervisor then stops the task
process: its next heartbeat is refused and it is sent SIGTERM), pending tasks SKIPPED, the listeners
are told. The run's note and its ``error`` XCom say ``Refresh cancelled by <user> ...``. A cancelled
refresh is a failed refresh: the accelerator deletes its staging file on the way out and the live
data stays as it was. Airflow has no "cancelled" run state; the history reports ``outcome:
cancelled`` from the note's marker.

**Replace.** The acceleration param ``on_demand_refresh`` chooses what an on-demand refresh does while
another refresh of the dataset is queued or running: ``queue`` (the default: it waits its turn, and an
identical queued request is joined) or ``replace`` (Spice's behaviour: the refresh in progress is
cancelled as above, then the new one is queued). ``replace`` gets the newest request's data loaded
sooner, at the price of the work the cancelled refresh had done; with slow sources and frequent
requests a dataset may never finish a refresh, so keep ``queue`` unless requests are rare.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

# FastAPI resolves the route annotations at runtime: these imports must not be TYPE_CHECKING-only.
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.models.dagrun import DagRun
from airflow.models.xcom import XComModel
from airflow.utils.state import DagRunState
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from airflow_provider_accel.plugin.api import service
from airflow_provider_accel.plugin.api.auth import RUN, requires_dataset_access
from airflow_provider_accel.plugin.api.datasets import find_accelerated_dataset
from airflow_provider_accel.plugin.api.errors import ApiError, MessageErrorRoute
from airflow_provider_accel.plugin.api.schemas import error_responses

if TYPE_CHECKING:
    from airflow.models.dagbag import DBDagBag
    from sqlalchemy.orm import Session

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

router = APIRouter(route_class=MessageErrorRoute, tags=["Datasets"])

#: The acceleration param that chooses what an on-demand refresh does while another one runs.
ON_DEMAND_PARAM = "on_demand_refresh"
#: Every cancellation note starts with this: it is how the history tells "cancelled" from "failed".
CANCEL_MARK = "Refresh cancelled by "
ACTIVE_STATES = (DagRunState.QUEUED, DagRunState.RUNNING)
MAX_HISTORY = 100


class OnDemandRefresh(StrEnum):
    QUEUE = "queue"
    REPLACE = "replace"


def on_demand_refresh(dataset: Dataset) -> OnDemandRefresh:
    """The dataset's ``on_demand_refresh`` choice; a clear error for a value that is neither."""
    acceleration = dataset.acceleration
    raw = (acceleration.params.get(ON_DEMAND_PARAM) if acceleration else None) or OnDemandRefresh.QUEUE
    try:
        return OnDemandRefresh(str(raw).strip().lower())
    except ValueError:
        raise ApiError(
            409,
            f"Dataset {dataset.name}: acceleration.params.{ON_DEMAND_PARAM} is {raw!r}; it must be "
            f"'queue' (the default) or 'replace'. Fix the spicepod, then retry.",
        ) from None


def _cancel_run(
    session: Session, dataset: Dataset, run: DagRun, user: BaseUser, dag_bag: DBDagBag, why: str
) -> str:
    from airflow.api_fastapi.common.dagbag import get_dag_for_run
    from airflow.api_fastapi.core_api.datamodels.dag_run import DagRunMutableStates
    from airflow.api_fastapi.core_api.services.public.dag_run import patch_dag_run_note, patch_dag_run_state

    message = f"{CANCEL_MARK}{user.get_name()} {why}; the accelerated data is unchanged."
    dag = get_dag_for_run(dag_bag, run, session=session)
    patch_dag_run_note(dag_run=run, note=message, user=user)
    patch_dag_run_state(dag=dag, dag_run=run, state=DagRunMutableStates.FAILED, session=session)
    XComModel.set(
        key=service.ERROR_XCOM_KEY,
        value=message,
        dag_id=run.dag_id,
        task_id=service.REFRESH_TASK_ID,
        run_id=run.run_id,
        session=session,
    )
    session.commit()
    log.info("Refresh run %s of dataset %s: %s", run.run_id, dataset.name, message)
    return message


def replace_active_refreshes(dataset: Dataset, user: BaseUser, dag_bag: DBDagBag) -> list[str]:
    """For a ``replace`` dataset, cancel its queued and running refreshes; the cancelled run ids."""
    if on_demand_refresh(dataset) is not OnDemandRefresh.REPLACE:
        return []
    from airflow.utils.session import create_session

    cancelled = []
    with create_session(scoped=False) as session:
        runs = session.scalars(
            select(DagRun)
            .where(DagRun.dag_id == dataset.dag_id, DagRun.state.in_(ACTIVE_STATES))
            .order_by(DagRun.id)
        ).all()
        for run in runs:
            _cancel_run(session, dataset, run, user, dag_bag, "to replace it with a new on-demand refresh")
            cancelled.append(run.run_id)
    return cancelled


_responses = partial(
    error_responses, described={404: "Dataset or refresh not found", 409: "The refresh has already finished"}
)


@router.delete(
    "/datasets/{name}/acceleration/refresh/{dag_run_id}",
    operation_id="delete_dataset_refresh",
    summary="Cancel a queued or running refresh.",
    description="The run ends FAILED with a note and error saying who cancelled it; its task process is "
    "stopped and the accelerated data is left as it was. Requires the permission to trigger refreshes.",
    responses=_responses(401, 403, 404, 409, 500),
)
def delete_dataset_refresh(
    name: str,
    dag_run_id: str,
    request: Request,
    session: SessionDep,
    user: Annotated[BaseUser, Depends(requires_dataset_access("POST", RUN))],
) -> dict[str, Any]:
    dataset = find_accelerated_dataset(name)
    run = session.scalar(select(DagRun).where(DagRun.dag_id == dataset.dag_id, DagRun.run_id == dag_run_id))
    if run is None:
        raise ApiError(404, f"Refresh {dag_run_id} not found for dataset {dataset.name}")
    if run.state not in ACTIVE_STATES:
        raise ApiError(
            409,
            f"Refresh {dag_run_id} of dataset {dataset.name} has already finished ({run.state}); "
            "only a queued or running refresh can be cancelled.",
        )
    message = _cancel_run(session, dataset, run, user, request.app.state.dag_bag, "through the API")
    return {
        "message": message,
        "dataset": dataset.name,
        "dag_id": dataset.dag_id,
        "dag_run_id": dag_run_id,
        "state": "failed",
        "outcome": "cancelled",
        "cancelled_by": user.get_name(),
    }


def _outcome(run: DagRun) -> str:
    note = run.note or ""
    if run.state == DagRunState.FAILED and note.startswith(CANCEL_MARK):
        return "cancelled"
    return str(run.state)


def _trigger(run: DagRun) -> dict[str, Any]:
    return {
        "run_type": str(run.run_type) if run.run_type else None,
        "triggered_by": run.triggered_by.value if run.triggered_by else None,
        "user": run.triggering_user_name,
    }


@router.get(
    "/datasets/{name}/acceleration/refreshes",
    operation_id="get_dataset_refreshes",
    summary="The latest refreshes of a dataset, newest first, with their summaries.",
    responses=_responses(400, 401, 403, 404, 500),
)
def get_dataset_refreshes(
    name: str,
    session: SessionDep,
    user: Annotated[BaseUser, Depends(requires_dataset_access("GET", RUN))],
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY, description="How many refreshes (newest first).")] = 20,
) -> dict[str, Any]:
    dataset = find_accelerated_dataset(name)
    runs = session.scalars(
        select(DagRun).where(DagRun.dag_id == dataset.dag_id).order_by(DagRun.id.desc()).limit(limit)
    ).all()
    refreshes = []
    for run in runs:
        item = service.refresh_status(session, dataset, run.run_id)
        item.pop("message", None)
        item["outcome"] = _outcome(run)
        item["trigger"] = _trigger(run)
        if item["outcome"] == "cancelled":
            item["cancelled_by"] = (run.note or "")[len(CANCEL_MARK) :].split(" ", 1)[0]
        refreshes.append(item)
    return {"dataset": dataset.name, "dag_id": dataset.dag_id, "refreshes": refreshes}


def _refresh_sql_in_force(session: Session, dataset: Dataset) -> dict[str, Any]:
    """The refresh SQL the next plain refresh uses, and where it comes from (PATCH or spicepod);
    plus the last run's own override, if it had one."""
    from airflow.models.variable import Variable

    from airflow_provider_accel.spicepod.overrides import refresh_sql_variable_key

    acceleration = dataset.acceleration
    patched = Variable.get(refresh_sql_variable_key(dataset.name), default_var=None)
    last = session.scalar(
        select(DagRun).where(DagRun.dag_id == dataset.dag_id).order_by(DagRun.id.desc()).limit(1)
    )
    run_sql = (last.conf or {}).get("refresh_sql") if last is not None else None
    in_force = {
        "sql": patched or (acceleration.refresh_sql if acceleration else None),
        "origin": "patch" if patched else "spicepod",
    }
    if run_sql:
        in_force["last_run"] = {"sql": run_sql, "origin": "run", "dag_run_id": last.run_id if last else None}
    return in_force


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@router.get(
    "/datasets/{name}/acceleration/table",
    operation_id="get_dataset_table",
    summary="The accelerated table's schema, row count and first rows (for the dataset page).",
    description="Read read-only through the provider's read helper. Not in Spice. Requires read access "
    "to the dataset's DAG.",
    responses=_responses(400, 401, 403, 404, 500),
)
def get_dataset_table(
    name: str,
    session: SessionDep,
    user: Annotated[BaseUser, Depends(requires_dataset_access("GET"))],
    limit: Annotated[int, Query(ge=0, le=MAX_HISTORY, description="How many rows to preview.")] = 10,
) -> dict[str, Any]:
    # The read helper brings DuckDB: imported here, never at plugin import.
    from airflow_provider_accel.accelerator.layout import dataset_file
    from airflow_provider_accel.accelerator.reader import connect_reader

    dataset = find_accelerated_dataset(name)
    acceleration = dataset.acceleration
    interval = acceleration.refresh_check_interval if acceleration else None
    body: dict[str, Any] = {
        "dataset": dataset.name,
        "from": dataset.from_,
        "engine": acceleration.engine.value if acceleration else None,
        "refresh_mode": acceleration.refresh_mode.value if acceleration else None,
        "refresh_check_interval_ms": round(interval.total_seconds() * 1000) if interval else None,
        "refresh_sql": _refresh_sql_in_force(session, dataset),
        "on_demand_refresh": on_demand_refresh(dataset).value,
        "snapshots": [],
        "columns": [],
        "rows": [],
        "total_rows": None,
    }
    from airflow_provider_accel.accelerator.engines import arrow_hook_for, engine_of
    from airflow_provider_accel.spicepod.model import Engine

    if engine_of(dataset) is not Engine.DUCKDB:
        # Where it lives, as the status listing says it (or why not, e.g. a missing connection).
        where = service.engine_properties(dataset)
        body.update({key: value for key, value in where.items() if key != "engine"})
        if "location_error" in where:  # no server to preview
            return body
        hook = arrow_hook_for(dataset)
        columns_, total, preview = hook.preview(dataset, limit)
        body["columns"] = [{"name": n, "type": t} for n, t in columns_]
        body["total_rows"] = total
        body["rows"] = [[_json_value(v) for v in row] for row in preview]
        return body
    path = dataset_file(dataset)
    body["location"] = str(path)
    if not path.exists():
        return body
    con = connect_reader(path)
    try:
        quoted = '"' + dataset.name.replace('"', '""') + '"'
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
            [dataset.name],
        ).fetchall()
        body["columns"] = [{"name": n, "type": t} for n, t in columns]
        if columns:
            body["total_rows"] = con.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]  # type: ignore[index]
            rows = con.execute(f"SELECT * FROM {quoted} LIMIT {int(limit)}").fetchall()
            body["rows"] = [[_json_value(v) for v in row] for row in rows]
    finally:
        con.close()
    return body
