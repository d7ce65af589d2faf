"""The small app that serves the UI page and its icon (no data: the page calls ``/v1``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse

STATIC = Path(__file__).with_name("static")


def create_app() -> FastAPI:
    app = FastAPI(title="Accelerated Datasets UI", openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/datasets", include_in_schema=False)
    def datasets_page() -> FileResponse:
        # No caching: a new provider version must show at once after an upgrade.
        return FileResponse(STATIC / "datasets.html", headers={"Cache-Control": "no-cache"})

    @app.get("/datasets/", include_in_schema=False)
    def datasets_page_slash() -> RedirectResponse:
        return RedirectResponse("../datasets")

    @app.get("/dataset", include_in_schema=False)
    def dataset_page() -> FileResponse:
        # One dataset (?name=...): configuration, freshness, refresh chart, schema and preview.
        return FileResponse(STATIC / "dataset.html", headers={"Cache-Control": "no-cache"})

    @app.get("/icon.svg", include_in_schema=False)
    def icon() -> FileResponse:
        return FileResponse(STATIC / "icon.svg", media_type="image/svg+xml")

    return app
