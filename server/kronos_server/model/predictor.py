"""Kronos autoregressive predictor (spec §3), split into the pieces generation needs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kronos_server.model.config import PredictorConfig
from kronos_server.model.layers import Attend, Block, RMSNorm, Rotary, run_blocks

S2_HEADS = 4  # the dependency-aware s2 head always has 4 heads (spec §3.5)

# order of the calendar stamp fields and the size of their tables
STAMP_FIELDS = (("minute", 60), ("hour", 24), ("weekday", 7), ("day", 32), ("month", 13))


class _FixedTable(nn.Module):
    """learn_te = false layout: the table lives under ``<field>_embed.emb.weight``."""

    def __init__(self, rows: int, dim: int):
        super().__init__()
        self.emb = nn.Embedding(rows, dim)

    def forward(self, idx: Tensor) -> Tensor:
        return self.emb(idx)


class TemporalEmbedding(nn.Module):
    minute_embed: nn.Module
    hour_embed: nn.Module
    weekday_embed: nn.Module
    day_embed: nn.Module
    month_embed: nn.Module

    def __init__(self, d_model: int, learn_te: bool):
        super().__init__()
        for name, rows in STAMP_FIELDS:
            table: nn.Module = nn.Embedding(rows, d_model) if learn_te else _FixedTable(rows, d_model)
            self.add_module(f"{name}_embed", table)

    def forward(self, stamps: Tensor) -> Tensor:
        """stamps [B, L, 5] (minute, hour, weekday, day, month) -> [B, L, D]."""
        idx = stamps.to(torch.int64)
        minute, hour, weekday, day, month = (idx[..., i] for i in range(5))
        # the original's summation order, for bit-level faithfulness (spec §3.3)
        out = self.hour_embed(hour) + self.weekday_embed(weekday)
        out = out + self.day_embed(day)
        out = out + self.month_embed(month)
        return out + self.minute_embed(minute)


class HierarchicalEmbedding(nn.Module):
    def __init__(self, s1_bits: int, s2_bits: int, d_model: int):
        super().__init__()
        self.d_model = d_model
        self.emb_s1 = nn.Embedding(2**s1_bits, d_model)
        self.emb_s2 = nn.Embedding(2**s2_bits, d_model)
        self.fusion_proj = nn.Linear(2 * d_model, d_model)

    def forward(self, s1: Tensor, s2: Tensor) -> Tensor:
        scale = math.sqrt(self.d_model)
        e = torch.cat((self.emb_s1(s1) * scale, self.emb_s2(s2) * scale), dim=-1)
        return self.fusion_proj(e)


class CrossAttention(nn.Module):
    def __init__(self, d_model: int):
        super().__init__()
        self.head_dim = d_model // S2_HEADS
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.rotary = Rotary(self.head_dim)  # loaded but numerically inert (spec §3.5)

    def split(self, x: Tensor) -> Tensor:
        b, length, _ = x.shape
        return x.view(b, length, S2_HEADS, self.head_dim).transpose(1, 2)


class DependencyLayer(nn.Module):
    def __init__(self, d_model: int):
        super().__init__()
        self.cross_attn = CrossAttention(d_model)
        self.norm = RMSNorm(d_model)


class DualHead(nn.Module):
    def __init__(self, s1_bits: int, s2_bits: int, d_model: int):
        super().__init__()
        self.proj_s1 = nn.Linear(d_model, 2**s1_bits)
        self.proj_s2 = nn.Linear(d_model, 2**s2_bits)


class KronosPredictor(nn.Module):
    def __init__(self, config: PredictorConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.embedding = HierarchicalEmbedding(config.s1_bits, config.s2_bits, d)
        self.time_emb = TemporalEmbedding(d, config.learn_te)
        self.transformer = nn.ModuleList(
            Block(d, config.n_heads, config.ff_dim) for _ in range(config.n_layers)
        )
        self.norm = RMSNorm(d)
        self.dep_layer = DependencyLayer(d)
        self.head = DualHead(config.s1_bits, config.s2_bits, d)

    # -- trunk ---------------------------------------------------------------------------
    def embed(self, s1: Tensor, s2: Tensor, stamps: Tensor) -> Tensor:
        """Token + calendar embedding -> [B, L, D]."""
        return self.embedding(s1, s2) + self.time_emb(stamps)

    def trunk(self, x: Tensor, positions: Tensor, attend_for: dict[int, Attend] | None = None) -> Tensor:
        """Embedded inputs -> final-normed hidden states h [B, L, D]."""
        x = run_blocks(self.transformer, x, positions, attend_for.__getitem__ if attend_for else None)
        return self.norm(x)

    def hidden(self, s1: Tensor, s2: Tensor, stamps: Tensor) -> Tensor:
        """Full causal pass over a window starting at RoPE position 0."""
        positions = torch.arange(s1.shape[1], device=s1.device)
        return self.trunk(self.embed(s1, s2, stamps), positions)

    # -- heads ---------------------------------------------------------------------------
    def s1_logits(self, h_last: Tensor) -> Tensor:
        """[R, D] -> [R, V1]."""
        return self.head.proj_s1(h_last)

    def s2_keys_values(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """Final-normed h [R, L, D] -> s2-head K, V [R, 4, L, hd']; position independent."""
        ca = self.dep_layer.cross_attn
        return ca.split(ca.k_proj(h)), ca.split(ca.v_proj(h))

    def s2_logits(
        self, s1_ids: Tensor, h_last: Tensor, k2: Tensor, v2: Tensor, key_mask: Tensor | None = None
    ) -> Tensor:
        """Logits of s2 given the chosen s1 ids [R]; ``key_mask`` [R, 1, 1, L] marks valid keys."""
        ca = self.dep_layer.cross_attn
        q = ca.split(ca.q_proj(self.embedding.emb_s1(s1_ids).unsqueeze(1)))  # raw s1 row as query
        o = F.scaled_dot_product_attention(q, k2, v2, attn_mask=key_mask)
        a_out = ca.out_proj(o.transpose(1, 2).reshape(q.shape[0], 1, -1))[:, 0]
        x2 = self.dep_layer.norm(h_last + a_out)
        return self.head.proj_s2(x2)

    def s2_logits_full(self, s1_ids: Tensor, h: Tensor) -> Tensor:
        """s2 logits for the last position of a full window h [R, L, D] (recompute path)."""
        k2, v2 = self.s2_keys_values(h)
        return self.s2_logits(s1_ids, h[:, -1], k2, v2)
