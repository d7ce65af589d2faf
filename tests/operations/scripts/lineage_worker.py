"""A worker with OpenLineage on: runs refresh DAGs with ``dag.test()``, as ``airflow dags test`` would.

Its own process, because the OpenLineage provider reads its settings and registers its listener once
per process, at start-up: the transport must be in the environment before Airflow is imported. One
process serves every lineage test (one start-up): each stdin line is a JSON object ``{"dag_id": ...,
"env": {...}}``; the variables are set (the test's spicepod and data dir), the DAG file is read again
and the DAG run, and one ``RESULT <state>`` line answers. End of stdin ends the process.
"""

from __future__ import annotations

import json
import os
import sys

from airflow_provider_accel.dags.factory import load_dags

print("READY", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    os.environ.update(request["env"])
    try:
        state = str(load_dags()[request["dag_id"]].test().state)
    except Exception as err:  # the test reads the reason from the answer
        state = f"error {type(err).__name__}: {err}"
    print(f"RESULT {state}", flush=True)
