"""``iceberg:<table URL>``: an Apache Iceberg table, planned and read with ``pyiceberg``.

The ``from:`` forms are Spice's:

* a REST catalog table, ``iceberg:http[s]://<host>/v1/{prefix}/namespaces/<namespace>/tables/<table>``
  (``{prefix}`` optional; a multi-level namespace joins its levels with ``%1F``, as the REST spec
  does). AWS Glue's Iceberg REST endpoint is this form too, and turns SigV4 signing on;
* a Hadoop-style table directory, ``iceberg:file:///warehouse/ns/table``, ``iceberg:s3://...`` or
  ``iceberg:s3a://...``: its current metadata file is named by ``metadata/version-hint.text``, or
  by the ``metadata_path`` param.

Params (Spice's): ``iceberg_token``, ``iceberg_oauth2_credential``, ``iceberg_oauth2_scope``,
``iceberg_oauth2_server_url``, ``iceberg_warehouse``, ``iceberg_sigv4_enabled``,
``iceberg_signing_region``, ``iceberg_signing_name``, ``iceberg_s3_endpoint``, ``iceberg_s3_region``,
``iceberg_s3_access_key_id``, ``iceberg_s3_secret_access_key``, ``iceberg_s3_session_token``,
``iceberg_s3_role_arn``, ``iceberg_s3_role_session_name``, ``iceberg_s3_connect_timeout``,
``iceberg_s3_path_style_access``, ``iceberg_gcs_project_id``, ``iceberg_gcs_token``,
``iceberg_gcs_service_path`` and ``metadata_path``. Install with
``pip install 'airflow-provider-accel[iceberg]'``.

Pushdown: the projection and the part of the filter that maps onto Iceberg expressions (comparisons
of a column with a literal, ``IS [NOT] NULL``, ``IN``, ``BETWEEN``, combined with ``AND``/``OR``/
``NOT``) go into the scan plan, so data files whose partition values or column statistics cannot
match are never opened. Rows stream one data file at a time (memory is bounded by the largest file,
never by the table); ``pyiceberg``'s own reader submits every file to its thread pool at once.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote, urlsplit

import pyarrow as pa

from airflow_provider_accel.exceptions import RefreshError
from airflow_provider_accel.sources._common import StreamingSource, resolve_params
from airflow_provider_accel.sources.base import ScanRequest, SourceCapabilities, SourceScan

if TYPE_CHECKING:
    import duckdb
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

#: Spice param -> pyiceberg catalog / FileIO property.
_PROPERTIES = {
    "iceberg_token": "token",
    "iceberg_oauth2_credential": "credential",
    "iceberg_oauth2_scope": "scope",
    "iceberg_oauth2_server_url": "oauth2-server-uri",
    "iceberg_warehouse": "warehouse",
    "iceberg_signing_region": "rest.signing-region",
    "iceberg_signing_name": "rest.signing-name",
    "iceberg_s3_endpoint": "s3.endpoint",
    "iceberg_s3_region": "s3.region",
    "iceberg_s3_access_key_id": "s3.access-key-id",
    "iceberg_s3_secret_access_key": "s3.secret-access-key",
    "iceberg_s3_session_token": "s3.session-token",
    "iceberg_s3_role_arn": "s3.role-arn",
    "iceberg_s3_role_session_name": "s3.role-session-name",
    "iceberg_s3_connect_timeout": "s3.connect-timeout",
    "iceberg_gcs_project_id": "gcs.project-id",
    "iceberg_gcs_token": "gcs.oauth2.token",
    "iceberg_gcs_service_path": "gcs.service.host",
}
_HADOOP_SCHEMES = ("file://", "s3://", "s3a://", "gs://", "gcs://")
_GLUE_HOST = re.compile(r"^glue\.([a-z0-9-]+)\.amazonaws\.com$")
_FORMS = (
    "expected iceberg:http[s]://<catalog>/v1/[<prefix>/]namespaces/<namespace>/tables/<table> "
    "(a REST catalog) or iceberg:file:///, s3://, s3a://<warehouse>/<namespace>/<table> "
    "(a Hadoop-style table)"
)


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"true", "1", "yes", "on"}


class IcebergSource(StreamingSource):
    """The current snapshot of an Iceberg table, streamed as Arrow with projection and filters planned."""

    prefixes: ClassVar[tuple[str, ...]] = ("iceberg:",)
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities(
        filter_pushdown=True, projection_pushdown=True
    )

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        self._table: Table | None = None
        #: The Iceberg expression the last scan planned with (``None``: no filter pushed), for tests.
        self.pushed_filter: BooleanExpression | None = None
        #: Data files the last scan planned to read, and how many the snapshot has (pushdown proof).
        self.files_planned = 0
        self.snapshot_id: int | None = None

    # -- where the table is --------------------------------------------------------------------

    @property
    def location(self) -> str:
        location = self.dataset.from_.split(":", 1)[1]
        if not location:
            self.terminal(_FORMS)
        return location

    def properties(self) -> dict[str, str]:
        params = resolve_params(self.dataset)
        props = {prop: str(params[p]) for p, prop in _PROPERTIES.items() if params.get(p) not in (None, "")}
        if params.get("iceberg_s3_path_style_access") not in (None, "") and not _truthy(
            params["iceberg_s3_path_style_access"]
        ):
            props["s3.force-virtual-addressing"] = "true"
        if _truthy(params.get("iceberg_sigv4_enabled", False)):
            props["rest.sigv4-enabled"] = "true"
        return props

    def rest_target(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """The REST catalog's properties (uri, prefix, auth...) and the table identifier."""
        parts = urlsplit(self.location)
        path = parts.path
        match = re.match(
            r"^(?P<base>.*?)/v1/(?:(?P<prefix>.+?)/)?namespaces/(?P<ns>[^/]+)/tables/(?P<t>[^/]+)/?$", path
        )
        if parts.query or parts.fragment or match is None:
            self.terminal(f"{_FORMS}; got {self.location!r}")
        props = {"uri": f"{parts.scheme}://{parts.netloc}{match['base']}", **self.properties()}
        if match["prefix"]:
            props["prefix"] = match["prefix"]
        glue = _GLUE_HOST.match(parts.hostname or "")
        if glue is not None:
            props.setdefault("rest.sigv4-enabled", "true")
            props.setdefault("rest.signing-region", glue.group(1))
            props.setdefault("rest.signing-name", "glue")
        namespace = tuple(unquote(match["ns"]).split("\x1f"))
        return props, (*namespace, unquote(match["t"]))

    def load_table(self) -> Table:
        """Load the table's current metadata from its catalog (REST) or its metadata file (Hadoop)."""
        try:
            if self.location.startswith(("http://", "https://")):
                from pyiceberg.catalog.rest import RestCatalog

                props, identifier = self.rest_target()
                table: Table = RestCatalog(self.dataset.name, **props).load_table(identifier)
                return table
            if self.location.startswith(_HADOOP_SCHEMES):
                from pyiceberg.table import StaticTable

                params = resolve_params(self.dataset)
                metadata = str(params.get("metadata_path") or self.location.rstrip("/"))
                if metadata.startswith("s3a://"):
                    metadata = "s3://" + metadata[len("s3a://") :]
                return StaticTable.from_metadata(metadata, self.properties())
        except RefreshError:
            raise
        except FileNotFoundError as err:
            self.terminal(
                f"no Iceberg table metadata at {self.location!r} (no metadata/version-hint.text; set "
                f"metadata_path to the table's current .metadata.json file): {err}",
                err,
            )
        except Exception as err:  # pyiceberg, requests and the FileIO raise many types; classify() sorts them
            raise self.classify(err) from err
        self.terminal(f"{_FORMS}; got {self.location!r}")

    def table(self) -> Table:
        if self._table is None:
            self._table = self.load_table()
            snapshot = self._table.current_snapshot()
            self.snapshot_id = snapshot.snapshot_id if snapshot is not None else None
            log.info(
                "Dataset %s: Iceberg table %s at snapshot %s",
                self.dataset.name,
                self.location,
                self.snapshot_id,
            )
        return self._table

    # -- errors --------------------------------------------------------------------------------

    def is_transient(self, err: BaseException) -> bool:
        from pyiceberg import exceptions as ice

        terminal = (
            ice.NoSuchTableError,
            ice.NoSuchNamespaceError,
            ice.BadRequestError,
            ice.UnauthorizedError,
            ice.ForbiddenError,
            ice.OAuthError,
            ice.NotInstalledError,
            ice.ResolveError,
            ice.ValidationError,
        )
        if isinstance(err, (*terminal, PermissionError, ValueError, TypeError)):
            return False
        transient = (ice.ServerError, ice.ServiceUnavailableError, ice.TooManyRequestsError)
        if isinstance(err, (*transient, ice.AuthorizationExpiredError, OSError)):
            # OSError: the network, or a data file gone while reading (the table rewritten mid-scan).
            return True
        try:
            import requests
        except ImportError:  # pragma: no cover - requests ships with pyiceberg
            return False
        return isinstance(err, requests.ConnectionError | requests.Timeout)

    def error_cause(self, err: BaseException) -> str:
        from pyiceberg import exceptions as ice

        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, ice.UnauthorizedError | ice.ForbiddenError | ice.OAuthError):
            return (
                f"the Iceberg catalog refused the credentials ({text}); "
                "check iceberg_token or iceberg_oauth2_*"
            )
        if isinstance(err, ice.NoSuchTableError | ice.NoSuchNamespaceError):
            return f"table not found in the Iceberg catalog: {text}"
        return f"{type(err).__name__}: {text}"

    # -- schema and scan -----------------------------------------------------------------------

    def schema(self, con: duckdb.DuckDBPyConnection | None) -> pa.Schema:
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        arrow = schema_to_pyarrow(self.table().schema())
        return pa.schema([pa.field(f.name, f.type, f.nullable) for f in arrow])

    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        from pyiceberg.expressions import AlwaysTrue
        from pyiceberg.io.pyarrow import ArrowScan

        # A fresh snapshot per scan: an append must see the commits made since the last one.
        self._table = None
        table = self.table()
        columns = self.check_columns(self.schema(con), request.columns)
        iceberg_schema = table.schema()
        pushed, whole = (None, False) if request.where is None else to_iceberg(request.where, iceberg_schema)
        self.pushed_filter = pushed
        limit = request.limit if request.limit is not None and (request.where is None or whole) else None
        scan = table.scan(
            row_filter=pushed if pushed is not None else AlwaysTrue(),
            selected_fields=tuple(columns),
            limit=limit,
        )
        try:
            tasks = list(scan.plan_files())
        except Exception as err:
            raise self.classify(err) from err
        self.files_planned = len(tasks)
        log.info(
            "Dataset %s: Iceberg scan plans %d data file(s); filter pushed: %s",
            self.dataset.name,
            len(tasks),
            pushed,
        )
        projected = scan.projection()
        full = self.schema(con)
        schema = pa.schema([full.field(c) for c in columns])

        def batches() -> Iterator[pa.RecordBatch]:
            remaining = limit
            for task in tasks:
                # One file at a time: ArrowScan.to_record_batches materialises each file it is given,
                # so giving it the whole plan would hold every file in memory.
                reader = ArrowScan(table.metadata, table.io, projected, scan.row_filter, True, remaining)
                for batch in reader.to_record_batches([task]):
                    if batch.schema.names != columns:  # Iceberg projects in schema order
                        batch = batch.select(columns)
                    if remaining is not None:
                        batch = batch.slice(0, remaining)
                        remaining -= batch.num_rows
                    yield batch
                if remaining is not None and remaining <= 0:
                    return

        return SourceScan(reader=self.reader(schema, batches()))


# -- DuckDB filter -> Iceberg expression ----------------------------------------------------------


def to_iceberg(where: str, schema: Schema) -> tuple[BooleanExpression | None, bool]:
    """The part of ``where`` (DuckDB SQL) that Iceberg can evaluate, and whether that is all of it.

    Top-level ``AND`` terms are pushed one by one (the accelerator re-applies the whole filter); an
    ``OR`` or ``NOT`` is pushed only whole. Every pushed term is bound to the table's schema first,
    so a literal that does not convert exactly to its column's type is never pushed.
    """
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(where, read="duckdb")
    except Exception:  # sqlglot raises several types; an unparseable filter is simply not pushed
        return None, False
    root = tree.unnest()
    terms = list(root.flatten()) if isinstance(root, exp.And) else [root]
    pushed: list[BooleanExpression] = []
    for term in terms:
        expression = _convert(term.unnest(), schema)
        if expression is not None and _binds(expression, schema):
            pushed.append(expression)
    if not pushed:
        return None, False
    from pyiceberg.expressions import And

    result = pushed[0] if len(pushed) == 1 else And(*pushed)
    return result, len(pushed) == len(terms)


def _binds(expression: BooleanExpression, schema: Schema) -> bool:
    from pyiceberg.expressions.visitors import bind

    try:
        bind(schema, expression, case_sensitive=True)
    except Exception:  # a type mismatch or a literal that does not convert: do not push it
        return False
    return True


def _convert(node: Any, schema: Schema) -> Any:
    """The Iceberg expression (``BooleanExpression``) for a sqlglot node, or ``None``."""
    from pyiceberg import expressions
    from sqlglot import exp

    ie: Any = expressions  # its predicates' pydantic constructors confuse mypy

    node = node.unnest()
    if isinstance(node, exp.And | exp.Or):
        left, right = _convert(node.left, schema), _convert(node.right, schema)
        if left is None or right is None:
            return None
        return ie.And(left, right) if isinstance(node, exp.And) else ie.Or(left, right)
    if isinstance(node, exp.Not):
        inner = node.this.unnest()
        if isinstance(inner, exp.Is):
            column = _column(inner.this, schema)
            return ie.NotNull(column) if column and isinstance(inner.expression, exp.Null) else None
        converted = _convert(inner, schema)
        return ie.Not(converted) if converted is not None else None
    if isinstance(node, exp.Is):
        column = _column(node.this, schema)
        return ie.IsNull(column) if column and isinstance(node.expression, exp.Null) else None
    if isinstance(node, exp.In) and not node.args.get("query"):
        column = _column(node.this, schema)
        values = [_literal(v, column, schema) for v in node.expressions] if column else []
        if column is None or not values or any(v is None for v in values):
            return None
        return ie.In(column, values)
    if isinstance(node, exp.Between):
        column = _column(node.this, schema)
        low = _literal(node.args["low"], column, schema) if column else None
        high = _literal(node.args["high"], column, schema) if column else None
        if column is None or low is None or high is None:
            return None
        return ie.And(ie.GreaterThanOrEqual(column, low), ie.LessThanOrEqual(column, high))
    comparisons: dict[type, tuple[Any, Any]] = {
        exp.EQ: (ie.EqualTo, ie.EqualTo),
        exp.NEQ: (ie.NotEqualTo, ie.NotEqualTo),
        exp.GT: (ie.GreaterThan, ie.LessThan),
        exp.GTE: (ie.GreaterThanOrEqual, ie.LessThanOrEqual),
        exp.LT: (ie.LessThan, ie.GreaterThan),
        exp.LTE: (ie.LessThanOrEqual, ie.GreaterThanOrEqual),
    }
    if type(node) in comparisons:
        forward, flipped = comparisons[type(node)]
        left, right = node.left.unnest(), node.right.unnest()
        column = _column(left, schema)
        if column is not None:
            value = _literal(right, column, schema)
            return forward(column, value) if value is not None else None
        column = _column(right, schema)
        if column is not None:
            value = _literal(left, column, schema)
            return flipped(column, value) if value is not None else None
    return None


def _number(text: str, field_type: Any) -> Any:
    """A numeric literal for a column, only when Iceberg's conversion cannot round it."""
    from pyiceberg.types import DecimalType, DoubleType, FloatType, IntegerType, LongType

    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return None
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):  # NaN or infinity
        return None
    if isinstance(field_type, DecimalType):
        # Iceberg rounds a literal of a finer scale (amount > 1.555 would become amount > 1.56).
        if -exponent > field_type.scale:
            return None
        return value.quantize(decimal.Decimal(1).scaleb(-field_type.scale))
    if isinstance(field_type, IntegerType | LongType):
        return int(value) if value == value.to_integral_value() and exponent >= 0 else None
    if isinstance(field_type, FloatType | DoubleType):
        return float(value)
    return None


def _column(node: Any, schema: Schema) -> str | None:
    from sqlglot import exp

    node = node.unnest()
    if not isinstance(node, exp.Column) or node.table:
        return None
    return node.name if node.name in schema.column_names else None


def _literal(node: Any, column: str | None, schema: Schema) -> Any:
    """A Python value Iceberg converts exactly to the column's type, or ``None`` (not pushable)."""
    from pyiceberg.types import DateType, TimestampType, TimestamptzType
    from sqlglot import exp

    node = node.unnest()
    field_type = schema.find_type(column) if column else None
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        value = _literal(node.this, column, schema)
        return -value if isinstance(value, int | float | decimal.Decimal) else None
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            # DuckDB casts a string compared with a temporal column in its session TimeZone: not pushed.
            return None if isinstance(field_type, DateType | TimestampType | TimestamptzType) else node.this
        return _number(str(node.this), field_type)
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and node.this.is_string:
        kind = node.to.this
        text = str(node.this.this)
        if kind == exp.DataType.Type.DATE and isinstance(field_type, DateType):
            return dt.date.fromisoformat(text).isoformat()
        if kind == exp.DataType.Type.TIMESTAMP and isinstance(field_type, TimestampType):
            return dt.datetime.fromisoformat(text).isoformat()
        if kind == exp.DataType.Type.TIMESTAMPTZ and isinstance(field_type, TimestamptzType):
            value = dt.datetime.fromisoformat(text)
            # A literal without an offset means the session TimeZone in DuckDB: only UTC-explicit ones go.
            return value.isoformat() if value.utcoffset() is not None else None
    return None
