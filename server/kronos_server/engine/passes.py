"""The model passes the engine schedules: full-window passes, one-token decode, the heads.

Pure functions over a predictor and a :class:`KVCache`; no scheduling, no threads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from kronos_server.engine.cache import KVCache
from kronos_server.model.layers import Attend, causal_attend, run_blocks
from kronos_server.model.predictor import KronosPredictor
from kronos_server.model.tokenizer import KronosTokenizer


def window_pass(
    predictor: KronosPredictor,
    s1: Tensor,
    s2: Tensor,
    stamps: Tensor,
    cache: KVCache,
    slots: Tensor,
    keep_trunk_kv: bool,
) -> Tensor:
    """Full causal pass over windows [B, L] starting at RoPE position 0 (prefill / slide).

    Writes the s2-head K/V (and, when ``keep_trunk_kv``, each layer's K/V) into ``slots``;
    ``slots`` may hold fewer entries than B only when B == 1 (one prefill shared by samples).
    Returns the last final-normed hidden state of each window, [B, D].
    """
    length = s1.shape[1]
    captured: dict[int, tuple[Tensor, Tensor]] = {}
    slots_d = slots.to(s1.device)

    def attend_for(layer: int) -> Attend:
        def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
            if keep_trunk_kv:
                captured[layer] = (k, v)
            return causal_attend(q, k, v)

        return attend

    x = predictor.embed(s1, s2, stamps)
    positions = torch.arange(length, device=s1.device)
    h = predictor.trunk(x, positions, {i: attend_for(i) for i in range(cache.n_layers)})
    k2, v2 = predictor.s2_keys_values(h)
    for layer, (k, v) in captured.items():
        cache.k[layer][slots_d, :, :length] = k
        cache.v[layer][slots_d, :, :length] = v
    cache.k2[slots_d, :, :length] = k2
    cache.v2[slots_d, :, :length] = v2
    cache.length[slots] = length
    return h[:, -1]


def _rows(t: Tensor, slots: Tensor, contiguous: bool, upto: int) -> Tensor:
    return t[: slots.numel(), :, :upto] if contiguous else t[slots, :, :upto]


def decode_pass(
    predictor: KronosPredictor, s1: Tensor, s2: Tensor, stamps: Tensor, cache: KVCache, slots: Tensor
) -> Tensor:
    """One new token per slot (s1, s2 [B], stamps [B, 5]) at RoPE position length[slot].

    ``slots`` is a CPU index tensor (``cache.length`` lives on the CPU).

    Appends each token's K/V to its slot and returns the new final-normed hidden states [B, D].
    """
    device = s1.device
    contiguous = bool(torch.equal(slots, torch.arange(slots.numel())))
    pos_cpu = cache.length[slots]
    pos = pos_cpu.to(device)  # [B]
    slots_d = slots.to(device)
    upto = int(pos.max()) + 1
    key_pos = torch.arange(upto, device=device)
    mask = (key_pos.unsqueeze(0) <= pos.unsqueeze(1))[:, None, None, :]  # [B, 1, 1, upto]

    def attend_for(layer: int) -> Attend:
        def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
            kc, vc = cache.k[layer], cache.v[layer]
            kc[slots_d, :, pos] = k[:, :, 0]
            vc[slots_d, :, pos] = v[:, :, 0]
            keys, values = _rows(kc, slots_d, contiguous, upto), _rows(vc, slots_d, contiguous, upto)
            return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)

        return attend

    x = predictor.embed(s1.unsqueeze(1), s2.unsqueeze(1), stamps.unsqueeze(1))
    h = predictor.trunk(x, pos.unsqueeze(1), {i: attend_for(i) for i in range(cache.n_layers)})
    k2, v2 = predictor.s2_keys_values(h)
    cache.k2[slots_d, :, pos] = k2[:, :, 0]
    cache.v2[slots_d, :, pos] = v2[:, :, 0]
    cache.length[slots] = pos_cpu + 1
    return h[:, 0]


def s2_logits(
    predictor: KronosPredictor, s1_ids: Tensor, h_last: Tensor, cache: KVCache, rows: int
) -> Tensor:
    """s2 logits of slots 0..rows-1 given their chosen s1 ids, over each slot's whole window."""
    lengths = cache.length[:rows].to(h_last.device)
    upto = int(lengths.max())
    key_pos = torch.arange(upto, device=h_last.device)
    mask = (key_pos.unsqueeze(0) < lengths.unsqueeze(1))[:, None, None, :]
    k2 = cache.k2[:rows, :, :upto]
    v2 = cache.v2[:rows, :, :upto]
    return predictor.s2_logits(s1_ids, h_last, k2, v2, None if bool(mask.all()) else mask)


class StreamDecoder:
    """Incremental tokenizer decode of one job's rows for streaming (spec §5 step 4).

    A job's decode window start d0 never changes and the decoder is causal, so a position's
    decoded value is final as soon as its token exists. The decoder's K/V are kept, so each
    step decodes one new position instead of re-running the whole window.
    """

    def __init__(self, tokenizer: KronosTokenizer, rows: int, capacity: int, device: torch.device):
        cfg = tokenizer.config
        head_dim = cfg.d_model // cfg.n_heads
        layers = len(tokenizer.decoder)
        self.tokenizer = tokenizer
        self.k = [torch.zeros(rows, cfg.n_heads, capacity, head_dim, device=device) for _ in range(layers)]
        self.v = [torch.zeros(rows, cfg.n_heads, capacity, head_dim, device=device) for _ in range(layers)]
        self.length = 0

    def extend(self, s1: Tensor, s2: Tensor) -> Tensor:
        """The next tokens [R, t] of the decode window -> their decoded rows [R, t, d_in]."""
        start, end = self.length, self.length + s1.shape[1]

        def attend_for(layer: int) -> Attend:
            def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
                self.k[layer][:, :, start:end] = k
                self.v[layer][:, :, start:end] = v
                keys, values = self.k[layer][:, :, :end], self.v[layer][:, :, :end]
                if start == 0:
                    return causal_attend(q, keys, values)
                if end - start == 1:
                    return F.scaled_dot_product_attention(q, keys, values)
                mask = torch.ones(end - start, end, dtype=torch.bool, device=q.device).tril(start)
                return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)

            return attend

        tok = self.tokenizer
        h = tok.post_quant_embed(tok.ids_to_code(s1, s2))
        h = run_blocks(tok.decoder, h, torch.arange(start, end, device=s1.device), attend_for)
        self.length = end
        return tok.head(h)
