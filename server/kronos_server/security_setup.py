"""Build the authenticator from settings: keys file, trusted allow-list, or a local dev key."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from kronos_server.security.auth import Authenticator
from kronos_server.security.devkey import DEV_KEYS_FILE, DevKey, ensure_dev_key
from kronos_server.security.keys import KeysFileError, load_keys
from kronos_server.settings import Settings


@dataclass(frozen=True)
class SecuritySetup:
    authenticator: Authenticator
    dev_key: DevKey | None


def served_keys_file(settings: Settings) -> Path | None:
    """The keys file ``serve`` reads: KRONOS_API_KEYS_FILE; else, unless trusted containers are
    configured, the local one in KRONOS_DEV_KEYS_DIR (with the dev key); else none."""
    if settings.api_keys_file is not None:
        return settings.api_keys_file
    if settings.trusted_container_set():
        return None
    return local_keys_file(settings)


def local_keys_file(settings: Settings) -> Path:
    """The local keys file: ``keys add`` writes here when no KRONOS_API_KEYS_FILE is set."""
    return settings.dev_keys_dir / DEV_KEYS_FILE


def build_security(settings: Settings) -> SecuritySetup:
    """Never open: with nothing configured, a local dev key is made and required."""
    trusted = settings.trusted_container_set()
    keys = None
    if settings.api_keys_file is not None:
        try:
            keys = load_keys(settings.api_keys_file)
        except KeysFileError as exc:  # the operator fixes the setting: name it
            raise KeysFileError(f"KRONOS_API_KEYS_FILE: {exc}") from None
    if trusted:
        logger.warning(
            "trusted-network mode: {} container(s) are accepted by x-container-name alone, without a key; "
            "use it only where the network itself authenticates callers",
            len(trusted),
        )
    dev_key = None
    if keys is None and not trusted:
        dev_key = ensure_dev_key(local_keys_file(settings))
        keys = load_keys(dev_key.keys_file)
        announce_dev_key(dev_key, settings)
    return SecuritySetup(Authenticator(keys, trusted), dev_key)


def announce_dev_key(dev_key: DevKey, settings: Settings) -> None:
    """Tell the developer how to call the server; on the terminal, never in the log stream."""
    verb = "created" if dev_key.created else "using"
    others = sorted(name for name in load_keys(dev_key.keys_file).containers if name != dev_key.container)
    sys.stderr.write(
        f"\nNo KRONOS_API_KEYS_FILE or KRONOS_TRUSTED_CONTAINERS configured: {verb} a local dev key.\n"
        f"  keys file: {dev_key.keys_file} (also: {', '.join(others) or 'no other containers'}; "
        f"add one with kronos-serve keys add NAME)\n"
        f"  key file:  {dev_key.key_file} (mode 0600)\n"
        f"  call with metadata  x-container-name: {dev_key.container}\n"
        f"                      authorization: Bearer $(cat {dev_key.key_file})\n"
        f"  e.g. kronos-client info --target localhost:{settings.grpc_port} "
        f"--container {dev_key.container} --key-file {dev_key.key_file}\n\n"
    )
    sys.stderr.flush()
