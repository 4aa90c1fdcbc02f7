"""Settings: KRONOS_* variables take effect, bad values name the variable, flags win."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kronos_server.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"KRONOS_{name.upper()}", raising=False)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.model_path is None and settings.tokenizer_path is None
    assert settings.max_context == 512
    assert settings.device == "cpu"
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("variable", "text", "field", "value"),
    [
        ("KRONOS_MAX_CONTEXT", "1024", "max_context", 1024),
        ("KRONOS_MODEL_PATH", "/models/kronos-small", "model_path", Path("/models/kronos-small")),
        ("KRONOS_DEVICE", "cuda:1", "device", "cuda:1"),
        ("KRONOS_INFERENCE_TIMEOUT", "2.5", "inference_timeout", 2.5),
        ("KRONOS_LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("KRONOS_LOG_FORMAT", "text", "log_format", "text"),
        ("KRONOS_DEFAULT_TOP_P", "0.5", "default_top_p", 0.5),
        ("KRONOS_HTTP_PORT", "8080", "http_port", 8080),
        ("KRONOS_BRIDGE_CONTAINER", "rest-bridge", "bridge_container", "rest-bridge"),
        ("KRONOS_BRIDGE_KEY_FILE", "/run/secrets/bridge", "bridge_key_file", Path("/run/secrets/bridge")),
    ],
)
def test_environment_variable_takes_effect(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str, field: str, value: object
) -> None:
    monkeypatch.setenv(variable, text)
    assert getattr(load_settings(), field) == value


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("KRONOS_MAX_CONTEXT", "0"),
        ("KRONOS_MAX_CONTEXT", "lots"),
        ("KRONOS_DEVICE", "tpu"),
        ("KRONOS_LOG_LEVEL", "LOUD"),
        ("KRONOS_LOG_FORMAT", "xml"),
        ("KRONOS_DEFAULT_TOP_P", "1.5"),
        ("KRONOS_INFERENCE_TIMEOUT", "-1"),
        ("KRONOS_MAX_SAMPLE_COUNT", "5000"),
        ("KRONOS_HTTP_PORT", "70000"),
        ("KRONOS_BRIDGE_CONTAINER", "no spaces please"),
    ],
)
def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, text: str) -> None:
    monkeypatch.setenv(variable, text)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRONOS_MAX_CONTEXT", "1024")
    monkeypatch.setenv("KRONOS_DEVICE", "cuda")
    settings = load_settings(max_context=64, device=None)
    assert settings.max_context == 64
    # None means "flag not given": the environment's value stays
    assert settings.device == "cuda"


def test_invalid_flag_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="KRONOS_MAX_CONTEXT"):
        load_settings(max_context=-5)


def test_a_flag_overrides_an_invalid_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRONOS_MAX_CONTEXT", "lots")
    assert load_settings(max_context=128).max_context == 128


def test_limits_follow_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRONOS_MAX_SAMPLE_COUNT", "4")
    monkeypatch.setenv("KRONOS_DEFAULT_SAMPLE_COUNT", "10")
    monkeypatch.setenv("KRONOS_MIN_HISTORY", "7")
    limits = load_settings(max_context=100).limits()
    assert (limits.max_context, limits.max_sample_count, limits.min_history) == (100, 4, 7)
    # the default never exceeds the maximum
    assert limits.default_sample_count == 4


def test_settings_are_immutable() -> None:
    settings = load_settings()
    with pytest.raises(ValueError):
        settings.max_context = 1


def test_every_setting_has_the_readme_meaning_as_its_description() -> None:
    """One table: the help text (the field's description) says what the README's table says."""
    from tests.docs.test_readme import documented

    def plain(markdown: str) -> str:
        return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown).replace("`", "").strip()

    table = documented()
    for name, field in Settings.model_fields.items():
        meaning = plain(table[f"KRONOS_{name.upper()}"][1])
        assert field.description == meaning, f"KRONOS_{name.upper()}: README and Settings disagree"
