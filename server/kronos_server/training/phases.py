"""The two training phases: the tokenizer, then the predictor on the frozen tokenizer."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from kronos_server.model.predictor import KronosPredictor
from kronos_server.model.tokenizer import KronosTokenizer
from kronos_server.training.bsq import tokenizer_loss
from kronos_server.training.config import PhaseSettings
from kronos_server.training.loop import PhaseResult, optimise
from kronos_server.training.s2_head import predictor_loss
from kronos_server.training.windows import WindowSampler


def train_tokenizer(
    tokenizer: KronosTokenizer,
    sampler: WindowSampler,
    settings: PhaseSettings,
    entropy_weight: float | None = None,
    column_weights: Sequence[float] | None = None,
) -> PhaseResult:
    """``entropy_weight`` None: the config's zeta; ``column_weights``: see ``tokenizer_loss``."""

    def step() -> dict[str, Tensor]:
        loss = tokenizer_loss(
            tokenizer, sampler.sample().x, entropy_weight=entropy_weight, column_weights=column_weights
        )
        return {
            "loss": loss.total,
            "mse": loss.recon_full,
            "mse_s1": loss.recon_coarse,
            "commit": loss.commit,
            "entropy": loss.entropy,
        }

    return optimise(tokenizer, step, settings, "tokenizer")


def train_predictor(
    predictor: KronosPredictor,
    tokenizer: KronosTokenizer,
    sampler: WindowSampler,
    settings: PhaseSettings,
) -> PhaseResult:
    tokenizer.eval()
    tokenizer.requires_grad_(False)

    def step() -> dict[str, Tensor]:
        batch = sampler.sample()
        with torch.no_grad():
            s1, s2 = tokenizer.encode(batch.x)
        loss = predictor_loss(predictor, s1, s2, batch.stamps)
        return {"loss": loss.total, "ce_s1": loss.ce_s1, "ce_s2": loss.ce_s2}

    return optimise(predictor, step, settings, "predictor")
