"""Run creation and run status for the API: the refresh DAG runs behind ``/v1/datasets/...``.

**How a refresh request becomes a run.** Exactly as Airflow's own ``POST /api/v2/dags/{dag_id}/dagRuns``
does it (``TriggerDAGRunPostBody.validate_context`` then ``SerializedDAG.create_dagrun`` with
``DagRunType.MANUAL``, ``triggered_by=REST_API``, the user's name, ``logical_date=None``, state
QUEUED) — the functions are reused, not copied — with the overrides as the run's ``conf``.

**Joining an identical queued request.** While a MANUAL run of the DAG with the same ``conf`` is still
QUEUED, a new request joins it (same ``dag_run_id``): that run has not read anything yet, so it serves
the new request as well as the old one. A request arriving once the run is RUNNING gets a new queued
run (the DAG's ``max_active_runs=1`` keeps it waiting), so no accepted request is lost.

The check-then-create must be atomic, or two concurrent identical requests would both see "no queued
run" and queue two. It is serialised per DAG by a lock on the DAG's own ``dag`` row, held until the new
run is committed:

* PostgreSQL and MySQL 8: ``SELECT ... FOR UPDATE`` on the ``DagModel`` row (Airflow's
  ``with_row_locks``), which serialises every api-server worker and replica on any host. The scheduler
  locks ``dag`` rows with SKIP LOCKED, so it skips this DAG for one loop rather than waiting.
* SQLite has no row locks. A process-level lock per DAG serialises the threads of one api-server
  worker; across processes the transaction starts with a no-op ``UPDATE`` of the same row, which takes
  SQLite's database write lock at once (before the read), so a second process waits for the commit and
  then sees the first process's run.

The process-level lock is taken on every database: it costs nothing and keeps threads of one worker
from queueing on database locks.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun
from airflow.models.serialized_dag import SerializedDagModel
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from airflow.utils.sqlalchemy import get_dialect_name, with_row_locks
from airflow.utils.state import DagRunState, TaskInstanceState
from airflow.utils.types import DagRunTriggeredByType, DagRunType
from sqlalchemy import func, select, text

from airflow_provider_accel.plugin.api.errors import ApiError
from airflow_provider_accel.spicepod.snapshots import snapshot_settings

if TYPE_CHECKING:
    from airflow.models.dagbag import DBDagBag
    from sqlalchemy.orm import Session

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

#: The task of a refresh DAG whose XCom carries the summary (``return_value``) or the failure (``error``).
REFRESH_TASK_ID = "refresh"
ERROR_XCOM_KEY = "error"
RETRY_AFTER_SECONDS = 10

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _process_lock(dag_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(dag_id, threading.Lock())


@dataclass(frozen=True)
class TriggerResult:
    dag_run_id: str
    state: str
    joined: bool


def _lock_dag_row(session: Session, dag_id: str) -> DagModel | None:
    """Lock the DAG's ``dag`` row for this transaction (see the module docstring) and return it."""
    if get_dialect_name(session) == "sqlite":
        # Raw SQL on purpose: an ORM update would fire the model's onupdate defaults.
        session.execute(text("UPDATE dag SET dag_id = dag_id WHERE dag_id = :dag_id"), {"dag_id": dag_id})
    query = select(DagModel).where(DagModel.dag_id == dag_id)
    dag_model: DagModel | None = session.scalar(with_row_locks(query, session=session, of=DagModel))
    return dag_model


def _check_triggerable(dm: DagModel | None, dataset: Dataset, session: Session) -> None:
    dag_id = dataset.dag_id
    not_parsed = ApiError(
        503,
        f"The refresh DAG {dag_id} of dataset {dataset.name} has not been parsed by Airflow yet; "
        f"retry in a few seconds.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
    if dm is None or dm.is_stale:
        raise not_parsed
    if dm.has_import_errors:
        raise ApiError(
            503,
            f"The refresh DAG {dag_id} of dataset {dataset.name} has import errors (see Airflow's "
            f"import errors); fix the spicepod or the DAG file, then retry.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if not SerializedDagModel.has_dag(dag_id, session=session):
        raise not_parsed
    if dm.is_paused:
        raise ApiError(
            409,
            f"The refresh DAG {dag_id} of dataset {dataset.name} is paused, so a refresh would never "
            f"start. Unpause it in the Airflow UI, with `airflow dags unpause {dag_id}`, or with "
            f'PATCH /api/v2/dags/{dag_id} {{"is_paused": false}}, then retry.',
        )
    if dm.allowed_run_types is not None and DagRunType.MANUAL not in dm.allowed_run_types:
        raise ApiError(409, f"The refresh DAG {dag_id} of dataset {dataset.name} does not allow manual runs.")


def _identical_queued_run(session: Session, dag_id: str, conf: dict[str, Any]) -> TriggerResult | None:
    """The oldest queued manual run with this ``conf``, as the result of a request that joins it."""
    # Three columns, not ORM rows: while the scheduler is behind, hundreds of runs can be queued and
    # every request scans them (with the full ORM objects, p99 latency grew with the queue).
    rows = session.execute(
        select(DagRun.run_id, DagRun.state, DagRun.conf)
        .where(
            DagRun.dag_id == dag_id,
            DagRun.state == DagRunState.QUEUED,
            DagRun.run_type == DagRunType.MANUAL,
        )
        .order_by(DagRun.id)
    )
    # conf is a JSON column: compare decoded values, not text, so key order does not matter.
    return next(
        (
            TriggerResult(dag_run_id=run_id, state=str(state), joined=True)
            for run_id, state, run_conf in rows
            if (run_conf or {}) == conf
        ),
        None,
    )


def trigger_refresh(
    *, dataset: Dataset, conf: dict[str, Any], user_name: str, dag_bag: DBDagBag
) -> TriggerResult:
    """Queue a manual run of the dataset's DAG with ``conf``, or join an identical queued one."""
    dag_id = dataset.dag_id
    with _process_lock(dag_id), create_session(scoped=False) as session:
        dm = _lock_dag_row(session, dag_id)
        _check_triggerable(dm, dataset, session)

        joined = _identical_queued_run(session, dag_id, conf)
        if joined is not None:
            _audit_refresh(session, dataset, user_name, joined.dag_run_id, conf, joined=True)
            log.info(
                "Refresh request of %s by %s joins queued run %s (same conf)",
                dataset.name,
                user_name,
                joined.dag_run_id,
            )
            return joined

        dag = dag_bag.get_latest_version_of_dag(dag_id, session=session)
        if dag is None:
            raise ApiError(
                503,
                f"The refresh DAG {dag_id} of dataset {dataset.name} has not been parsed by Airflow yet; "
                f"retry in a few seconds.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        params = TriggerDAGRunPostBody(logical_date=None, conf=conf).validate_context(dag)
        dag_run = dag.create_dagrun(
            run_id=params["run_id"],
            logical_date=params["logical_date"],
            data_interval=params["data_interval"],
            run_after=params["run_after"],
            conf=params["conf"],
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.REST_API,
            triggering_user_name=user_name,
            state=DagRunState.QUEUED,
            partition_key=params["partition_key"],
            partition_date=params["partition_date"],
            session=session,
        )
        run_id, state = dag_run.run_id, str(dag_run.state)
        _audit_refresh(session, dataset, user_name, run_id, conf, joined=False)
        # Commit while the locks are held: the next request must see this run to be able to join it.
        session.commit()
    log.info("Queued refresh run %s of %s for %s with conf %s", run_id, dataset.name, user_name, conf)
    return TriggerResult(dag_run_id=run_id, state=state, joined=False)


#: The audit log event of a refresh request: Airflow's own name for a triggered DAG run.
REFRESH_AUDIT_EVENT = "trigger_dag_run"


def _audit_refresh(
    session: Session, dataset: Dataset, user_name: str, run_id: str, conf: dict[str, Any], *, joined: bool
) -> None:
    record_audit(
        session,
        event=REFRESH_AUDIT_EVENT,
        dag_id=dataset.dag_id,
        owner=user_name,
        run_id=run_id,
        extra={"dataset": dataset.name, "conf": conf, "joined": joined, "via": "accel REST API"},
    )


def _xcom(session: Session, dag_id: str, run_id: str, key: str) -> Any:
    row = session.scalar(
        XComModel.get_many(run_id=run_id, key=key, task_ids=REFRESH_TASK_ID, dag_ids=dag_id, limit=1)
    )
    return None if row is None else XComModel.deserialize_value(row)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def refresh_status(session: Session, dataset: Dataset, run_id: str) -> dict[str, Any]:
    """State and outcome of one run of the dataset's DAG; 404 when the DAG has no such run."""
    dag_id = dataset.dag_id
    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if run is None:
        raise ApiError(404, f"Refresh {run_id} not found for dataset {dataset.name}")
    state = str(run.state)
    result: dict[str, Any] = {
        "dataset": dataset.name,
        "dag_id": dag_id,
        "dag_run_id": run.run_id,
        "state": state,
        "run_type": str(run.run_type) if run.run_type else None,
        "conf": run.conf or {},
        "queued_at": _iso(run.queued_at),
        "start_date": _iso(run.start_date),
        "end_date": _iso(run.end_date),
    }
    summary = _xcom(session, dag_id, run_id, "return_value")
    if isinstance(summary, dict):
        for field in ("mode", "rows", "bytes", "duration_ms", "watermark", "total_rows", "snapshot"):
            result[field] = summary.get(field)
    if state == DagRunState.FAILED:
        error = _xcom(session, dag_id, run_id, ERROR_XCOM_KEY)
        if error is None:
            # Failed before the operator could say why (killed, timed out, upstream): name the task.
            failed = session.scalars(
                select(TaskInstance.task_id).where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.run_id == run_id,
                    TaskInstance.state.in_([TaskInstanceState.FAILED, TaskInstanceState.UPSTREAM_FAILED]),
                )
            ).all()
            error = (
                f"Task(s) {', '.join(sorted(failed))} failed; see the task logs in Airflow."
                if failed
                else "The refresh run failed; see the task logs in Airflow."
            )
        result["error"] = str(error)
    result["message"] = _status_message(dataset.name, state)
    return result


def _status_message(name: str, state: str) -> str:
    return {
        "queued": f"Refresh of dataset {name} is queued.",
        "running": f"Refresh of dataset {name} is running.",
        "success": f"Refresh of dataset {name} succeeded.",
        "failed": f"Refresh of dataset {name} failed.",
    }.get(state, f"Refresh of dataset {name} is {state}.")


def latest_run_states(session: Session, dag_ids: list[str]) -> dict[str, str]:
    """The state of the latest created run (highest id) of each DAG that has one."""
    if not dag_ids:
        return {}
    latest = (
        select(func.max(DagRun.id).label("id")).where(DagRun.dag_id.in_(dag_ids)).group_by(DagRun.dag_id)
    ).subquery()
    rows = session.execute(select(DagRun.dag_id, DagRun.state).join(latest, DagRun.id == latest.c.id))
    return {dag_id: str(state) for dag_id, state in rows}


_STATUS_BY_RUN_STATE = {
    "queued": "Refreshing",
    "running": "Refreshing",
    "success": "Ready",
    "failed": "Error",
}


def dataset_status(latest_state: str | None) -> str:
    """Spice's dataset status from the state of the latest refresh run (none yet: Initializing)."""
    if latest_state is None:
        return "Initializing"
    return _STATUS_BY_RUN_STATE.get(latest_state, "Refreshing")


def file_error(dataset: Dataset) -> str | None:
    """Why a dataset whose last refresh succeeded cannot be served from its file now; ``None``: it can.

    Spice kept reporting a dataset healthy after its database was invalidated (Spice #13513); here
    ``Ready`` also needs the file to read back (accelerator.health, cached per file version). The
    check reads DuckDB files: the sqlite and postgres engines' data is not checked here.
    """
    from airflow_provider_accel import config
    from airflow_provider_accel.accelerator.engines import engine_of
    from airflow_provider_accel.accelerator.health import file_health
    from airflow_provider_accel.spicepod.model import Engine

    if engine_of(dataset) is not Engine.DUCKDB:
        return None
    return file_health(dataset, config.data_dir()).error


def engine_properties(dataset: Dataset) -> dict[str, Any]:
    """Spice's ``properties`` of an accelerated dataset: its engine and where the data lives.

    ``location`` is a file path, or ``host:port/db.schema.table`` (read without the password); when it
    cannot be told (an Airflow connection that does not exist) ``location_error`` says why instead.
    """
    from airflow_provider_accel.accelerator.engines import engine_of, hook_for, location
    from airflow_provider_accel.exceptions import RefreshError

    properties: dict[str, Any] = {"engine": engine_of(dataset).value}
    try:
        properties["location"] = location(hook_for(dataset), dataset)
    except RefreshError as err:
        properties["location_error"] = str(err)
    return properties


def latest_runs(session: Session, dag_ids: list[str], *, finished: bool = False) -> dict[str, DagRun]:
    """The latest created run (highest id) of each DAG that has one; only finished runs if asked."""
    if not dag_ids:
        return {}
    latest = select(func.max(DagRun.id).label("id")).where(DagRun.dag_id.in_(dag_ids))
    if finished:
        latest = latest.where(DagRun.state.in_([DagRunState.SUCCESS, DagRunState.FAILED]))
    subquery = latest.group_by(DagRun.dag_id).subquery()
    runs = session.scalars(select(DagRun).join(subquery, DagRun.id == subquery.c.id))
    return {run.dag_id: run for run in runs}


def schedule_text(dataset: Dataset) -> str:
    """The dataset's refresh schedule as the UI shows it."""
    from airflow_provider_accel.spicepod.durations import format_duration

    acceleration = dataset.acceleration
    if acceleration is not None and acceleration.refresh_cron:
        return f"cron {acceleration.refresh_cron}"
    if acceleration is not None and acceleration.refresh_check_interval is not None:
        return f"every {format_duration(acceleration.refresh_check_interval)}"
    return "on demand"


def acceleration_details(
    session: Session,
    datasets: list[Dataset],
    may_refresh: dict[str, bool],
    may_rollback: dict[str, bool] | None = None,
) -> dict[str, dict[str, Any]]:
    """``?details=true`` of ``GET /v1/datasets``: per DAG id, what the UI page shows of a dataset."""
    dag_ids = [d.dag_id for d in datasets]
    current = latest_runs(session, dag_ids)
    finished = latest_runs(session, dag_ids, finished=True)
    details: dict[str, dict[str, Any]] = {}
    for dataset in datasets:
        acceleration = dataset.acceleration
        assert acceleration is not None
        run = current.get(dataset.dag_id)
        done = finished.get(dataset.dag_id)
        details[dataset.dag_id] = {
            "dag_id": dataset.dag_id,
            "refresh_mode": acceleration.refresh_mode.value,
            "schedule": schedule_text(dataset),
            "refresh_sql": acceleration.refresh_sql,
            "can_refresh": may_refresh.get(dataset.dag_id, False),
            "can_rollback": (may_rollback or {}).get(dataset.dag_id, False),
            "snapshots": snapshot_settings(dataset).active,
            "current_run": (
                {
                    "dag_run_id": run.run_id,
                    "state": str(run.state),
                    "queued_at": _iso(run.queued_at),
                    "start_date": _iso(run.start_date),
                }
                if run is not None and run.state in (DagRunState.QUEUED, DagRunState.RUNNING)
                else None
            ),
            "last_refresh": refresh_status(session, dataset, done.run_id) if done is not None else None,
        }
    return details


# --------------------------------------------------------------------------------------------------
# Audit log, readiness and component status
# --------------------------------------------------------------------------------------------------


def record_audit(
    session: Session,
    *,
    event: str,
    dag_id: str,
    owner: str,
    run_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """One row of Airflow's audit log (``log`` table, the UI's Audit Log) for an API action.

    ``owner`` is the caller's name: the Airflow user, or an API key's id (never the key).
    """
    import json

    from airflow.models.log import Log

    session.add(
        Log(
            event=event,
            owner=owner,
            owner_display_name=owner,
            dag_id=dag_id,
            run_id=run_id,
            extra=json.dumps(extra or {}, default=str),
        )
    )


def datasets_awaiting_first_load(session: Session, datasets: list[Dataset]) -> list[str]:
    """Names of the accelerated datasets whose refresh DAG has no finished (succeeded or failed) run."""
    dag_ids = {d.dag_id: d.name for d in datasets}
    if not dag_ids:
        return []
    finished = set(
        session.scalars(
            select(DagRun.dag_id)
            .where(
                DagRun.dag_id.in_(list(dag_ids)),
                DagRun.state.in_([DagRunState.SUCCESS, DagRunState.FAILED]),
            )
            .distinct()
        )
    )
    return sorted(name for dag_id, name in dag_ids.items() if dag_id not in finished)


#: Airflow's health values (``/api/v2/monitor/health``) as Spice's component status.
_COMPONENT_STATUS = {"healthy": "Ready", "unhealthy": "Error", None: "Disabled"}


def component_statuses(api_server_endpoint: str) -> list[dict[str, str]]:
    """``GET /v1/status``: Spice's ``[{name, endpoint, status}]``, from Airflow's own health check.

    The api-server answering this request is Spice's ``http`` component; the scheduler,
    dag-processor and triggerer are ``Ready`` while their job heartbeats, ``Error`` when it stopped,
    ``Disabled`` when none ever ran (Airflow reports no status for them then).
    """
    from airflow.api.common.airflow_health import get_airflow_health

    health = get_airflow_health()
    entries = [{"name": "http", "endpoint": api_server_endpoint, "status": "Ready"}]
    for name, key in (
        ("scheduler", "scheduler"),
        ("dag-processor", "dag_processor"),
        ("triggerer", "triggerer"),
        ("metadatabase", "metadatabase"),
    ):
        status = health.get(key, {}).get("status")
        entries.append({"name": name, "endpoint": "N/A", "status": _COMPONENT_STATUS.get(status, "Error")})
    return entries
