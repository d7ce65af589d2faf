"""The spicepod's ``runtime.auth.api-key`` section: Spice's API keys for the REST API.

Spice's form::

    runtime:
      auth:
        api-key:
          enabled: true
          keys:
            - ${secrets:api_key}        # no suffix: read-only
            - ${env:SPICE_RW_KEY}:rw    # read-write
            - reporting-key:ro

``api_key`` is accepted for ``api-key`` (Spice's alias), ``enabled`` defaults to true as in Spice.
Each key is ``value[:ro|:rw]``. ``${env:...}`` / ``${secrets:...}`` placeholders are kept unresolved
here, like dataset params: the model is built in the dag-processor too, and a key's value is only
needed (and resolved) by the api-server that checks requests (``plugin/api/auth.py``).

The same ``value[:ro|:rw]`` form, comma-separated, is what ``[accel] api_keys`` holds;
:func:`parse_key_list` reads both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.spicepod.model import ApiKey, ApiKeyAccess

_FIELD = "runtime.auth.api-key"
_SECTION_KEYS = frozenset({"enabled", "keys"})


def parse_key(text: str) -> ApiKey:
    """``value``, ``value:ro`` or ``value:rw`` as an :class:`ApiKey` (no suffix: read-only, as in Spice)."""
    value, sep, suffix = text.rpartition(":")
    if sep and suffix in (ApiKeyAccess.READ_ONLY.value, ApiKeyAccess.READ_WRITE.value):
        return ApiKey(value=value, access=ApiKeyAccess(suffix))
    return ApiKey(value=text, access=ApiKeyAccess.READ_ONLY)


def parse_key_list(text: str) -> tuple[ApiKey, ...]:
    """A comma-separated list of ``value[:ro|:rw]`` (``[accel] api_keys``); blanks are skipped."""
    return tuple(parse_key(part.strip()) for part in text.split(",") if part.strip())


def parse_runtime_auth(data: Mapping[Any, Any]) -> tuple[bool, tuple[ApiKey, ...]]:
    """``(enabled, keys)`` of the spicepod mapping's ``runtime.auth.api-key``; ``(False, ())`` when absent.

    Only this section is read: the rest of ``runtime`` (Spice's ports, TLS, caching ...) has no
    meaning here and stays ignored, as before.
    """
    runtime = data.get("runtime")
    if runtime is None:
        return False, ()
    if not isinstance(runtime, Mapping):
        raise SpicepodError(
            f"Spicepod: runtime must be a mapping, not a {type(runtime).__name__}.", field="runtime"
        )
    auth = runtime.get("auth")
    if auth is None:
        return False, ()
    if not isinstance(auth, Mapping):
        raise SpicepodError(
            f"Spicepod: runtime.auth must be a mapping, not a {type(auth).__name__}.", field="runtime.auth"
        )
    # Spice reads ``api_key`` and takes ``api-key`` as its alias.
    if "api-key" in auth and "api_key" in auth:
        raise SpicepodError(
            "Spicepod: runtime.auth has both api-key and api_key, which are the same section; keep one.",
            field=_FIELD,
        )
    section = auth.get("api-key", auth.get("api_key"))
    if section is None:
        return False, ()
    if not isinstance(section, Mapping):
        raise SpicepodError(
            f"Spicepod: {_FIELD} must be a mapping with enabled and keys, not a {type(section).__name__}.",
            field=_FIELD,
        )
    unknown = sorted(str(k) for k in section if k not in _SECTION_KEYS)
    if unknown:
        raise SpicepodError(
            f"Spicepod: unknown key(s) {', '.join(unknown)} in {_FIELD}; allowed keys: enabled, keys.",
            field=f"{_FIELD}.{unknown[0]}",
        )
    enabled = section.get("enabled", True)
    if not isinstance(enabled, bool):
        raise SpicepodError(
            f"Spicepod: {_FIELD}.enabled {enabled!r} is not a boolean; write true or false (unquoted).",
            field=f"{_FIELD}.enabled",
        )
    raw_keys = section.get("keys") or []
    if not isinstance(raw_keys, list):
        raise SpicepodError(
            f"Spicepod: {_FIELD}.keys must be a list of keys (value, value:ro or value:rw), "
            f"not a {type(raw_keys).__name__}.",
            field=f"{_FIELD}.keys",
        )
    keys = []
    for index, raw in enumerate(raw_keys):
        if not isinstance(raw, str) or not raw.strip():
            # Never echo the item: it may be a key.
            raise SpicepodError(
                f"Spicepod: {_FIELD}.keys[{index}] must be a non-empty string such as "
                "${secrets:api_key}:rw.",
                field=f"{_FIELD}.keys[{index}]",
            )
        keys.append(parse_key(raw.strip()))
    if enabled and not keys:
        raise SpicepodError(
            f"Spicepod: {_FIELD} is enabled but has no keys; add keys (value[:ro|:rw]) or set "
            "enabled: false.",
            field=f"{_FIELD}.keys",
        )
    return enabled, tuple(keys)
