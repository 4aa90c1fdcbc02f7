"""Temperature / top-k / top-p filtering and drawing (spec §6), vectorised over rows.

Every row may carry its own settings; filtering is one batched pass, drawing is done per
request with that request's own generator so a seeded forecast does not depend on what
else shares the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor


def filter_logits(logits: Tensor, temperature: Tensor, top_k: Tensor, top_p: Tensor) -> Tensor:
    """logits [R, V]; per-row temperature [R] (float), top_k [R] (int, 0 = off), top_p [R].

    top_k > 0 disables top_p (as in the original). Removed entries become -inf.
    """
    scaled = logits / temperature.unsqueeze(-1)
    overflow = ~torch.isfinite(scaled).all(dim=-1)
    if bool(overflow.any()):
        # a temperature so small that logits / T leaves the float range (1e-300 is 0 in
        # float32): softmax would be NaN and the draw would fail. Shift those rows by their
        # maximum first, so the largest logit stays 0 and the draw is greedy, as T -> 0 means
        t = temperature.clamp(min=torch.finfo(logits.dtype).tiny).unsqueeze(-1)
        shifted = (logits - logits.amax(dim=-1, keepdim=True)) / t
        scaled = torch.where(overflow.unsqueeze(-1), shifted, scaled)
    vocab = scaled.shape[-1]
    use_k = top_k > 0
    use_p = (~use_k) & (top_p < 1.0)
    if not bool(use_k.any()) and not bool(use_p.any()):
        return scaled
    sorted_vals, sorted_idx = torch.sort(scaled, dim=-1, descending=True)
    remove = torch.zeros_like(scaled, dtype=torch.bool)
    if bool(use_k.any()):
        k = top_k.clamp(min=1, max=vocab)
        kth = sorted_vals.gather(-1, (k - 1).unsqueeze(-1))
        remove |= use_k.unsqueeze(-1) & (scaled < kth)
    if bool(use_p.any()):
        cum = torch.softmax(sorted_vals, dim=-1).cumsum(dim=-1)
        drop_sorted = torch.zeros_like(cum, dtype=torch.bool)
        # rank r >= 1 goes iff the mass before it already exceeds top_p
        drop_sorted[:, 1:] = cum[:, :-1] > top_p.unsqueeze(-1)
        drop_sorted &= use_p.unsqueeze(-1)
        remove |= torch.zeros_like(drop_sorted).scatter(-1, sorted_idx, drop_sorted)
    return scaled.masked_fill(remove, float("-inf"))


def draw(filtered: Tensor, generator: torch.Generator | None) -> Tensor:
    """One categorical draw per row from filtered logits [R, V] -> int64 [R]."""
    probs = torch.softmax(filtered, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
