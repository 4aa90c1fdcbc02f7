"""``kronos-serve keys``: add prints the key once and stores its hash; list shows no hashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kronos_server.cli import main
from kronos_server.security.keys import hash_key, load_keys
from kronos_server.security.ratelimit import RateSpec
from kronos_server.settings import Settings


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
