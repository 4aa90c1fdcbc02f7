"""The plain recompute path: the original algorithm, step for step (spec §5).

Every step runs the predictor over the whole window from scratch. It is the test oracle
for the KV-cached engine and the baseline of the benchmarks; it is never used to serve.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from kronos_server.engine.sampling import draw, filter_logits
from kronos_server.forecast.types import PreparedSeries
from kronos_server.model.predictor import KronosPredictor
from kronos_server.model.tokenizer import KronosTokenizer


@dataclass
class Trace:
    """Optional record of every step, for parity tests."""

    windows: list[tuple[int, int]] = field(default_factory=list)
    s1_logits: list[Tensor] = field(default_factory=list)
    s2_logits: list[Tensor] = field(default_factory=list)


@dataclass
class RecomputeResult:
    s1: Tensor  # [R, n + P] all tokens
    s2: Tensor
    samples: Tensor  # [R, P, 6] normalised, one per row
    decode_window: tuple[int, int]


@torch.inference_mode()
def generate(
    tokenizer: KronosTokenizer,
    predictor: KronosPredictor,
    series: list[PreparedSeries],
    max_context: int,
    generator: torch.Generator | None = None,
    trace: Trace | None = None,
) -> RecomputeResult:
    """Generate for equal-length series as one batch, rows series-major (r = b*S + s).

    All series must share n, pred_len and sampling settings (as in the original batch API).
    """
    first = series[0]
    n, pred_len, sp = first.rows, first.pred_len, first.sampling
    reps = sp.sample_count
    x = torch.from_numpy(np.stack([s.x_norm for s in series])).repeat_interleave(reps, dim=0)
    stamps_np = np.stack([np.concatenate([s.x_stamps, s.y_stamps]) for s in series])
    stamps = torch.from_numpy(stamps_np).repeat_interleave(reps, dim=0)
    rows = x.shape[0]
    s1, s2 = tokenizer.encode(x)
    temp = torch.full((rows,), sp.temperature)
    top_k = torch.full((rows,), sp.top_k, dtype=torch.int64)
    top_p = torch.full((rows,), sp.top_p)
    for i in range(pred_len):
        c = n + i
        start = max(0, c - max_context)
        h = predictor.hidden(s1[:, start:c], s2[:, start:c], stamps[:, start:c])
        logits1 = predictor.s1_logits(h[:, -1])
        next_s1 = draw(filter_logits(logits1, temp, top_k, top_p), generator)
        logits2 = predictor.s2_logits_full(next_s1, h)
        next_s2 = draw(filter_logits(logits2, temp, top_k, top_p), generator)
        if trace is not None:
            trace.windows.append((start, c))
            trace.s1_logits.append(logits1)
            trace.s2_logits.append(logits2)
        s1 = torch.cat((s1, next_s1.unsqueeze(1)), dim=1)
        s2 = torch.cat((s2, next_s2.unsqueeze(1)), dim=1)
    total = n + pred_len
    d0 = max(0, total - max_context)
    decoded = tokenizer.decode(s1[:, d0:total], s2[:, d0:total])
    return RecomputeResult(s1, s2, decoded[:, -pred_len:], (d0, total))


def mean_over_samples(samples: Tensor, sample_count: int) -> Tensor:
    """[B*S, P, 6] -> [B, P, 6] float32 mean over each series' S rows."""
    return samples.view(-1, sample_count, *samples.shape[1:]).mean(dim=1)
