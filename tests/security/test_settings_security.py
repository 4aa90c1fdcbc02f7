"""The security settings: defaults, parsing, and start-up errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from kronos_server.security.ratelimit import RateSpec
from kronos_server.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"KRONOS_{name.upper()}", raising=False)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.api_keys_file is None
    assert settings.trusted_container_set() == frozenset()
    assert settings.rate_limit_spec() == RateSpec(100, 60.0)
    assert settings.dev_keys_dir == Path(".kronos")


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRONOS_API_KEYS_FILE", "/etc/kronos/keys.json")
    monkeypatch.setenv("KRONOS_TRUSTED_CONTAINERS", " legacy-app, worker.1 ,,")
    monkeypatch.setenv("KRONOS_RATE_LIMIT", "10/second")
    monkeypatch.setenv("KRONOS_DEV_KEYS_DIR", "/tmp/dev")
    settings = load_settings()
    assert settings.api_keys_file == Path("/etc/kronos/keys.json")
    assert settings.trusted_container_set() == frozenset({"legacy-app", "worker.1"})
    assert settings.rate_limit_spec() == RateSpec(10, 1.0)
    assert settings.dev_keys_dir == Path("/tmp/dev")


@pytest.mark.parametrize(
    ("variable", "text", "fragment"),
    [
        ("KRONOS_RATE_LIMIT", "lots", "invalid rate limit 'lots'"),
        ("KRONOS_RATE_LIMIT", "0/minute", "0/minute"),
        ("KRONOS_TRUSTED_CONTAINERS", "good,bad name", "invalid container name 'bad name'"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, text)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert variable in str(info.value) and fragment in str(info.value)
