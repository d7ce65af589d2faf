"""The Airflow plugin that serves the Spice-compatible REST API (``/v1/datasets/...``) on the api-server.

Airflow imports plugins in many processes (scheduler, dag-processor, triggerer, task runners), not only
in the api-server. So this module stays thin: the FastAPI app, its routes and the Airflow API modules
they need are built on the first HTTP request the api-server routes to ``/v1``, never at import. An
invalid or missing spicepod therefore cannot break plugin loading; it only shows in the responses.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

#: Where the api-server mounts the app: the routes are then exactly Spice's ``/v1/datasets/...``.
URL_PREFIX = "/v1"


class LazyASGIApp:
    """An ASGI app that imports and builds the real one (``module:factory``) on its first request."""

    def __init__(self, factory: str) -> None:
        self._factory = factory
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        """The built app (built now if no request has arrived yet); tests use it for OpenAPI checks."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    module_name, _, attr = self._factory.partition(":")
                    self._app = getattr(importlib.import_module(module_name), attr)()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


api_app = LazyASGIApp("airflow_provider_accel.api.app:create_app")


class AccelerationPlugin(AirflowPlugin):
    """Registers the dataset acceleration REST API (Spice.ai's ``/v1/datasets`` routes)."""

    name = "accel"
    fastapi_apps = [
        {
            "app": api_app,
            "url_prefix": URL_PREFIX,
            "name": "Dataset acceleration API (Spice.ai-compatible)",
        }
    ]
