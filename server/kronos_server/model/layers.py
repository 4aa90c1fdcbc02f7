"""Building blocks shared by the tokenizer and the predictor (spec §2.1).

Blocks never own a cache: attention is delegated to an ``attend`` callable, so the same
weights serve the full causal pass (training, the recompute oracle, prefill) and the
KV-cached decode step of the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

RMS_EPS = 1e-5

# (q, k, v) with heads first, [B, H, L, hd] each, RoPE already applied -> [B, H, L, hd]
Attend = Callable[[Tensor, Tensor, Tensor], Tensor]


def causal_attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Plain causal attention of L queries over the same L keys."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=q.shape[-2] > 1)


class RMSNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + RMS_EPS)
        return y.type_as(x) * self.weight


class Rotary(nn.Module):
    """Holds the ``inv_freq`` buffer; tables are built for explicit positions."""

    def __init__(self, head_dim: int):
        super().__init__()
        inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=True)

    inv_freq: Tensor

    def table(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """cos/sin for integer ``positions`` of any shape -> [..., hd] each (half-split layout)."""
        angles = positions.to(self.inv_freq.dtype).unsqueeze(-1) * self.inv_freq
        full = torch.cat((angles, angles), dim=-1)
        return full.cos(), full.sin()


def rotate_half(u: Tensor) -> Tensor:
    half = u.shape[-1] // 2
    return torch.cat((-u[..., half:], u[..., :half]), dim=-1)


def apply_rope(u: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    return u * cos + rotate_half(u) * sin


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.rotary = Rotary(self.head_dim)

    def split_heads(self, x: Tensor) -> Tensor:
        b, length, _ = x.shape
        return x.view(b, length, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, attend: Attend = causal_attend) -> Tensor:
        """``cos``/``sin`` broadcast to [B, 1, L, hd] (or [L, hd])."""
        q = apply_rope(self.split_heads(self.q_proj(x)), cos, sin)
        k = apply_rope(self.split_heads(self.k_proj(x)), cos, sin)
        v = self.split_heads(self.v_proj(x))
        o = attend(q, k, v)
        b, _, length, _ = o.shape
        return self.out_proj(o.transpose(1, 2).reshape(b, length, -1))


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, ff_dim: int):
        super().__init__()
        self.w1 = nn.Linear(d_model, ff_dim, bias=False)
        self.w3 = nn.Linear(d_model, ff_dim, bias=False)
        self.w2 = nn.Linear(ff_dim, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    """Pre-norm transformer block: attention then SwiGLU, each with a residual."""

    def __init__(self, d_model: int, n_heads: int, ff_dim: int):
        super().__init__()
        self.norm1 = RMSNorm(d_model)
        self.self_attn = SelfAttention(d_model, n_heads)
        self.norm2 = RMSNorm(d_model)
        self.ffn = SwiGLU(d_model, ff_dim)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, attend: Attend = causal_attend) -> Tensor:
        x = x + self.self_attn(self.norm1(x), cos, sin, attend)
        return x + self.ffn(self.norm2(x))


def run_blocks(
    blocks: nn.ModuleList,
    x: Tensor,
    positions: Tensor,
    attend_for: Callable[[int], Attend] | None = None,
) -> Tensor:
    """Apply ``blocks`` to ``x`` [B, L, D] at RoPE ``positions`` ([L] or [B, L])."""
    for i, module in enumerate(blocks):
        blk = cast(Block, module)
        # each block rotates with its own loaded inv_freq buffer (spec §1.5)
        cos, sin = blk.self_attn.rotary.table(positions)
        if cos.dim() == 3:  # per-row positions -> broadcast over heads
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        x = blk(x, cos, sin, attend_for(i) if attend_for else causal_attend)
    return x
