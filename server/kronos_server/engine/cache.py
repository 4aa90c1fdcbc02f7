"""Row-slotted KV cache: active rows occupy slots 0..R-1, so live caches are plain slices."""

from __future__ import annotations

import torch
from torch import Tensor

from kronos_server.model.predictor import S2_HEADS, KronosPredictor

MIN_CAPACITY = 4


class KVCache:
    """Post-RoPE keys and values of every trunk layer, plus the s2 head's keys/values.

    Shapes: ``k[l]``/``v[l]`` [capacity, H, M, hd]; ``k2``/``v2`` [capacity, 4, M, D/4].
    ``length[r]`` positions of slot r are valid. Capacity grows by doubling on demand and
    returns to the minimum when the engine goes idle, so memory follows the load.
    """

    def __init__(self, predictor: KronosPredictor, max_context: int, device: torch.device):
        cfg = predictor.config
        self.n_layers = cfg.n_layers
        self.heads = cfg.n_heads
        self.head_dim = cfg.d_model // cfg.n_heads
        self.s2_dim = cfg.d_model // S2_HEADS
        self.max_context = max_context
        self.device = device
        self.capacity = 0
        self.k: list[Tensor] = []
        self.v: list[Tensor] = []
        self.k2 = torch.empty(0)
        self.v2 = torch.empty(0)
        self.length = torch.zeros(0, dtype=torch.int64)
        self._allocate(MIN_CAPACITY)

    def _allocate(self, capacity: int, keep: int = 0) -> None:
        def fresh(old: Tensor | None, heads: int, dim: int) -> Tensor:
            t = torch.zeros(capacity, heads, self.max_context, dim, device=self.device)
            if old is not None and keep:
                t[:keep] = old[:keep]
            return t

        old_k = self.k or [None] * self.n_layers  # type: ignore[list-item]
        old_v = self.v or [None] * self.n_layers  # type: ignore[list-item]
        self.k = [fresh(old_k[i], self.heads, self.head_dim) for i in range(self.n_layers)]
        self.v = [fresh(old_v[i], self.heads, self.head_dim) for i in range(self.n_layers)]
        self.k2 = fresh(self.k2 if self.capacity else None, S2_HEADS, self.s2_dim)
        self.v2 = fresh(self.v2 if self.capacity else None, S2_HEADS, self.s2_dim)
        length = torch.zeros(capacity, dtype=torch.int64)
        length[:keep] = self.length[:keep]
        self.length = length
        self.capacity = capacity

    def ensure(self, rows: int) -> None:
        """Make room for ``rows`` slots, keeping the contents of the current ones."""
        if rows > self.capacity:
            cap = self.capacity
            while cap < rows:
                cap *= 2
            self._allocate(cap, keep=self.capacity)

    def release(self) -> None:
        """Back to the minimum footprint (call when no row is active)."""
        if self.capacity > MIN_CAPACITY:
            self.k, self.v = [], []
            self.capacity = 0
            self._allocate(MIN_CAPACITY)

    def bytes_per_row(self) -> int:
        per_layer = 2 * self.heads * self.max_context * self.head_dim
        return 4 * (self.n_layers * per_layer + 2 * S2_HEADS * self.max_context * self.s2_dim)

    def move(self, src: int, dst: int) -> None:
        """Copy slot ``src`` into slot ``dst`` (used to keep active slots compact)."""
        n = int(self.length[src])
        for t in (*self.k, *self.v, self.k2, self.v2):
            t[dst, :, :n] = t[src, :, :n]
        self.length[dst] = n
