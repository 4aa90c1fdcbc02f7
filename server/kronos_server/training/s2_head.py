"""Teacher-forced predictor training math: s1 and s2 logits at every position.

``KronosPredictor.s2_logits`` is the single-query inference version of the s2 head: the
raw ``emb_s1`` row of the chosen next s1 attends (4 heads, no rotary, no mask) over every
position of the window. Position t of a training window is the last position of the
window 0..t, so the batched version uses one query per position and a causal mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from kronos_server.model.predictor import KronosPredictor


def teacher_forced_s2_logits(predictor: KronosPredictor, h: Tensor, next_s1: Tensor) -> Tensor:
    """Final-normed hidden states h [B, T, D] and true next s1 ids [B, T] -> s2 logits [B, T, V2]."""
    ca = predictor.dep_layer.cross_attn
    b, t, _ = h.shape
    q = ca.split(ca.q_proj(predictor.embedding.emb_s1(next_s1)))
    k, v = predictor.s2_keys_values(h)
    o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    a_out = ca.out_proj(o.transpose(1, 2).reshape(b, t, -1))
    logits: Tensor = predictor.head.proj_s2(predictor.dep_layer.norm(h + a_out))
    return logits


@dataclass(frozen=True)
class PredictorLoss:
    total: Tensor
    ce_s1: Tensor
    ce_s2: Tensor


def predictor_loss(predictor: KronosPredictor, s1: Tensor, s2: Tensor, stamps: Tensor) -> PredictorLoss:
    """Next-token cross-entropy over a window of L tokens (L - 1 predictions per row).

    The input at position t carries its own stamp, as at inference; the stamp of the
    predicted candle is not an input (spec §5, "target stamp lag").
    """
    h = predictor.hidden(s1[:, :-1], s2[:, :-1], stamps[:, :-1])
    target1, target2 = s1[:, 1:], s2[:, 1:]
    logits1 = predictor.s1_logits(h)
    logits2 = teacher_forced_s2_logits(predictor, h, target1)
    ce1 = F.cross_entropy(logits1.flatten(0, 1), target1.flatten())
    ce2 = F.cross_entropy(logits2.flatten(0, 1), target2.flatten())
    return PredictorLoss(ce1 + ce2, ce1, ce2)
