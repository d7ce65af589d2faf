"""Authorization through Airflow's auth manager, on the refresh DAG of the dataset in the path.

The routes name a dataset, not a DAG, so Airflow's ``requires_access_dag`` (which reads ``dag_id``
from the path) is called with the dataset's DAG id instead. Authentication is Airflow's own
``get_user`` (bearer token or the UI's cookie), so a missing or bad token is a 401 before anything
else happens, and the permission check is the auth manager's (simple auth manager roles, FAB roles and
per-DAG permissions, or any other manager) exactly as for Airflow's own DAG run routes.

The check runs on ``dag_id_for(name)`` before the spicepod is looked at: a user without access sees
403 for every name, whether the dataset exists or not, so the API does not reveal dataset names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Request

from airflow_provider_accel.spicepod.model import dag_id_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser


def requires_dataset_access(
    method: ResourceMethod, access_entity: DagAccessEntity | None = None
) -> Callable[..., BaseUser]:
    """A dependency: the authenticated user, who may ``method`` the dataset's DAG (or its runs)."""

    def dependency(name: str, request: Request, user: GetUserDep) -> BaseUser:
        requires_access_dag(method=method, access_entity=access_entity, param_dag_id=dag_id_for(name))(
            request, user
        )
        return user

    return dependency


def requires_dag_listing() -> Callable[..., BaseUser]:
    """A dependency for the list route: the same check as Airflow's own ``GET /api/v2/dags``."""

    def dependency(request: Request, user: GetUserDep) -> BaseUser:
        requires_access_dag(method="GET")(request, user)
        return user

    return dependency


def readable_dag_ids(user: BaseUser, dag_ids: set[str]) -> set[str]:
    """The DAG ids among ``dag_ids`` the user may read; DAGs not parsed yet count too."""
    return get_auth_manager().filter_authorized_dag_ids(dag_ids=dag_ids, user=user, method="GET")


def may_trigger(user: BaseUser, dag_id: str) -> bool:
    """Whether the user may trigger runs of the DAG: the check of the refresh route, as a boolean."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.models.dag import DagModel

    return get_auth_manager().is_authorized_dag(
        method="POST",
        access_entity=DagAccessEntity.RUN,
        details=DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id)),
        user=user,
    )


RUN = DagAccessEntity.RUN
