"""Resolve ``${env:NAME}`` and ``${secrets:name}`` placeholders in dataset params, at the point of use.

The spicepod model keeps placeholders unresolved; a source calls :func:`resolve_params` inside the
task that connects, so secret values never reach the DAG processor, the API server, XCom or a log.

Lookup follows Spice's default ``env`` secret store: the key is upper-cased and ``SPICE_<KEY>`` is
tried before ``<KEY>`` (Spice's ``crates/runtime/src/secrets/stores/env.rs``). Here the name exactly
as written is tried last, so a lower-case environment variable still resolves. ``${secrets:name}``
then falls back to the Airflow Variable ``name`` (secrets backends, ``AIRFLOW_VAR_*``, metadata DB),
standing in for Spice's other secret stores.

Resolved values are registered with Airflow's secrets masker when it is available, so that if one
ends up in a task log anyway it is shown as ``***``.
"""

from __future__ import annotations

import logging
import os
import re
from typing import TYPE_CHECKING, Any

from airflow_provider_accel.exceptions import SpicepodError

if TYPE_CHECKING:
    from collections.abc import Mapping

log = logging.getLogger(__name__)

#: Spice's placeholder grammar (its secrets lexer): ``${ store : key }``, whitespace allowed inside.
PLACEHOLDER = re.compile(r"\$\{\s*([A-Za-z][A-Za-z0-9_-]*)\s*:\s*([A-Za-z][A-Za-z0-9_-]*)\s*\}")

#: Store names resolved here. Spice users may declare others (keyring, kubernetes, aws_secrets_manager).
SUPPORTED_STORES: tuple[str, ...] = ("env", "secrets")


def has_placeholders(value: Any) -> bool:
    """True when ``value`` is a string containing at least one ``${store:key}`` placeholder."""
    return isinstance(value, str) and PLACEHOLDER.search(value) is not None


def resolve_placeholders(value: str, *, dataset: str, field: str | None = None) -> str:
    """``value`` with every placeholder replaced; a missing secret is a :class:`SpicepodError`.

    ``field`` (such as ``params.pg_pass``) only makes the error message more precise.
    """
    if "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        store, key = match.group(1), match.group(2)
        placeholder = f"${{{store}:{key}}}"
        where = f"Dataset {dataset}: {field + ' ' if field else ''}placeholder {placeholder}"
        if store not in SUPPORTED_STORES:
            raise SpicepodError(
                f"{where} uses the secret store {store!r}, which is not available here; use "
                "${env:NAME} (an environment variable) or ${secrets:name} (an environment variable "
                "or an Airflow Variable).",
                dataset=dataset,
                field=field,
            )
        resolved = _from_environment(key)
        if resolved is None and store == "secrets":
            resolved = _from_airflow_variable(key)
        if resolved is None:
            candidates = " or ".join(_env_candidates(key))
            also = f", or an Airflow Variable {key!r}" if store == "secrets" else ""
            # Name the placeholder and where it was looked for; never any value.
            raise SpicepodError(
                f"{where} cannot be resolved: set the environment variable {candidates}{also}.",
                dataset=dataset,
                field=field,
            )
        _mask(resolved, key)
        return resolved

    return PLACEHOLDER.sub(replace, value)


def resolve_params(params: Mapping[str, Any], dataset: str, *, prefix: str = "params") -> dict[str, Any]:
    """A copy of ``params`` with the placeholders in every string value resolved."""
    return {
        key: resolve_placeholders(item, dataset=dataset, field=f"{prefix}.{key}")
        if isinstance(item, str)
        else item
        for key, item in params.items()
    }


def _env_candidates(key: str) -> list[str]:
    upper = key.upper()
    return list(dict.fromkeys((f"SPICE_{upper}", upper, key)))


def _from_environment(key: str) -> str | None:
    for name in _env_candidates(key):
        value = os.environ.get(name)
        if value is not None:
            return value
    return None


def _from_airflow_variable(key: str) -> str | None:
    """The Airflow Variable ``key``, or ``None`` when it is absent or Airflow cannot be asked.

    Inside a task the Task SDK asks the API server; elsewhere it consults the configured secrets
    backends and ``AIRFLOW_VAR_*``. Without a configured Airflow (plain library use, a unit test) any
    failure means "not found": the caller then reports the missing secret by name.
    """
    try:
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
    except Exception as err:  # no Airflow context, no DB, backend error: treat as absent
        log.debug("Airflow Variable %s unreadable (%s); treated as absent.", key, type(err).__name__)
        return None
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _mask(value: str, key: str) -> None:
    try:
        from airflow.sdk.log import mask_secret

        mask_secret(value, name=key)
    except Exception:  # masking is a safety net; without Airflow logging there is nothing to mask
        pass


__all__ = ["PLACEHOLDER", "SUPPORTED_STORES", "has_placeholders", "resolve_params", "resolve_placeholders"]
