"""The hostile-input corpus, kept as data: refresh_sql attacks, dataset names in the path, request bodies.

``{canary}`` in a case is replaced by the canary directory: files there (``secret.csv``,
``secret.parquet``, ``secret.duckdb``, ``evil.duckdb_extension``) are what the attacks try to read,
attach, load or write; the test watches that directory with inotify. Every case must be answered with
a 4xx and a ``{"message"}`` body, and must create no run and touch no file.
"""

from __future__ import annotations

DATASET = "taxi_trips"
ONE_MB = 1024 * 1024

#: (id, refresh_sql) sent as {"refresh_sql": ...} to POST .../refresh and PATCH .../acceleration.
SQL_ATTACKS: list[tuple[str, str]] = [
    # other tables and files
    ("other-table", "SELECT * FROM events"),
    ("other-schema-table", "SELECT * FROM main.taxi_trips_secret"),
    ("catalog-qualified", "SELECT * FROM other_db.main.taxi_trips"),
    ("system-table", "SELECT * FROM duckdb_settings()"),
    ("information-schema", "SELECT * FROM information_schema.tables"),
    ("read-csv", "SELECT * FROM read_csv('{canary}/secret.csv')"),
    ("read-csv-auto", "SELECT * FROM read_csv_auto('{canary}/secret.csv')"),
    ("read-parquet", "SELECT * FROM read_parquet('{canary}/secret.parquet')"),
    ("read-text", "SELECT * FROM read_text('{canary}/secret.csv')"),
    ("replacement-scan-path", "SELECT * FROM '{canary}/secret.csv'"),
    ("replacement-scan-glob", "SELECT * FROM '{canary}/*.csv'"),
    ("glob-function", "SELECT * FROM glob('{canary}/*')"),
    ("etc-passwd", "SELECT * FROM read_csv('/etc/passwd', sep=':')"),
    ("etc-passwd-string", "SELECT * FROM '/etc/passwd'"),
    (
        "subquery-in-where",
        "SELECT * FROM taxi_trips WHERE trip_id IN (SELECT * FROM read_csv('{canary}/secret.csv'))",
    ),
    ("exists-subquery", "SELECT * FROM taxi_trips WHERE EXISTS (SELECT 1 FROM '{canary}/secret.parquet')"),
    (
        "scalar-subquery",
        "SELECT * FROM taxi_trips WHERE trip_id = "
        "(SELECT max(a) FROM read_parquet('{canary}/secret.parquet'))",
    ),
    ("function-in-where", "SELECT * FROM taxi_trips WHERE length(read_blob('{canary}/secret.csv')) > 0"),
    ("getenv", "SELECT * FROM taxi_trips WHERE getenv('HOME') <> ''"),
    ("current-setting", "SELECT * FROM taxi_trips WHERE current_setting('home_directory') <> ''"),
    ("join", "SELECT * FROM taxi_trips, read_csv('{canary}/secret.csv')"),
    ("union", "SELECT * FROM taxi_trips UNION ALL SELECT * FROM read_csv('{canary}/secret.csv')"),
    ("cte", "WITH s AS (SELECT * FROM read_csv('{canary}/secret.csv')) SELECT * FROM taxi_trips"),
    ("projection-function", "SELECT read_blob('{canary}/secret.csv') FROM taxi_trips"),
    # statements that are not a SELECT
    ("attach", "ATTACH '{canary}/secret.duckdb' AS s"),
    ("attach-after-select", "SELECT * FROM taxi_trips; ATTACH '{canary}/secret.duckdb' AS s"),
    ("copy-to", "COPY taxi_trips TO '{canary}/stolen.csv'"),
    ("copy-from", "COPY taxi_trips FROM '{canary}/secret.csv'"),
    ("export-database", "EXPORT DATABASE '{canary}/export'"),
    ("install", "INSTALL httpfs"),
    ("load-path", "LOAD '{canary}/evil.duckdb_extension'"),
    ("pragma", "PRAGMA enable_external_access"),
    ("set", "SET enable_external_access = true"),
    ("set-after-select", "SELECT * FROM taxi_trips; SET allow_unsigned_extensions = true"),
    ("create-secret", "CREATE SECRET s (TYPE s3, KEY_ID 'x', SECRET 'y')"),
    ("drop-table", "DROP TABLE taxi_trips"),
    ("delete", "DELETE FROM taxi_trips"),
    ("insert", "INSERT INTO taxi_trips SELECT * FROM read_csv('{canary}/secret.csv')"),
    ("two-selects", "SELECT * FROM taxi_trips; SELECT * FROM taxi_trips"),
    ("call", "CALL pragma_version()"),
    # comment and quoting tricks
    ("comment-hides-second-statement", "SELECT * FROM taxi_trips /* */; COPY taxi_trips TO '{canary}/x.csv'"),
    ("line-comment-newline", "SELECT * FROM taxi_trips -- harmless\n; ATTACH '{canary}/secret.duckdb'"),
    ("quoted-identifier-path", 'SELECT * FROM "{canary}/secret.csv"'),
    (
        "dollar-quoted",
        "SELECT * FROM taxi_trips WHERE $$x$$ = 'x'; SELECT * FROM read_csv('{canary}/secret.csv')",
    ),
    ("unterminated-string", "SELECT * FROM taxi_trips WHERE a = 'x"),
    ("backslash-quote-breakout", "SELECT * FROM taxi_trips WHERE a = 'x\\'; ATTACH '{canary}/secret.duckdb'"),
    # unicode look-alikes and oddities
    ("cyrillic-a-in-name", "SELECT * FROM t\u0430xi_trips"),
    ("fullwidth-select", "\uff33\uff25\uff2c\uff25\uff23\uff34 * FROM taxi_trips"),
    ("zero-width-space", "SELECT * FROM taxi\u200b_trips"),
    ("rtl-override", "SELECT * FROM taxi_trips\u202e; ATTACH '{canary}/secret.duckdb'"),
    ("nul-in-sql", "SELECT * FROM taxi_trips\x00; ATTACH '{canary}/secret.duckdb'"),
    # size
    ("one-mb-where", "SELECT * FROM taxi_trips WHERE a = '" + "x" * ONE_MB + "'"),
    ("one-mb-statements", "SELECT * FROM taxi_trips;" * (ONE_MB // 25)),
    ("deep-parentheses", "SELECT * FROM taxi_trips WHERE " + "(" * 5000 + "1=1" + ")" * 5000),
    ("not-sql", "rm -rf /"),
]

#: (id, raw path segment after /v1/datasets/) for POST {segment}/acceleration/refresh with body {}.
NAME_ATTACKS: list[tuple[str, str]] = [
    ("dotdot-encoded", "%2E%2E"),
    ("dotdot-mixed", ".%2E"),
    ("dotdot-slash-encoded", "..%2F..%2Fetc%2Fpasswd"),
    ("slash-encoded", "taxi_trips%2F..%2Fevents"),
    ("double-encoded-slash", "taxi_trips%252F..%252Fevents"),
    ("backslash", "..%5C..%5Ctaxi_trips"),
    ("nul", "taxi_trips%00"),
    ("nul-middle", "taxi%00_trips"),
    ("absolute-path", "%2Fetc%2Fpasswd"),
    ("ten-kb", "a" * 10_240),
    ("ten-kb-dots", "..%2F" * 2048),
    ("newline", "taxi_trips%0AX-Injected:%201"),
    ("sql-in-name", "taxi_trips'%3B%20DROP%20TABLE%20dag%3B--"),
    ("percent-garbage", "%ZZ"),
    ("unicode-lookalike", "t%D0%B0xi_trips"),
]

#: (id, raw body bytes) POSTed to taxi_trips' refresh route with Content-Type application/json.
BODY_ATTACKS: list[tuple[str, bytes]] = [
    ("not-json", b"refresh_sql=SELECT"),
    ("truncated-json", b'{"refresh_sql": "SELECT * FROM taxi_trips"'),
    ("invalid-utf8", b'{"refresh_sql": "\xff\xfe"}'),
    ("array", b"[]"),
    ("array-of-object", b'[{"refresh_mode": "full"}]'),
    ("string", b'"full"'),
    ("number", b"42"),
    ("true", b"true"),
    ("deep-arrays", b"[" * 100_000 + b"]" * 100_000),
    ("deep-objects", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    ("deep-in-field", b'{"refresh_sql": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    ("wrong-type-sql", b'{"refresh_sql": 5}'),
    ("wrong-type-sql-object", b'{"refresh_sql": {"$ne": null}}'),
    ("wrong-type-mode", b'{"refresh_mode": 1}'),
    ("wrong-type-mode-list", b'{"refresh_mode": ["full"]}'),
    ("wrong-type-jitter", b'{"refresh_jitter_max": 10}'),
    ("unknown-mode", b'{"refresh_mode": "everything"}'),
    ("changes-mode", b'{"refresh_mode": "changes"}'),
    ("bad-jitter", b'{"refresh_jitter_max": "forever"}'),
    ("unknown-field", b'{"refresh_sql": null, "dag_run_id": "x"}'),
    ("proto-pollution", b'{"__proto__": {"refresh_mode": "full"}}'),
    ("nan", b'{"refresh_sql": NaN}'),
    ("huge-integer", b'{"refresh_mode": ' + b"9" * 10_000 + b"}"),
    (
        "ten-mb-sql",
        b'{"refresh_sql": "SELECT * FROM taxi_trips WHERE a = \'' + b"x" * (10 * ONE_MB) + b"'\"}",
    ),
    ("ten-mb-garbage", b"\x00" * (10 * ONE_MB)),
    ("ten-mb-array", b"[" + b"1," * (5 * ONE_MB) + b"1]"),
]
