"""The keys file: round trip, add and rotation, 0600 files, only hashes stored, clear errors."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from kronos_server.security.keys import (
    RPC_METHODS,
    KeysFileError,
    KeyStore,
    add_key,
    generate_key,
    hash_key,
    load_keys,
    save_keys,
    validate_container_name,
)
from kronos_server.security.ratelimit import RateSpec

DIGEST = "ab" * 32


def write(path: Path, payload: Any) -> Path:
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_keys_are_random_prefixed_and_hash_to_hex() -> None:
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    key = keys.pop()
    assert key.startswith("ks_") and len(key) >= 3 + 43
    digest = hash_key(key)
    assert len(digest) == 64 and digest == hash_key(key) and digest != hash_key(key + "x")


def test_load_a_full_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "keys.json",
        {
            "version": 1,
            "containers": {
                "pricing-bot": {
                    "key_sha256": DIGEST.upper(),
                    "rate_limit": "600/minute",
                    "methods": ["PredictSingle", "GetModelInfo"],
                },
                "all.v2": {"key_sha256": DIGEST, "methods": ["*"]},
                "plain_1": {"key_sha256": DIGEST},
            },
        },
    )
    store = load_keys(path)
    assert len(store) == 3 and "pricing-bot" in store and "nobody" not in store
    bot = store.get("pricing-bot")
    assert bot is not None
    assert bot.key_sha256 == DIGEST  # normalised to lower case
    assert bot.rate_limit == RateSpec(600, 60.0)
    assert bot.methods == frozenset({"PredictSingle", "GetModelInfo"})
    assert bot.allows("PredictSingle") and not bot.allows("PredictBatch")
    for name in ("all.v2", "plain_1"):
        entry = store.get(name)
        assert entry is not None and entry.methods is None and entry.rate_limit is None
        assert all(entry.allows(m) for m in RPC_METHODS)
    assert DIGEST not in repr(bot)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = write(
        tmp_path / "keys.json",
        {
            "version": 1,
            "containers": {
                "a": {"key_sha256": DIGEST, "rate_limit": "10/second", "methods": ["PredictBatch"]},
                "b": {"key_sha256": "cd" * 32},
            },
        },
    )
    store = load_keys(path)
    again = tmp_path / "again.json"
    save_keys(again, store)
    assert load_keys(again) == store
    assert mode(again) == 0o600


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ("{not json", "not valid JSON"),
        ([], "top level must be a JSON object"),
        ({"containers": {}}, "version must be 1"),
        ({"version": True, "containers": {}}, "version must be 1"),
        ({"version": 2, "containers": {}}, "version must be 1"),
        ({"version": 1}, "containers must be an object"),
        (
            {"version": 1, "containers": {"bad name": {"key_sha256": DIGEST}}},
            "invalid container name 'bad name'",
        ),
        ({"version": 1, "containers": {"a": "x"}}, "container 'a': must be an object"),
        ({"version": 1, "containers": {"a": {}}}, "container 'a': key_sha256 must be"),
        ({"version": 1, "containers": {"a": {"key_sha256": "abc"}}}, "container 'a': key_sha256 must be"),
        (
            {"version": 1, "containers": {"a": {"key_sha256": DIGEST, "rate_limit": "lots"}}},
            "container 'a': rate_limit: invalid rate limit 'lots'",
        ),
        (
            {"version": 1, "containers": {"a": {"key_sha256": DIGEST, "rate_limit": 5}}},
            "container 'a': rate_limit must be a string",
        ),
        (
            {"version": 1, "containers": {"a": {"key_sha256": DIGEST, "methods": ["Predict"]}}},
            "container 'a': methods: unknown method(s) Predict",
        ),
        (
            {"version": 1, "containers": {"a": {"key_sha256": DIGEST, "methods": []}}},
            "container 'a': methods: methods must name at least one",
        ),
        (
            {"version": 1, "containers": {"a": {"key_sha256": DIGEST, "methods": "*"}}},
            "container 'a': methods must be a list",
        ),
        (
            {"version": 1, "containers": {"a": {"key_sha256": DIGEST, "methods": ["*", "PredictSingle"]}}},
            "cannot be combined",
        ),
        (
            {"version": 1, "containers": {"a": {"key_sha256": DIGEST, "rate-limit": "1/s"}}},
            "container 'a': unknown field(s) 'rate-limit'",
        ),
    ],
)
def test_bad_files_name_the_path_and_the_problem(tmp_path: Path, payload: Any, problem: str) -> None:
    path = write(tmp_path / "keys.json", payload)
    with pytest.raises(KeysFileError) as info:
        load_keys(path)
    message = str(info.value)
    assert str(path) in message
    assert problem in message


def test_a_bad_digest_is_not_echoed(tmp_path: Path) -> None:
    secret = "not-a-digest-but-maybe-a-key-" + generate_key()
    path = write(tmp_path / "keys.json", {"version": 1, "containers": {"a": {"key_sha256": secret}}})
    with pytest.raises(KeysFileError) as info:
        load_keys(path)
    assert secret not in str(info.value)


def test_missing_unreadable_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeysFileError, match="does not exist"):
        load_keys(tmp_path / "absent.json")
    with pytest.raises(KeysFileError, match="is a directory"):
        load_keys(tmp_path)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(KeysFileError, match="not UTF-8"):
        load_keys(binary)
    locked = write(tmp_path / "locked.json", {"version": 1, "containers": {}})

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied")

    # chmod 000 does not stop root, so the refusal is simulated
    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(KeysFileError, match=r"locked\.json is unreadable: Permission denied"):
        load_keys(locked)


def test_add_creates_the_file_private_with_only_the_hash(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "keys.json"
    key = add_key(path, "pricing-bot", rate_limit="10/second", methods=["PredictSingle", "GetModelInfo"])
    assert mode(path) == 0o600
    text = path.read_text()
    assert key not in text
    assert hash_key(key) in text
    entry = load_keys(path).get("pricing-bot")
    assert entry is not None
    assert entry.key_sha256 == hash_key(key)
    assert entry.rate_limit == RateSpec(10, 1.0)
    assert entry.methods == frozenset({"PredictSingle", "GetModelInfo"})
    assert entry.created is not None and entry.created.endswith("Z")
    # no temporary files left behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["keys.json"]


def test_add_keeps_other_containers(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = add_key(path, "a")
    second = add_key(path, "b", rate_limit=RateSpec(5, 60.0))
    store = load_keys(path)
    assert {name: e.key_sha256 for name, e in store.containers.items()} == {
        "a": hash_key(first),
        "b": hash_key(second),
    }
    entry = store.get("a")
    assert entry is not None and entry.methods is None and entry.rate_limit is None


def test_add_refuses_an_existing_name_unless_replace(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    old = add_key(path, "bot", rate_limit="7/minute", methods=["PredictBatch"])
    with pytest.raises(KeysFileError, match="'bot' already exists"):
        add_key(path, "bot")
    entry = load_keys(path).get("bot")
    assert entry is not None and entry.key_sha256 == hash_key(old)


def test_rotation_replaces_the_key_and_keeps_limits(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    old = add_key(path, "bot", rate_limit="7/minute", methods=["PredictBatch"])
    new = add_key(path, "bot", replace=True)
    assert new != old
    entry = load_keys(path).get("bot")
    assert entry is not None
    assert entry.key_sha256 == hash_key(new)
    assert entry.rate_limit == RateSpec(7, 60.0) and entry.methods == frozenset({"PredictBatch"})
    assert hash_key(old) not in path.read_text()
    # given again, they change
    add_key(path, "bot", replace=True, rate_limit="1/second", methods=["*"])
    entry = load_keys(path).get("bot")
    assert entry is not None and entry.rate_limit == RateSpec(1, 1.0) and entry.methods is None
    assert mode(path) == 0o600


def test_rotation_of_a_widened_file_makes_it_private(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    add_key(path, "bot")
    path.chmod(0o644)
    add_key(path, "bot", replace=True)
    assert mode(path) == 0o600


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"name": "has space"}, "invalid container name"),
        ({"name": "-leading"}, "invalid container name"),
        ({"name": "x" * 129}, "invalid container name"),
        ({"name": "ok\n"}, "invalid container name"),
        ({"name": "ok", "rate_limit": "often"}, "invalid rate limit 'often'"),
        ({"name": "ok", "methods": ["Nope"]}, "unknown method(s) Nope"),
    ],
)
def test_add_validates_its_arguments(tmp_path: Path, kwargs: dict[str, Any], problem: str) -> None:
    path = tmp_path / "keys.json"
    with pytest.raises(KeysFileError) as info:
        add_key(path, **kwargs)
    assert problem in str(info.value) and str(path) in str(info.value)
    assert not path.exists()


def test_add_refuses_to_overwrite_a_corrupt_file(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.json", "{oops")
    with pytest.raises(KeysFileError, match="not valid JSON"):
        add_key(path, "bot")
    assert path.read_text() == "{oops"


@pytest.mark.parametrize("name", ["a", "A1", "pricing-bot", "svc.v2_x", "9" * 128])
def test_valid_container_names(name: str) -> None:
    assert validate_container_name(name) == name


def test_empty_store() -> None:
    store = KeyStore()
    assert len(store) == 0 and store.get("x") is None
    assert store.to_json() == {"version": 1, "containers": {}}
