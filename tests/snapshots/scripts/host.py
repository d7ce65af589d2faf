"""One "host": an Airflow home with its own metadata DB and data dir, running refresh DAGs with dag.test().

Usage: host.py <home>. The spicepod is <home>/spicepod.yaml, the data dir <home>/accel, the writer id
the home's name. The metadata DB is <home>/airflow.db: migrated here unless it is already there (the
test copies one migrated DB to every host instead of migrating per host).

One long-lived process per host, driven over its stdin: it prints ``READY`` once Airflow is imported and
the DB migrated; then each stdin line is a JSON list of DAG ids, answered by one ``RESULT <json>`` line
per DAG (state, task state, XCom summary) and a ``DONE`` line. End of stdin ends the process.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

home = Path(sys.argv[1])
os.environ["AIRFLOW_HOME"] = str(home)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(home / "dags")
os.environ["AIRFLOW__ACCEL__DATA_DIR"] = str(home / "accel")
os.environ["AIRFLOW__ACCEL__SPICEPOD_PATH"] = str(home / "spicepod.yaml")
os.environ["AIRFLOW__ACCEL__SNAPSHOT_WRITER_ID"] = home.name

repo = Path(__file__).resolve().parents[3]
(home / "dags").mkdir(parents=True, exist_ok=True)
shutil.copy(repo / "dags" / "accelerated_datasets.py", home / "dags" / "accelerated_datasets.py")

from airflow.utils import db  # noqa: E402

if not (home / "airflow.db").exists():
    db.resetdb()

from airflow.models.taskinstance import TaskInstance  # noqa: E402
from airflow.models.xcom import XComModel  # noqa: E402
from airflow.utils.session import create_session  # noqa: E402

from airflow_provider_accel.dags.factory import load_dags  # noqa: E402


def run(dag_id: str) -> dict[str, object]:
    dags = load_dags()  # re-read per run, as a worker parses the DAG file it runs
    dag_run = dags[dag_id].test()
    with create_session() as session:
        ti = (
            session.query(TaskInstance)
            .filter_by(dag_id=dag_id, run_id=dag_run.run_id, task_id="refresh")
            .one()
        )
        row = session.scalar(
            XComModel.get_many(
                run_id=dag_run.run_id, key="return_value", task_ids="refresh", dag_ids=dag_id, limit=1
            )
        )
        summary = None if row is None else XComModel.deserialize_value(row)
    return {"dag_id": dag_id, "state": str(dag_run.state), "task": str(ti.state), "summary": summary}


print("READY", flush=True)
for line in sys.stdin:
    for dag_id in json.loads(line):
        print("RESULT " + json.dumps(run(dag_id)), flush=True)
    print("DONE", flush=True)
