"""Who is calling, and may they: Spice API keys, or Airflow's auth manager on the dataset's refresh DAG.

**Two kinds of caller.**

* A Spice client sends ``X-API-Key: <key>`` (the CLI's ``--api-key`` / ``SPICE_API_KEY``, the JS and
  Python SDKs). Keys are the spicepod's ``runtime.auth.api-key.keys`` (when ``enabled``) plus
  ``[accel] api_keys``, each ``value[:ro|:rw]``. A ``:ro`` key (or no suffix) may read: list
  datasets, read refresh status and ``/v1/status``. A ``:rw`` key may also trigger and PATCH. A
  read-only key on a write route is 403 with Spice's message; a key that matches none is 401.
* Anyone else authenticates as for Airflow's own API: Airflow's ``get_user`` (bearer token or the
  UI's cookie), then the auth manager decides on the dataset's DAG id (simple auth manager roles,
  FAB roles and per-DAG permissions, or any other manager) exactly as for Airflow's DAG run routes.

**The rule when a request carries both** (documented in docs/api.md): when at least one key is
configured, a request with an ``X-API-Key`` header is judged by the key alone; its Airflow token or
cookie is not looked at (an expired JWT next to a valid key is fine, a viewer token does not lift a
read-only key to write). With no key configured, the header is ignored and nothing changes: every
request is judged by Airflow's credentials, as before this module knew about keys.

**Secrecy.** The presented key is compared with every configured key in constant time
(:func:`hmac.compare_digest`, and no early exit, so the time does not tell which key matched). A key
is known in logs, DAG runs (``triggering_user_name``) and the audit log only by its id,
``api-key:<first 8 hex digits of its SHA-256>``; resolved values are registered with Airflow's secrets
masker.

The Airflow check runs on ``dag_id_for(name)`` before the spicepod is looked at: a user without access
sees 403 for every name, whether the dataset exists or not, so the API does not reveal dataset names.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import bearer_scheme, get_user, requires_access_dag
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from airflow_provider_accel.plugin.api.errors import ApiError
from airflow_provider_accel.spicepod.model import ApiKey, ApiKeyAccess, dag_id_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
#: Spice's answers (its runtime's auth layer): a missing or wrong key, and a read-only key writing.
UNAUTHORIZED_MESSAGE = "Unauthorized"
READ_ONLY_KEY_MESSAGE = "API key does not allow write access"
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class ResolvedApiKey:
    """A configured key with its placeholders resolved; ``value`` never leaves this module."""

    key_id: str
    access: ApiKeyAccess
    value: bytes


def key_id_of(value: str) -> str:
    """The name a key goes by wherever it is recorded: a short digest, never the key."""
    return "api-key:" + hashlib.sha256(value.encode()).hexdigest()[:8]


class ApiKeyUser(BaseUser):
    """The caller of a request authenticated by an API key (the auth manager is not consulted)."""

    def __init__(self, key: ResolvedApiKey) -> None:
        self.key_id = key.key_id
        self.access = key.access

    def get_id(self) -> str:
        return self.key_id

    def get_name(self) -> str:
        return self.key_id

    @property
    def may_write(self) -> bool:
        return self.access is ApiKeyAccess.READ_WRITE

    def __repr__(self) -> str:
        return f"ApiKeyUser({self.key_id}, {self.access.value})"


def _resolve(key: ApiKey, source: str) -> ResolvedApiKey | None:
    from airflow_provider_accel.exceptions import SpicepodError
    from airflow_provider_accel.spicepod.secrets import resolve_placeholders

    try:
        value = resolve_placeholders(key.value, dataset=source)
    except SpicepodError as err:
        # The message names the placeholder and where it was looked for, never a value.
        log.error("An API key of %s is ignored: %s", source, err)
        return None
    if not value:
        log.warning("An empty API key of %s is ignored (it would let any empty header in).", source)
        return None
    from airflow.sdk.log import mask_secret  # Airflow >= 3.3, the provider's floor

    mask_secret(value)
    return ResolvedApiKey(key_id=key_id_of(value), access=key.access, value=value.encode())


def configured_keys() -> tuple[ResolvedApiKey, ...]:
    """Every key accepted now: the spicepod's (when enabled) and ``[accel] api_keys``.

    Read per request: the spicepod is cached until its file changes, and the option is cheap to
    read, so a revoked key stops working at once.
    """
    from airflow_provider_accel.config import api_keys
    from airflow_provider_accel.plugin.api.datasets import current_spicepod
    from airflow_provider_accel.spicepod.runtime import parse_key_list

    keys: list[tuple[ApiKey, str]] = []
    spicepod = current_spicepod()
    if spicepod.api_key_auth_enabled:
        keys.extend((key, "runtime.auth.api-key") for key in spicepod.api_keys)
    keys.extend((key, "[accel] api_keys") for key in parse_key_list(api_keys()))
    resolved = (_resolve(key, source) for key, source in keys)
    return tuple(key for key in resolved if key is not None)


def match_key(presented: str, keys: tuple[ResolvedApiKey, ...]) -> ResolvedApiKey | None:
    """The configured key equal to ``presented``, compared in constant time against every key."""
    candidate = presented.encode()
    matched: ResolvedApiKey | None = None
    for key in keys:
        # No break: the time taken depends on the number of keys, not on which one matched.
        if hmac.compare_digest(candidate, key.value) and matched is None:
            matched = key
    return matched


def api_key_caller(request: Request) -> ApiKeyUser | None:
    """A dependency: the key's caller when the request has ``X-API-Key`` and keys are configured.

    ``None`` otherwise; 401 for a key that matches none of them. Sync, so that reading the spicepod
    and resolving ``${secrets:...}`` runs in FastAPI's thread pool, not on the event loop.
    """
    presented = request.headers.get(API_KEY_HEADER)
    if presented is None:
        return None
    keys = configured_keys()
    if not keys:
        return None  # no keys configured: the header means nothing here, as before
    key = match_key(presented.strip(), keys)
    if key is None:
        log.warning("%s %s: rejected an unknown API key", request.method, request.url.path)
        raise ApiError(401, UNAUTHORIZED_MESSAGE)
    return ApiKeyUser(key)


KeyCallerDep = Annotated[ApiKeyUser | None, Depends(api_key_caller)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


async def authenticated_caller(request: Request, key_caller: KeyCallerDep, bearer: BearerDep) -> BaseUser:
    """A dependency: the caller, by API key (see the module's rule) or by Airflow's credentials."""
    if key_caller is not None:
        return key_caller
    return await get_user(request, None, bearer)


CallerDep = Annotated[BaseUser, Depends(authenticated_caller)]


def _check_key_access(caller: ApiKeyUser, method: ResourceMethod) -> None:
    if method in _WRITE_METHODS and not caller.may_write:
        raise ApiError(403, READ_ONLY_KEY_MESSAGE)


def requires_dataset_access(
    method: ResourceMethod, access_entity: DagAccessEntity | None = None
) -> Callable[..., BaseUser]:
    """A dependency: the caller, who may ``method`` the dataset's DAG (or its runs)."""

    def dependency(name: str, request: Request, user: CallerDep) -> BaseUser:
        if isinstance(user, ApiKeyUser):
            _check_key_access(user, method)
            return user
        requires_access_dag(method=method, access_entity=access_entity, param_dag_id=dag_id_for(name))(
            request, user
        )
        return user

    return dependency


def requires_dag_listing() -> Callable[..., BaseUser]:
    """A dependency for the list route: the same check as Airflow's own ``GET /api/v2/dags``."""

    def dependency(request: Request, user: CallerDep) -> BaseUser:
        if not isinstance(user, ApiKeyUser):
            requires_access_dag(method="GET")(request, user)
        return user

    return dependency


def readable_dag_ids(user: BaseUser, dag_ids: set[str]) -> set[str]:
    """The DAG ids among ``dag_ids`` the user may read; DAGs not parsed yet count too."""
    if isinstance(user, ApiKeyUser):
        return set(dag_ids)  # every key may read every dataset, as in Spice
    return get_auth_manager().filter_authorized_dag_ids(dag_ids=dag_ids, user=user, method="GET")


def may_trigger(user: BaseUser, dag_id: str) -> bool:
    """Whether the user may trigger runs of the DAG: the check of the refresh route, as a boolean."""
    if isinstance(user, ApiKeyUser):
        return user.may_write
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.models.dag import DagModel

    return get_auth_manager().is_authorized_dag(
        method="POST",
        access_entity=DagAccessEntity.RUN,
        details=DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id)),
        user=user,
    )


def may_edit(user: BaseUser, dag_id: str) -> bool:
    """Whether the user may edit the DAG (``PUT``): the rollback route's check, as a boolean."""
    if isinstance(user, ApiKeyUser):
        return user.may_write
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.models.dag import DagModel

    return get_auth_manager().is_authorized_dag(
        method="PUT",
        details=DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id)),
        user=user,
    )


RUN = DagAccessEntity.RUN
