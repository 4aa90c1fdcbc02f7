"""A tokenizer + predictor pair with the context length they are served with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from kronos_server.model.checkpoint import Loaded, load_predictor, load_tokenizer
from kronos_server.model.predictor import KronosPredictor
from kronos_server.model.tokenizer import KronosTokenizer

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "default_model"


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
    """Load both checkpoints (the embedded default model where a path is None)."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from kronos_server.errors import CheckpointError

        raise CheckpointError("KRONOS_DEVICE asks for CUDA but torch sees no CUDA device", field="device")
    tok = load_tokenizer(tokenizer_path or DEFAULT_MODEL_DIR / "tokenizer")
    pred = load_predictor(predictor_path or DEFAULT_MODEL_DIR / "predictor")
    tok.module.to(dev)
    pred.module.to(dev)
    return ModelBundle(tok, pred, max_context, dev)
