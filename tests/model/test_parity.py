"""Reproduce every reference case of the original implementation (tests/data/parity/README.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kronos_server.engine.recompute import generate, mean_over_samples
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import denormalize, prepare
from kronos_server.model.predictor import KronosPredictor
from kronos_server.model.tokenizer import KronosTokenizer
from tests.conftest import CASES, case_series, expected_pred, load_case


def f32(x: object) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


@pytest.mark.parametrize("name", CASES)
def test_preprocessing_and_tokenizer(name: str, parity_tokenizer: KronosTokenizer) -> None:
    case = load_case(name)
    limits = Limits(max_context=case["model"]["max_context"], clip=case["model"]["clip"])
    for series, exp in zip(case_series(case), case["expected"]["series"], strict=True):
        prep = prepare(series, limits)
        np.testing.assert_allclose(prep.mean, f32(exp["norm_mean"]), rtol=1e-6)
        np.testing.assert_allclose(prep.std, f32(exp["norm_std"]), rtol=1e-6)
        np.testing.assert_array_equal(prep.x_stamps, np.asarray(exp["x_stamps"]))
        np.testing.assert_array_equal(prep.y_stamps, np.asarray(exp["y_stamps"]))
        np.testing.assert_allclose(prep.x_norm, f32(exp["normalized_input"]), atol=1e-6, rtol=0)
        with torch.inference_mode():
            s1, s2 = parity_tokenizer.encode(torch.from_numpy(prep.x_norm)[None])
            np.testing.assert_array_equal(s1[0].numpy(), exp["s1_ids"])
            np.testing.assert_array_equal(s2[0].numpy(), exp["s2_ids"])
            recon = parity_tokenizer.decode(s1, s2)[0].numpy()
        np.testing.assert_allclose(recon, f32(exp["reconstruction"]), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", CASES)
def test_first_step_logits(
    name: str, parity_tokenizer: KronosTokenizer, parity_predictor: KronosPredictor
) -> None:
    case = load_case(name)
    limits = Limits(max_context=case["model"]["max_context"])
    for series, exp in zip(case_series(case), case["expected"]["series"], strict=True):
        first = exp["first_step"]
        a, b = first["window"]
        prep = prepare(series, limits)
        stamps = torch.from_numpy(np.concatenate([prep.x_stamps, prep.y_stamps]))[None]
        with torch.inference_mode():
            s1, s2 = parity_tokenizer.encode(torch.from_numpy(prep.x_norm)[None])
            h = parity_predictor.hidden(s1[:, a:b], s2[:, a:b], stamps[:, a:b])
            logits1 = parity_predictor.s1_logits(h[:, -1])[0].numpy()
            np.testing.assert_allclose(logits1, f32(first["s1_logits"]), atol=1e-4, rtol=0)
            for entry in first["s2_logits"]:
                ids = torch.tensor([entry["s1_id"]])
                logits2 = parity_predictor.s2_logits_full(ids, h)[0].numpy()
                np.testing.assert_allclose(logits2, f32(entry["logits"]), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", [c for c in CASES if load_case(c)["kind"] == "predict"])
def test_greedy_forecast(
    name: str, parity_tokenizer: KronosTokenizer, parity_predictor: KronosPredictor
) -> None:
    case = load_case(name)
    limits = Limits(max_context=case["model"]["max_context"])
    prepared = [prepare(s, limits) for s in case_series(case)]
    result = generate(parity_tokenizer, parity_predictor, prepared, limits.max_context)
    sample_count = case["params"]["sample_count"]
    means = mean_over_samples(result.samples, sample_count).numpy()
    n = prepared[0].rows
    for b, (prep, exp) in enumerate(zip(prepared, case["expected"]["series"], strict=True)):
        row = b * sample_count
        np.testing.assert_array_equal(result.s1[row, n:].numpy(), exp["generated_s1"])
        np.testing.assert_array_equal(result.s2[row, n:].numpy(), exp["generated_s2"])
        assert list(result.decode_window) == exp["decode_window"]
        np.testing.assert_allclose(means[b], f32(exp["pred_normalized"]), atol=1e-4, rtol=0)
        pred = denormalize(means[b], prep.mean, prep.std)
        expected = expected_pred(exp)
        tol = 1e-4 * np.abs(expected) + 1e-4 * (f32(exp["norm_std"]) + 1e-5)
        assert np.all(np.abs(pred - expected) <= tol), np.abs(pred - expected).max()


@pytest.mark.parametrize("name", [c for c in CASES if load_case(c)["kind"] == "path"])
def test_logit_path_and_nucleus_sets(
    name: str, parity_tokenizer: KronosTokenizer, parity_predictor: KronosPredictor
) -> None:
    """Logits of every step along the greedy path, and the tokens top-p would sample from."""
    from dataclasses import replace

    from kronos_server.engine.recompute import Trace
    from kronos_server.engine.sampling import filter_logits
    from kronos_server.forecast.types import ResolvedSampling

    case = load_case(name)
    p = case["params"]
    limits = Limits(max_context=case["model"]["max_context"])
    prep = prepare(case_series(case)[0], limits)
    greedy = replace(prep, sampling=ResolvedSampling(1.0, 1, 1.0, 1, None, ()))
    trace = Trace()
    generate(parity_tokenizer, parity_predictor, [greedy], limits.max_context, trace=trace)
    path = case["expected"]["series"][0]["path"]
    assert [list(w) for w in trace.windows] == path["window"]
    one = torch.ones(1)
    for step in path["steps"]:
        for key, got in (("s1", trace.s1_logits[step]), ("s2", trace.s2_logits[step])):
            np.testing.assert_allclose(got[0].numpy(), f32(path[f"{key}_logits"][step]), atol=1e-4, rtol=0)
            kept = filter_logits(got, one * p["T"], torch.tensor([p["top_k"]]), one * p["top_p"])
            assert torch.isfinite(kept[0]).nonzero()[:, 0].tolist() == path[f"{key}_kept"][step]
