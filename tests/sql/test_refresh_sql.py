"""The refresh_sql validator: Spice's rules, the security boundary, and a faithful WHERE rendering."""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING

import duckdb
import pytest
from refresh_sql_cases import ACCEPT, ACCEPT_LARGE, DATASET, REJECT, Accept, Reject

from airflow_provider_accel.exceptions import RefreshSqlError
from airflow_provider_accel.sql.refresh_sql import (
    ALLOWED_FUNCTIONS,
    MAX_REFRESH_SQL_LENGTH,
    RefreshFilter,
    quote_identifier,
    validate_refresh_sql,
)

if TYPE_CHECKING:
    from collections.abc import Sequence


def _reject(sql: str, dataset: str = DATASET, columns: Sequence[str] | None = None) -> str:
    with pytest.raises(RefreshSqlError) as info:
        validate_refresh_sql(sql, dataset, columns)
    return str(info.value)


def _filtered_query(refresh: RefreshFilter, table: str = DATASET) -> str:
    """The query a refresh would run over the source, built only from the validated parts."""
    projection = "*" if refresh.columns is None else ", ".join(quote_identifier(c) for c in refresh.columns)
    query = f"SELECT {projection} FROM {quote_identifier(table)}"
    if refresh.where is not None:
        query += f" WHERE ({refresh.where})"
    if refresh.limit is not None:
        query += f" LIMIT {refresh.limit}"
    return query


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    return sorted(con.execute(sql).fetchall(), key=repr)


class TestRejectCorpus:
    """Every hostile or out-of-rule refresh_sql is refused for the stated reason."""

    def test_corpus_is_large_enough(self) -> None:
        """The hostile corpus keeps at least 60 distinct cases."""
        assert len(REJECT) >= 60
        assert len({case.id for case in REJECT}) == len(REJECT)

    @pytest.mark.parametrize("case", REJECT, ids=[c.id for c in REJECT])
    def test_rejected_with_specific_message(self, case: Reject) -> None:
        """The case raises RefreshSqlError naming the dataset and the rule it broke."""
        message = _reject(case.sql)
        assert message.strip()
        assert case.phrase in message
        assert "'taxi_trips'" in message

    @pytest.mark.parametrize("case", REJECT, ids=[c.id for c in REJECT])
    def test_message_stays_short(self, case: Reject) -> None:
        """A rejection message never echoes a huge refresh_sql back."""
        assert len(_reject(case.sql)) < 3000

    def test_rejects_non_string(self) -> None:
        """A refresh_sql that is not a string is refused clearly."""
        with pytest.raises(RefreshSqlError, match="expected a string, got bytes"):
            validate_refresh_sql(b"SELECT * FROM taxi_trips", DATASET)  # type: ignore[arg-type]

    def test_rejects_empty_dataset_name(self) -> None:
        """The dataset name is required."""
        with pytest.raises(RefreshSqlError, match="dataset name"):
            validate_refresh_sql("SELECT * FROM taxi_trips", "")

    def test_spice_messages(self) -> None:
        """Spice's own wording is kept for the rules it has messages for."""
        assert "Expected a single SQL statement for the refresh SQL, found 2" in _reject("SELECT 1; SELECT 2")
        assert "Expected a SQL query starting with SELECT * FROM taxi_trips" in _reject("SELECT * FROM other")
        assert "Only column references are allowed in the SELECT clause" in _reject(
            "SELECT fare * 2 FROM taxi_trips"
        )
        assert "The column 'nope' is not present in the source table" in _reject(
            "SELECT nope FROM taxi_trips", columns=["id"]
        )

    def test_parse_error_carries_duckdb_message(self) -> None:
        """A syntax error reports DuckDB's parser message."""
        message = _reject("SELECT * FROM taxi_trips WHERE id = = 1")
        assert "could not be parsed" in message
        assert "syntax error" in message

    def test_dataset_name_is_the_only_table(self) -> None:
        """The FROM item is checked against the dataset passed in, not a fixed name."""
        assert "must be the dataset trips2" in _reject("SELECT * FROM taxi_trips", dataset="trips2")
        validate_refresh_sql("SELECT * FROM Trips2", "trips2")


class TestAcceptCorpus:
    """Legitimate filters are accepted and reduced to projection, WHERE and LIMIT."""

    @pytest.mark.parametrize("case", ACCEPT + ACCEPT_LARGE, ids=[c.id for c in ACCEPT + ACCEPT_LARGE])
    def test_accepted(self, case: Accept) -> None:
        """The case is accepted with the expected projection and limit, and keeps the SQL as given."""
        refresh = validate_refresh_sql(case.sql, DATASET)
        assert refresh.sql == case.sql
        assert refresh.columns == case.columns
        assert refresh.limit == case.limit

    def test_no_where(self) -> None:
        """Without a WHERE clause there is no filter."""
        assert validate_refresh_sql("SELECT * FROM taxi_trips LIMIT 3", DATASET) == RefreshFilter(
            sql="SELECT * FROM taxi_trips LIMIT 3", columns=None, where=None, limit=3
        )

    def test_where_is_rendered_with_quoted_identifiers(self) -> None:
        """Column references in the rendering are double-quoted and unqualified."""
        refresh = validate_refresh_sql(
            'SELECT * FROM taxi_trips WHERE taxi_trips.fare > 2 AND "we""ird" = 1', DATASET
        )
        assert refresh.where == '(("fare" > 2) AND ("we""ird" = 1))'

    def test_string_constants_are_rendered_escaped(self) -> None:
        """A string constant that looks like SQL stays one constant in the rendering."""
        refresh = validate_refresh_sql(
            "SELECT * FROM taxi_trips WHERE vendor = 'a''; DROP TABLE x; --'", DATASET
        )
        assert refresh.where == "(\"vendor\" = 'a''; DROP TABLE x; --')"

    def test_negative_numbers_never_form_comments(self) -> None:
        """'- -1' is rendered so that no '--' comment can appear."""
        refresh = validate_refresh_sql("SELECT * FROM taxi_trips WHERE fare - -1 > - -1", DATASET)
        assert refresh.where is not None
        assert "--" not in refresh.where

    def test_limit_zero_and_large(self) -> None:
        """LIMIT takes any non-negative BIGINT constant."""
        assert validate_refresh_sql("SELECT * FROM taxi_trips LIMIT 0", DATASET).limit == 0
        big = 2**63 - 1
        assert validate_refresh_sql(f"SELECT * FROM taxi_trips LIMIT {big}", DATASET).limit == big


class TestSemanticEquivalence:
    """The rendered filter selects exactly the rows the original refresh_sql selects."""

    @pytest.mark.parametrize("case", ACCEPT, ids=[c.id for c in ACCEPT])
    def test_same_rows(self, case: Accept, taxi_db: duckdb.DuckDBPyConnection) -> None:
        """Filtering the table with the rendered WHERE gives the original query's rows."""
        refresh = validate_refresh_sql(case.sql, DATASET)
        original = _rows(taxi_db, case.sql)
        rendered = _rows(taxi_db, _filtered_query(refresh))
        if refresh.limit is None:
            assert rendered == original
        else:
            # Without ORDER BY a LIMIT picks any rows: compare against the unlimited filter.
            unlimited = _rows(taxi_db, _filtered_query(dataclasses.replace(refresh, limit=None)))
            assert len(rendered) == len(original) == min(refresh.limit, len(unlimited))
            assert set(rendered) <= set(unlimited)

    @pytest.mark.parametrize("case", ACCEPT, ids=[c.id for c in ACCEPT])
    def test_rendering_is_a_fixed_point(self, case: Accept) -> None:
        """Validating the rendered filter again yields the same rendering."""
        refresh = validate_refresh_sql(case.sql, DATASET)
        if refresh.where is None:
            return
        again = validate_refresh_sql(f"SELECT * FROM taxi_trips WHERE {refresh.where}", DATASET)
        assert again.where == refresh.where

    @pytest.mark.parametrize("case", ACCEPT, ids=[c.id for c in ACCEPT])
    def test_rendering_embeds_as_one_statement(self, case: Accept) -> None:
        """The rendered WHERE cannot end the statement it is embedded in."""
        refresh = validate_refresh_sql(case.sql, DATASET)
        statements = duckdb.connect().extract_statements(_filtered_query(refresh, "read_parquet_source"))
        assert len(statements) == 1


class TestSourceColumns:
    """With the source's columns known, every referenced column must exist."""

    def test_present_columns_accepted(self, taxi_columns: tuple[str, ...]) -> None:
        """Columns that exist are accepted, compared case-insensitively."""
        refresh = validate_refresh_sql(
            "SELECT ID, Vendor FROM taxi_trips WHERE FARE > 1 AND \"mixed case\" = 'A'", DATASET, taxi_columns
        )
        assert refresh.columns == ("ID", "Vendor")

    def test_missing_projection_column(self, taxi_columns: tuple[str, ...]) -> None:
        """A projected column the source lacks is refused, listing what is available."""
        message = _reject("SELECT id, tip FROM taxi_trips", columns=taxi_columns)
        assert "The column 'tip' is not present in the source table taxi_trips" in message
        assert "available columns: id, passenger_count, fare" in message

    def test_missing_where_column(self, taxi_columns: tuple[str, ...]) -> None:
        """A column used only in WHERE must exist too."""
        message = _reject("SELECT * FROM taxi_trips WHERE tip > 1", columns=taxi_columns)
        assert "The column 'tip' is not present" in message

    def test_missing_qualified_column(self, taxi_columns: tuple[str, ...]) -> None:
        """A dataset-qualified column is checked by its column name."""
        assert "'tip'" in _reject("SELECT * FROM taxi_trips WHERE taxi_trips.tip > 1", columns=taxi_columns)

    def test_look_alike_column_is_missing(self, taxi_columns: tuple[str, ...]) -> None:
        """A Cyrillic look-alike of a column name is a different, missing column."""
        assert "is not present" in _reject(
            "SELECT * FROM taxi_trips WHERE f\u0430re > 1", columns=taxi_columns
        )

    def test_long_column_list_truncated(self) -> None:
        """The list of available columns is truncated when long."""
        columns = [f"c{i}" for i in range(500)]
        message = _reject("SELECT nope FROM taxi_trips", columns=columns)
        assert "(480 more)" in message
        assert "c499" not in message

    def test_time_keyword_without_column_is_a_value(self, taxi_columns: tuple[str, ...]) -> None:
        """current_date is the current date unless the source has such a column."""
        refresh = validate_refresh_sql(
            "SELECT * FROM taxi_trips WHERE pickup < current_date", DATASET, taxi_columns
        )
        assert refresh.where == '("pickup" < current_date)'

    def test_identity_keyword_as_real_column(self) -> None:
        """'user' is fine when the source really has a column of that name."""
        refresh = validate_refresh_sql("SELECT * FROM taxi_trips WHERE user = 'bob'", DATASET, ["id", "User"])
        assert refresh.where == "(\"user\" = 'bob')"

    def test_built_in_name_projected_as_real_column(self) -> None:
        """A source column called current_date may be selected when the source is known to have it."""
        refresh = validate_refresh_sql("SELECT current_date FROM taxi_trips", DATASET, ["current_date"])
        assert refresh.columns == ("current_date",)

    def test_no_columns_means_no_check(self) -> None:
        """Without source_columns, unknown columns are left for the source to refuse."""
        assert validate_refresh_sql("SELECT tip FROM taxi_trips", DATASET).columns == ("tip",)


class TestLimits:
    """Large inputs are bounded: refused by length before parsing, or validated whole."""

    def test_one_megabyte_rejected_by_length(self) -> None:
        """A 1 MB refresh_sql is refused by its length, with the limit in the message."""
        sql = "SELECT * FROM taxi_trips WHERE vendor = '" + "x" * (1024 * 1024) + "'"
        message = _reject(sql)
        assert f"at most {MAX_REFRESH_SQL_LENGTH}" in message

    def test_max_length_accepted(self) -> None:
        """A refresh_sql just under the limit (a 9,000-value IN list) is validated and rendered whole."""
        values = ", ".join(str(i) for i in range(9000))
        sql = f"SELECT * FROM taxi_trips WHERE id IN ({values})"
        assert len(sql) < MAX_REFRESH_SQL_LENGTH
        where = validate_refresh_sql(sql, DATASET).where
        assert where is not None and "8999" in where

    def test_message_truncates_sql(self) -> None:
        """The SQL excerpt in a message is cut to about 200 characters."""
        sql = "SELECT * FROM other WHERE vendor = '" + "y" * 5000 + "'"
        message = _reject(sql)
        assert "y" * 300 not in message
        assert f"({len(sql)} characters)" in message

    def test_repeated_validation_gives_the_same_filter(self) -> None:
        """Validating the same filter again (cached per-thread parser) returns an equal result."""
        sql = "SELECT id, fare FROM taxi_trips WHERE fare > 10 AND vendor ILIKE 'a%' LIMIT 100"
        first = validate_refresh_sql(sql, DATASET)
        assert all(validate_refresh_sql(sql, DATASET) == first for _ in range(20))

    def test_threads_validate_concurrently(self) -> None:
        """Validation from several threads at once gives the same results (one connection per thread)."""
        results: list[str | None] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(20):
                    results.append(
                        validate_refresh_sql("SELECT * FROM taxi_trips WHERE fare > 1", DATASET).where
                    )
                    _reject("SELECT * FROM taxi_trips; DROP TABLE x")
            except BaseException as exc:  # collected and re-raised in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert set(results) == {'("fare" > 1)'}


class TestQuoteIdentifier:
    """quote_identifier produces DuckDB identifiers that round-trip exactly."""

    @pytest.mark.parametrize(
        "name", ["a", "Mixed Case", 'we"ird', "select", '"; DROP TABLE x; --', "t\u0430xi", ""]
    )
    def test_round_trip(self, name: str) -> None:
        """A quoted name is read back by DuckDB as exactly that name."""
        con = duckdb.connect()
        assert con.execute(f"SELECT 1 AS {quote_identifier(name or 'x')}").description[0][0] == (name or "x")

    def test_doubles_quotes(self) -> None:
        """Inner double quotes are doubled."""
        assert quote_identifier('a"b') == '"a""b"'

    def test_refuses_nul(self) -> None:
        """A NUL cannot be represented and is refused."""
        with pytest.raises(ValueError, match="NUL"):
            quote_identifier("a\x00b")


class TestWhitelist:
    """The function whitelist holds only pure scalar functions DuckDB really has."""

    def test_every_allowed_function_is_a_scalar_function(self) -> None:
        """Each whitelisted name exists in DuckDB and is a scalar function, never a table function."""
        con = duckdb.connect()
        rows = con.execute(
            "SELECT function_name, list(DISTINCT function_type) FROM duckdb_functions() "
            "WHERE function_name IN (SELECT unnest(?::VARCHAR[])) GROUP BY function_name",
            [sorted(ALLOWED_FUNCTIONS)],
        ).fetchall()
        kinds = {name: set(types) for name, types in rows}
        assert set(kinds) == set(ALLOWED_FUNCTIONS)
        assert all(types <= {"scalar", "macro"} for types in kinds.values()), kinds

    @pytest.mark.parametrize("name", ["read_csv", "getenv", "current_setting", "query", "glob", "read_text"])
    def test_dangerous_functions_absent(self, name: str) -> None:
        """Functions that reach files, settings or the environment are not whitelisted."""
        assert name not in ALLOWED_FUNCTIONS
