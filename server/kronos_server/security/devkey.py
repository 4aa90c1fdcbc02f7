"""A local development key, so ``make run`` is authenticated without any set-up.

Used only when neither ``KRONOS_API_KEYS_FILE`` nor ``KRONOS_TRUSTED_CONTAINERS`` is
configured. The dev container is one entry of the local keys file
(``KRONOS_DEV_KEYS_DIR/api-keys.json``), the same file ``kronos-serve keys add`` writes to
when no keys file is configured, so containers added there work on the next start. The
plaintext dev key is kept beside it in ``dev-key.txt`` (0600): it is a local credential the
developer must be able to find again.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path

from kronos_server.security.keys import (
    DEFAULT_KEYS_FILE,
    KeyStore,
    add_key,
    hash_key,
    load_keys,
    write_private,
)

DEV_CONTAINER = "dev"
DEV_KEYS_FILE = DEFAULT_KEYS_FILE.name  # api-keys.json, in KRONOS_DEV_KEYS_DIR
DEV_KEY_FILE = "dev-key.txt"


@dataclass(frozen=True)
class DevKey:
    container: str
    key: str = field(repr=False)
    keys_file: Path
    created: bool  # True when a new key was made (first run, or the saved one was lost)

    @property
    def key_file(self) -> Path:
        return self.keys_file.parent / DEV_KEY_FILE


def _saved_key(store: KeyStore, key_file: Path) -> str | None:
    """The key in ``dev-key.txt`` if it is still the dev container's key."""
    entry = store.get(DEV_CONTAINER)
    try:
        key = key_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if entry is None or not key or not hmac.compare_digest(hash_key(key), entry.key_sha256):
        return None
    return key


def ensure_dev_key(path: Path) -> DevKey:
    """The dev container's key from ``path`` (e.g. ``.kronos/api-keys.json``), made if needed.

    Idempotent: once both files exist and agree, the same key is returned. A missing or
    stale ``dev-key.txt`` gets a fresh key (the old one stops working). Other containers
    in the file are left alone; a corrupt keys file raises KeysFileError.
    """
    key_file = path.parent / DEV_KEY_FILE
    if path.exists():
        key = _saved_key(load_keys(path), key_file)
        if key is not None:
            return DevKey(DEV_CONTAINER, key, path, created=False)
    key = add_key(path, DEV_CONTAINER, replace=True)
    write_private(key_file, key + "\n")
    return DevKey(DEV_CONTAINER, key, path, created=True)
