"""Public spicepods written by Spice's authors load here: each dataset gets a DAG or an Error with a reason.

The corpus (``corpus/``, sources in ``corpus/SOURCES.tsv``) holds the spicepod files of Spice's
public repositories (runtime test pods, cookbook, quickstarts, samples, docs; every distinct version
in their history) under ``pods/``, and the YAML snippets of their documentation that declare
``datasets:`` under ``snippets/`` (a snippet without ``version``/``kind``/``name`` gets them here).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_accel.dags.factory import build_dags
from airflow_provider_accel.spicepod.loader import _read_yaml, parse_spicepod
from airflow_provider_accel.spicepod.model import dag_id_for

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*/*.yaml"))


def corpus_document(file: Path) -> Any:
    data = _read_yaml(file)
    if file.parent.name == "snippets":
        data = {"version": "v1", "kind": "Spicepod", "name": file.stem, **data}
    return data


def test_corpus_is_several_hundred_sourced_pods() -> None:
    """The corpus holds several hundred pods, and SOURCES.tsv names repository, path and commit of each."""
    with (CORPUS / "SOURCES.tsv").open(newline="") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}
    assert len(FILES) >= 300
    assert {f"{f.parent.name}/{f.name}" for f in FILES} == set(rows)
    for row in rows.values():
        assert row["repository"].startswith("spiceai/") and row["path"] and len(row["commit"]) == 40


@pytest.mark.parametrize("file", FILES, ids=[f"{f.parent.name}/{f.name}" for f in FILES])
def test_corpus_pod_loads_and_each_dataset_gets_a_dag_or_a_reason(file: Path) -> None:
    """The pod loads; each dataset is served (accelerated ones get their DAG) or errors with a reason."""
    logging.getLogger("airflow_provider_accel.spicepod.loader").setLevel(logging.WARNING)
    data = corpus_document(file)
    pod = parse_spicepod(data, path=str(file), strict=False, base_dir=file.parent)
    assert len(pod.datasets) + len(pod.dataset_errors) == len(data["datasets"])
    for error in pod.dataset_errors:
        assert error.reason.strip() and error.name
    dags = build_dags(pod)
    for dataset in pod.accelerated_datasets:
        assert dag_id_for(dataset.name) in dags
    # An errored dataset has no DAG (unless it is a duplicate name of a served one, which keeps its own).
    served = {dag_id_for(d.name) for d in pod.datasets}
    assert not ({dag_id_for(e.name) for e in pod.dataset_errors} - served) & set(dags)
