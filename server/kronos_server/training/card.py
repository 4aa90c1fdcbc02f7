"""MODEL_CARD.md of a trained default model."""

from __future__ import annotations

from kronos_server.forecast.types import FEATURES
from kronos_server.training.config import PhaseSettings
from kronos_server.training.evaluate import ForecastEval
from kronos_server.training.loop import PhaseResult
from kronos_server.training.report import TrainReport


def _losses(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in values.items())


def _phase(p: PhaseResult, s: PhaseSettings) -> list[str]:
    stop = "time budget reached" if p.stopped_by_time else "step count reached"
    return [
        f"* **{p.name}**: {p.steps} of {s.steps} steps ({stop}), {p.wall_s:.0f} s wall time; "
        f"AdamW lr {s.lr:g} (warm-up {s.warmup_steps} steps, cosine to 10 %), weight decay "
        f"{s.weight_decay:g}, grad-norm clip {s.grad_clip:g}; about {s.tokens_per_batch} rows per batch "
        f"(windows of {s.min_len}–{s.max_len} rows, one length per batch).",
        f"  * first step: {_losses(p.first)}",
        f"  * final (mean of the last steps): {_losses(p.final)}",
    ]


def _forecast(ev: ForecastEval) -> list[str]:
    lines = [
        f"{len(ev.origins)} evenly spaced origins in the held-out rows (row indices "
        f"{ev.origins[0]}–{ev.origins[-1]} of the file); at each, the model gets the {ev.context} rows "
        f"before the origin as context and predicts the next {ev.horizon} rows (their real timestamps are "
        f"the future timestamps; max_context 512, recompute engine). For {ev.reaches_into_training} of the "
        f"{len(ev.origins)} origins the context reaches back into training rows (the predicted rows never "
        "do). The naive baseline repeats the last context row's value of each field.",
        "",
        "Mean absolute error in price / volume units, over all origins and all "
        f"{ev.horizon} steps (lower is better):",
        "",
        "| forecast | " + " | ".join(FEATURES) + " |",
        "|---|" + "---|" * len(FEATURES),
    ]
    for s in ev.scores:
        lines.append(f"| {s.label} | " + " | ".join(f"{s.mae[f]:.4g}" for f in FEATURES) + " |")
    naive = ev.scores[0].mae["close"]
    lines += [
        "",
        "Close MAE relative to naive: "
        + ", ".join(f"{s.label} {s.mae['close'] / naive:.3f}" for s in ev.scores[1:])
        + ".",
    ]
    lines += ["", "Close MAE by forecast step (1 … " + str(ev.horizon) + "):", ""]
    for s in ev.scores:
        lines.append(f"* {s.label}: " + ", ".join(f"{v:.4f}" for v in s.close_mae_by_step))
    return lines


def _fit_gap(r: TrainReport) -> list[str]:
    """Held-out next-token loss against the last training steps' (real + synthetic windows)."""
    final, h = r.predictor_phase.final, r.holdout
    if h is None or "ce_s1" not in final:
        return []
    line = (
        f"For comparison, the last training steps (real and synthetic windows) averaged s1 "
        f"{final['ce_s1']:.3f}, s2 {final['ce_s2']:.3f} nats"
    )
    if h.ce_s1 > final["ce_s1"] + 0.2:
        line += ": the predictor fits its training windows clearly better than unseen rows"
    return [line + ".", ""]


def render(r: TrainReport) -> str:
    d, tc, pc = r.data, r.tokenizer_config, r.predictor_config
    budget = r.tokenizer_settings.time_budget_s + r.predictor_settings.time_budget_s
    ds = d.settings
    synth = (
        f"Training windows are mixed with {ds.synthetic_series} synthetic series (each "
        f"{d.training_rows} rows on the training rows' real timestamps: geometric random walks with "
        "Student-t returns, slowly varying volatility, tick rounding, consistent open/high/low/close, "
        f"volume tied to the size of the move, amount = volume × mean price × 100); a window comes from a "
        f"synthetic series with probability {ds.synthetic_fraction:g}."
        if ds.synthetic_series and ds.synthetic_fraction > 0
        else "No synthetic data is used."
    )
    lines = [
        "# Kronos Serve default model",
        "",
        "A deliberately tiny model with the Kronos architecture (tokenizer + autoregressive "
        "predictor), trained from scratch on one CPU in minutes by `kronos_server.training`. It lets "
        "the server run, and its tests exercise a real trained model, without downloading the "
        "published checkpoints. It is **not** the published Kronos and is not a useful forecaster: "
        "compare its numbers below with the naive baseline before using it for anything.",
        "",
        "## Data",
        "",
        f"* `{d.source}`: {d.total_rows} real 5-minute candles of one instrument "
        f"({d.first_timestamp} to {d.last_timestamp}); see `data/README.md` for source and licence.",
        f"* Training: the first {d.training_rows} rows. Held out: the last {d.holdout_rows} rows "
        f"(from {d.holdout_first_timestamp}), never seen in training.",
        f"* {synth}",
        "* Samples are random windows normalised exactly as at inference: per-window z-score of the six "
        f"columns with population statistics (`forecast.prepare.normalize`), clipped at ±{ds.clip:g}; "
        "calendar stamps from the naive timestamps read as wall-clock time.",
        "",
        "## Architecture",
        "",
        f"* Tokenizer (`tokenizer/`, {r.tokenizer_params:,} parameters, version `{r.tokenizer_version}`): "
        f"d_model {tc.d_model}, {tc.n_heads} heads, ff_dim {tc.ff_dim}, n_enc_layers {tc.n_enc_layers} / "
        f"n_dec_layers {tc.n_dec_layers} ({tc.n_enc_layers - 1} + {tc.n_dec_layers - 1} blocks), "
        f"s1_bits {tc.s1_bits}, s2_bits {tc.s2_bits}, group_size {tc.group_size}; training weights beta "
        f"{tc.beta:g}, gamma0 {tc.gamma0:g}, gamma {tc.gamma:g}, zeta {tc.zeta:g}.",
        f"* Predictor (`predictor/`, {r.predictor_params:,} parameters, version `{r.predictor_version}`): "
        f"d_model {pc.d_model}, {pc.n_layers} layers, {pc.n_heads} heads, ff_dim {pc.ff_dim}, "
        f"s1_bits {pc.s1_bits}, s2_bits {pc.s2_bits}, learn_te {str(pc.learn_te).lower()}, no dropout.",
        "* Serve it with max_context 512 (it was trained on windows of at most "
        f"{r.predictor_settings.max_len} rows; longer windows are untested extrapolation of RoPE).",
        "",
        "## Training",
        "",
        "* Tokenizer: binary spherical quantisation with a straight-through gradient; loss = MSE of the "
        "reconstruction from the full code + MSE of the reconstruction from the s1 half only (through "
        "`post_quant_embed_pre`) + beta × commitment MSE + zeta × (gamma0 × mean per-row entropy − gamma × "
        "entropy of the batch-mean) of soft assignments of each group of group_size bits to its sign "
        "patterns (inverse temperature 100), which keeps more codes in use.",
        "* Predictor: windows tokenised by the frozen tokenizer; teacher-forced next-token cross-entropy "
        "of s1 plus that of s2, the s2 head conditioned on the true next s1 with its inference "
        "semantics (raw `emb_s1` query, 4-head cross-attention over positions ≤ t).",
        *_phase(r.tokenizer_phase, r.tokenizer_settings),
        *_phase(r.predictor_phase, r.predictor_settings),
        f"* Training wall time {r.training_wall_s:.0f} s in total (seed {r.seed}, torch threads {r.threads}, "
        f"torch {r.torch_version}, on a CPU shared with other work).",
        "",
        "## Held-out evaluation",
        "",
    ]
    if r.holdout is not None:
        h = r.holdout
        lines += [
            f"Losses on {h.windows} windows of {h.length} rows lying entirely in the held-out rows: "
            f"reconstruction MSE {h.mse:.4f} (full code) / {h.mse_s1:.4f} (s1 only), in normalised units "
            "(a constant forecast at the window mean scores 1.0); next-token cross-entropy "
            f"s1 {h.ce_s1:.3f}, s2 {h.ce_s2:.3f} nats (uniform: {tc.s1_bits * 0.6931:.3f}); these windows "
            f"use {h.distinct_s1} distinct s1 and {h.distinct_s2} distinct s2 ids of {2**tc.s1_bits} each.",
            "",
            *_fit_gap(r),
        ]
    if r.forecast is not None:
        lines += _forecast(r.forecast)
        lines += ["", f"Evaluation wall time {r.eval_wall_s:.0f} s."]
    if r.holdout is None and r.forecast is None:
        lines.append("Not run.")
    lines += [
        "",
        "## Reproduce",
        "",
        "```",
        f"kronos-serve train --tokenizer-steps {r.tokenizer_settings.steps} "
        f"--predictor-steps {r.predictor_settings.steps} --time-budget {budget:.0f} --seed {r.seed} "
        f"--threads {r.threads}",
        "```",
        "",
        "Bit-identical weights are not guaranteed: a time budget can stop a phase early and CPU "
        "kernels may differ between machines.",
        "",
    ]
    return "\n".join(lines)
