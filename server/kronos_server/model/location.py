"""Where a checkpoint's files are, and the name it is served under.

A checkpoint directory is given as a plain directory (``config.json`` + ``model.safetensors``,
for example one written by ``huggingface-cli download REPO --local-dir DIR``), as a Hugging
Face cache snapshot (``.../models--ORG--NAME/snapshots/<commit>/``, whose files are symlinks
into ``../../blobs/``), or as the cache's repository directory (``.../models--ORG--NAME``,
served at the snapshot its ``refs/main`` names). Only path logic: no hub client, no network.
"""

from __future__ import annotations

import re
from pathlib import Path

from kronos_server.errors import CheckpointError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "default_model"

# the embedded model is a small demo trained by `make train-default`, not a published Kronos
# checkpoint: its names say so wherever the model is reported (GetModelInfo, /v1/models, readyz)
EMBEDDED_NAMES = {
    "predictor": "kronos-serve-embedded-demo",
    "tokenizer": "kronos-serve-embedded-demo-tokenizer",
}

_REPO_DIR = re.compile(r"^models--(?P<id>[^/]+)$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_DEFAULT_REF = "main"


def _repo_id(cache_dir_name: str) -> str | None:
    """``models--NeoQuasar--Kronos-small`` -> ``NeoQuasar/Kronos-small`` (hub ids never hold ``--``)."""
    match = _REPO_DIR.match(cache_dir_name)
    return match.group("id").replace("--", "/") if match else None


def _snapshot_of(repo_dir: Path) -> Path:
    """The snapshot ``refs/main`` points to; without refs, the only snapshot there is."""
    ref = repo_dir / "refs" / _DEFAULT_REF
    snapshots = repo_dir / "snapshots"
    if ref.is_file():
        commit = ref.read_text().strip()
        snapshot = snapshots / commit
        if not snapshot.is_dir():
            raise CheckpointError(
                f"{repo_dir}: refs/{_DEFAULT_REF} names snapshot {commit}, which is not in {snapshots}",
                field=str(repo_dir),
            )
        return snapshot
    found = sorted(p for p in snapshots.iterdir() if p.is_dir()) if snapshots.is_dir() else []
    if len(found) == 1:
        return found[0]
    raise CheckpointError(
        f"{repo_dir} is a Hugging Face cache directory without refs/{_DEFAULT_REF} and with "
        f"{len(found)} snapshots: give one snapshot directory ({snapshots}/<commit>)",
        field=str(repo_dir),
    )


def resolve_checkpoint_dir(directory: Path) -> Path:
    """The directory holding ``config.json``: ``directory`` itself, or for a Hugging Face cache
    repository directory its current snapshot."""
    if _repo_id(directory.name) is not None and (directory / "snapshots").is_dir():
        return _snapshot_of(directory)
    return directory


def checkpoint_name(directory: Path, kind: str) -> str:
    """A readable name for ``directory`` (a resolved checkpoint directory) of ``kind``
    ``predictor`` or ``tokenizer``: the embedded model's own names, the hub id of a cache
    snapshot (never its commit hash), else the directory's name."""
    real = directory.resolve()
    if real == (DEFAULT_MODEL_DIR / kind).resolve():
        return EMBEDDED_NAMES[kind]
    # the snapshot path itself, not its resolution: a snapshot directory is real, but a
    # caller may reach it through a symlink of its own
    for candidate in (directory.absolute(), real):
        if _COMMIT.match(candidate.name) and candidate.parent.name == "snapshots":
            repo = _repo_id(candidate.parent.parent.name)
            if repo is not None:
                return repo
    return real.name
