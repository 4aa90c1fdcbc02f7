"""The API keys file: per-container key hashes, rate limits and allowed methods.

The file (``KRONOS_API_KEYS_FILE``) is JSON::

    {"version": 1,
     "containers": {"pricing-bot": {"key_sha256": "<64 hex>",
                                    "rate_limit": "600/minute",
                                    "methods": ["PredictSingle", "GetModelInfo"]}}}

``rate_limit`` is optional (default: ``KRONOS_RATE_LIMIT``), ``methods`` too (default,
or ``["*"]``: every method). Only hashes are stored; a plaintext key is shown once,
by :func:`add_key`. Nothing here ever puts key material in a message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kronos_server.security.ratelimit import RateSpec

FILE_VERSION = 1
DEFAULT_KEYS_FILE = Path(".kronos/api-keys.json")
KEY_PREFIX = "ks_"
# the short names of the kronos.v1 Predictor RPCs; a keys file naming others is refused
RPC_METHODS = frozenset({"PredictSingle", "PredictBatch", "PredictStream", "GetModelInfo", "Backtest"})
ALL_METHODS = "*"
CONTAINER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_ENTRY_FIELDS = frozenset({"key_sha256", "rate_limit", "methods", "created"})


class KeysFileError(ValueError):
    """The keys file is missing, unreadable or invalid; the message names the path."""


def is_container_name(name: str) -> bool:
    return CONTAINER_NAME.fullmatch(name) is not None


def validate_container_name(name: str) -> str:
    """``name`` if it is a valid container name, else ValueError."""
    if not is_container_name(name):
        raise ValueError(
            f"invalid container name {name[:140]!r}: 1-128 characters, letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return name


def validate_methods(methods: Iterable[str]) -> frozenset[str] | None:
    """The allowed RPC names, or None for all of them (``*``); ValueError for unknown names."""
    given = [m.strip() for m in methods]
    if not given:
        raise ValueError("methods must name at least one method (or '*' for all)")
    if ALL_METHODS in given:
        if len(given) > 1:
            raise ValueError("methods: '*' (all) cannot be combined with method names")
        return None
    unknown = sorted(set(given) - RPC_METHODS)
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; expected {', '.join(sorted(RPC_METHODS))}")
    return frozenset(given)


def generate_key() -> str:
    """A fresh API key: 256 random bits, URL-safe, with a recognisable prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The SHA-256 hex digest stored for a key.

    A fast hash is enough here: the keys are 256-bit random strings, not passwords, so
    there is nothing to brute-force and no need for a slow, salted KDF.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ContainerEntry:
    """One container of the keys file; ``methods`` None means every method."""

    name: str
    key_sha256: str = field(repr=False)
    rate_limit: RateSpec | None = None
    methods: frozenset[str] | None = None
    created: str | None = None

    def allows(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key_sha256": self.key_sha256}
        if self.rate_limit is not None:
            out["rate_limit"] = str(self.rate_limit)
        out["methods"] = [ALL_METHODS] if self.methods is None else sorted(self.methods)
        if self.created is not None:
            out["created"] = self.created
        return out


@dataclass(frozen=True)
class KeyStore:
    """The parsed keys file: container name -> entry."""

    containers: Mapping[str, ContainerEntry] = field(default_factory=dict)
    version: int = FILE_VERSION

    def get(self, name: str) -> ContainerEntry | None:
        return self.containers.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.containers

    def __len__(self) -> int:
        return len(self.containers)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "containers": {name: self.containers[name].to_json() for name in sorted(self.containers)},
        }


def _entry(name: str, raw: object) -> ContainerEntry:
    """One container's entry; ValueError names the field (never its value)."""
    if not isinstance(raw, dict):
        raise ValueError("must be an object")
    extra = sorted(set(raw) - _ENTRY_FIELDS)
    if extra:
        raise ValueError(f"unknown field(s) {', '.join(map(repr, extra))}")
    digest = raw.get("key_sha256")
    if not isinstance(digest, str) or not _HEX_DIGEST.fullmatch(digest.lower()):
        raise ValueError("key_sha256 must be a SHA-256 hex digest (64 hexadecimal characters)")
    rate: RateSpec | None = None
    if raw.get("rate_limit") is not None:
        if not isinstance(raw["rate_limit"], str):
            raise ValueError("rate_limit must be a string such as '600/minute'")
        try:
            rate = RateSpec.parse(raw["rate_limit"])
        except ValueError as exc:
            raise ValueError(f"rate_limit: {exc}") from None
    methods: frozenset[str] | None = None
    if raw.get("methods") is not None:
        listed = raw["methods"]
        if not isinstance(listed, list) or not all(isinstance(m, str) for m in listed):
            raise ValueError("methods must be a list of method names (or ['*'])")
        try:
            methods = validate_methods(listed)
        except ValueError as exc:
            raise ValueError(f"methods: {exc}") from None
    created = raw.get("created")
    if created is not None and not isinstance(created, str):
        raise ValueError("created must be a string")
    return ContainerEntry(name, digest.lower(), rate, methods, created)


def parse_keys(payload: object) -> KeyStore:
    """A KeyStore from the decoded JSON; ValueError names the container and field."""
    if not isinstance(payload, dict):
        raise ValueError("top level must be a JSON object")
    version = payload.get("version")
    if type(version) is not int or version != FILE_VERSION:  # JSON true == 1 in Python
        raise ValueError(f"version must be {FILE_VERSION}")
    raw = payload.get("containers")
    if not isinstance(raw, dict):
        raise ValueError("containers must be an object mapping container names to entries")
    entries: dict[str, ContainerEntry] = {}
    for name, body in raw.items():
        validate_container_name(name)
        try:
            entries[name] = _entry(name, body)
        except ValueError as exc:
            raise ValueError(f"container {name!r}: {exc}") from None
    return KeyStore(entries, FILE_VERSION)


def load_keys(path: Path) -> KeyStore:
    """Read and validate a keys file; KeysFileError names the path and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeysFileError(f"keys file {path} does not exist") from None
    except IsADirectoryError:
        raise KeysFileError(f"keys file {path} is a directory") from None
    except OSError as exc:
        raise KeysFileError(f"keys file {path} is unreadable: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise KeysFileError(f"keys file {path} is not UTF-8 text") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        # the decoder's message gives the position only, never the text
        raise KeysFileError(f"keys file {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    try:
        return parse_keys(payload)
    except ValueError as exc:
        raise KeysFileError(f"keys file {path}: {exc}") from None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically to ``path`` with mode 0600, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkstemp creates the file 0600 in the same directory, so os.replace is atomic
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def save_keys(path: Path, store: KeyStore) -> None:
    write_private(path, json.dumps(store.to_json(), indent=2) + "\n")


def add_key(
    path: Path,
    name: str,
    *,
    rate_limit: str | RateSpec | None = None,
    methods: Iterable[str] | None = None,
    replace: bool = False,
) -> str:
    """Add a container with a fresh key to the keys file; returns the plaintext key (once).

    Creates the file (0600, parent directories included) when absent. An existing name
    is refused unless ``replace`` (rotation: the old key stops working; its rate limit
    and methods are kept unless given again). Not safe against concurrent writers.
    """
    try:
        validate_container_name(name)
        spec = RateSpec.parse(rate_limit) if isinstance(rate_limit, str) else rate_limit
        allowed = validate_methods(methods) if methods is not None else None
    except ValueError as exc:
        raise KeysFileError(f"keys file {path}: {exc}") from None
    store = load_keys(path) if path.exists() else KeyStore()
    old = store.get(name)
    if old is not None and not replace:
        raise KeysFileError(
            f"keys file {path}: container {name!r} already exists; replace it to rotate its key"
        )
    if old is not None:
        spec = spec if spec is not None else old.rate_limit
        allowed = allowed if methods is not None else old.methods
    key = generate_key()
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    entries = dict(store.containers)
    entries[name] = ContainerEntry(name, hash_key(key), spec, allowed, created)
    save_keys(path, KeyStore(entries, FILE_VERSION))
    return key
