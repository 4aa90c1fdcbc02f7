"""README's table of published checkpoints agrees with their dimensions and with the pairing check.

The dimensions are the Kronos model spec's (§1.6); the models are built
on torch's meta device, so nothing is allocated or downloaded.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch

from kronos_server.model.bundle import DEFAULT_MODEL_DIR
from kronos_server.model.checkpoint import tokenizer_config
from kronos_server.model.config import PredictorConfig, TokenizerConfig
from kronos_server.model.pairing import CheckpointPairError, check_pair
from kronos_server.model.predictor import KronosPredictor
from tests.model.checkpoints import ROOT

ROW = re.compile(
    r"^\| `(NeoQuasar/Kronos-\w+)` \| ([\d.]+)M \| `(NeoQuasar/Kronos-Tokenizer-\w+)` \| `(\d+)` \|$"
)

# spec §1.6: the published predictors' dimensions and the context each was trained for
PREDICTORS = {
    "NeoQuasar/Kronos-mini": (PredictorConfig(10, 10, n_layers=4, d_model=256, n_heads=4, ff_dim=512), 2048),
    "NeoQuasar/Kronos-small": (PredictorConfig(10, 10, n_layers=8, d_model=512, n_heads=8, ff_dim=1024), 512),
    "NeoQuasar/Kronos-base": (
        PredictorConfig(10, 10, n_layers=12, d_model=832, n_heads=16, ff_dim=2048),
        512,
    ),
}
_TOKENIZER = TokenizerConfig(
    d_in=6,
    d_model=256,
    n_heads=4,
    ff_dim=512,
    n_enc_layers=4,
    n_dec_layers=4,
    s1_bits=10,
    s2_bits=10,
    group_size=4,
)
TOKENIZERS = {
    "NeoQuasar/Kronos-Tokenizer-base": _TOKENIZER,
    "NeoQuasar/Kronos-Tokenizer-2k": dataclasses.replace(_TOKENIZER, group_size=5),
}
# spec §1.6: mini pairs with Tokenizer-2k, small and base with Tokenizer-base
PAIRS = {
    "NeoQuasar/Kronos-mini": "NeoQuasar/Kronos-Tokenizer-2k",
    "NeoQuasar/Kronos-small": "NeoQuasar/Kronos-Tokenizer-base",
    "NeoQuasar/Kronos-base": "NeoQuasar/Kronos-Tokenizer-base",
}


def readme_rows() -> dict[str, tuple[float, str, int]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = (ROW.match(line) for line in text.splitlines())
    return {m.group(1): (float(m.group(2)), m.group(3), int(m.group(4))) for m in rows if m}


def test_the_readme_lists_every_published_predictor_with_its_tokenizer_and_context() -> None:
    rows = readme_rows()
    assert set(rows) == set(PREDICTORS)
    for name, (_, tokenizer, context) in rows.items():
        assert (tokenizer, context) == (PAIRS[name], PREDICTORS[name][1]), name


@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_parameter_counts_and_pairings(name: str) -> None:
    millions, tokenizer, _ = readme_rows()[name]
    config, _ = PREDICTORS[name]
    with torch.device("meta"):
        model = KronosPredictor(config)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions
    check_pair(config, Path(name), TOKENIZERS[tokenizer], Path(tokenizer))  # the documented pair fits
    # and, as README says, the embedded demo tokenizer fits none of them
    embedded = DEFAULT_MODEL_DIR / "tokenizer"
    with pytest.raises(CheckpointPairError, match="s1_bits=10, s2_bits=10 but tokenizer"):
        check_pair(config, Path(name), tokenizer_config(embedded), embedded, tokenizer_embedded=True)
