"""A real Iceberg catalog for the tests: pyiceberg's SQL catalog on SQLite with a local warehouse,
served over the Iceberg REST protocol's read endpoints (config, load table) by a small HTTP server,
so the source's REST client talks real HTTP to a catalog whose tables pyiceberg itself wrote."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

TOKEN = "test-token"


@dataclass
class RestCatalog:
    """The SQL catalog and the URL of its REST front (``base`` + ``/v1/namespaces/...``)."""

    catalog: Any
    base: str
    #: Requests the server answered, as (method, path) for assertions.
    requests: list[tuple[str, str]]

    def table_url(self, namespace: str, table: str) -> str:
        return f"{self.base}/v1/namespaces/{namespace}/tables/{table}"


def sql_catalog(root: Path) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    warehouse = root / "warehouse"
    warehouse.mkdir(parents=True, exist_ok=True)
    return SqlCatalog("test", uri=f"sqlite:///{root / 'catalog.db'}", warehouse=f"file://{warehouse}")


@contextmanager
def rest_catalog(root: Path) -> Iterator[RestCatalog]:
    """Serve ``sql_catalog(root)`` on 127.0.0.1 (an ephemeral port); Bearer ``TOKEN`` required."""
    from pyiceberg.exceptions import NoSuchTableError

    catalog = sql_catalog(root)
    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, kind: str, message: str) -> None:
            self._send(status, {"error": {"message": message, "type": kind, "code": status}})

        def do_GET(self) -> None:
            seen.append(("GET", self.path))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._error(401, "NotAuthorizedException", "Not authorized: bad bearer token")
                return
            path = self.path.split("?", 1)[0]
            if path == "/v1/config":
                self._send(200, {"defaults": {}, "overrides": {}})
                return
            parts = path.strip("/").split("/")
            if len(parts) == 5 and parts[:2] == ["v1", "namespaces"] and parts[3] == "tables":
                identifier = (*unquote(parts[2]).split("\x1f"), unquote(parts[4]))
                try:
                    table = catalog.load_table(identifier)
                except NoSuchTableError as err:
                    self._error(404, "NoSuchTableException", str(err))
                    return
                metadata = json.loads(Path(table.metadata_location.removeprefix("file://")).read_text())
                self._send(
                    200, {"metadata-location": table.metadata_location, "metadata": metadata, "config": {}}
                )
                return
            self._error(404, "NotFoundException", f"no route {path}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RestCatalog(catalog, f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
