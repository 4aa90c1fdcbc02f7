"""Random-weight checkpoints for the loader tests, as plain directories or a Hugging Face cache."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

from kronos_server.model.checkpoint import save_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@cache
def _randomweights() -> ModuleType:
    """benchmarks/randomweights.py: the one definition of random-weight models (not a package)."""
    if "randomweights" in sys.modules:  # imported from benchmarks/ by another test already
        return sys.modules["randomweights"]
    spec = importlib.util.spec_from_file_location("randomweights", ROOT / "benchmarks" / "randomweights.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["randomweights"] = module  # its dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def write_pair(
    out: Path, *, predictor_bits: tuple[int, int] = (8, 8), tokenizer_bits: int = 8, d_in: int = 6
) -> tuple[Path, Path]:
    """The benchmarks' tiny model with the given code-book sizes: (predictor dir, tokenizer dir)."""
    rw = _randomweights()
    s1, s2 = predictor_bits
    predictor = dataclasses.replace(rw.TINY.predictor, s1_bits=s1, s2_bits=s2)
    tokenizer = dataclasses.replace(
        rw.TINY.tokenizer, s1_bits=tokenizer_bits, s2_bits=tokenizer_bits, d_in=d_in
    )
    tok, pred = rw.random_models(predictor, tokenizer)
    save_checkpoint(pred, out / "predictor")
    save_checkpoint(tok, out / "tokenizer")
    return out / "predictor", out / "tokenizer"


def hub_cache(hub: Path, repo_id: str, checkpoint: Path, *, refs: bool = True) -> tuple[Path, Path]:
    """Lay ``checkpoint`` out as huggingface_hub's cache does under ``hub`` (``$HF_HOME/hub``):
    ``models--ORG--NAME/blobs/<sha256>``, ``snapshots/<commit>/<file>`` symlinked to
    ``../../blobs/<sha256>``, and ``refs/main`` holding the commit. Returns (repo dir, snapshot)."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True)
    for file in sorted(checkpoint.iterdir()):
        data = file.read_bytes()
        blob = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        os.symlink(Path("..", "..", "blobs", blob), snapshot / file.name)
    if refs:
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(commit)  # huggingface_hub writes it without a newline
    return repo, snapshot
