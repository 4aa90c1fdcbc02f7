"""The local development key: made once, found again, repaired when its copy is lost."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kronos_server.security.auth import Authenticator
from kronos_server.security.devkey import ensure_dev_key
from kronos_server.security.keys import KeysFileError, add_key, hash_key, load_keys


def test_first_run_creates_both_files_private(tmp_path: Path) -> None:
    path = tmp_path / ".kronos" / "dev-keys.json"
    dev = ensure_dev_key(path)
    assert dev.created and dev.container == "dev" and dev.keys_file == path
    assert dev.key_file == path.parent / "dev-key.txt"
    assert dev.key_file.read_text() == dev.key + "\n"
    for file in (path, dev.key_file):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert dev.key not in path.read_text()
    assert dev.key not in repr(dev)
    store = load_keys(path)
    entry = store.get("dev")
    assert entry is not None and entry.key_sha256 == hash_key(dev.key)
    # the key works
    assert Authenticator(store).authenticate("dev", f"Bearer {dev.key}", "PredictSingle").mode == "key"


def test_second_run_returns_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "dev-keys.json"
    first = ensure_dev_key(path)
    before = path.read_text()
    second = ensure_dev_key(path)
    assert not second.created
    assert second.key == first.key
    assert path.read_text() == before


def test_a_lost_key_copy_makes_a_new_key(tmp_path: Path) -> None:
    path = tmp_path / "dev-keys.json"
    first = ensure_dev_key(path)
    first.key_file.unlink()
    second = ensure_dev_key(path)
    assert second.created and second.key != first.key
    assert second.key_file.read_text().strip() == second.key
    entry = load_keys(path).get("dev")
    assert entry is not None and entry.key_sha256 == hash_key(second.key)


def test_a_stale_key_copy_makes_a_new_key_and_keeps_other_containers(tmp_path: Path) -> None:
    path = tmp_path / "dev-keys.json"
    other = add_key(path, "other")
    first = ensure_dev_key(path)
    first.key_file.write_text("ks_stale\n")
    second = ensure_dev_key(path)
    assert second.created and second.key not in {first.key, "ks_stale"}
    entry = load_keys(path).get("other")
    assert entry is not None and entry.key_sha256 == hash_key(other)


def test_a_corrupt_dev_keys_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "dev-keys.json"
    path.write_text("[]")
    with pytest.raises(KeysFileError, match=r"dev-keys\.json"):
        ensure_dev_key(path)
