"""``kronos-serve keys``: add prints the key once and stores its hash; list shows no hashes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import grpc
import pytest

from kronos_client import ClientConfig, KronosClient, KronosClientError
from kronos_server.cli import main
from kronos_server.security.keys import hash_key, load_keys
from kronos_server.security.ratelimit import RateSpec
from kronos_server.settings import Settings
from tests.processes import ServerProcess, parity_env


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"KRONOS_{name.upper()}", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_prints_the_key_once_and_stores_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    code, out, err = run(
        capsys,
        "keys", "add", "pricing-bot", "--file", str(path),
        "--rate-limit", "10/second", "--methods", "PredictSingle,GetModelInfo",
    )  # fmt: skip
    assert code == 0, err
    key = out.strip()
    assert out == key + "\n" and key.startswith("ks_")
    assert (out + err).count(key) == 1
    assert "x-container-name: pricing-bot" in err and "authorization: Bearer <key>" in err
    text = path.read_text()
    assert key not in text and hash_key(key) in text
    entry = load_keys(path).get("pricing-bot")
    assert entry is not None
    assert entry.rate_limit == RateSpec(10, 1.0)
    assert entry.methods == frozenset({"PredictSingle", "GetModelInfo"})


def test_add_refuses_a_duplicate_and_rotates_with_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    _, first, _ = run(capsys, "keys", "add", "bot", "--file", str(path))
    code, out, err = run(capsys, "keys", "add", "bot", "--file", str(path))
    assert code == 2 and out == ""
    assert "already exists" in err and str(path) in err
    code, second, _ = run(capsys, "keys", "add", "bot", "--file", str(path), "--replace")
    assert code == 0 and second != first
    assert json.loads(path.read_text())["containers"]["bot"]["key_sha256"] == hash_key(second.strip())


def test_add_uses_the_setting_then_the_default_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = tmp_path / "configured.json"
    monkeypatch.setenv("KRONOS_API_KEYS_FILE", str(configured))
    assert run(capsys, "keys", "add", "a")[0] == 0
    assert "a" in load_keys(configured)
    monkeypatch.delenv("KRONOS_API_KEYS_FILE")
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "keys", "add", "b")[0] == 0
    assert "b" in load_keys(tmp_path / ".kronos" / "api-keys.json")


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--rate-limit", "often"], "invalid rate limit 'often'"),
        (["--methods", "PredictSingle,Nope"], "unknown method(s) Nope"),
    ],
)
def test_add_bad_flags_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    code, out, err = run(capsys, "keys", "add", "bot", "--file", str(tmp_path / "k.json"), *extra)
    assert code == 2 and out == ""
    assert fragment in err


def test_add_bad_name_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "keys", "add", "no spaces", "--file", str(tmp_path / "k.json"))
    assert code == 2 and "invalid container name" in err


def test_list_shows_names_limits_and_methods_but_no_hashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    run(capsys, "keys", "add", "alpha", "--file", str(path), "--rate-limit", "600/minute")
    run(capsys, "keys", "add", "beta", "--file", str(path), "--methods", "GetModelInfo")
    code, out, err = run(capsys, "keys", "list", "--file", str(path))
    assert code == 0, err
    lines = out.splitlines()
    assert lines == [
        "alpha\trate_limit=600/minute\tmethods=*",
        "beta\trate_limit=default (100/minute)\tmethods=GetModelInfo",
    ]
    for entry in load_keys(path).containers.values():
        assert entry.key_sha256 not in out


def test_list_of_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "keys", "list", "--file", str(tmp_path / "absent.json"))
    assert code == 2 and out == ""
    assert "does not exist" in err


def test_keys_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["keys"])
    assert info.value.code == 2


# -- which file serve reads: the local keys file holds the dev key and what keys add writes --


def test_add_without_configuration_says_serve_reads_the_local_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "keys", "add", "bob")
    assert code == 0
    assert "serve reads this local keys file" in err and "restart it" in err
    assert "bob" in load_keys(tmp_path / ".kronos" / "api-keys.json")


def test_add_says_how_to_enable_a_file_serve_would_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.json"
    monkeypatch.setenv("KRONOS_API_KEYS_FILE", str(tmp_path / "configured.json"))
    _, _, err = run(capsys, "keys", "add", "bob", "--file", str(other))
    assert f"it reads {tmp_path / 'configured.json'}" in err and f"set KRONOS_API_KEYS_FILE={other}" in err
    monkeypatch.delenv("KRONOS_API_KEYS_FILE")
    monkeypatch.setenv("KRONOS_TRUSTED_CONTAINERS", "gateway")
    monkeypatch.chdir(tmp_path)
    _, _, err = run(capsys, "keys", "add", "carol")
    assert "KRONOS_TRUSTED_CONTAINERS is set" in err
    assert f"set KRONOS_API_KEYS_FILE={Path('.kronos') / 'api-keys.json'}" in err


def _serve_unconfigured(cwd: Path) -> ServerProcess:
    """`kronos-serve serve` in ``cwd`` with no keys file and no trusted containers (as make run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRONOS_")}
    env.update(parity_env(cwd / "unused.json"))
    del env["KRONOS_API_KEYS_FILE"]
    process = ServerProcess(env=env, cwd=cwd, inherit_env=False)
    process.wait_ready()
    return process


def _model_info_as(target: str, container: str, key: str) -> int:
    with KronosClient(ClientConfig(target, container=container, key=key, retries=0, timeout=20)) as client:
        return client.model_info().max_context


def test_a_key_added_after_make_run_works_on_the_next_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _serve_unconfigured(tmp_path)
    try:
        dev_key = (tmp_path / ".kronos" / "dev-key.txt").read_text().strip()
        assert _model_info_as(first.target, "dev", dev_key) == 64
    finally:
        first.stop()
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "keys", "add", "bob")
    assert code == 0
    bob = out.strip()
    second = _serve_unconfigured(tmp_path)
    try:
        assert _model_info_as(second.target, "bob", bob) == 64
        # the dev key is kept beside bob, unchanged
        assert (tmp_path / ".kronos" / "dev-key.txt").read_text().strip() == dev_key
        assert _model_info_as(second.target, "dev", dev_key) == 64
        with pytest.raises(KronosClientError) as refused:
            _model_info_as(second.target, "bob", dev_key)
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
        assert "bob" in "".join(second.lines)  # the start-up banner names the other containers
    finally:
        second.stop()
