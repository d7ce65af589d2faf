"""Hold a DuckDB file open read-write (a writer in another process) until stdin closes.

Usage: hold_file.py PATH — prints ``ready`` once the file is held.
"""

from __future__ import annotations

import sys

import duckdb

con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS held AS SELECT 1 AS x").fetchall()
print("ready", flush=True)
sys.stdin.read()
con.close()
