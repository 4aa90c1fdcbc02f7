"""A tokenizer + predictor pair with the context length they are served with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from kronos_server.model.checkpoint import (
    Loaded,
    load_predictor,
    load_tokenizer,
    predictor_config,
    tokenizer_config,
)
from kronos_server.model.location import DEFAULT_MODEL_DIR, resolve_checkpoint_dir
from kronos_server.model.pairing import check_pair
from kronos_server.model.predictor import KronosPredictor
from kronos_server.model.tokenizer import KronosTokenizer

__all__ = ["DEFAULT_MODEL_DIR", "ModelBundle", "load_bundle"]


@dataclass(frozen=True)
class ModelBundle:
    tokenizer_info: Loaded
    predictor_info: Loaded
    max_context: int
    device: torch.device

    @property
    def tokenizer(self) -> KronosTokenizer:
        return self.tokenizer_info.module  # type: ignore[return-value]

    @property
    def predictor(self) -> KronosPredictor:
        return self.predictor_info.module  # type: ignore[return-value]


def load_bundle(
    predictor_path: Path | None,
    tokenizer_path: Path | None,
    max_context: int,
    device: str = "cpu",
) -> ModelBundle:
    """Load both checkpoints (the embedded default model where a path is None), after checking
    from their configs that the predictor fits the tokenizer."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from kronos_server.errors import CheckpointError

        raise CheckpointError("KRONOS_DEVICE asks for CUDA but torch sees no CUDA device", field="device")
    tok_dir = resolve_checkpoint_dir(tokenizer_path or DEFAULT_MODEL_DIR / "tokenizer")
    pred_dir = resolve_checkpoint_dir(predictor_path or DEFAULT_MODEL_DIR / "predictor")
    # configs first: a pairing mistake is refused before any weights are read
    check_pair(
        predictor_config(pred_dir),
        pred_dir,
        tokenizer_config(tok_dir),
        tok_dir,
        predictor_embedded=predictor_path is None,
        tokenizer_embedded=tokenizer_path is None,
    )
    tok = load_tokenizer(tok_dir)
    pred = load_predictor(pred_dir)
    tok.module.to(dev)
    pred.module.to(dev)
    return ModelBundle(tok, pred, max_context, dev)
