"""Validate a ``refresh_sql`` and reduce it to a :class:`RefreshFilter`.

A refresh_sql is a *filter on one dataset*, not a query: ``SELECT <cols|*> FROM <dataset>
[WHERE <expr>] [LIMIT n]``. It arrives from spicepods, DAG run conf and the REST API, so anyone
allowed to trigger a refresh can send one: this module is a security boundary.

How it stays safe:

* DuckDB's own parser does all the lexing (``extract_statements`` to count statements and read
  their types, ``json_serialize_sql`` for the AST). There is no hand-written tokenizer, so
  comments, quoting and dollar strings are understood exactly as DuckDB understands them.
* The AST is checked against *whitelists*: the SELECT node may only carry the parts listed in
  ``_SELECT_NODE_KEYS``, the WHERE expression may only contain the node kinds, operators,
  functions and cast types listed below. Anything else, including node kinds a future DuckDB
  adds, is rejected.
* The original SQL text is never executed or passed on. :attr:`RefreshFilter.where` is rendered
  by this module from the accepted AST nodes only (identifiers double-quoted, strings escaped).
  The rendering is then parsed again and its AST must equal the original's, so the filter that
  runs is exactly the one that was validated (fail closed: a mismatch is a rejection).
* The validator's own DuckDB connection is in-memory, has external access disabled and its
  configuration locked, and it only ever parses: the SQL is passed as a bound parameter.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_accel.exceptions import RefreshSqlError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import duckdb

__all__ = [
    "ALLOWED_CAST_TYPES",
    "ALLOWED_FUNCTIONS",
    "MAX_EXPRESSION_DEPTH",
    "MAX_REFRESH_SQL_LENGTH",
    "RefreshFilter",
    "quote_identifier",
    "validate_refresh_sql",
    "validate_retention_sql",
]

#: Longest refresh_sql accepted, in characters. A filter is a few hundred characters; 64 KiB leaves
#: room for long IN lists while bounding the parse time in the API request path.
MAX_REFRESH_SQL_LENGTH = 64 * 1024

#: Deepest WHERE expression nesting accepted. Real filters nest a few levels; the cap keeps the
#: recursive walk, rendering and comparison far from Python's recursion limit.
MAX_EXPRESSION_DEPTH = 64

#: Deepest nesting DuckDB's parser accepts on the validator connection. It must exceed twice
#: MAX_EXPRESSION_DEPTH, because the rendering parenthesises every node and DuckDB counts
#: parentheses as depth, and stays low so that the JSON AST stays shallow.
_PARSER_MAX_DEPTH = 4 * MAX_EXPRESSION_DEPTH

#: Largest LIMIT accepted (DuckDB's LIMIT is a BIGINT).
_MAX_LIMIT = 2**63 - 1

_EXCERPT_CHARS = 200
_MAX_LISTED_COLUMNS = 20

#: Pure scalar functions allowed in WHERE, by the name DuckDB's parser gives them (lowercase).
#: Deliberately absent: table functions and anything that reads files, settings, variables, the
#: environment or the catalog (read_*, glob, getenv, current_setting, getvariable, query,
#: duckdb_*, pg_*), aggregates and window functions, and functions whose output size the caller
#: controls (repeat, lpad, rpad, range), which would allow memory exhaustion.
#: Some entries exist because DuckDB's parser desugars syntax into them: ``INTERVAL 1 DAY``
#: becomes ``to_days(CAST(trunc(CAST(1 AS DOUBLE)) AS INTEGER))``, ``AT TIME ZONE`` becomes
#: ``timezone``, ``EXTRACT`` becomes ``date_part``, ``SIMILAR TO`` becomes ``regexp_full_match``,
#: ``x ~ 'r'`` becomes ``regexp_matches`` and ``LIKE ... ESCAPE`` becomes ``like_escape``.
ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    {
        # strings
        "lower",
        "lcase",
        "upper",
        "ucase",
        "length",
        "strlen",
        "starts_with",
        "ends_with",
        "prefix",
        "suffix",
        "contains",
        "regexp_matches",
        "regexp_full_match",
        "substr",
        "substring",
        "trim",
        "ltrim",
        "rtrim",
        "concat",
        "concat_ws",
        "replace",
        "left",
        "right",
        "position",
        "strpos",
        "instr",
        "like_escape",
        "not_like_escape",
        "ilike_escape",
        "not_ilike_escape",
        # numbers
        "abs",
        "round",
        "floor",
        "ceil",
        "ceiling",
        "trunc",
        "sign",
        "greatest",
        "least",
        "isnan",
        "isinf",
        "isfinite",
        # NULL handling (COALESCE has its own AST node)
        "nullif",
        # dates and times
        "date_trunc",
        "datetrunc",
        "date_part",
        "datepart",
        "date_diff",
        "datediff",
        "date_sub",
        "datesub",
        "strftime",
        "strptime",
        "try_strptime",
        "now",
        "today",
        "get_current_timestamp",
        "to_timestamp",
        "epoch",
        "epoch_ms",
        "epoch_us",
        "epoch_ns",
        "make_timestamp",
        "make_date",
        "make_time",
        "timezone",
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "dayofweek",
        "dayofmonth",
        "dayofyear",
        "week",
        "isodow",
        "quarter",
        "last_day",
        "to_years",
        "to_months",
        "to_weeks",
        "to_days",
        "to_hours",
        "to_minutes",
        "to_seconds",
        "to_milliseconds",
        "to_microseconds",
    }
)

#: Operators (DuckDB keeps them as FUNCTION nodes with ``is_operator``), rendered infix.
_BINARY_OPERATORS: dict[str, str] = {
    "+": "+",
    "-": "-",
    "*": "*",
    "/": "/",
    "//": "//",
    "%": "%",
    "**": "**",
    "^": "^",
    "||": "||",
    "~~": "LIKE",
    "!~~": "NOT LIKE",
    "~~*": "ILIKE",
    "!~~*": "NOT ILIKE",
    "~~~": "GLOB",
}
_UNARY_OPERATORS: frozenset[str] = frozenset({"+", "-"})
#: ``x LIKE p ESCAPE e`` is parsed into these, flagged as operators.
_ESCAPE_OPERATORS: dict[str, str] = {
    "like_escape": "LIKE",
    "not_like_escape": "NOT LIKE",
    "ilike_escape": "ILIKE",
    "not_ilike_escape": "NOT ILIKE",
}

#: Plain types allowed in CAST / TRY_CAST / ``::``, by the name the parser keeps (compared
#: uppercase). No nested, user-defined, enum or extension types, no schema-qualified types.
ALLOWED_CAST_TYPES: frozenset[str] = frozenset(
    {
        "BOOLEAN",
        "BOOL",
        "TINYINT",
        "INT1",
        "SMALLINT",
        "INT2",
        "INTEGER",
        "INT",
        "INT4",
        "BIGINT",
        "INT8",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "FLOAT",
        "FLOAT4",
        "REAL",
        "DOUBLE",
        "FLOAT8",
        "DECIMAL",
        "NUMERIC",
        "VARCHAR",
        "TEXT",
        "STRING",
        "DATE",
        "TIME",
        "TIMESTAMP",
        "DATETIME",
        "TIMESTAMPTZ",
        "TIMESTAMP WITH TIME ZONE",
        "TIMESTAMP_S",
        "TIMESTAMP_MS",
        "TIMESTAMP_NS",
        "INTERVAL",
        "UUID",
    }
)
_DECIMAL_TYPES = frozenset({"DECIMAL", "NUMERIC"})

_COMPARISONS: dict[str, str] = {
    "COMPARE_EQUAL": "=",
    "COMPARE_NOTEQUAL": "<>",
    "COMPARE_LESSTHAN": "<",
    "COMPARE_GREATERTHAN": ">",
    "COMPARE_LESSTHANOREQUALTO": "<=",
    "COMPARE_GREATERTHANOREQUALTO": ">=",
    "COMPARE_DISTINCT_FROM": "IS DISTINCT FROM",
    "COMPARE_NOT_DISTINCT_FROM": "IS NOT DISTINCT FROM",
}

#: Bare words the binder turns into a value when no column has that name. The time ones are
#: useful in filters and allowed; they are rendered bare so they bind exactly as in the original.
_TIME_KEYWORDS = frozenset(
    {"current_date", "current_time", "current_timestamp", "localtime", "localtimestamp"}
)
#: The identity ones reveal session details: allowed only as a column the source is known to have.
_IDENTITY_KEYWORDS = frozenset(
    {"current_user", "user", "session_user", "current_role", "current_catalog", "current_schema"}
)

#: Everything a SELECT node may carry; each part other than the ones we read must be empty.
_SELECT_NODE_KEYS = frozenset(
    {
        "type",
        "modifiers",
        "cte_map",
        "select_list",
        "from_table",
        "where_clause",
        "group_expressions",
        "group_sets",
        "aggregate_handling",
        "having",
        "sample",
        "qualify",
    }
)
_BASE_TABLE_KEYS = frozenset(
    {
        "type",
        "alias",
        "sample",
        "query_location",
        "query_location_length",
        "schema_name",
        "table_name",
        "column_name_alias",
        "catalog_name",
        "at_clause",
        "qualified_name",
    }
)
_LOCATION_KEYS = frozenset({"query_location", "query_location_length"})

# Only used to validate the text of a numeric literal that DuckDB's parser already accepted,
# before echoing it into the rendering; the round-trip check is what guarantees fidelity.
_NUMBER_TEXT = re.compile(r"-?(?=[0-9.])[0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class RefreshFilter:
    """A validated refresh_sql, reduced to what a refresh needs to apply it to the source."""

    #: The refresh_sql as given.
    sql: str
    #: The projection; ``None`` means ``SELECT *``.
    columns: tuple[str, ...] | None
    #: The WHERE expression rendered from the validated AST as DuckDB SQL, identifiers
    #: double-quoted; safe to embed as ``... WHERE (<where>)`` in a query over the source.
    where: str | None
    #: ``LIMIT n``; a non-negative integer constant.
    limit: int | None


def quote_identifier(name: str) -> str:
    """Quote ``name`` as a DuckDB identifier: wrap in double quotes, double any inner quote."""
    if "\x00" in name:
        # DuckDB cannot represent a NUL in an identifier; refusing beats silently truncating.
        raise ValueError("An identifier cannot contain a NUL character")
    return '"' + name.replace('"', '""') + '"'


def _quote_string(value: str) -> str:
    """Render a DuckDB string literal (standard SQL quoting: backslashes are not escapes)."""
    return "'" + value.replace("'", "''") + "'"


# ASCII-only case folding, as DuckDB compares identifiers: Unicode look-alikes (Cyrillic a,
# the Kelvin sign) must not fold onto ASCII letters the way str.lower()/casefold() can.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(name: str) -> str:
    return name.translate(_ASCII_LOWER)


def _excerpt(sql: str) -> str:
    flat = " ".join(sql.split())
    if len(flat) <= _EXCERPT_CHARS:
        return flat
    return f"{flat[:_EXCERPT_CHARS]}... ({len(sql)} characters)"


def _clip(message: str, limit: int = 500) -> str:
    """DuckDB's parser messages quote the offending line; keep a huge one out of the error."""
    return message if len(message) <= limit else f"{message[:limit]}..."


# --------------------------------------------------------------------------------------------
# The per-thread parser connection
# --------------------------------------------------------------------------------------------

_local = threading.local()


def _parser() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for parsing only, one per thread (and per process).

    DuckDB connections are not safe to share across threads, and one inherited over ``fork``
    (Airflow forks task runners) must not be reused, hence the pid check.
    """
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None or getattr(_local, "pid", None) != os.getpid():
        # Imported on first use: the DAG file imports this module (the trigger form's check) on
        # every parse, and most parses never validate anything.
        import duckdb

        con = duckdb.connect(
            ":memory:",
            config={
                # Defence in depth: this connection only parses, but if anything ever executed
                # user text here it could not touch files, the network or extensions.
                "enable_external_access": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "max_expression_depth": _PARSER_MAX_DEPTH,
                "lock_configuration": True,
            },
        )
        _local.con = con
        _local.pid = os.getpid()
    return con


def _serialize(sql: str) -> dict[str, Any]:
    # The SQL travels as a bound parameter: it is parsed by json_serialize_sql, never executed.
    row = _parser().execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
    if row is None or not isinstance(row[0], str):
        return {"error": True, "error_message": "DuckDB returned no parse tree"}
    result: dict[str, Any] = json.loads(row[0])
    return result


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


class _Validator:
    """One validation: carries the dataset name and collects column references."""

    def __init__(
        self, sql: str, dataset_name: str, source_columns: Sequence[str] | None, label: str = "refresh_sql"
    ) -> None:
        self.label = label
        self.sql = sql
        self.dataset = dataset_name
        self.dataset_folded = _fold(dataset_name)
        self.source_columns = None if source_columns is None else tuple(source_columns)
        self.source_folded = None if source_columns is None else {_fold(c) for c in source_columns}
        self.referenced: list[str] = []
        self.depth = 0

    # -- errors ---------------------------------------------------------------------------

    def error(self, reason: str) -> RefreshSqlError:
        excerpt = _excerpt(self.sql)
        return RefreshSqlError(
            f"Invalid {self.label} for dataset '{self.dataset}': {reason} ({self.label}: {excerpt})"
        )

    def shape_error(self, what: str) -> RefreshSqlError:
        return self.error(
            f"{what}. Expected a SQL query starting with SELECT * FROM {self.dataset}: a refresh_sql "
            f"is a filter on the dataset, 'SELECT * | <columns> FROM {self.dataset} [WHERE <condition>] "
            "[LIMIT <n>]'"
        )

    # -- statement level ------------------------------------------------------------------

    def run(self) -> RefreshFilter:
        import duckdb

        sql = self.sql
        if len(sql) > MAX_REFRESH_SQL_LENGTH:
            raise self.error(
                f"the refresh SQL is {len(sql)} characters long; at most {MAX_REFRESH_SQL_LENGTH} are allowed"
            )
        if "\x00" in sql:
            # DuckDB's C++ side may treat NUL as end of text; never let the two views differ.
            raise self.error("the refresh SQL contains a NUL character")
        try:
            statements = _parser().extract_statements(sql)
        except duckdb.Error as exc:
            if "expression depth" in str(exc):
                # DuckDB's text suggests raising a setting, which a caller cannot do.
                raise self.error(
                    f"the refresh SQL is nested too deeply (at most {MAX_EXPRESSION_DEPTH} levels)"
                ) from None
            raise self.error(f"the refresh SQL could not be parsed: {_clip(str(exc))}") from None
        if len(statements) != 1:
            raise self.error(f"Expected a single SQL statement for the refresh SQL, found {len(statements)}")
        kind = statements[0].type.name
        if kind != "SELECT":
            raise self.shape_error(f"only a SELECT query is allowed, found a {kind} statement")
        try:
            ast = _serialize(sql)
        except RecursionError:
            raise self.error("the refresh SQL is nested too deeply") from None
        except duckdb.Error as exc:
            raise self.error(f"the refresh SQL could not be parsed: {_clip(str(exc))}") from None
        if ast.get("error"):
            detail = _clip(str(ast.get("error_message", "unknown error")))
            raise self.error(f"the refresh SQL could not be parsed: {detail}")
        parsed = ast.get("statements") or []
        if len(parsed) != 1:
            raise self.error(f"Expected a single SQL statement for the refresh SQL, found {len(parsed)}")
        statement = parsed[0]
        if statement.get("named_param_map"):
            raise self.error("parameters ($1, ?, $name) are not allowed in the refresh SQL")
        try:
            return self.select_node(statement.get("node") or {})
        except RecursionError:
            raise self.error("the refresh SQL is nested too deeply") from None

    def select_node(self, node: dict[str, Any]) -> RefreshFilter:
        node_type = node.get("type")
        if node_type == "SET_OPERATION_NODE":
            kind = str(node.get("setop_type", "set operation")).replace("_", " ")
            raise self.shape_error(f"set operations ({kind}) are not allowed")
        if node_type != "SELECT_NODE":
            raise self.shape_error(f"unsupported query form {node_type}")
        unknown = sorted(k for k, v in node.items() if k not in _SELECT_NODE_KEYS and v)
        if unknown:
            # A DuckDB version added a query part this validator does not know: fail closed.
            raise self.shape_error(f"unsupported query clause(s) {', '.join(unknown)}")
        if (node.get("cte_map") or {}).get("map"):
            raise self.shape_error("WITH (common table expressions) is not allowed")
        if node.get("group_expressions") or node.get("group_sets"):
            raise self.shape_error("GROUP BY is not allowed")
        if node.get("aggregate_handling", "STANDARD_HANDLING") != "STANDARD_HANDLING":
            raise self.shape_error("GROUP BY is not allowed")
        if node.get("having") is not None:
            raise self.shape_error("HAVING is not allowed")
        if node.get("qualify") is not None:
            raise self.shape_error("QUALIFY is not allowed")
        if node.get("sample") is not None:
            raise self.shape_error("USING SAMPLE / TABLESAMPLE is not allowed")
        limit = self.modifiers(node.get("modifiers") or [])
        self.from_table(node.get("from_table"))
        columns = self.projection(node.get("select_list") or [])
        where_node = node.get("where_clause")
        where = None if where_node is None else self.where(where_node)
        self.check_columns()
        return RefreshFilter(sql=self.sql, columns=columns, where=where, limit=limit)

    def modifiers(self, modifiers: list[dict[str, Any]]) -> int | None:
        limit: int | None = None
        for modifier in modifiers:
            kind = modifier.get("type")
            if kind == "ORDER_MODIFIER":
                raise self.shape_error("ORDER BY is not allowed")
            if kind == "DISTINCT_MODIFIER":
                raise self.shape_error("DISTINCT is not allowed")
            if kind == "LIMIT_PERCENT_MODIFIER":
                raise self.shape_error(
                    "LIMIT with a percentage is not allowed; LIMIT takes a non-negative integer"
                )
            if kind != "LIMIT_MODIFIER" or limit is not None:
                raise self.shape_error(f"unsupported query modifier {kind}")
            if modifier.get("offset") is not None:
                # Without ORDER BY (not allowed) OFFSET skips an arbitrary set of rows, so a
                # refresh with it would not be reproducible; Spice does not accept it either.
                raise self.shape_error("OFFSET is not allowed (without ORDER BY it skips arbitrary rows)")
            if modifier.get("limit_type", "ROW_COUNT") != "ROW_COUNT":
                raise self.shape_error(
                    "LIMIT with a percentage is not allowed; LIMIT takes a non-negative integer"
                )
            limit = self.limit_value(modifier.get("limit"))
        return limit

    def limit_value(self, expr: dict[str, Any] | None) -> int:
        literal = (expr or {}).get("literal") or {}
        if (expr or {}).get("class") != "CONSTANT" or literal.get("kind") != "INTEGER":
            raise self.shape_error("LIMIT must be a non-negative integer constant")
        try:
            value = int(str(literal.get("text", "")))
        except ValueError:
            raise self.shape_error("LIMIT must be a non-negative integer constant") from None
        if value < 0 or value > _MAX_LIMIT:
            raise self.shape_error(f"LIMIT must be a non-negative integer constant up to {_MAX_LIMIT}")
        return value

    def from_table(self, table: dict[str, Any] | None) -> None:
        kind = (table or {}).get("type")
        if table is None or kind == "EMPTY":
            raise self.shape_error("the query has no FROM clause")
        if kind == "JOIN":
            raise self.shape_error(
                f"exactly one FROM item is allowed ({self.dataset}); joins and lists of tables are not"
            )
        if kind == "SUBQUERY":
            raise self.shape_error("subqueries in FROM are not allowed")
        if kind == "TABLE_FUNCTION":
            name = str((table.get("function") or {}).get("function_name") or "?")[:100]
            raise self.shape_error(f"table functions in FROM ({name}) are not allowed")
        if kind == "SHOW_REF":
            raise self.shape_error("DESCRIBE / SUMMARIZE / SHOW are not allowed")
        if kind == "EXPRESSION_LIST":
            raise self.shape_error("VALUES lists are not allowed")
        if kind != "BASE_TABLE":
            raise self.shape_error(f"FROM {kind} is not allowed")
        unknown = sorted(k for k, v in table.items() if k not in _BASE_TABLE_KEYS and v)
        if unknown:
            raise self.shape_error(f"unsupported FROM clause part(s) {', '.join(unknown)}")
        name = str(table.get("table_name", ""))
        if (
            table.get("schema_name")
            or table.get("catalog_name")
            or len((table.get("qualified_name") or {}).get("path") or [name]) != 1
        ):
            raise self.shape_error("the table must be the dataset name alone, without a schema or catalog")
        if _fold(name) != self.dataset_folded:
            raise self.shape_error(f"the FROM item must be the dataset {self.dataset}, found {name[:100]!r}")
        if table.get("alias") or table.get("column_name_alias"):
            raise self.shape_error("a table alias is not allowed")
        if table.get("sample") is not None:
            raise self.shape_error("TABLESAMPLE is not allowed")
        if table.get("at_clause") is not None:
            raise self.shape_error("AT (time travel) is not allowed")

    def projection(self, select_list: list[dict[str, Any]]) -> tuple[str, ...] | None:
        only = "Only column references are allowed in the SELECT clause: '*' or a list of column names"
        if len(select_list) == 1 and select_list[0].get("class") == "STAR":
            star = select_list[0]
            relation = str(star.get("relation_name") or "")
            plain = not any(
                star.get(k)
                for k in (
                    "exclude_list",
                    "replace_list",
                    "rename_list",
                    "qualified_exclude_list",
                    "columns",
                    "expr",
                    "alias",
                )
            )
            if plain and (not relation or _fold(relation) == self.dataset_folded):
                return None
            if plain:
                raise self.error(f"{only}; a qualified star must name the dataset ({self.dataset}.*)")
            raise self.error(f"{only}; found a modified star expression (EXCLUDE, REPLACE, COLUMNS, ...)")
        if not select_list:
            raise self.error(only)
        columns: list[str] = []
        seen: set[str] = set()
        for item in select_list:
            if item.get("class") != "COLUMN_REF":
                what = (
                    "'*' mixed with columns"
                    if item.get("class") == "STAR"
                    else f"a {item.get('class', '?')} expression"
                )
                raise self.error(f"{only}; found {what}")
            if item.get("alias"):
                raise self.error(f"{only}; column aliases (AS) are not allowed")
            name = self.column_name(item, "SELECT")
            special = _fold(name)
            if (special in _TIME_KEYWORDS or special in _IDENTITY_KEYWORDS) and (
                self.source_folded is None or special not in self.source_folded
            ):
                # Selected without such a source column, DuckDB would fill it with a session value.
                raise self.error(
                    f"{only}; '{name}' names a DuckDB built-in value and is allowed only as a column "
                    "the source is known to have"
                )
            if _fold(name) in seen:
                raise self.error(f"the column '{name}' is selected twice")
            seen.add(_fold(name))
            self.referenced.append(name)
            columns.append(name)
        return tuple(columns)

    def column_name(self, ref: dict[str, Any], clause: str) -> str:
        parts = [str(p) for p in ref.get("column_names") or []]
        if len(parts) == 2 and _fold(parts[0]) == self.dataset_folded:
            return parts[1]
        if len(parts) == 1:
            return parts[0]
        shown = ".".join(parts)[:200]
        raise self.error(
            f"the {clause} clause references '{shown}'; columns must be bare names or qualified by "
            f"the dataset name ({self.dataset}.<column>), not by another table or schema, and "
            "nested field access is not supported"
        )

    def check_columns(self) -> None:
        if self.source_folded is None:
            return
        for name in self.referenced:
            if _fold(name) not in self.source_folded:
                available = list(self.source_columns or ())
                listed = ", ".join(available[:_MAX_LISTED_COLUMNS])
                if len(available) > _MAX_LISTED_COLUMNS:
                    listed += f", ... ({len(available) - _MAX_LISTED_COLUMNS} more)"
                raise self.error(
                    f"The column '{name[:200]}' is not present in the source table {self.dataset}; "
                    f"available columns: {listed or '(none)'}"
                )

    # -- WHERE ---------------------------------------------------------------------------

    def where(self, expr: dict[str, Any]) -> str:
        rendered = self.expr(expr)
        self.verify_round_trip(expr, rendered)
        return rendered

    def verify_round_trip(self, original: dict[str, Any], rendered: str) -> None:
        """Parse the rendering again; its AST must be the original's, or the filter is refused."""
        reparsed = _serialize(f"SELECT * FROM {quote_identifier(self.dataset)} WHERE ({rendered})")
        statements = reparsed.get("statements") or []
        if reparsed.get("error") or len(statements) != 1:
            raise self.error("the WHERE clause could not be re-rendered faithfully; simplify the condition")
        again = statements[0]["node"].get("where_clause")
        if _normalise(again, self.dataset_folded) != _normalise(original, self.dataset_folded):
            raise self.error("the WHERE clause could not be re-rendered faithfully; simplify the condition")

    def expr(self, node: dict[str, Any]) -> str:
        self.depth += 1
        try:
            if self.depth > MAX_EXPRESSION_DEPTH:
                raise self.error(
                    f"the WHERE clause is nested too deeply (more than {MAX_EXPRESSION_DEPTH} levels)"
                )
            return self.expr_node(node)
        finally:
            self.depth -= 1

    def expr_node(self, node: dict[str, Any]) -> str:
        cls = node.get("class")
        kind = node.get("type")
        if node.get("alias"):
            raise self.error("aliases are not allowed inside the WHERE clause")
        if cls == "COLUMN_REF":
            return self.column_ref(node)
        if cls == "CONSTANT":
            return self.constant(node)
        if cls == "COMPARISON" and kind in _COMPARISONS:
            return f"({self.expr(node['left'])} {_COMPARISONS[kind]} {self.expr(node['right'])})"
        if cls == "CONJUNCTION" and kind in ("CONJUNCTION_AND", "CONJUNCTION_OR"):
            joiner = " AND " if kind == "CONJUNCTION_AND" else " OR "
            return "(" + joiner.join(self.expr(c) for c in node.get("children") or []) + ")"
        if cls == "OPERATOR":
            return self.operator(node)
        if cls == "BETWEEN" and kind == "COMPARE_BETWEEN":
            low, high = self.expr(node["lower"]), self.expr(node["upper"])
            return f"({self.expr(node['input'])} BETWEEN {low} AND {high})"
        if cls == "CASE" and kind == "CASE_EXPR":
            checks = " ".join(
                f"WHEN {self.expr(c['when_expr'])} THEN {self.expr(c['then_expr'])}"
                for c in node.get("case_checks") or []
            )
            return f"(CASE {checks} ELSE {self.expr(node['else_expr'])} END)"
        if cls == "CAST" and kind == "OPERATOR_CAST":
            return self.cast(node)
        if cls == "FUNCTION" and kind == "FUNCTION":
            return self.function(node)
        raise self.error(self.forbidden_expression(node))

    def forbidden_expression(self, node: dict[str, Any]) -> str:
        cls = node.get("class")
        what = {
            "SUBQUERY": "subqueries (EXISTS, IN (SELECT ...), scalar subqueries) are not allowed",
            "STAR": "star expressions (*, COLUMNS(...)) are not allowed",
            "PARAMETER": "parameters ($1, ?, $name) are not allowed",
            "POSITIONAL_REFERENCE": "positional references (#1) are not allowed",
            "LAMBDA": "lambda expressions are not allowed",
            "WINDOW": "window functions are not allowed",
            "COLLATE": "COLLATE is not allowed",
        }.get(str(cls))
        if what is None:
            what = f"the expression kind {cls}/{node.get('type')} is not allowed"
        return (
            f"in the WHERE clause {what}. Allowed: column references, constants, comparisons, AND/OR/NOT, "
            "IS [NOT] NULL, IN (<values>), BETWEEN, CASE, CAST to plain types, arithmetic, LIKE/ILIKE/GLOB/"
            "SIMILAR TO and a list of pure scalar functions"
        )

    def column_ref(self, node: dict[str, Any]) -> str:
        name = self.column_name(node, "WHERE")
        folded = _fold(name)
        is_column = self.source_folded is not None and folded in self.source_folded
        if folded in _TIME_KEYWORDS and not is_column:
            # Bare, so it binds exactly like the original: the column if the source has one,
            # else the current date/time.
            return folded
        if folded in _IDENTITY_KEYWORDS and not is_column:
            raise self.error(
                f"'{name}' is allowed only as a column the source is known to have; without such a "
                "column DuckDB would read a session value"
            )
        self.referenced.append(name)
        return quote_identifier(name)

    def constant(self, node: dict[str, Any]) -> str:
        if node.get("type") != "VALUE_CONSTANT":
            raise self.error(f"the constant kind {node.get('type')} is not allowed")
        literal = node.get("literal") or {}
        kind = literal.get("kind")
        text = str(literal.get("text", ""))
        if kind == "STRING":
            return _quote_string(text)
        if kind in ("INTEGER", "NUMERIC") and _NUMBER_TEXT.fullmatch(text):
            # Parenthesised so a negative number never forms '--' (a comment) with a neighbour.
            return f"({text})" if text.startswith("-") else text
        if kind == "BOOLEAN" and text.lower() in ("true", "false"):
            return text.lower()
        if kind == "NULL_LITERAL":
            return "NULL"
        raise self.error(f"the constant of kind {kind} is not allowed")

    def operator(self, node: dict[str, Any]) -> str:
        kind = node.get("type")
        children: list[dict[str, Any]] = node.get("children") or []
        if kind == "OPERATOR_NOT" and len(children) == 1:
            return f"(NOT {self.expr(children[0])})"
        if kind == "OPERATOR_IS_NULL" and len(children) == 1:
            return f"({self.expr(children[0])} IS NULL)"
        if kind == "OPERATOR_IS_NOT_NULL" and len(children) == 1:
            return f"({self.expr(children[0])} IS NOT NULL)"
        if kind == "COMPARE_IN" and len(children) >= 2:
            values = ", ".join(self.expr(c) for c in children[1:])
            return f"({self.expr(children[0])} IN ({values}))"
        if kind == "OPERATOR_COALESCE" and children:
            return "COALESCE(" + ", ".join(self.expr(c) for c in children) + ")"
        raise self.error(self.forbidden_expression(node))

    def cast(self, node: dict[str, Any]) -> str:
        type_expr = node.get("type_expr") or {}
        type_name = str(type_expr.get("type_name", ""))
        upper = type_name.upper()
        if (
            type_expr.get("class") != "TYPE"
            or type_expr.get("schema")
            or type_expr.get("catalog")
            or upper not in ALLOWED_CAST_TYPES
        ):
            raise self.error(
                f"CAST to {type_name[:100]!r} is not allowed; allowed types: "
                f"{', '.join(sorted(ALLOWED_CAST_TYPES))}"
            )
        rendered_type = upper
        params = type_expr.get("children") or []
        if params:
            if upper not in _DECIMAL_TYPES or len(params) > 2:
                raise self.error(f"type parameters are only allowed for DECIMAL, found {type_name[:100]}")
            rendered_type += "(" + ", ".join(self.type_parameter(p) for p in params) + ")"
        keyword = "TRY_CAST" if node.get("try_cast") else "CAST"
        return f"{keyword}({self.expr(node['child'])} AS {rendered_type})"

    def type_parameter(self, node: dict[str, Any]) -> str:
        literal = node.get("literal") or {}
        text = str(literal.get("text", ""))
        if node.get("class") != "CONSTANT" or literal.get("kind") != "INTEGER" or not text.isdigit():
            raise self.error("DECIMAL precision and scale must be integer constants")
        return text

    def function(self, node: dict[str, Any]) -> str:
        name = str(node.get("function_name", ""))
        folded = _fold(name)
        if node.get("schema") or node.get("catalog"):
            qualified = ".".join(p for p in (node.get("catalog"), node.get("schema"), name) if p)
            raise self.error(
                f"schema-qualified functions ({qualified[:200]}) and method-call syntax (x.f()) are not "
                "allowed; call allowed functions by their plain name"
            )
        is_operator = bool(node.get("is_operator"))
        known = folded in ALLOWED_FUNCTIONS or (
            is_operator and (folded in _BINARY_OPERATORS or folded in _UNARY_OPERATORS)
        )
        if not known:
            raise self.error(
                f"the function {name[:100]!r} is not allowed in the WHERE clause; allowed functions: "
                f"{', '.join(sorted(ALLOWED_FUNCTIONS))}; operators: "
                f"{', '.join(sorted(_BINARY_OPERATORS.values()))}"
            )
        if node.get("distinct") or node.get("filter") is not None or node.get("export_state"):
            raise self.error(f"DISTINCT, FILTER and EXPORT_STATE are not allowed in a call of {name}")
        if (node.get("order_bys") or {}).get("orders"):
            raise self.error(f"ORDER BY inside a call of {name} is not allowed")
        arguments = node.get("arguments") or []
        if any(a.get("name") for a in arguments):
            raise self.error(f"named arguments (name := value) are not allowed in a call of {name}")
        args = [self.expr(a["expression"]) for a in arguments]
        if is_operator:
            if folded in _ESCAPE_OPERATORS and len(args) == 3:
                return f"({args[0]} {_ESCAPE_OPERATORS[folded]} {args[1]} ESCAPE {args[2]})"
            if folded in _BINARY_OPERATORS and len(args) == 2:
                return f"({args[0]} {_BINARY_OPERATORS[folded]} {args[1]})"
            if folded in _UNARY_OPERATORS and len(args) == 1:
                # The space keeps '- -1' from becoming the comment '--1'.
                return f"({folded} {args[0]})"
            raise self.error(f"the operator {name[:20]!r} with {len(args)} operand(s) is not allowed")
        if folded == "position" and len(args) == 2:
            # POSITION only parses in its SQL-standard form; the AST keeps (haystack, needle).
            return f"position({args[1]} IN {args[0]})"
        if not folded.isidentifier():
            raise self.error(f"the function {name[:100]!r} is not allowed in the WHERE clause")
        return f"{folded}({', '.join(args)})"


def _normalise(node: Any, dataset_folded: str) -> Any:
    """The AST without source positions, with ``<dataset>.col`` reduced to ``col``.

    That is exactly what the rendering changes on purpose; everything else must be identical.
    Written with loops, not comprehensions, to spend one stack frame per JSON level.
    """
    if isinstance(node, list):
        items = []
        for item in node:
            items.append(_normalise(item, dataset_folded))
        return items
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _LOCATION_KEYS:
            out[key] = _normalise(value, dataset_folded)
    names = out.get("column_names")
    if out.get("class") == "COLUMN_REF" and isinstance(names, list):
        if len(names) == 2 and _fold(str(names[0])) == dataset_folded:
            names = names[1:]
        if len(names) == 1 and _fold(str(names[0])) in _TIME_KEYWORDS:
            # Time keywords are rendered bare and lowercase; DuckDB binds identifiers
            # case-insensitively, so the case of these names carries no meaning.
            names = [_fold(str(names[0]))]
        out["column_names"] = names
    return out


def validate_refresh_sql(
    sql: str, dataset_name: str, source_columns: Sequence[str] | None = None
) -> RefreshFilter:
    """Validate ``sql`` as the refresh_sql of ``dataset_name`` and reduce it to a filter.

    ``source_columns``, when known, are the source's column names: every column the refresh_sql
    references must be one of them (compared case-insensitively, as DuckDB does).

    Raises :class:`~airflow_provider_accel.exceptions.RefreshSqlError` with a message naming the
    dataset, the rule broken and what is allowed.
    """
    if not isinstance(sql, str):
        raise RefreshSqlError(
            f"Invalid refresh_sql for dataset '{dataset_name}': expected a string, got {type(sql).__name__}"
        )
    if not isinstance(dataset_name, str) or not dataset_name:
        raise RefreshSqlError("Invalid refresh_sql: the dataset name must be a non-empty string")
    return _Validator(sql, dataset_name, source_columns).run()


#: ``DELETE FROM <table> WHERE <condition>`` and nothing else (no alias, USING or RETURNING): the
#: statement kind is checked by DuckDB's parser first, this only splits table from condition.
_DELETE_SHAPE = re.compile(
    r"^\s*DELETE\s+FROM\s+(?P<table>\"(?:[^\"]|\"\")+\"|[^\s;()\"]+)\s+WHERE\s+(?P<condition>.+?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def validate_retention_sql(sql: str, dataset_name: str) -> RefreshFilter:
    """Validate ``sql`` as the ``retention_sql`` of ``dataset_name``: ``DELETE FROM <dataset> WHERE ...``.

    The condition obeys the refresh_sql rules (it is validated as ``SELECT * FROM <dataset> WHERE
    <condition>``, so it can only read the dataset's own columns); :attr:`RefreshFilter.where` is the
    rendered condition, the rows the retention deletes.
    """
    import duckdb

    def error(reason: str) -> RefreshSqlError:
        return RefreshSqlError(
            f"Invalid retention_sql for dataset '{dataset_name}': {reason} (retention_sql: {_excerpt(sql)})"
        )

    if not isinstance(sql, str):
        raise error(f"expected a string, got {type(sql).__name__}")
    if len(sql) > MAX_REFRESH_SQL_LENGTH or "\x00" in sql:
        raise error(f"the SQL is over {MAX_REFRESH_SQL_LENGTH} characters or contains a NUL character")
    try:
        statements = _parser().extract_statements(sql)
    except duckdb.Error as exc:
        raise error(f"the retention SQL could not be parsed: {_clip(str(exc))}") from None
    expected = f"Expected DELETE FROM {dataset_name} WHERE <condition>"
    if len(statements) != 1:
        raise error(f"Expected a single SQL statement for the retention SQL, found {len(statements)}")
    kind = statements[0].type.name
    if kind != "DELETE":
        raise error(f"only a DELETE statement is allowed, found a {kind} statement. {expected}")
    match = _DELETE_SHAPE.match(sql)
    if match is None:
        raise error(f"{expected}, with no alias, USING or RETURNING")
    table = match["table"]
    written = table[1:-1].replace('""', '"') if table.startswith('"') else table
    if _fold(written) != _fold(dataset_name):
        raise error(f"the DELETE target must be the dataset {dataset_name}, found {written!r}. {expected}")
    condition_query = f"SELECT * FROM {match['table']} WHERE {match['condition']}\n"
    return _Validator(condition_query, dataset_name, None, label="retention_sql").run()
