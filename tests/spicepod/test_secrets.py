"""Placeholder resolution: Spice's env secret store semantics, Airflow Variables, and no leaks."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.spicepod.secrets import has_placeholders, resolve_params, resolve_placeholders

SECRET = "s3cr3t-value-do-not-log"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable these tests use leaks in from the developer's shell."""
    for name in (
        "PG_PASS",
        "SPICE_PG_PASS",
        "pg_pass",
        "MY_TOKEN",
        "SPICE_MY_TOKEN",
        "AIRFLOW_VAR_ACCEL_ONLY_VAR",
    ):
        monkeypatch.delenv(name, raising=False)


class TestEnvPlaceholders:
    """${env:NAME} reads the environment the way Spice's env store does."""

    def test_env_resolved(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """${env:NAME} is replaced by os.environ[NAME]."""
        monkeypatch.setenv("PG_PASS", SECRET)
        assert resolve_placeholders("${env:PG_PASS}", dataset="d") == SECRET

    def test_spice_prefix_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """SPICE_<NAME> takes precedence over <NAME>, as in Spice's env secret store."""
        monkeypatch.setenv("PG_PASS", "plain")
        monkeypatch.setenv("SPICE_PG_PASS", "prefixed")
        assert resolve_placeholders("${env:PG_PASS}", dataset="d") == "prefixed"

    def test_lowercase_exact_name(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A lower-case variable name still resolves when only the exact name is set."""
        monkeypatch.setenv("pg_pass", "lower")
        assert resolve_placeholders("${env:pg_pass}", dataset="d") == "lower"

    def test_inside_larger_string(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Several placeholders inside one string (a connection string) are all replaced."""
        monkeypatch.setenv("MY_TOKEN", "user")
        monkeypatch.setenv("PG_PASS", SECRET)
        value = "postgres://${env:MY_TOKEN}:${ env : PG_PASS }@db:5432/x"
        assert resolve_placeholders(value, dataset="d") == f"postgres://user:{SECRET}@db:5432/x"

    @pytest.mark.parametrize(
        "value", ["plain", "${not a placeholder}", "${env:}", "$env:PG_PASS", "{env:PG_PASS}"]
    )
    def test_non_placeholders_untouched(self, value: str) -> None:
        """Text that is not a well-formed placeholder is returned unchanged (as Spice's lexer skips it)."""
        assert resolve_placeholders(value, dataset="d") == value
        assert not has_placeholders(value)


class TestSecretsPlaceholders:
    """${secrets:name}: environment first (upper-cased), then an Airflow Variable."""

    def test_secret_from_env_uppercased(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """${secrets:my_token} reads MY_TOKEN (the key upper-cased, Spice's convention)."""
        monkeypatch.setenv("MY_TOKEN", SECRET)
        assert resolve_placeholders("${secrets:my_token}", dataset="d") == SECRET

    def test_secret_spice_prefixed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """${secrets:my_token} prefers SPICE_MY_TOKEN."""
        monkeypatch.setenv("MY_TOKEN", "plain")
        monkeypatch.setenv("SPICE_MY_TOKEN", SECRET)
        assert resolve_placeholders("${secrets:my_token}", dataset="d") == SECRET

    def test_secret_from_airflow_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without an environment variable, the Airflow Variable of the same name is used."""
        # AIRFLOW_VAR_* is Airflow's own environment-variables secrets backend for Variables.
        monkeypatch.setenv("AIRFLOW_VAR_ACCEL_ONLY_VAR", SECRET)
        assert resolve_placeholders("${secrets:accel_only_var}", dataset="d") == SECRET

    def test_env_wins_over_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An environment variable takes precedence over an Airflow Variable."""
        monkeypatch.setenv("AIRFLOW_VAR_MY_TOKEN", "from-variable")
        monkeypatch.setenv("MY_TOKEN", "from-env")
        assert resolve_placeholders("${secrets:my_token}", dataset="d") == "from-env"

    def test_env_store_does_not_read_variables(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """${env:...} never falls back to Airflow Variables: it is the environment only."""
        monkeypatch.setenv("AIRFLOW_VAR_ACCEL_ONLY_VAR", SECRET)
        with pytest.raises(SpicepodError):
            resolve_placeholders("${env:accel_only_var}", dataset="d")

    def test_variable_lookup_failure_is_missing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """If Airflow cannot be asked (no context, no DB), the secret is reported missing, not crashed on."""
        from airflow.sdk import Variable

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("no Airflow context")

        monkeypatch.setattr(Variable, "get", broken)
        with pytest.raises(SpicepodError, match="cannot be resolved"):
            resolve_placeholders("${secrets:my_token}", dataset="d")


class TestMissingAndUnsupported:
    """Failures name the dataset, the field and the placeholder, never a value."""

    def test_missing_secret(self) -> None:
        """A missing secret is a SpicepodError naming dataset, field, placeholder and where to set it."""
        with pytest.raises(SpicepodError) as info:
            resolve_placeholders("${secrets:pg_pass}", dataset="taxi_trips", field="params.pg_pass")
        err = info.value
        assert (err.dataset, err.field) == ("taxi_trips", "params.pg_pass")
        message = str(err)
        assert message.startswith("Dataset taxi_trips: params.pg_pass placeholder ${secrets:pg_pass}")
        assert "SPICE_PG_PASS" in message and "PG_PASS" in message and "Airflow Variable 'pg_pass'" in message

    def test_error_never_contains_other_values(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When one of two placeholders is missing, the resolved one's value is not in the error."""
        monkeypatch.setenv("MY_TOKEN", SECRET)
        with pytest.raises(SpicepodError) as info:
            resolve_placeholders("${env:MY_TOKEN}/${env:PG_PASS}", dataset="d")
        assert SECRET not in str(info.value)
        assert "${env:PG_PASS}" in str(info.value)

    @pytest.mark.parametrize("store", ["keyring", "k8s", "aws_secrets_manager"])
    def test_unsupported_store(self, store: str) -> None:
        """Secret stores other than env and secrets are a clear error naming the store."""
        with pytest.raises(SpicepodError) as info:
            resolve_placeholders(f"${{{store}:pg_pass}}", dataset="d", field="params.pg_pass")
        assert repr(store) in str(info.value) and "${env:NAME}" in str(info.value)


class TestNoLeaks:
    """Resolved values stay out of logs and are handed to Airflow's masker."""

    def test_values_not_logged(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Resolving from env and from a Variable logs nothing containing the value."""
        monkeypatch.setenv("PG_PASS", SECRET)
        monkeypatch.setenv("AIRFLOW_VAR_ACCEL_ONLY_VAR", SECRET + "-var")
        with caplog.at_level(logging.DEBUG):
            resolve_params({"a": "${env:PG_PASS}", "b": "${secrets:accel_only_var}"}, "d")
        assert SECRET not in caplog.text

    def test_values_masked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Every resolved value is registered with Airflow's secrets masker."""
        import airflow.sdk.log

        masked: list[Any] = []
        monkeypatch.setattr(airflow.sdk.log, "mask_secret", lambda value, name=None: masked.append(value))
        monkeypatch.setenv("PG_PASS", SECRET)
        resolve_placeholders("${env:PG_PASS}", dataset="d")
        assert masked == [SECRET]


class TestResolveParams:
    """resolve_params resolves string values and leaves the rest alone."""

    def test_resolves_strings_only(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """String values are resolved; numbers, booleans and None pass through; the input is not mutated."""
        monkeypatch.setenv("PG_PASS", SECRET)
        params = {"pg_pass": "${env:PG_PASS}", "pg_port": 5432, "ssl": True, "none": None, "host": "db"}
        resolved = resolve_params(params, "d")
        assert resolved == {"pg_pass": SECRET, "pg_port": 5432, "ssl": True, "none": None, "host": "db"}
        assert params["pg_pass"] == "${env:PG_PASS}"

    def test_field_named_in_error(self) -> None:
        """The error from resolve_params names the parameter, prefixed as asked."""
        with pytest.raises(SpicepodError) as info:
            resolve_params({"pg_pass": "${env:PG_PASS}"}, "d", prefix="acceleration.params")
        assert info.value.field == "acceleration.params.pg_pass"
