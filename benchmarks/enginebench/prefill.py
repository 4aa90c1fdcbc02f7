"""Section 4: the prefill pass's GFLOP/s against torch.mm's on the pass's own GEMM shapes."""

from __future__ import annotations

from functools import partial

import torch

from enginebench.workload import Plan
from harness import Report, fmt_s, section, summary, table, time_call
from kronos_server.engine.cache import KVCache
from kronos_server.engine.passes import window_pass
from kronos_server.model.bundle import ModelBundle
from kronos_server.model.config import PredictorConfig


def prefill_flops(cfg: PredictorConfig, length: int) -> dict[str, float]:
    """Analytic FLOPs (multiply-add = 2) of one predictor pass over ``length`` positions."""
    d, f, nl = cfg.d_model, cfg.ff_dim, cfg.n_layers
    pairs_causal = length * (length + 1) / 2
    flops = {
        "fusion_proj": 2.0 * length * (2 * d) * d,
        "attn_qkvo_proj": nl * 4 * 2.0 * length * d * d,
        "ffn_w1_w3_w2": nl * 3 * 2.0 * length * d * f,
        # QK^T and AV, all heads: 2 * pairs * head_dim * heads = 2 * pairs * d each; causal pairs only
        "attn_qk_av_causal": nl * 2 * 2.0 * pairs_causal * d,
        "s2_kv_proj": 2 * 2.0 * length * d * d,
    }
    return flops


def bench_prefill_flops(report: Report, bundle: ModelBundle, plan: Plan) -> None:
    cfg = plan.predictor
    length, d, f = plan.n, cfg.d_model, cfg.ff_dim
    title = f"4. Prefill GFLOP/s vs torch.mm GFLOP/s ([1,{length}] window, d_model {d}, ff {f})"
    with section(report, "prefill_flops", title) as out:
        pred = bundle.predictor
        gen = torch.Generator().manual_seed(7)
        vocab1, vocab2 = 2**cfg.s1_bits, 2**cfg.s2_bits
        s1 = torch.randint(0, vocab1, (1, length), generator=gen)
        s2 = torch.randint(0, vocab2, (1, length), generator=gen)
        stamps = torch.stack(
            [torch.randint(0, hi, (1, length), generator=gen) for hi in (60, 24, 7, 31, 12)], dim=-1
        ) + torch.tensor([0, 0, 0, 1, 1])
        cache = KVCache(pred, bundle.max_context, bundle.device)
        slots = torch.tensor([0])
        flops = prefill_flops(cfg, length)
        hidden_flops = sum(v for k, v in flops.items() if k != "s2_kv_proj")
        window_flops = sum(flops.values())
        shapes = {
            f"[{length},{d}]x[{d},{f}]": (length, d, f),
            f"[{length},{d}]x[{d},{d}]": (length, d, d),
            f"[{length},{f}]x[{f},{d}]": (length, f, d),
        }
        mats = {name: (torch.randn(m, kk), torch.randn(kk, n)) for name, (m, kk, n) in shapes.items()}
        # GEMMs the pass issues, by shape (for the shape-weighted mm reference)
        gemm_by_shape = {
            f"[{length},{d}]x[{d},{f}]": cfg.n_layers * 2 * 2.0 * length * d * f,
            f"[{length},{d}]x[{d},{d}]": (cfg.n_layers * 4 + 2) * 2.0 * length * d * d,
            f"[{length},{f}]x[{f},{d}]": cfg.n_layers * 2.0 * length * f * d
            + (2.0 * length * 2 * d * d if f == 2 * d else 0.0),
        }
        times: dict[str, list[float]] = {"hidden": [], "window_pass": [], **{k: [] for k in shapes}}
        with torch.inference_mode():
            for _ in range(2):  # warm-up
                pred.hidden(s1, s2, stamps)
                window_pass(pred, s1, s2, stamps, cache, slots, True)
                for a, b in mats.values():
                    torch.mm(a, b)
            first = next(iter(mats.values()))
            mm_single = time_call(partial(torch.mm, *first), 5)
            inner = 20 if mm_single < 0.02 else 3
            # interleaved repeats, so that load changes hit every kernel alike
            for _ in range(plan.flop_repeats):
                times["hidden"].append(time_call(lambda: pred.hidden(s1, s2, stamps), 1))
                times["window_pass"].append(
                    time_call(lambda: window_pass(pred, s1, s2, stamps, cache, slots, True), 1)
                )
                for name, (a, b) in mats.items():
                    times[name].append(time_call(partial(torch.mm, a, b), inner))
        rates: dict[str, float] = {}
        rows = []
        for name, flop in (("hidden", hidden_flops), ("window_pass", window_flops)):
            s = summary(times[name])
            rates[name] = flop / s["median"] / 1e9
            label = "predictor.hidden" if name == "hidden" else "engine window_pass (prefill, keep K/V)"
            rows.append(
                [label, f"{flop / 1e9:.2f}", fmt_s(s, 1000, 1).split("  ", 1)[1], f"{rates[name]:.1f}"]
            )
        for name, (m, kk, n) in shapes.items():
            s = summary(times[name])
            flop = 2.0 * m * kk * n
            rates[name] = flop / s["median"] / 1e9
            rows.append(
                [
                    f"torch.mm {name} (x{inner}/repeat)",
                    f"{flop / 1e9:.3f}",
                    fmt_s(s, 1000, 2).split("  ", 1)[1],
                    f"{rates[name]:.1f}",
                ]
            )
        gemm_total = sum(gemm_by_shape.values())
        mix_time = sum(fl / (rates[name] * 1e9) for name, fl in gemm_by_shape.items())
        rates["mm_mix"] = gemm_total / mix_time / 1e9
        rows.append(
            [
                "torch.mm, mix weighted as the pass uses the shapes",
                f"{gemm_total / 1e9:.2f}",
                f"{1000 * mix_time:.1f} (derived)",
                f"{rates['mm_mix']:.1f}",
            ]
        )
        print(f"   repeats: {plan.flop_repeats} (interleaved), torch threads {torch.get_num_threads()}")
        table(["kernel", "GFLOP", "ms min / median / max", "GFLOP/s (median)"], rows)
        print(
            "   FLOPs counted: "
            + ", ".join(f"{k} {v / 1e9:.3f}" for k, v in flops.items())
            + " GFLOP (causal attention pairs only; norms, RoPE, softmax, embedding lookups not counted;"
        )
        print("   predictor.hidden excludes s2_kv_proj, window_pass includes it)")
        frac_mix = rates["window_pass"] / rates["mm_mix"]
        named = list(shapes)[:2]
        fractions = {name: rates["window_pass"] / rates[name] for name in shapes}
        for name in named:
            print(
                f"   window_pass / torch.mm {name}: {fractions[name]:.1%}; "
                f"hidden / same: {rates['hidden'] / rates[name]:.1%}"
            )
        out.update(
            {
                "length": length,
                "flops": flops,
                "hidden_gflop": hidden_flops / 1e9,
                "window_pass_gflop": window_flops / 1e9,
                "times_s": {k: summary(v) for k, v in times.items()},
                "gflops_per_s": rates,
                "mm_inner_calls": inner,
                "fraction_vs_mm_mix": frac_mix,
                "fraction_vs_mm": fractions,
                "hidden_fraction_vs_mm_mix": rates["hidden"] / rates["mm_mix"],
            }
        )
        report.ratio("prefill_fraction", "window_pass GFLOP/s / torch.mm mix GFLOP/s", frac_mix, unit="%")
        report.ratio(
            "prefill_fraction_" + "dxf", f"window_pass / torch.mm {named[0]}", fractions[named[0]], unit="%"
        )
        report.ratio(
            "prefill_fraction_" + "dxd", f"window_pass / torch.mm {named[1]}", fractions[named[1]], unit="%"
        )
