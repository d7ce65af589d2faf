"""Spice's clients against the API: API keys, probes, status, list filters and Spice's body shapes.

Raw HTTP in the shapes Spice's CLI, spicepy and the JS SDK send (``X-API-Key`` in any letter case, no
body, ``{}``, every field an explicit null), on Airflow's real api-server app. Keys come from
``[accel] api_keys`` (set per test through the environment) or from the spicepod's
``runtime.auth.api-key`` section; a dataset the spicepod cannot serve is a ``Spicepod.dataset_errors``
entry, added here to the parsed test spicepod.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import pytest

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.plugin.api import auth as api_auth
from airflow_provider_accel.spicepod import loader, store
from airflow_provider_accel.spicepod.model import ApiKeyAccess, DatasetError, RefreshMode, Spicepod
from airflow_provider_accel.spicepod.runtime import parse_key, parse_runtime_auth

REFRESH = "/v1/datasets/taxi_trips/acceleration/refresh"
PATCH = "/v1/datasets/taxi_trips/acceleration"


@dataclasses.dataclass
class Keys:
    ro: str
    rw: str

    @property
    def rw_id(self) -> str:
        return api_auth.key_id_of(self.rw)


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> Keys:
    """A read-only and a read-write key in ``[accel] api_keys`` (values unique to the test)."""
    found = Keys(ro=f"ro-{uuid4().hex}", rw=f"rw-{uuid4().hex}")
    monkeypatch.setenv("AIRFLOW__ACCEL__API_KEYS", f"{found.ro}:ro, {found.rw}:rw")
    return found


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__ACCEL__API_KEYS", raising=False)


@pytest.fixture
def served_spicepod(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[Callable[[Spicepod], Spicepod]], None]]:
    """Serve the test spicepod as parsed, changed by a function (e.g. with ``dataset_errors``)."""
    real = loader.load_spicepod

    def serve(change: Callable[[Spicepod], Spicepod]) -> None:
        monkeypatch.setattr(loader, "load_spicepod", lambda path: change(real(path)))
        store.clear_cache()

    yield serve
    monkeypatch.setattr(loader, "load_spicepod", real)
    store.clear_cache()


def _post(api: Any, path: str, headers: dict[str, str], content: bytes | None = None) -> Any:
    return api.client.post(path, content=content, headers={"Content-Type": "application/json", **headers})


# -- keys in the spicepod ---------------------------------------------------------------------------


def test_runtime_auth_section_parses_spice_key_suffixes() -> None:
    """runtime.auth.api-key keys are value[:ro|:rw]; no suffix is read-only; placeholders stay unresolved."""
    enabled, keys = parse_runtime_auth(
        {"runtime": {"auth": {"api-key": {"enabled": True, "keys": ["plain", "w:rw", "${env:K}:ro"]}}}}
    )
    assert enabled is True
    assert [(k.value, k.access) for k in keys] == [
        ("plain", ApiKeyAccess.READ_ONLY),
        ("w", ApiKeyAccess.READ_WRITE),
        ("${env:K}", ApiKeyAccess.READ_ONLY),
    ]
    assert parse_runtime_auth({"runtime": {"auth": {"api_key": {"keys": ["k:rw"]}}}})[0] is True
    assert parse_key("a:b:rw").value == "a:b"
    assert parse_key("a:b").value == "a:b"


def test_runtime_auth_section_reaches_the_spicepod_model() -> None:
    """parse_spicepod fills Spicepod.api_key_auth_enabled / api_keys from runtime.auth.api-key."""
    spicepod = loader.parse_spicepod(
        {
            "version": "v1",
            "kind": "Spicepod",
            "name": "keys",
            "runtime": {"auth": {"api-key": {"enabled": True, "keys": ["k1:rw"]}}},
        }
    )
    assert spicepod.api_key_auth_enabled is True
    assert [(k.value, k.access) for k in spicepod.api_keys] == [("k1", ApiKeyAccess.READ_WRITE)]


@pytest.mark.parametrize(
    "section",
    [
        {"enabled": "yes", "keys": ["k"]},
        {"enabled": True, "keys": "k"},
        {"enabled": True, "keys": [""]},
        {"enabled": True},
        {"enabled": True, "keys": ["k"], "key": ["x"]},
    ],
)
def test_bad_runtime_auth_section_is_a_clear_error(section: dict[str, Any]) -> None:
    """A malformed runtime.auth.api-key is rejected naming the field, never echoing a key."""
    with pytest.raises(SpicepodError, match=r"runtime\.auth\.api-key") as err:
        parse_runtime_auth({"runtime": {"auth": {"api-key": section}}})
    assert "'k'" not in str(err.value)


def test_spicepod_keys_with_env_placeholders_authenticate(
    api: Any, clean_runs: None, no_keys: None, served_spicepod: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ${env:...} key of the spicepod's runtime.auth section is resolved by the api-server and accepted."""
    value = f"env-{uuid4().hex}"
    monkeypatch.setenv("ACCEL_TEST_RW_KEY", value)
    served_spicepod(
        lambda sp: dataclasses.replace(
            sp, api_key_auth_enabled=True, api_keys=(parse_key("${env:ACCEL_TEST_RW_KEY}:rw"),)
        )
    )
    assert _post(api, REFRESH, {"X-API-Key": value}).status_code == 201
    assert _post(api, REFRESH, {"X-API-Key": "${env:ACCEL_TEST_RW_KEY}"}).status_code == 401


def test_disabled_spicepod_keys_are_not_accepted(api: Any, no_keys: None, served_spicepod: Any) -> None:
    """With runtime.auth.api-key enabled: false its keys mean nothing: the header is ignored."""
    served_spicepod(
        lambda sp: dataclasses.replace(sp, api_key_auth_enabled=False, api_keys=(parse_key("off-key:rw"),))
    )
    response = api.client.get("/v1/datasets", headers={"X-API-Key": "off-key"})
    assert response.status_code == 401
    assert response.json() == {"message": "Not authenticated"}


# -- keys: access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["X-API-Key", "x-api-key", "X-API-KEY"])
@pytest.mark.parametrize(
    "body", [None, b"{}", b'{"refresh_sql": null, "refresh_mode": null, "refresh_jitter_max": null}']
)
def test_read_write_key_triggers_a_plain_refresh_in_every_client_shape(
    api: Any, clean_runs: None, keys: Keys, db_runs: Any, header: str, body: bytes | None
) -> None:
    """CLI (no body), JS SDK ({}), spicepy (nulls): one plain refresh; the header is case-free."""
    response = _post(api, REFRESH, {header: keys.rw}, body)
    assert response.status_code == 201, response.text
    assert response.json()["message"] == "Dataset refresh triggered for taxi_trips."
    [run] = db_runs("accelerate_taxi_trips")
    assert run[2] == {}
    assert run[5] == keys.rw_id
    assert keys.rw not in str(run)


def test_url_encoded_dataset_name_with_a_key(api: Any, clean_runs: None, keys: Keys) -> None:
    """A URL-encoded name (as the JS SDK's encodeURIComponent sends it) finds the dataset."""
    response = _post(api, "/v1/datasets/taxi%5Ftrips/acceleration/refresh", {"X-API-Key": keys.rw})
    assert response.status_code == 201, response.text


def test_read_only_key_may_read_but_not_write(api: Any, clean_runs: None, keys: Keys) -> None:
    """A :ro key lists and reads status, and gets 403 with Spice's message on trigger and PATCH."""
    created = _post(api, REFRESH, {"X-API-Key": keys.rw}).json()
    ro = {"X-API-Key": keys.ro}
    assert api.client.get("/v1/datasets?status=true", headers=ro).status_code == 200
    assert api.client.get(f"{REFRESH}/{created['dag_run_id']}", headers=ro).status_code == 200
    for response in (
        _post(api, REFRESH, ro),
        api.client.patch(PATCH, content=b'{"refresh_sql": null}', headers=ro),
    ):
        assert response.status_code == 403
        assert response.json() == {"message": "API key does not allow write access"}


def test_wrong_key_is_401_even_with_a_valid_airflow_token(api: Any, keys: Keys) -> None:
    """An unknown key is 401 Unauthorized: a key is judged alone, an admin token beside it is unused."""
    for headers in (
        {"X-API-Key": "wrong"},
        {"X-API-Key": "wrong", **api.headers("admin")},
        {"X-API-Key": ""},
    ):
        response = api.client.get("/v1/datasets", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"message": "Unauthorized"}


def test_key_is_judged_alone_next_to_airflow_credentials(api: Any, clean_runs: None, keys: Keys) -> None:
    """The documented rule: rw key + viewer token may write, ro key + admin token may not."""
    assert _post(api, REFRESH, {"X-API-Key": keys.rw, **api.headers("viewer")}).status_code == 201
    assert _post(api, REFRESH, {"X-API-Key": keys.ro, **api.headers("admin")}).status_code == 403
    garbage = {"X-API-Key": keys.rw, "Authorization": "Bearer not-a-jwt"}
    assert _post(api, REFRESH, garbage).status_code == 201


def test_airflow_credentials_work_unchanged_when_keys_are_configured(
    api: Any, clean_runs: None, keys: Keys
) -> None:
    """Without the header, tokens keep their RBAC: viewer 403 on trigger, admin 201, none 401."""
    assert _post(api, REFRESH, api.headers("viewer")).status_code == 403
    assert _post(api, REFRESH, api.headers("admin")).status_code == 201
    assert _post(api, REFRESH, {}).json() == {"message": "Not authenticated"}


def test_without_keys_the_header_changes_nothing(api: Any, clean_runs: None, no_keys: None) -> None:
    """No key configured: X-API-Key is ignored, so only Airflow's credentials decide, as before."""
    alone = api.client.get("/v1/datasets", headers={"X-API-Key": "anything"})
    assert alone.status_code == 401 and alone.json() == {"message": "Not authenticated"}
    with_token = _post(api, REFRESH, {"X-API-Key": "anything", **api.headers("admin")})
    assert with_token.status_code == 201


def test_key_never_appears_in_logs_responses_or_the_audit_log(
    api: Any, clean_runs: None, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """Every answer, log line and audit row of key requests names the key id, never the key."""
    from airflow.models.log import Log
    from airflow.utils.session import create_session
    from sqlalchemy import select

    caplog.set_level(logging.DEBUG)
    texts = []
    created = _post(api, REFRESH, {"X-API-Key": keys.rw})
    texts.append(created.text)
    for method, path, headers, body in (
        ("GET", f"{REFRESH}/{created.json()['dag_run_id']}", {"X-API-Key": keys.rw}, None),
        ("GET", "/v1/datasets?status=true&details=true", {"X-API-Key": keys.ro}, None),
        ("POST", REFRESH, {"X-API-Key": keys.ro}, b"{}"),
        ("POST", REFRESH, {"X-API-Key": keys.rw + "x"}, b"{}"),
        ("PATCH", PATCH, {"X-API-Key": keys.rw}, b'{"refresh_sql": null}'),
        ("GET", "/v1/status", {"X-API-Key": keys.ro}, None),
    ):
        response = api.client.request(method, path, content=body, headers=headers)
        texts.append(response.text + str(response.headers))
    with create_session() as session:
        rows = session.scalars(select(Log).where(Log.owner == keys.rw_id)).all()
        audit = [(r.event, r.owner, r.extra, r.dag_id, r.run_id) for r in rows]
    assert {event for event, *_ in audit} >= {"trigger_dag_run", "accel.patch_refresh_sql"}
    everything = "\n".join(texts) + caplog.text + str(audit)
    assert keys.rw not in everything and keys.ro not in everything
    assert keys.rw_id in caplog.text or keys.rw_id in str(audit)


def test_keys_compare_every_configured_key() -> None:
    """match_key finds a key wherever it is in the list and nothing for a prefix or an extension of one."""
    resolved = tuple(
        api_auth.ResolvedApiKey(key_id=f"id{i}", access=ApiKeyAccess.READ_ONLY, value=v.encode())
        for i, v in enumerate(["first", "middle", "last"])
    )
    found = [api_auth.match_key(v, resolved) for v in ("first", "middle", "last")]
    assert [key.key_id if key else None for key in found] == ["id0", "id1", "id2"]
    assert api_auth.match_key("las", resolved) is None
    assert api_auth.match_key("lastx", resolved) is None


# -- probes and status ------------------------------------------------------------------------------


def test_health_answers_ok_unauthenticated(api: Any) -> None:
    """GET /health is Spice's liveness probe: 200 ok, no credentials needed."""
    response = api.client.get("/health")
    assert response.status_code == 200
    assert response.text.strip() == "ok"


def test_ready_waits_for_every_first_load(
    api: Any, clean_runs: None, keys: Keys, served_spicepod: Any
) -> None:
    """/v1/ready is 503 until every accelerated dataset's first run finished (failed counts), then 200."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    served_spicepod(
        lambda sp: dataclasses.replace(
            sp,
            datasets=tuple(d for d in sp.datasets if d.name in ("taxi_trips", "plain_source")),
            dataset_errors=(DatasetError(name="broken", from_="s3://b/x", reason="no s3 here"),),
        )
    )
    before = api.client.get("/v1/ready")
    assert (before.status_code, before.text) == (503, "not ready")
    run_id = _post(api, REFRESH, {"X-API-Key": keys.rw}).json()["dag_run_id"]
    assert api.client.get("/v1/ready").status_code == 503  # queued is not loaded
    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.run_id == run_id).values(state="failed"))
    after = api.client.get("/v1/ready")
    assert (after.status_code, after.text) == (200, "ready")


def test_status_lists_airflow_components_in_spice_shape(api: Any, keys: Keys) -> None:
    """/v1/status answers Spice's [{name, endpoint, status}] for the api-server and Airflow's processes."""
    response = api.client.get("/v1/status", headers={"X-API-Key": keys.ro})
    assert response.status_code == 200
    entries = response.json()
    assert [e["name"] for e in entries] == ["http", "scheduler", "dag-processor", "triggerer", "metadatabase"]
    assert all(set(e) == {"name", "endpoint", "status"} for e in entries)
    by_name = {e["name"]: e["status"] for e in entries}
    assert by_name["http"] == "Ready" and by_name["metadatabase"] == "Ready"
    assert by_name["scheduler"] in ("Ready", "Error")  # no scheduler runs in-process: Airflow says unhealthy
    csv = api.client.get("/v1/status?format=csv", headers={"X-API-Key": keys.ro})
    assert csv.text.splitlines()[0] == "name,endpoint,status"
    assert api.client.get("/v1/status").status_code == 401


# -- list filters -----------------------------------------------------------------------------------


def test_source_filter_keeps_the_connector(api: Any, keys: Keys, served_spicepod: Any) -> None:
    """?source= matches the from: connector as Spice does: file keeps file: datasets, s3 keeps s3 ones."""
    served_spicepod(
        lambda sp: dataclasses.replace(
            sp, dataset_errors=(DatasetError(name="lake", from_="s3://bucket/lake/", reason="why"),)
        )
    )
    ro = {"X-API-Key": keys.ro}
    files = api.client.get("/v1/datasets?source=file", headers=ro).json()
    assert files and all(item["from"].startswith("file:") for item in files)
    assert [item["name"] for item in api.client.get("/v1/datasets?source=s3", headers=ro).json()] == ["lake"]
    assert api.client.get("/v1/datasets?source=postgres", headers=ro).json() == []


def test_csv_format_has_spice_columns(api: Any, keys: Keys) -> None:
    """?format=csv answers CSV with Spice's columns (status only with ?status=true)."""
    ro = {"X-API-Key": keys.ro}
    plain = api.client.get("/v1/datasets?format=csv", headers=ro)
    assert plain.status_code == 200
    lines = plain.text.splitlines()
    assert lines[0] == "from,name,replication_enabled,acceleration_enabled"
    assert any(line.endswith(",taxi_trips,false,true") for line in lines[1:])
    with_status = api.client.get("/v1/datasets?format=csv&status=true", headers=ro).text.splitlines()
    assert with_status[0] == "from,name,replication_enabled,acceleration_enabled,status"
    assert api.client.get("/v1/datasets?format=xml", headers=ro).status_code == 400


# -- unservable datasets and initial-load-only modes ------------------------------------------------


def _with_broken(sp: Spicepod) -> Spicepod:
    reason = "connector s3 is not served by this provider; use file, postgres or mysql, or remove it."
    return dataclasses.replace(
        sp, dataset_errors=(DatasetError(name="broken", from_="s3://b/x", reason=reason),)
    )


def test_unservable_dataset_is_listed_as_error_with_its_reason(
    api: Any, keys: Keys, served_spicepod: Any
) -> None:
    """A dataset_errors entry is listed; with ?status=true its status is Error and `error` is the reason."""
    served_spicepod(_with_broken)
    ro = {"X-API-Key": keys.ro}
    [plain] = [i for i in api.client.get("/v1/datasets", headers=ro).json() if i["name"] == "broken"]
    assert plain == {
        "from": "s3://b/x",
        "name": "broken",
        "replication_enabled": False,
        "acceleration_enabled": True,
    }
    [item] = [
        i for i in api.client.get("/v1/datasets?status=true", headers=ro).json() if i["name"] == "broken"
    ]
    assert item["status"] == "Error"
    assert item["error"].startswith("connector s3 is not served")


def test_refresh_and_patch_of_an_unservable_dataset_say_why(
    api: Any, keys: Keys, served_spicepod: Any
) -> None:
    """POST refresh and PATCH of a dataset_errors entry are 400 with its reason, not 404."""
    served_spicepod(_with_broken)
    rw = {"X-API-Key": keys.rw}
    for response in (
        _post(api, "/v1/datasets/BROKEN/acceleration/refresh", rw),
        api.client.patch("/v1/datasets/broken/acceleration", content=b'{"refresh_sql": null}', headers=rw),
    ):
        assert response.status_code == 400
        assert response.json()["message"] == (
            "Dataset broken cannot be refreshed: connector s3 is not served by this provider; use file, "
            "postgres or mysql, or remove it."
        )


@pytest.mark.parametrize("mode", [RefreshMode.CHANGES, RefreshMode.CACHING])
def test_initial_load_only_modes_say_so_in_the_status(
    api: Any, keys: Keys, served_spicepod: Any, mode: RefreshMode
) -> None:
    """changes/caching datasets keep Spice's status values; refresh_note says initial load only, and why."""

    def change(sp: Spicepod) -> Spicepod:
        datasets = tuple(
            dataclasses.replace(d, acceleration=dataclasses.replace(d.acceleration, refresh_mode=mode))
            if d.name == "taxi_trips" and d.acceleration is not None
            else d
            for d in sp.datasets
        )
        return dataclasses.replace(sp, datasets=datasets)

    served_spicepod(change)
    items = {
        i["name"]: i
        for i in api.client.get("/v1/datasets?status=true", headers={"X-API-Key": keys.ro}).json()
    }
    assert items["taxi_trips"]["status"] in ("Initializing", "Refreshing", "Ready", "Error")
    assert items["taxi_trips"]["refresh_note"].startswith(f"initial load only: refresh_mode {mode.value}")
    assert "refresh_note" not in items["Events"]
