"""Tokenizer training math: binary spherical quantisation with a straight-through gradient.

Inference (``KronosTokenizer.encode``) only needs the signs of the quantizer coordinates;
training needs the de-quantised code with a gradient, plus the coarse (s1-only) decoding
path through ``post_quant_embed_pre`` that inference never uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from kronos_server.model.layers import run_blocks
from kronos_server.model.tokenizer import KronosTokenizer


def quantize(z: Tensor) -> tuple[Tensor, Tensor]:
    """z [..., C] -> (unit-norm z, code) with code = ±1/sqrt(C) (> 0 -> +1, else -1).

    The code carries the straight-through gradient: its forward value is the hard code,
    its gradient flows to the normalised z unchanged.
    """
    zn = F.normalize(z, dim=-1)
    scale = 1.0 / math.sqrt(z.shape[-1])
    hard = torch.where(zn > 0, 1.0, -1.0) * scale
    return zn, zn + (hard - zn).detach()


def decode_coarse(tokenizer: KronosTokenizer, code_s1: Tensor) -> Tensor:
    """The training-only coarse path: s1 half of the code [B, L, s1_bits] -> candles."""
    h = tokenizer.post_quant_embed_pre(code_s1)
    h = run_blocks(tokenizer.decoder, h, torch.arange(code_s1.shape[1], device=code_s1.device))
    out: Tensor = tokenizer.head(h)
    return out


@dataclass(frozen=True)
class TokenizerLoss:
    total: Tensor
    recon_full: Tensor
    recon_coarse: Tensor
    commit: Tensor


def tokenizer_loss(tokenizer: KronosTokenizer, x: Tensor, beta: float) -> TokenizerLoss:
    """MSE of the full-code and of the coarse reconstruction plus ``beta`` × commitment."""
    zn, code = quantize(tokenizer.encode_latent(x))
    full = tokenizer.decode_code(code)
    coarse = decode_coarse(tokenizer, code[..., : tokenizer.config.s1_bits])
    recon_full = F.mse_loss(full, x)
    recon_coarse = F.mse_loss(coarse, x)
    commit = F.mse_loss(zn, code.detach())
    return TokenizerLoss(recon_full + recon_coarse + beta * commit, recon_full, recon_coarse, commit)
