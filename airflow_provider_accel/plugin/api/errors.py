"""Error handling of the API: every error body is ``{"message": ...}``, as in Spice's ``MessageResponse``.

FastAPI answers errors with ``{"detail": ...}``; the app replaces its handlers for
``HTTPException`` (including the ones Airflow's auth dependencies raise: 401, 403) and for request
validation errors. Unexpected exceptions are caught in the route class (:class:`MessageErrorRoute`)
rather than by a Starlette ``Exception`` handler, because that handler re-raises after answering,
which in a mounted sub-app would reach the api-server's own error middleware a second time.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from fastapi import FastAPI
    from starlette.responses import Response

log = logging.getLogger(__name__)

REFRESH_INTERNAL_ERROR = "Unexpected internal error occurred while processing refresh"
INTERNAL_ERROR = "Unexpected internal error occurred while processing the request"


class ApiError(Exception):
    """An error answer: ``status_code`` and the ``message`` of the body (plus optional headers)."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers


def message_response(status_code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status_code, content={"message": message}, headers=headers)


def _detail_to_message(detail: Any) -> str:
    # Airflow's own dependencies raise HTTPException with a string detail; some raise a dict.
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict) and isinstance(detail.get("message"), str):
        return str(detail["message"])
    return str(detail)


async def _api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return message_response(exc.status_code, exc.message, exc.headers)


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return message_response(exc.status_code, _detail_to_message(exc.detail), headers)


async def _validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return message_response(400, "Invalid request: " + "; ".join(problems))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)


class MessageErrorRoute(APIRoute):
    """A route whose unexpected failures answer 500 with a generic message; the details go to the log.

    A route sets its message with ``openapi_extra={"x-internal-error-message": ...}`` (the refresh
    route uses Spice's exact wording), which also documents it in the OpenAPI document.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        message = (self.openapi_extra or {}).get("x-internal-error-message", INTERNAL_ERROR)

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (ApiError, HTTPException, StarletteHTTPException, RequestValidationError):
                raise  # expected answers, turned into {"message": ...} by the handlers above
            except Exception:
                # Never echo the exception: it may carry SQL, paths or credentials.
                log.exception("%s %s failed", request.method, request.url.path)
                return message_response(500, message)

        return guarded
