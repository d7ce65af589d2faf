"""The Airflow plugin: Spice's REST API (``/v1/datasets/...``) and the Accelerated Datasets UI page.

The page is an ``external_views`` entry: a self-contained HTML+JS file served by a second small app
at ``/accel`` and shown by the Airflow UI in a same-origin iframe under Browse, which calls ``/v1``
with the signed-in user's session cookie. (``react_apps`` would need a JS bundle built against the
UI's plugin contract, shipped with its own React, for no gain here.)

Airflow imports plugins in many processes (scheduler, dag-processor, triggerer, task runners), not only
in the api-server. So this module stays thin: the FastAPI app, its routes and the Airflow API modules
they need are built on the first HTTP request the api-server routes to ``/v1``, never at import. An
invalid or missing spicepod therefore cannot break plugin loading; it only shows in the responses.
"""

from __future__ import annotations

import importlib
import re
import threading
from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_accel.accelerator.pool import refresh_pool_listener
from airflow_provider_accel.plugin import param_formats

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

#: Where the api-server mounts the app: the routes are then exactly Spice's ``/v1/datasets/...``.
URL_PREFIX = "/v1"
#: Where the UI page is served (``/accel/datasets``).
UI_URL_PREFIX = "/accel"


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


api_app = LazyASGIApp("airflow_provider_accel.plugin.api.app:create_app")

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_BAD_PATH_BODY = b'{"message":"Not Found: no dataset or run name contains control characters."}'


class ControlCharacterPathGuard:
    """Root middleware: a ``/v1`` path with control characters (``%00``, ``%0A``, ...) is a 404 ``message``.

    Starlette's mount does not match a path with a newline (the api-server would answer its own
    ``{"detail": "Not Found"}``), and a NUL would reach the metadata database, which PostgreSQL
    rejects with an error. No dataset name or run id contains control characters, so such a request
    is answered here, before routing, in the API's own error shape: not found.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            if (path == URL_PREFIX or path.startswith(URL_PREFIX + "/")) and _CONTROL_CHARACTERS.search(path):
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(_BAD_PATH_BODY)),
                ]
                await send({"type": "http.response.start", "status": 404, "headers": headers})
                await send({"type": "http.response.body", "body": _BAD_PATH_BODY})
                return
        await self.app(scope, receive, send)


#: Spice's liveness probe path and body (its runtime answers ``GET /health`` with ``ok``).
HEALTH_PATH = "/health"
_HEALTH_BODY = b"ok\n"


class SpiceHealthProbe:
    """Root middleware: ``GET /health`` answers 200 ``ok``, unauthenticated, as Spice's runtime does.

    Airflow's api-server has its own probe at ``/api/v2/monitor/health`` but nothing at ``/health``
    (its UI would answer that path with the single-page app), and a plugin's ``fastapi_apps`` are
    mounted under a prefix of their own, so ``/v1`` cannot serve it: a root middleware answers this one
    path before routing. Liveness only, like Spice's: the process serves HTTP. ``/v1/ready`` is the
    readiness probe.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("path") == HEALTH_PATH
            and scope.get("method") in ("GET", "HEAD")
        ):
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(_HEALTH_BODY)),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            body = b"" if scope.get("method") == "HEAD" else _HEALTH_BODY
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


ui_app = LazyASGIApp("airflow_provider_accel.plugin.ui.app:create_app")

# The trigger form's refresh_sql / jitter checks run the project's validator (see param_formats).
param_formats.register_from_spicepod()


class AccelerationPlugin(AirflowPlugin):
    """Registers the dataset acceleration REST API (Spice.ai's ``/v1/datasets`` routes) and UI page."""

    name = "accel"
    fastapi_apps = [
        {
            "app": api_app,
            "url_prefix": URL_PREFIX,
            "name": "Dataset acceleration API (Spice.ai-compatible)",
        },
        {
            "app": ui_app,
            "url_prefix": UI_URL_PREFIX,
            "name": "Accelerated Datasets UI page",
        },
    ]
    fastapi_root_middlewares = [
        {"middleware": ControlCharacterPathGuard, "name": "accel: control-character path guard"},
        {"middleware": SpiceHealthProbe, "name": "accel: Spice's GET /health probe"},
    ]
    # Creates the refresh pool when the scheduler starts (accelerator/pool.py), issue #15.
    listeners = [refresh_pool_listener]
    external_views = [
        {
            "name": "Accelerated Datasets",
            "href": f"{UI_URL_PREFIX}/datasets",
            "icon": f"{UI_URL_PREFIX}/icon.svg",
            "url_route": "accelerated-datasets",
            "destination": "nav",
            "category": "browse",
        }
    ]
