"""The refresh_sql corpora, kept as data: what must be accepted and what must be rejected.

Every case targets the dataset ``taxi_trips`` (see ``conftest.py`` for its columns). A REJECT case
names the phrase its error message must contain, so each rejection is for the stated reason, not
by accident (a parse error where a rule was meant to fire).
"""

from __future__ import annotations

from typing import NamedTuple

DATASET = "taxi_trips"
_MB = 1024 * 1024


class Accept(NamedTuple):
    """A refresh_sql that must be accepted, and the projection and limit it must yield."""

    id: str
    sql: str
    columns: tuple[str, ...] | None = None
    limit: int | None = None


class Reject(NamedTuple):
    """A refresh_sql that must be rejected with a message containing ``phrase``."""

    id: str
    sql: str
    phrase: str


ACCEPT: list[Accept] = [
    Accept("star", "SELECT * FROM taxi_trips"),
    Accept("spice-example", "SELECT * FROM taxi_trips WHERE passenger_count = 2"),
    Accept("trailing-semicolon", "SELECT * FROM taxi_trips WHERE passenger_count = 2;"),
    Accept("trailing-comment", "SELECT * FROM taxi_trips -- only the comment\n"),
    Accept("block-comment", "SELECT /* hi */ * FROM taxi_trips WHERE /* x */ id > 3"),
    Accept("case-insensitive-table", "select * from TAXI_TRIPS where ID < 5"),
    Accept("quoted-table", 'SELECT * FROM "taxi_trips" WHERE fare > 10'),
    Accept("quoted-table-other-case", 'SELECT * FROM "Taxi_Trips"'),
    Accept("from-first", "FROM taxi_trips WHERE vendor = 'acme'"),
    Accept("qualified-star", "SELECT taxi_trips.* FROM taxi_trips WHERE flag"),
    Accept("columns", "SELECT id, vendor FROM taxi_trips WHERE fare >= 10", columns=("id", "vendor")),
    Accept("qualified-columns", "SELECT taxi_trips.id, fare FROM taxi_trips", columns=("id", "fare")),
    Accept(
        "quoted-columns", 'SELECT "Mixed Case", "we""ird" FROM taxi_trips', columns=("Mixed Case", 'we"ird')
    ),
    Accept("keyword-column", 'SELECT id FROM taxi_trips WHERE "select" > 6', columns=("id",)),
    Accept("limit", "SELECT * FROM taxi_trips LIMIT 5", limit=5),
    Accept("limit-zero", "SELECT * FROM taxi_trips WHERE fare > 0 LIMIT 0", limit=0),
    Accept("limit-underscore", "SELECT * FROM taxi_trips LIMIT 1_0", limit=10),
    Accept(
        "and-or", "SELECT * FROM taxi_trips WHERE (passenger_count = 2 OR fare > 50) AND vendor IS NOT NULL"
    ),
    Accept("not", "SELECT * FROM taxi_trips WHERE NOT flag"),
    Accept("is-null", "SELECT * FROM taxi_trips WHERE vendor IS NULL OR pickup IS NULL"),
    Accept("is-true", "SELECT * FROM taxi_trips WHERE flag IS TRUE"),
    Accept("is-not-false", "SELECT * FROM taxi_trips WHERE flag IS NOT FALSE"),
    Accept("distinct-from", "SELECT * FROM taxi_trips WHERE passenger_count IS DISTINCT FROM 2"),
    Accept("in-list", "SELECT * FROM taxi_trips WHERE passenger_count IN (1, 2, 3)"),
    Accept("not-in-list", "SELECT * FROM taxi_trips WHERE vendor NOT IN ('acme', 'zeta')"),
    Accept("in-expressions", "SELECT * FROM taxi_trips WHERE id IN (passenger_count * 2, 1 + 1)"),
    Accept("between", "SELECT * FROM taxi_trips WHERE fare BETWEEN 5 AND 30"),
    Accept("not-between", "SELECT * FROM taxi_trips WHERE fare NOT BETWEEN 5 AND 30"),
    Accept("like", "SELECT * FROM taxi_trips WHERE vendor LIKE 'a%'"),
    Accept("not-like", "SELECT * FROM taxi_trips WHERE vendor NOT LIKE '%a'"),
    Accept("ilike", "SELECT * FROM taxi_trips WHERE vendor ILIKE 'ACME'"),
    Accept("not-ilike", "SELECT * FROM taxi_trips WHERE vendor NOT ILIKE 'z%'"),
    Accept("like-escape", "SELECT * FROM taxi_trips WHERE vendor LIKE '100!%' ESCAPE '!'"),
    Accept("like-underscore-escape", "SELECT * FROM taxi_trips WHERE vendor LIKE 'a\\_b' ESCAPE '\\'"),
    Accept("like-operator", "SELECT * FROM taxi_trips WHERE vendor ~~ '%e%'"),
    Accept("glob", "SELECT * FROM taxi_trips WHERE vendor GLOB '[az]*'"),
    Accept("not-glob", "SELECT * FROM taxi_trips WHERE vendor NOT GLOB 'a*'"),
    Accept("similar-to", "SELECT * FROM taxi_trips WHERE vendor SIMILAR TO '[a-z]+'"),
    Accept("regex-operator", "SELECT * FROM taxi_trips WHERE vendor ~ '^a'"),
    Accept("regexp-matches", "SELECT * FROM taxi_trips WHERE regexp_matches(vendor, 'm', 'i')"),
    Accept(
        "case-when", "SELECT * FROM taxi_trips WHERE CASE WHEN fare > 20 THEN 'big' ELSE 'small' END = 'big'"
    ),
    Accept("simple-case", "SELECT * FROM taxi_trips WHERE CASE passenger_count WHEN 2 THEN true END"),
    Accept("cast", "SELECT * FROM taxi_trips WHERE CAST(fare AS INTEGER) = 10"),
    Accept("double-colon-cast", "SELECT * FROM taxi_trips WHERE pickup::DATE = '2024-01-01'"),
    Accept("try-cast", "SELECT * FROM taxi_trips WHERE TRY_CAST(vendor AS INTEGER) IS NULL"),
    Accept("decimal-cast", "SELECT * FROM taxi_trips WHERE fare::DECIMAL(10, 2) > 7.5"),
    Accept("typed-literal", "SELECT * FROM taxi_trips WHERE pickup >= TIMESTAMP '2024-01-01 00:00:00'"),
    Accept("date-literal", "SELECT * FROM taxi_trips WHERE pickup < DATE '2024-01-01'"),
    Accept("arithmetic", "SELECT * FROM taxi_trips WHERE fare * 2 - 1 > passenger_count / 2 + id % 3"),
    Accept(
        "integer-division-power", "SELECT * FROM taxi_trips WHERE id // 2 = 3 OR id ** 2 > 100 OR id ^ 2 = 4"
    ),
    Accept("negative-numbers", "SELECT * FROM taxi_trips WHERE fare > -1 AND -fare < - -5"),
    Accept("unary-plus", "SELECT * FROM taxi_trips WHERE +fare > +1.5"),
    Accept("scientific", "SELECT * FROM taxi_trips WHERE fare < 1e2 AND fare > .5"),
    Accept("concat-operator", "SELECT * FROM taxi_trips WHERE vendor || '!' = 'acme!'"),
    Accept("lower-upper", "SELECT * FROM taxi_trips WHERE lower(vendor) = 'acme' OR upper(vendor) = 'ZETA'"),
    Accept(
        "string-functions",
        "SELECT * FROM taxi_trips WHERE length(trim(vendor)) > 3 AND starts_with(vendor, 'a')",
    ),
    Accept("substr", "SELECT * FROM taxi_trips WHERE substr(vendor, 1, 2) = 'ac' OR contains(vendor, 'et')"),
    Accept("substring-from-for", "SELECT * FROM taxi_trips WHERE substring(vendor FROM 1 FOR 2) = 'ze'"),
    Accept("trim-both", "SELECT * FROM taxi_trips WHERE trim(BOTH 'a' FROM vendor) = 'cme'"),
    Accept("position-in", "SELECT * FROM taxi_trips WHERE position('e' IN vendor) = 2"),
    Accept("ends-with-concat", "SELECT * FROM taxi_trips WHERE ends_with(concat(vendor, 'x'), 'ex')"),
    Accept(
        "coalesce-nullif",
        "SELECT * FROM taxi_trips WHERE coalesce(passenger_count, 0) = 0 OR nullif(fare, 0) IS NULL",
    ),
    Accept("abs-round", "SELECT * FROM taxi_trips WHERE abs(fare) > 3 AND round(fare, 1) = 10.5"),
    Accept("floor-ceil", "SELECT * FROM taxi_trips WHERE floor(fare) = 5 OR ceil(fare) = 8"),
    Accept(
        "greatest-least", "SELECT * FROM taxi_trips WHERE greatest(fare, 20) = fare AND least(id, 5) = id"
    ),
    Accept(
        "date-trunc", "SELECT * FROM taxi_trips WHERE date_trunc('month', pickup) = TIMESTAMP '2024-01-01'"
    ),
    Accept("date-part", "SELECT * FROM taxi_trips WHERE date_part('year', pickup) = 2024"),
    Accept("extract", "SELECT * FROM taxi_trips WHERE extract(month FROM pickup) = 1"),
    Accept("year-month", "SELECT * FROM taxi_trips WHERE year(pickup) = 2024 AND month(pickup) IN (1, 2)"),
    Accept("strftime", "SELECT * FROM taxi_trips WHERE strftime(pickup, '%Y') = '2024'"),
    Accept("strptime", "SELECT * FROM taxi_trips WHERE pickup > strptime('2024-02-01', '%Y-%m-%d')"),
    Accept("epoch", "SELECT * FROM taxi_trips WHERE epoch(pickup) > 1700000000 AND epoch_ms(pickup) > 0"),
    Accept("to-timestamp", "SELECT * FROM taxi_trips WHERE pickup < to_timestamp(1704067200)"),
    Accept("make-timestamp", "SELECT * FROM taxi_trips WHERE pickup >= make_timestamp(2024, 1, 1, 0, 0, 0)"),
    Accept("now-interval", "SELECT * FROM taxi_trips WHERE pickup > now() - INTERVAL 100 YEAR"),
    Accept(
        "interval-string", "SELECT * FROM taxi_trips WHERE pickup > TIMESTAMP '2024-01-01' - INTERVAL '1 day'"
    ),
    Accept(
        "interval-hours", "SELECT * FROM taxi_trips WHERE pickup + INTERVAL 6 HOUR > TIMESTAMP '2024-01-02'"
    ),
    Accept("current-date", "SELECT * FROM taxi_trips WHERE pickup < current_date"),
    Accept("current-timestamp", "SELECT * FROM taxi_trips WHERE pickup < CURRENT_TIMESTAMP"),
    Accept(
        "at-time-zone",
        "SELECT * FROM taxi_trips WHERE pickup AT TIME ZONE 'UTC' > TIMESTAMPTZ '2024-01-01 00:00:00+00'",
    ),
    Accept("string-escapes", "SELECT * FROM taxi_trips WHERE vendor = 'beta''s'"),
    Accept("dollar-string", "SELECT * FROM taxi_trips WHERE vendor = $$beta's$$"),
    Accept("e-string", "SELECT * FROM taxi_trips WHERE vendor <> E'a\\nb'"),
    Accept(
        "sql-in-a-string", "SELECT * FROM taxi_trips WHERE vendor = 'x;DROP' OR vendor = '; DROP TABLE x; --'"
    ),
    Accept("comment-in-a-string", "SELECT * FROM taxi_trips WHERE vendor <> '/* -- */'"),
    Accept("quoted-column-where", 'SELECT * FROM taxi_trips WHERE "Mixed Case" = \'A\' OR "we""ird" = 3'),
    Accept("qualified-column-where", "SELECT * FROM taxi_trips WHERE taxi_trips.fare > 20"),
    Accept("null-comparison", "SELECT * FROM taxi_trips WHERE vendor = NULL OR fare IS NOT NULL"),
    Accept("boolean-constants", "SELECT * FROM taxi_trips WHERE true AND NOT false"),
    Accept("empty-string", "SELECT * FROM taxi_trips WHERE vendor = ''"),
    Accept("unicode-string", "SELECT * FROM taxi_trips WHERE vendor <> 't\u0430xi \u2603 \U0001f695'"),
    Accept("row-comparison-free", "SELECT * FROM taxi_trips WHERE (fare > 1) = (id > 1)"),
    Accept("nested-functions", "SELECT * FROM taxi_trips WHERE lower(coalesce(vendor, 'none')) LIKE '%e%'"),
    Accept("columns-and-limit", "SELECT id FROM taxi_trips WHERE flag LIMIT 2", columns=("id",), limit=2),
]


def _big_in_list() -> str:
    values = ", ".join(str(i) for i in range(8000))
    return f"SELECT * FROM taxi_trips WHERE id IN ({values})"


#: Larger accepted inputs, kept apart from the semantic-equivalence corpus for speed.
ACCEPT_LARGE: list[Accept] = [Accept("in-list-8000", _big_in_list())]

_NO_SELECT = "only a SELECT query is allowed"
_NOT_DATASET = "the FROM item must be the dataset taxi_trips"
_TWO = "Expected a single SQL statement for the refresh SQL, found 2"
_SUBQUERY = "subqueries"
_COLUMNS_ONLY = "Only column references are allowed in the SELECT clause"

REJECT: list[Reject] = [
    # -- more than one statement, comment and quoting tricks --------------------------------
    Reject("two-statements-drop", "SELECT * FROM taxi_trips; DROP TABLE taxi_trips", _TWO),
    Reject("two-selects", "SELECT * FROM taxi_trips; SELECT * FROM taxi_trips", _TWO),
    Reject("block-comment-then-attach", "SELECT * FROM taxi_trips /* x */; ATTACH '/tmp/x.db' AS x", _TWO),
    Reject(
        "line-comment-newline-copy", "SELECT * FROM taxi_trips --\n; COPY taxi_trips TO '/tmp/x.csv'", _TWO
    ),
    Reject("where-then-drop", "SELECT * FROM taxi_trips WHERE id = 1 --x\n;DROP TABLE y", _TWO),
    Reject("string-close-then-drop", "SELECT * FROM taxi_trips WHERE vendor = 'a'; DROP TABLE x; --'", _TWO),
    Reject("dollar-string-then-attach", "SELECT * FROM taxi_trips WHERE vendor = $$a$$; ATTACH 'x.db'", _TWO),
    Reject("quoted-table-then-drop", 'SELECT * FROM "taxi_trips"; DROP TABLE x', _TWO),
    Reject("quote-breakout-in-identifier", 'SELECT * FROM "taxi_trips""; DROP TABLE x; --"', _NOT_DATASET),
    Reject("quote-breakout-other-table", 'SELECT * FROM taxi_trips" , "other', "could not be parsed"),
    Reject("unterminated-comment", "SELECT * FROM taxi_trips /* ; DROP TABLE x", "could not be parsed"),
    Reject("nul-byte", "SELECT * FROM taxi_trips\x00; DROP TABLE x", "NUL character"),
    Reject("empty", "", "found 0"),
    Reject("comment-only", "-- SELECT * FROM taxi_trips", "found 0"),
    Reject("syntax-error", "SELECT * FROM", "could not be parsed"),
    Reject("dangling-where", "SELECT * FROM taxi_trips WHERE", "could not be parsed"),
    # -- statements that are not a SELECT ----------------------------------------------------
    Reject("attach", "ATTACH '/tmp/evil.db' AS evil", "found a ATTACH statement"),
    Reject("comment-then-attach", "/* SELECT * FROM taxi_trips */ ATTACH 'x.db'", "ATTACH"),
    Reject("copy-to", "COPY taxi_trips TO '/tmp/out.csv'", "found a COPY statement"),
    Reject("copy-query-to", "COPY (SELECT * FROM taxi_trips) TO '/tmp/out.parquet'", "COPY"),
    Reject("install", "INSTALL httpfs", _NO_SELECT),
    Reject("load", "LOAD httpfs", _NO_SELECT),
    Reject("pragma", "PRAGMA database_list", "PRAGMA"),
    Reject("set", "SET enable_external_access = true", "found a SET statement"),
    Reject("reset", "RESET lock_configuration", _NO_SELECT),
    Reject("call", "CALL read_csv('/etc/passwd')", "CALL"),
    Reject("explain", "EXPLAIN SELECT * FROM taxi_trips", "EXPLAIN"),
    Reject("create-table-as", "CREATE TABLE x AS SELECT * FROM taxi_trips", "CREATE"),
    Reject("create-macro", "CREATE MACRO lower(x) AS 1", "CREATE"),
    Reject("drop", "DROP TABLE taxi_trips", "DROP"),
    Reject("delete", "DELETE FROM taxi_trips", "DELETE"),
    Reject("update", "UPDATE taxi_trips SET fare = 0", "UPDATE"),
    Reject("insert", "INSERT INTO taxi_trips SELECT * FROM taxi_trips", "INSERT"),
    Reject("export-database", "EXPORT DATABASE '/tmp/x'", _NO_SELECT),
    Reject("pivot", "PIVOT taxi_trips ON vendor USING sum(fare)", _NO_SELECT),
    Reject("describe", "DESCRIBE taxi_trips", "DESCRIBE / SUMMARIZE / SHOW"),
    Reject("summarize", "SUMMARIZE taxi_trips", "DESCRIBE / SUMMARIZE / SHOW"),
    Reject("values", "VALUES (1)", "VALUES lists are not allowed"),
    Reject("no-from", "SELECT 1", "no FROM clause"),
    # -- other tables, files, table functions -------------------------------------------------
    Reject("other-table", "SELECT * FROM other_table", _NOT_DATASET),
    Reject("table-shorthand-other", "TABLE other_table", _NOT_DATASET),
    Reject("file-as-table", "SELECT * FROM '/etc/passwd'", _NOT_DATASET),
    Reject("csv-file-as-table", "SELECT * FROM 'taxi_trips.csv'", _NOT_DATASET),
    Reject("url-as-table", "SELECT * FROM 'https://example.com/x.parquet'", _NOT_DATASET),
    Reject("glob-as-table", "SELECT * FROM '/data/*.parquet'", _NOT_DATASET),
    Reject("cyrillic-a", "SELECT * FROM t\u0430xi_trips", _NOT_DATASET),
    Reject("cyrillic-quoted", 'SELECT * FROM "taxi_trip\u0455"', _NOT_DATASET),
    Reject("turkish-dotted-i", "SELECT * FROM TAXI_TR\u0130PS", _NOT_DATASET),
    Reject("fullwidth", "SELECT * FROM \uff54axi_trips", _NOT_DATASET),
    Reject("read-csv", "SELECT * FROM read_csv('/etc/passwd')", "table functions in FROM (read_csv)"),
    Reject("read-parquet", "SELECT * FROM read_parquet('s3://bucket/*.parquet')", "table functions in FROM"),
    Reject("read-text", "SELECT * FROM read_text('/etc/passwd')", "table functions in FROM"),
    Reject("glob-function", "SELECT * FROM glob('/*')", "table functions in FROM"),
    Reject("query-function", "SELECT * FROM query('SELECT 1')", "table functions in FROM"),
    Reject("query-table-function", "SELECT * FROM query_table('taxi_trips')", "table functions in FROM"),
    Reject("duckdb-settings", "SELECT * FROM duckdb_settings()", "table functions in FROM"),
    Reject("schema-qualified", "SELECT * FROM main.taxi_trips", "without a schema or catalog"),
    Reject("catalog-qualified", "SELECT * FROM evil.main.taxi_trips", "without a schema or catalog"),
    Reject("alias", "SELECT * FROM taxi_trips AS t", "a table alias is not allowed"),
    Reject("column-alias-list", "SELECT * FROM taxi_trips t(a, b)", "a table alias is not allowed"),
    Reject("self-alias", "SELECT * FROM taxi_trips taxi_trips", "a table alias is not allowed"),
    Reject("comma-join", "SELECT * FROM taxi_trips, other", "exactly one FROM item"),
    Reject("join", "SELECT * FROM taxi_trips JOIN other USING (id)", "exactly one FROM item"),
    Reject(
        "positional-join-file",
        "SELECT * FROM taxi_trips POSITIONAL JOIN read_csv('/etc/passwd')",
        "exactly one",
    ),
    Reject("self-join", "SELECT * FROM taxi_trips CROSS JOIN taxi_trips", "exactly one FROM item"),
    Reject("subquery-in-from", "SELECT * FROM (SELECT * FROM taxi_trips)", "subqueries in FROM"),
    Reject("cte", "WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM taxi_trips", "WITH"),
    Reject("recursive-cte", "WITH RECURSIVE r AS (SELECT 1) SELECT * FROM taxi_trips", "WITH"),
    Reject("union", "SELECT * FROM taxi_trips UNION ALL SELECT * FROM other", "set operations (UNION"),
    Reject("except", "SELECT * FROM taxi_trips EXCEPT SELECT * FROM taxi_trips", "set operations"),
    Reject("tablesample", "SELECT * FROM taxi_trips TABLESAMPLE 10%", "TABLESAMPLE"),
    Reject("using-sample", "SELECT * FROM taxi_trips USING SAMPLE 10", "SAMPLE"),
    Reject("at-clause", "SELECT * FROM taxi_trips AT (VERSION => 1)", "AT (time travel)"),
    # -- clauses a filter does not have ---------------------------------------------------------
    Reject("distinct", "SELECT DISTINCT * FROM taxi_trips", "DISTINCT is not allowed"),
    Reject("distinct-on", "SELECT DISTINCT ON (vendor) * FROM taxi_trips", "DISTINCT is not allowed"),
    Reject("order-by", "SELECT * FROM taxi_trips ORDER BY fare", "ORDER BY is not allowed"),
    Reject("order-by-all", "SELECT * FROM taxi_trips WHERE id > 1 ORDER BY ALL", "ORDER BY is not allowed"),
    Reject("group-by", "SELECT vendor FROM taxi_trips GROUP BY vendor", "GROUP BY is not allowed"),
    Reject("group-by-all", "SELECT * FROM taxi_trips GROUP BY ALL", "GROUP BY is not allowed"),
    Reject("having", "SELECT * FROM taxi_trips HAVING count(*) > 1", "HAVING is not allowed"),
    Reject("qualify", "SELECT * FROM taxi_trips QUALIFY row_number() OVER () = 1", "QUALIFY is not allowed"),
    Reject("offset", "SELECT * FROM taxi_trips LIMIT 5 OFFSET 5", "OFFSET is not allowed"),
    Reject("offset-only", "SELECT * FROM taxi_trips OFFSET 5", "OFFSET is not allowed"),
    Reject("limit-negative", "SELECT * FROM taxi_trips LIMIT -1", "non-negative integer"),
    Reject("limit-expression", "SELECT * FROM taxi_trips LIMIT 1 + 1", "non-negative integer constant"),
    Reject(
        "limit-subquery",
        "SELECT * FROM taxi_trips LIMIT (SELECT count(*) FROM other)",
        "non-negative integer",
    ),
    Reject("limit-string", "SELECT * FROM taxi_trips LIMIT '5'", "non-negative integer constant"),
    Reject("limit-all", "SELECT * FROM taxi_trips LIMIT ALL", "non-negative integer constant"),
    Reject("limit-percent", "SELECT * FROM taxi_trips LIMIT 10%", "percentage"),
    Reject(
        "limit-huge", "SELECT * FROM taxi_trips LIMIT 99999999999999999999", "non-negative integer constant"
    ),
    # -- projection --------------------------------------------------------------------------
    Reject("aggregate-projection", "SELECT count(*) FROM taxi_trips", _COLUMNS_ONLY),
    Reject("from-first-aggregate", "FROM taxi_trips SELECT count(*)", _COLUMNS_ONLY),
    Reject("column-alias", "SELECT fare AS amount FROM taxi_trips", "aliases (AS) are not allowed"),
    Reject("implicit-alias", "SELECT fare amount FROM taxi_trips", "aliases (AS) are not allowed"),
    Reject("expression-projection", "SELECT fare + 1 FROM taxi_trips", _COLUMNS_ONLY),
    Reject("function-projection", "SELECT getenv('HOME') FROM taxi_trips", _COLUMNS_ONLY),
    Reject("subquery-projection", "SELECT (SELECT 1) FROM taxi_trips", _COLUMNS_ONLY),
    Reject("constant-projection", "SELECT 1 FROM taxi_trips", _COLUMNS_ONLY),
    Reject("other-table-column", "SELECT other.fare FROM taxi_trips", "not by another table or schema"),
    Reject("other-table-star", "SELECT other.* FROM taxi_trips", "a qualified star must name the dataset"),
    Reject("star-exclude", "SELECT * EXCLUDE (fare) FROM taxi_trips", "modified star expression"),
    Reject("star-replace", "SELECT * REPLACE (getenv('HOME') AS vendor) FROM taxi_trips", "modified star"),
    Reject("columns-regex", "SELECT COLUMNS('.*') FROM taxi_trips", "modified star expression"),
    Reject("star-and-column", "SELECT *, fare FROM taxi_trips", "'*' mixed with columns"),
    Reject("duplicate-column", "SELECT fare, FARE FROM taxi_trips", "selected twice"),
    Reject("projected-session-value", "SELECT id, current_user FROM taxi_trips", "DuckDB built-in value"),
    Reject("projected-date", "SELECT current_date FROM taxi_trips", "DuckDB built-in value"),
    Reject("positional-projection", "SELECT #1 FROM taxi_trips", _COLUMNS_ONLY),
    # -- WHERE: subqueries ---------------------------------------------------------------------
    Reject("in-subquery", "SELECT * FROM taxi_trips WHERE id IN (SELECT id FROM other)", _SUBQUERY),
    Reject(
        "not-in-subquery",
        "SELECT * FROM taxi_trips WHERE id NOT IN (FROM read_csv('/etc/passwd'))",
        _SUBQUERY,
    ),
    Reject(
        "exists", "SELECT * FROM taxi_trips WHERE EXISTS (SELECT * FROM read_csv('/etc/passwd'))", _SUBQUERY
    ),
    Reject(
        "scalar-subquery", "SELECT * FROM taxi_trips WHERE fare > (SELECT max(fare) FROM other)", _SUBQUERY
    ),
    Reject("any-subquery", "SELECT * FROM taxi_trips WHERE id = ANY (SELECT 1)", _SUBQUERY),
    Reject("any-list", "SELECT * FROM taxi_trips WHERE id = ANY ([1, 2])", _SUBQUERY),
    Reject("subquery-in-in-list", "SELECT * FROM taxi_trips WHERE id IN (1, (SELECT 2))", _SUBQUERY),
    Reject(
        "subquery-in-case", "SELECT * FROM taxi_trips WHERE CASE WHEN true THEN (SELECT 1) END = 1", _SUBQUERY
    ),
    Reject("subquery-in-between", "SELECT * FROM taxi_trips WHERE id BETWEEN 1 AND (SELECT 2)", _SUBQUERY),
    Reject("subquery-in-function", "SELECT * FROM taxi_trips WHERE lower((SELECT 'a')) = 'a'", _SUBQUERY),
    # -- WHERE: functions not on the whitelist -----------------------------------------------------
    Reject("getenv", "SELECT * FROM taxi_trips WHERE getenv('HOME') = '/root'", "'getenv' is not allowed"),
    Reject("getenv-nested", "SELECT * FROM taxi_trips WHERE lower(getenv('HOME')) <> ''", "'getenv'"),
    Reject(
        "current-setting",
        "SELECT * FROM taxi_trips WHERE current_setting('home_directory') = ''",
        "'current_setting'",
    ),
    Reject("getvariable", "SELECT * FROM taxi_trips WHERE getvariable('secret') = 1", "'getvariable'"),
    Reject(
        "read-blob-in-where",
        "SELECT * FROM taxi_trips WHERE length(read_blob('/etc/passwd')) > 0",
        "'read_blob'",
    ),
    Reject(
        "read-text-in-where", "SELECT * FROM taxi_trips WHERE read_text('/etc/passwd') IS NULL", "'read_text'"
    ),
    Reject(
        "read-csv-in-where", "SELECT * FROM taxi_trips WHERE read_csv('/etc/passwd') IS NULL", "'read_csv'"
    ),
    Reject("glob-in-where", "SELECT * FROM taxi_trips WHERE glob('/*') IS NULL", "'glob'"),
    Reject("query-in-where", "SELECT * FROM taxi_trips WHERE query('SELECT 1') IS NULL", "'query'"),
    Reject(
        "duckdb-metadata", "SELECT * FROM taxi_trips WHERE duckdb_extensions() IS NULL", "'duckdb_extensions'"
    ),
    Reject("pg-function", "SELECT * FROM taxi_trips WHERE pg_typeof(fare) = 'DOUBLE'", "'pg_typeof'"),
    Reject(
        "autocomplete",
        "SELECT * FROM taxi_trips WHERE sql_auto_complete('SEL') IS NULL",
        "'sql_auto_complete'",
    ),
    Reject("repeat-dos", "SELECT * FROM taxi_trips WHERE repeat('x', 2000000000) = vendor", "'repeat'"),
    Reject("lpad-dos", "SELECT * FROM taxi_trips WHERE lpad(vendor, 2000000000, 'x') = ''", "'lpad'"),
    Reject(
        "regexp-extract",
        "SELECT * FROM taxi_trips WHERE regexp_extract(vendor, 'a') = 'a'",
        "'regexp_extract'",
    ),
    Reject("struct-literal", "SELECT * FROM taxi_trips WHERE {'a': 1} IS NULL", "'struct_pack'"),
    Reject("list-literal", "SELECT * FROM taxi_trips WHERE [1, 2] IS NULL", "'list_value'"),
    Reject("json-arrow", "SELECT * FROM taxi_trips WHERE vendor->>'a' = 'b'", "'->>'"),
    Reject("bitwise", "SELECT * FROM taxi_trips WHERE id & 1 = 1", "'&'"),
    Reject("count-star", "SELECT * FROM taxi_trips WHERE count(*) > 1", "'count_star'"),
    Reject("aggregate", "SELECT * FROM taxi_trips WHERE sum(fare) > 1", "'sum'"),
    Reject(
        "window", "SELECT * FROM taxi_trips WHERE sum(fare) OVER () > 1", "window functions are not allowed"
    ),
    Reject("schema-function", "SELECT * FROM taxi_trips WHERE main.lower(vendor) = 'a'", "schema-qualified"),
    Reject(
        "catalog-function",
        "SELECT * FROM taxi_trips WHERE system.main.read_csv('x') IS NULL",
        "schema-qualified",
    ),
    Reject("method-call", "SELECT * FROM taxi_trips WHERE vendor.lower() = 'a'", "method-call syntax"),
    Reject("named-argument", "SELECT * FROM taxi_trips WHERE lower(x := vendor) = 'a'", "named arguments"),
    Reject(
        "distinct-argument", "SELECT * FROM taxi_trips WHERE lower(DISTINCT vendor) = 'a'", "DISTINCT, FILTER"
    ),
    Reject(
        "order-in-call",
        "SELECT * FROM taxi_trips WHERE lower(vendor ORDER BY id) = 'a'",
        "ORDER BY inside a call",
    ),
    # -- WHERE: other forbidden expressions ----------------------------------------------------------
    Reject("positional-parameter", "SELECT * FROM taxi_trips WHERE id = $1", "parameters"),
    Reject("question-parameter", "SELECT * FROM taxi_trips WHERE id = ?", "parameters"),
    Reject("named-parameter", "SELECT * FROM taxi_trips WHERE id = $id", "parameters"),
    Reject("positional-reference", "SELECT * FROM taxi_trips WHERE #1 = 1", "positional references"),
    Reject("star-in-where", "SELECT * FROM taxi_trips WHERE * IS NULL", "star expressions"),
    Reject("columns-in-where", "SELECT * FROM taxi_trips WHERE COLUMNS(*) IS NULL", "star expressions"),
    Reject("lambda-keyword", "SELECT * FROM taxi_trips WHERE id = lambda x: x", "lambda expressions"),
    Reject(
        "lambda-arrow", "SELECT * FROM taxi_trips WHERE list_filter([1], x -> x > 1) = []", "'list_filter'"
    ),
    Reject(
        "collate", "SELECT * FROM taxi_trips WHERE vendor COLLATE nocase = 'acme'", "COLLATE is not allowed"
    ),
    Reject("array-extract", "SELECT * FROM taxi_trips WHERE vendor[1] = 'a'", "ARRAY_EXTRACT is not allowed"),
    Reject("other-table-column-where", "SELECT * FROM taxi_trips WHERE other.id = 1", "not by another table"),
    Reject(
        "schema-column-where", "SELECT * FROM taxi_trips WHERE main.taxi_trips.id = 1", "not by another table"
    ),
    Reject("nested-field", "SELECT * FROM taxi_trips WHERE taxi_trips.vendor.x = 1", "nested field access"),
    Reject("cast-user-type", "SELECT * FROM taxi_trips WHERE vendor::main.mood IS NULL", "CAST to 'mood'"),
    Reject("cast-struct", "SELECT * FROM taxi_trips WHERE vendor::STRUCT(a INT) IS NULL", "CAST to 'STRUCT'"),
    Reject("cast-list", "SELECT * FROM taxi_trips WHERE vendor::VARCHAR[] IS NULL", "CAST to 'list'"),
    Reject("cast-json", "SELECT * FROM taxi_trips WHERE vendor::JSON IS NULL", "CAST to 'JSON'"),
    Reject(
        "cast-varchar-length",
        "SELECT * FROM taxi_trips WHERE vendor::VARCHAR(3) = 'a'",
        "only allowed for DECIMAL",
    ),
    Reject("current-user", "SELECT * FROM taxi_trips WHERE current_user = 'duckdb'", "session value"),
    Reject("user-keyword", "SELECT * FROM taxi_trips WHERE user = 'duckdb'", "session value"),
    Reject("current-schema", "SELECT * FROM taxi_trips WHERE current_schema = 'main'", "session value"),
    # -- size and nesting -----------------------------------------------------------------------------
    Reject("one-mb-string", "SELECT * FROM taxi_trips WHERE vendor = '" + "a" * _MB + "'", "at most 65536"),
    Reject("one-mb-comment", "SELECT * FROM taxi_trips /*" + " " * _MB + "*/", "at most 65536"),
    Reject(
        "one-mb-in-list", "SELECT * FROM taxi_trips WHERE id IN (" + "1," * (_MB // 2) + "1)", "at most 65536"
    ),
    Reject("deep-not", "SELECT * FROM taxi_trips WHERE " + "NOT " * 5000 + "flag", "nested too deeply"),
    Reject(
        "deep-parentheses",
        "SELECT * FROM taxi_trips WHERE " + "(" * 5000 + "flag" + ")" * 5000,
        "nested too deeply",
    ),
    Reject("not-chain-65", "SELECT * FROM taxi_trips WHERE " + "NOT " * 65 + "flag", "nested too deeply"),
    Reject(
        "plus-chain-200",
        "SELECT * FROM taxi_trips WHERE " + " + ".join(["id"] * 200) + " > 1",
        "nested too deeply",
    ),
]
