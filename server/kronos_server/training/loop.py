"""A small AdamW loop with warm-up, cosine decay and a wall-time budget."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from loguru import logger
from torch import Tensor, nn

from kronos_server.training.config import PhaseSettings

# one optimisation step's losses: "loss" is minimised, the other entries are only logged
StepLosses = Callable[[], dict[str, Tensor]]


@dataclass
class PhaseResult:
    name: str
    steps: int
    wall_s: float
    stopped_by_time: bool
    first: dict[str, float]
    final: dict[str, float]  # means over the last ``tail`` steps
    history: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) every log_every


def lr_factor(step: int, progress: float, warmup_steps: int) -> float:
    """Linear warm-up, then cosine decay to 10 % over ``progress`` in [0, 1]."""
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    return warm * (0.1 + 0.45 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def optimise(module: nn.Module, step_losses: StepLosses, settings: PhaseSettings, name: str) -> PhaseResult:
    """Train ``module`` until ``settings.steps`` steps or ``settings.time_budget_s`` seconds.

    The schedule follows whichever of the two runs out first, so a time-limited run still
    ends with a decayed learning rate.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay, betas=(0.9, 0.95))
    module.train()
    start = time.perf_counter()
    tail = max(1, min(50, settings.steps // 10))
    recent: list[dict[str, float]] = []
    first: dict[str, float] = {}
    history: list[tuple[int, float]] = []
    step = 0
    stopped_by_time = False
    while step < settings.steps:
        elapsed = time.perf_counter() - start
        if elapsed >= settings.time_budget_s:
            stopped_by_time = True
            break
        progress = max(step / settings.steps, elapsed / settings.time_budget_s)
        for group in opt.param_groups:
            group["lr"] = settings.lr * lr_factor(step, progress, settings.warmup_steps)
        losses = step_losses()
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_(params, settings.grad_clip)
        opt.step()
        values = {k: float(v.detach()) for k, v in losses.items()}
        if not first:
            first = values
        recent = [*recent[-(tail - 1) :], values] if tail > 1 else [values]
        step += 1
        if step % settings.log_every == 0 or step == 1:
            history.append((step, values["loss"]))
            shown = " ".join(f"{k}={v:.4f}" for k, v in values.items())
            logger.info(f"{name} step {step}/{settings.steps} {shown} ({time.perf_counter() - start:.0f}s)")
    module.eval()
    final = {k: sum(r[k] for r in recent) / len(recent) for k in recent[0]} if recent else {}
    wall = time.perf_counter() - start
    if stopped_by_time:
        logger.warning(f"{name}: time budget {settings.time_budget_s:.0f}s reached after {step} steps")
    return PhaseResult(name, step, wall, stopped_by_time, first, final, history)
