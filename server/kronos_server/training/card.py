"""MODEL_CARD.md of a trained default model."""

from __future__ import annotations

from kronos_server.forecast.types import FEATURES
from kronos_server.training.config import PhaseSettings
from kronos_server.training.evaluate import ForecastEval
from kronos_server.training.heldout import HeldoutEval, InstrumentEval, by_name, coverage
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


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def _opt(v: float | None, fmt: str = ".3f") -> str:
    return "–" if v is None else format(v, fmt)


def _instrument_table(h: HeldoutEval, ev: InstrumentEval) -> list[str]:
    band = h.protocol.band
    scores = by_name(ev.result)
    naive = scores["naive"].overall.mae
    lines = [
        f"**{ev.instrument.name}** ({ev.instrument.kind}; {ev.rows} rows, {ev.first} to {ev.last}; "
        f"{len(ev.result.origins)} origins every {ev.result.origin_step} rows):",
        "",
        f"| forecaster | close MAE | MAE / naive | RMSE | CRPS | CRPS skill | {_pct(band)} band covers "
        "| direction | Brier P(up) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in ev.result.scores:
        o = s.overall
        cov = _pct(coverage(o, band)) if o.coverage else "–"
        lines.append(
            f"| {s.name} | {o.mae:.4g} | {o.mae / naive:.3f} | {o.rmse:.4g} | {_opt(o.crps, '.4g')} | "
            f"{_opt(o.crps_skill)} | {cov} | {o.direction_accuracy:.3f} | {_opt(o.brier_up)} |"
        )
    mae_ok, band_ok = h.meets(ev)
    model = scores["model"].overall
    model_steps, naive_steps = scores["model"].by_step, scores["naive"].by_step
    lines += [
        "",
        f"Targets: mean-of-{h.chosen.sample_count} close MAE ≤ {h.mae_target:g}× naive: "
        f"**{'met' if mae_ok else 'not met'}** ({model.mae / naive:.3f}); {_pct(band)} band covering "
        f"{_pct(h.coverage_target[0])}–{_pct(h.coverage_target[1])}: **{'met' if band_ok else 'not met'}** "
        f"({_pct(coverage(model, band))}).",
        "",
        "Model close MAE / naive by forecast step (1 … "
        f"{ev.result.horizon}): "
        + ", ".join(f"{m.mae / n.mae:.2f}" for m, n in zip(model_steps, naive_steps, strict=True))
        + ".",
        "",
    ]
    return lines


def _grid(h: HeldoutEval) -> list[str]:
    names = [ev.instrument.name for ev in h.instruments]
    lines = [
        "Sampling settings tried (top_k 0; every instrument, the same protocol and seed); the default is "
        "the one with the best CRPS skill against naive averaged over the instruments:",
        "",
        "| sampling | "
        + " | ".join(f"{n} CRPS skill | {n} MAE / naive | {n} band" for n in names)
        + " | mean CRPS skill | wall s |",
        "|---|" + "---|---|---|" * len(names) + "---|---|",
    ]
    for g in h.grid:
        mark = " (chosen)" if g.sampling == h.chosen else ""
        cells = " | ".join(
            f"{g.crps_skill[n]:.3f} | {g.mae_ratio[n]:.3f} | {_pct(g.band_coverage[n])}" for n in names
        )
        lines.append(f"| {g.sampling.label}{mark} | {cells} | {g.mean_crps_skill:.3f} | {g.wall_s:.0f} |")
    return [*lines, ""]


def _analysis(h: HeldoutEval, r: TrainReport) -> list[str]:
    ds = r.data.settings
    lines = [
        "## Why a sampled mean can be biased (measured)",
        "",
        "* **Reversion toward the window mean.** Inputs are z-scored per window, so the window mean is "
        "always 0 and an undertrained predictor drifts toward typical tokens, i.e. toward the window "
        "mean. Measured as the correlation over origins of (forecast mean at the last step − last close) "
        "with (window mean − last close); the same correlation for the realised close says how much the "
        "data itself reverts:",
    ]
    for ev in h.instruments:
        lines.append(
            f"  * {ev.instrument.name}: model {ev.reversion.model:+.2f}, realised close "
            f"{ev.reversion.actual:+.2f}"
        )
    lines += [
        "* **The tokenizer's quantisation floor.** Encoding and decoding the *actual* future together "
        "with its context (normalised with the context's statistics, as at inference) and scoring the "
        "decoded closes like a forecast bounds what any predictor on this tokenizer can reach:",
    ]
    for ev in h.instruments:
        lines.append(
            f"  * {ev.instrument.name}: reconstruction close MAE / naive {ev.floor.mae_ratio:.3f} over all "
            f"steps, {ev.floor.step1_ratio:.3f} at step 1"
        )
    lines += [
        "* **Training data diversity.** Besides the real series, a window comes from a synthetic "
        f"driftless random walk with probability {ds.synthetic_fraction:g} ({ds.synthetic_series} series "
        "with their own volatility level, volatility persistence, tail weight, wick size and tick), "
        "which teaches the martingale property (the best guess of the next close is the last one); "
        f"each window is price-mirrored with probability {ds.mirror_fraction:g}, which removes the "
        "index series' up-trend; windows are "
        f"{r.predictor_settings.min_len}–{r.predictor_settings.max_len} rows, covering the evaluation "
        f"context of {h.protocol.context}.",
        "",
    ]
    return lines


def _heldout(r: TrainReport) -> list[str]:
    h = r.heldout
    lines = ["## Held-out instruments (backtest)", ""]
    if h is None:
        return [*lines, f"Not run: {r.heldout_note or 'evaluation skipped'}.", ""]
    p = h.protocol
    lines += [
        "Real instruments never used in training, from the PyPI package `backtesting` "
        "(AGPL-3.0; its files are fetched at evaluation time into a cache, never committed): "
        + "; ".join(f"`{ev.instrument.member}` ({ev.instrument.kind})" for ev in h.instruments)
        + ".",
        "",
        f"Protocol (the project's backtest, `kronos_server.backtest`): {p.origins} origins spread evenly "
        f"over each series, each with the {p.context} rows before it as context, forecasting the next "
        f"{p.horizon} closes; seed {p.seed}; quantile levels {', '.join(f'{q:g}' for q in p.quantiles)}. "
        "The model's point forecast is the mean of its sample paths, its band the paths' quantiles. "
        "Baselines from the same call: naive (repeat the last close), drift (random walk with the "
        "context's drift) and volatility (a random walk with the context's volatility, normal).",
        "",
        f"Default sampling chosen by CRPS: **{h.chosen.label}**. Scores below are at that setting.",
        "",
    ]
    for ev in h.instruments:
        lines += _instrument_table(h, ev)
    lines += _grid(h)
    lines += [f"Held-out backtests wall time {h.wall_s:.0f} s.", ""]
    lines += _analysis(h, r)
    return lines


def _verdict(r: TrainReport) -> str:
    h = r.heldout
    if h is None:
        return (
            "Its held-out backtest was not run for this card, so nothing here says it forecasts better "
            "than repeating the last value."
        )
    met = [all(h.meets(ev)) for ev in h.instruments]
    names = ", ".join(ev.instrument.name for ev in h.instruments)
    mae, crps = [], []
    for ev in h.instruments:
        scores = by_name(ev.result)
        mae.append(scores["model"].overall.mae / scores["naive"].overall.mae)
        model_crps, vol_crps = scores["model"].overall.crps, scores["volatility"].overall.crps
        if model_crps is not None and vol_crps:
            crps.append(model_crps / vol_crps)
    measured = (
        f"On the held-out instruments ({names}) its mean-of-{h.chosen.sample_count} close MAE is "
        f"{min(mae):.2f}–{max(mae):.2f}× that of repeating the last close"
        + (
            f" and its CRPS {min(crps):.2f}–{max(crps):.2f}× that of a random walk with the context's "
            "volatility"
            if crps
            else ""
        )
        + ". "
    )
    if all(met):
        return measured + (
            f"That meets the targets below (MAE ≤ {h.mae_target:g}× naive, 10 %–90 % band covering 70–90 %): "
            "at best it is about as good as the naive forecast; it has no demonstrated forecasting edge."
        )
    return measured + (
        f"It does **not** meet every target below (MAE ≤ {h.mae_target:g}× naive, 10 %–90 % band "
        "covering 70–90 %); read the tables before using it."
    )


def _weights_mb(r: TrainReport) -> float:
    return sum(p.stat().st_size for p in r.out_dir.rglob("*.safetensors")) / 1e6


def render(r: TrainReport) -> str:
    d, tc, pc = r.data, r.tokenizer_config, r.predictor_config
    budget = r.tokenizer_settings.time_budget_s + r.predictor_settings.time_budget_s
    ds = d.settings
    synth = (
        f"Training windows are mixed with {ds.synthetic_series} synthetic series (driftless geometric "
        "random walks with Student-t returns, a per-series volatility level and mean-reverting "
        "log-volatility, tick rounding, consistent open/high/low/close, volume tied to the size of the "
        "move, amount = volume × mean price), laid in turn on the 5-minute training rows' timestamps, "
        f"on each further real series' daily timestamps and on an hourly weekday calendar of "
        f"{ds.hourly_rows} rows; a window comes from a synthetic series with probability "
        f"{ds.synthetic_fraction:g}, otherwise from a real series chosen uniformly."
        if ds.synthetic_series and ds.synthetic_fraction > 0
        else "No synthetic data is used."
    )
    extras = [
        f"* `data/{e.file}`: {e.rows} rows, {e.first_timestamp} to {e.last_timestamp}, all used in "
        f"training; {e.source}."
        for e in d.extras
    ]
    lines = [
        "# Kronos Serve default model",
        "",
        "A deliberately tiny model with the Kronos architecture (tokenizer + autoregressive "
        "predictor), trained from scratch on one CPU in minutes by `kronos_server.training`. It lets "
        "the server run, and its tests exercise a real trained model, without downloading the "
        "published checkpoints. It is **not** the published Kronos, it was never trained on the "
        "instruments you will send it, and it is not a source of trading signals. " + _verdict(r),
        "",
        "## Data",
        "",
        f"* `{d.source}`: {d.total_rows} real 5-minute candles of one instrument "
        f"({d.first_timestamp} to {d.last_timestamp}); see `data/README.md` for source and licence.",
        f"* Training: the first {d.training_rows} rows. Held out: the last {d.holdout_rows} rows "
        f"(from {d.holdout_first_timestamp}), never seen in training.",
        *extras,
        f"* {synth}",
        f"* A window is price-mirrored (z-scores of open, high, low, close negated, high and low "
        f"swapped) with probability {ds.mirror_fraction:g}.",
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
        f"* Weights on disk: {_weights_mb(r):.2f} MB of safetensors (tokenizer + predictor).",
        "",
        "## Training",
        "",
        "* Tokenizer: binary spherical quantisation with a straight-through gradient; loss = MSE of the "
        "reconstruction from the full code + MSE of the reconstruction from the s1 half only (through "
        "`post_quant_embed_pre`) + beta × commitment MSE + zeta × (gamma0 × mean per-row entropy − gamma × "
        "entropy of the batch-mean) of soft assignments of each group of group_size bits to its sign "
        "patterns (inverse temperature 100), which keeps more codes in use. The two reconstruction "
        "MSEs weight the columns open, high, low, close, volume, amount by "
        f"{', '.join(f'{w:g}' for w in ds.recon_weights)} (rescaled to mean 1; the logged mse and "
        "mse_s1 are unweighted).",
        "* Predictor: windows tokenised by the frozen tokenizer; teacher-forced next-token cross-entropy "
        "of s1 plus that of s2, the s2 head conditioned on the true next s1 with its inference "
        "semantics (raw `emb_s1` query, 4-head cross-attention over positions ≤ t).",
        *_phase(r.tokenizer_phase, r.tokenizer_settings),
        *_phase(r.predictor_phase, r.predictor_settings),
        f"* Training wall time {r.training_wall_s:.0f} s in total (seed {r.seed}, torch threads {r.threads}, "
        f"torch {r.torch_version}, on a CPU shared with other work).",
        "",
        *_heldout(r),
        "## Same instrument, later rows",
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
