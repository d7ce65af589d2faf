"""Property-based checks of the refresh_sql validator (hypothesis).

Random, type-correct WHERE expressions must be accepted and their rendering must select the same
rows as the original query; random token soup must never crash the validator.
"""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_accel.exceptions import RefreshSqlError
from airflow_provider_accel.sql.refresh_sql import quote_identifier, validate_refresh_sql

DATASET = "taxi_trips"
_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# NUL cannot live in a DuckDB string; surrogates are not valid text. Everything else is fair game,
# including quotes, backslashes, comment markers, semicolons and look-alike letters.
_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_str_const = _text.map(_sql_string)
_int_const = st.integers(min_value=-50, max_value=120).map(str)
_num_const = st.one_of(_int_const, st.sampled_from(["0.5", "10.5", "-3.5", "1e1", ".25"]))
_num_column = st.sampled_from(["id", "passenger_count", "fare", "taxi_trips.fare", '"select"', '"we""ird"'])
_str_column = st.sampled_from(["vendor", '"Mixed Case"', "taxi_trips.vendor", "VENDOR"])


def _num_exprs(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        children.map(lambda e: f"(- {e})"),
        children.map(lambda e: f"abs({e})"),
        st.tuples(children, _num_const).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
        children.map(lambda e: f"CAST({e} AS DOUBLE)"),
    )


_num = st.recursive(st.one_of(_num_column, _num_const), _num_exprs, max_leaves=4)


def _str_exprs(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        children.map(lambda e: f"lower({e})"),
        children.map(lambda e: f"upper({e})"),
        children.map(lambda e: f"trim({e})"),
        st.tuples(children, children).map(lambda t: f"({t[0]} || {t[1]})"),
        st.tuples(children, children).map(lambda t: f"concat({t[0]}, {t[1]})"),
        children.map(lambda e: f"substr({e}, 1, 3)"),
    )


_str = st.recursive(st.one_of(_str_column, _str_const), _str_exprs, max_leaves=3)

_comparison = st.sampled_from(
    ["=", "<>", "!=", "<", ">", "<=", ">=", "IS DISTINCT FROM", "IS NOT DISTINCT FROM"]
)

_bool_leaf = st.one_of(
    st.just("flag"),
    st.tuples(_num, _comparison, _num).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
    st.tuples(_str, _comparison, _str).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
    st.tuples(_str, st.sampled_from(["LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE", "GLOB"]), _str_const).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}"
    ),
    st.tuples(_num, st.sampled_from(["IS NULL", "IS NOT NULL"])).map(lambda t: f"{t[0]} {t[1]}"),
    st.tuples(_str, st.sampled_from(["IS NULL", "IS NOT NULL"])).map(lambda t: f"{t[0]} {t[1]}"),
    st.tuples(_num, st.sampled_from(["IN", "NOT IN"]), st.lists(_num_const, min_size=1, max_size=4)).map(
        lambda t: f"{t[0]} {t[1]} ({', '.join(t[2])})"
    ),
    st.tuples(_str, st.lists(_str_const, min_size=1, max_size=3)).map(
        lambda t: f"{t[0]} IN ({', '.join(t[1])})"
    ),
    st.tuples(_num, st.sampled_from(["BETWEEN", "NOT BETWEEN"]), _num_const, _num_const).map(
        lambda t: f"{t[0]} {t[1]} {t[2]} AND {t[3]}"
    ),
    st.tuples(_str, _str_const).map(lambda t: f"starts_with({t[0]}, {t[1]})"),
    st.tuples(_str, _str_const).map(lambda t: f"contains({t[0]}, {t[1]})"),
)


def _bool_exprs(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        children.map(lambda e: f"NOT ({e})"),
        st.tuples(children, st.sampled_from(["AND", "OR"]), children).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"
        ),
        st.tuples(children, children, children).map(
            lambda t: f"CASE WHEN {t[0]} THEN {t[1]} ELSE {t[2]} END"
        ),
        children.map(lambda e: f"({e}) IS TRUE"),
    )


_where = st.recursive(_bool_leaf, _bool_exprs, max_leaves=5)


_local_reader: list[duckdb.DuckDBPyConnection] = []


def _reader() -> duckdb.DuckDBPyConnection:
    """One plain connection reused across examples (opening one per example is slow)."""
    if not _local_reader:
        _local_reader.append(duckdb.connect())
    return _local_reader[0]


def _ids(con: duckdb.DuckDBPyConnection, sql: str) -> list[int] | str:
    """The ids a query selects, or the kind of error it raised."""
    try:
        return sorted(row[0] for row in con.execute(sql).fetchall())
    except duckdb.Error as exc:
        return type(exc).__name__


class TestRandomFilters:
    """Random type-correct filters are accepted and rendered faithfully."""

    @_SETTINGS
    @given(where=_where)
    def test_rendered_filter_selects_same_rows(self, where: str, taxi_db: duckdb.DuckDBPyConnection) -> None:
        """For any generated WHERE, the rendered filter selects exactly the original's rows."""
        sql = f"SELECT id FROM taxi_trips WHERE {where}"
        refresh = validate_refresh_sql(sql, DATASET)
        assert refresh.where is not None
        original = _ids(taxi_db, sql)
        rendered = _ids(taxi_db, f"SELECT id FROM taxi_trips WHERE ({refresh.where})")
        assert rendered == original

    @_SETTINGS
    @given(where=_where)
    def test_rendering_is_a_fixed_point(self, where: str) -> None:
        """Validating a rendering again reproduces it character for character."""
        refresh = validate_refresh_sql(f"SELECT * FROM taxi_trips WHERE {where}", DATASET)
        assert refresh.where is not None
        again = validate_refresh_sql(f"SELECT * FROM taxi_trips WHERE {refresh.where}", DATASET)
        assert again.where == refresh.where

    @_SETTINGS
    @given(value=_text)
    def test_string_constants_survive_exactly(self, value: str) -> None:
        """Any string constant is rendered so that DuckDB reads back the same value."""
        refresh = validate_refresh_sql(
            f"SELECT * FROM taxi_trips WHERE vendor = {_sql_string(value)}", DATASET
        )
        assert refresh.where is not None
        con = _reader()
        rendered_constant = refresh.where.split(" = ", 1)[1][:-1]
        assert con.execute(f"SELECT {rendered_constant}").fetchone() == (value,)

    @_SETTINGS
    @given(name=_text.filter(bool))
    def test_any_column_name_round_trips(self, name: str) -> None:
        """Any quoted column name is rendered so that DuckDB reads back the same name."""
        refresh = validate_refresh_sql(
            f"SELECT * FROM taxi_trips WHERE {quote_identifier(name)} IS NULL", DATASET
        )
        assert refresh.where == f"({quote_identifier(name)} IS NULL)"


_TOKENS = [
    "SELECT",
    "*",
    "FROM",
    "taxi_trips",
    '"taxi_trips"',
    "other",
    "WHERE",
    "LIMIT",
    "5",
    "-1",
    ";",
    "--",
    "\n",
    "/*",
    "*/",
    "'",
    '"',
    "$$",
    "(",
    ")",
    ",",
    "id",
    "=",
    "AND",
    "OR",
    "NOT",
    "IN",
    "read_csv('/etc/passwd')",
    "getenv('HOME')",
    "ATTACH",
    "COPY",
    "UNION",
    "(SELECT 1)",
    "lower(vendor)",
    "::",
    "INT",
    "?",
    "$1",
    "x -> x",
    "COLUMNS(*)",
    "AS",
    "t",
    "JOIN",
    "WITH",
    ".",
    "main",
]


class TestFuzz:
    """Arbitrary input never crashes the validator or slips something executable through."""

    @settings(max_examples=400, deadline=None)
    @given(tokens=st.lists(st.sampled_from(_TOKENS), max_size=14))
    def test_token_soup(self, tokens: list[str]) -> None:
        """Token soup is either refused with RefreshSqlError or accepted as a plain filter."""
        sql = " ".join(tokens)
        try:
            refresh = validate_refresh_sql(sql, DATASET)
        except RefreshSqlError as exc:
            assert str(exc)
            return
        query = f"SELECT * FROM read_source WHERE ({refresh.where or 'true'})"
        assert len(_reader().extract_statements(query)) == 1
        for forbidden in ("read_csv", "getenv", "ATTACH", "COPY", "SELECT 1"):
            assert forbidden not in (refresh.where or "")

    @settings(max_examples=300, deadline=None)
    @given(sql=st.text(max_size=200))
    def test_arbitrary_text(self, sql: str) -> None:
        """Any text either validates or raises RefreshSqlError, nothing else."""
        try:
            validate_refresh_sql(sql, DATASET)
        except RefreshSqlError as exc:
            assert str(exc)

    @pytest.mark.parametrize(
        "prefix",
        ["SELECT * FROM taxi_trips WHERE ", "SELECT id FROM taxi_trips WHERE id > 1 AND "],
    )
    @settings(max_examples=200, deadline=None)
    @given(suffix=st.text(max_size=60))
    def test_arbitrary_where_suffix(self, prefix: str, suffix: str) -> None:
        """Any text appended after WHERE either validates or raises RefreshSqlError."""
        try:
            refresh = validate_refresh_sql(prefix + suffix, DATASET)
        except RefreshSqlError:
            return
        assert refresh.where is not None
