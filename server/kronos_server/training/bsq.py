"""Tokenizer training math: binary spherical quantisation with a straight-through gradient.

Inference (``KronosTokenizer.encode``) only needs the signs of the quantizer coordinates;
training needs the de-quantised code with a gradient, plus the coarse (s1-only) decoding
path through ``post_quant_embed_pre`` that inference never uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def group_codes(group_size: int, scale: float) -> Tensor:
    """All 2**group_size sign patterns of one group, ±scale, bit k = (index >> k) & 1."""
    idx = torch.arange(2**group_size).unsqueeze(-1)
    bits = (idx >> torch.arange(group_size)) & 1
    return (2.0 * bits.to(torch.float32) - 1.0) * scale


def code_entropies(zn: Tensor, group_size: int, inv_temperature: float) -> tuple[Tensor, Tensor]:
    """(mean per-row entropy, entropy of the mean) of soft group-code assignments of zn [..., C].

    The C coordinates are cut into groups of ``group_size``; each group is softly assigned
    to its 2**group_size sign patterns. A low per-row entropy means confident codes, a high
    entropy of the batch-mean assignment means the codes are all in use.
    """
    c = zn.shape[-1]
    if c % group_size:
        raise ValueError(f"codebook dim {c} is not a multiple of group_size {group_size}")
    groups = zn.reshape(-1, c // group_size, group_size)
    codes = group_codes(group_size, 1.0 / math.sqrt(c)).to(zn.device)
    logits = inv_temperature * (groups @ codes.T)  # [N, G, 2**gs]
    log_p = F.log_softmax(logits, dim=-1)
    p = log_p.exp()
    per_row = -(p * log_p).sum(-1).mean()
    mean_p = p.mean(0)
    usage = -(mean_p * torch.log(mean_p.clamp_min(1e-8))).sum(-1).mean()
    return per_row, usage


@dataclass(frozen=True)
class TokenizerLoss:
    total: Tensor
    recon_full: Tensor
    recon_coarse: Tensor
    commit: Tensor
    entropy: Tensor  # gamma0 × per-row entropy − gamma × usage entropy (0 when zeta is 0)


def tokenizer_loss(
    tokenizer: KronosTokenizer,
    x: Tensor,
    *,
    entropy_weight: float | None = None,
    inv_temperature: float = 100.0,
    column_weights: Sequence[float] | None = None,
) -> TokenizerLoss:
    """MSE of the full-code and of the coarse reconstruction, plus beta × commitment, plus
    ``entropy_weight`` (default: the config's zeta) × the code-usage entropy term.

    The weights beta, gamma0, gamma and zeta are the tokenizer config's training-only keys.
    ``column_weights`` (one per input column, rescaled to mean 1) weight the two
    reconstruction terms of ``total``, e.g. to spend the code on prices rather than volume;
    ``recon_full`` and ``recon_coarse`` are always the plain MSEs.
    """
    cfg = tokenizer.config
    if entropy_weight is None:
        entropy_weight = cfg.zeta
    zn, code = quantize(tokenizer.encode_latent(x))
    full = tokenizer.decode_code(code)
    coarse = decode_coarse(tokenizer, code[..., : cfg.s1_bits])
    recon_full = F.mse_loss(full, x)
    recon_coarse = F.mse_loss(coarse, x)
    commit = F.mse_loss(zn, code.detach())
    if column_weights is None:
        total = recon_full + recon_coarse + cfg.beta * commit
    else:
        w = torch.tensor(column_weights, dtype=x.dtype)
        if w.shape != (x.shape[-1],) or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError(f"column_weights: want {x.shape[-1]} non-negative values, got {column_weights}")
        w = w / w.mean()
        weighted = ((full - x) ** 2 * w).mean() + ((coarse - x) ** 2 * w).mean()
        total = weighted + cfg.beta * commit
    entropy = torch.zeros(())
    if entropy_weight > 0:
        per_row, usage = code_entropies(zn, cfg.group_size, inv_temperature)
        entropy = cfg.gamma0 * per_row - cfg.gamma * usage
        total = total + entropy_weight * entropy
    return TokenizerLoss(total, recon_full, recon_coarse, commit, entropy)
