"""Hub-format checkpoints: ``config.json`` + ``model.safetensors``, strict key/shape matching."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from kronos_server.errors import CheckpointError
from kronos_server.model.config import PredictorConfig, TokenizerConfig
from kronos_server.model.location import checkpoint_name, resolve_checkpoint_dir
from kronos_server.model.predictor import KronosPredictor
from kronos_server.model.tokenizer import KronosTokenizer

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_M = TypeVar("_M", bound=nn.Module)


@dataclass(frozen=True)
class Loaded:
    """A loaded module with its name and content-hash version."""

    module: nn.Module
    name: str
    version: str
    path: Path


def content_version(directory: Path) -> str:
    """sha256 over the config and weights bytes: identical files, identical version."""
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        digest.update(name.encode())
        with (directory / name).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:16]


def _read_config(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist", field=str(directory))
    path = directory / CONFIG_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing", field=str(path)) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not readable JSON: {exc}", field=str(path)) from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} must hold a JSON object", field=str(path))
    return raw


def _load_strict(module: _M, directory: Path) -> _M:
    path = directory / WEIGHTS_FILE
    try:
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing", field=str(path)) from None
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}", field=str(path)) from None
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(
        f"{k}: file {tuple(tensors[k].shape)} != model {tuple(expected[k].shape)}"
        for k in set(expected) & set(tensors)
        if tensors[k].shape != expected[k].shape
    )
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        if wrong:
            parts.append(f"shape mismatches {wrong}")
        raise CheckpointError(
            f"{path} does not match the architecture in config.json: " + "; ".join(parts),
            field=str(path),
            details={"missing": missing, "unexpected": unexpected, "shape_mismatch": wrong},
        )
    for key, tensor in tensors.items():
        if tensor.dtype != expected[key].dtype:
            tensors[key] = tensor.to(expected[key].dtype)
    module.load_state_dict(tensors, strict=True)
    module.eval()
    module.requires_grad_(False)
    return module


def tokenizer_config(directory: Path) -> TokenizerConfig:
    """The tokenizer config of a resolved checkpoint directory."""
    return TokenizerConfig.from_dict(_read_config(directory), where=str(directory))


def predictor_config(directory: Path) -> PredictorConfig:
    """The predictor config of a resolved checkpoint directory."""
    return PredictorConfig.from_dict(_read_config(directory), where=str(directory))


def load_tokenizer(directory: str | Path) -> Loaded:
    """A tokenizer from a checkpoint directory or Hugging Face cache entry (see ``location``)."""
    d = resolve_checkpoint_dir(Path(directory))
    cfg = tokenizer_config(d)
    tok = _load_strict(KronosTokenizer(cfg), d)
    basis = tok.state_dict()["tokenizer.bsq.basis"]
    c = cfg.codebook_dim
    want = 2 ** torch.arange(c - 1, -1, -1, dtype=torch.int64)
    if not torch.equal(basis.cpu(), want):
        raise CheckpointError(f"{d}: tokenizer.bsq.basis is not the MSB-first basis of {c} bits")
    return Loaded(tok, checkpoint_name(d, "tokenizer"), content_version(d), d)


def load_predictor(directory: str | Path) -> Loaded:
    """A predictor from a checkpoint directory or Hugging Face cache entry (see ``location``)."""
    d = resolve_checkpoint_dir(Path(directory))
    cfg = predictor_config(d)
    return Loaded(
        _load_strict(KronosPredictor(cfg), d), checkpoint_name(d, "predictor"), content_version(d), d
    )


def save_checkpoint(module: KronosTokenizer | KronosPredictor, directory: str | Path) -> str:
    """Write ``module`` in hub format (sorted keys, float32) and return its version."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / CONFIG_FILE).write_text(json.dumps(module.config.to_dict(), indent=2, sort_keys=True) + "\n")
    state = {k: v.detach().contiguous().cpu() for k, v in sorted(module.state_dict().items())}
    save_file(state, str(d / WEIGHTS_FILE))
    return content_version(d)
