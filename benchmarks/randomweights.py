"""Random-weight Kronos models for the benchmarks: one definition of dimensions and weights.

``bench_engine.py`` times these models in-process; ``make_checkpoint.py`` writes them as
hub-format checkpoints for a real server. The same dimensions and seed give the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kronos_server.model.config import PredictorConfig, TokenizerConfig
from kronos_server.model.predictor import KronosPredictor
from kronos_server.model.tokenizer import KronosTokenizer

MODEL_SEED = 20240618


@dataclass(frozen=True)
class Dims:
    predictor: PredictorConfig
    tokenizer: TokenizerConfig
    max_context: int  # the context the benchmarks serve these dimensions with


# the Kronos-small predictor with Kronos-Tokenizer-base
SMALL = Dims(
    predictor=PredictorConfig(s1_bits=10, s2_bits=10, n_layers=8, d_model=512, n_heads=8, ff_dim=1024),
    tokenizer=TokenizerConfig(
        d_in=6,
        d_model=256,
        n_heads=4,
        ff_dim=512,
        n_enc_layers=4,
        n_dec_layers=4,
        s1_bits=10,
        s2_bits=10,
        group_size=4,
    ),
    max_context=512,
)

# smoke tests only: its timings say nothing about Kronos
TINY = Dims(
    predictor=PredictorConfig(s1_bits=8, s2_bits=8, n_layers=2, d_model=128, n_heads=4, ff_dim=256),
    tokenizer=TokenizerConfig(
        d_in=6,
        d_model=64,
        n_heads=2,
        ff_dim=128,
        n_enc_layers=2,
        n_dec_layers=2,
        s1_bits=8,
        s2_bits=8,
        group_size=4,
    ),
    max_context=128,
)

DIMS = {"small": SMALL, "tiny": TINY}


def init_weights(module: torch.nn.Module) -> None:
    """Small normal weights, random norm gains and biases; larger head weights for peaked logits."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                std = 0.1 if name.startswith("head.") else 0.02
                p.normal_(0.0, std)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.02)
            else:  # RMSNorm gains
                p.uniform_(0.5, 1.5)


def random_models(
    predictor: PredictorConfig, tokenizer: TokenizerConfig, seed: int = MODEL_SEED
) -> tuple[KronosTokenizer, KronosPredictor]:
    """Tokenizer and predictor with :func:`init_weights` weights from ``seed``, in eval mode."""
    torch.manual_seed(seed)
    tok = KronosTokenizer(tokenizer)
    pred = KronosPredictor(predictor)
    for m in (tok, pred):
        init_weights(m)
        m.eval()
        m.requires_grad_(False)
    return tok, pred
