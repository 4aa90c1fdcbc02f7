"""Does a predictor fit a tokenizer? Checked from the two ``config.json`` files before loading.

The predictor reads nothing of the tokenizer but its token ids: its two vocabularies
(2^s1_bits, 2^s2_bits, spec §1.2) must be the tokenizer's two code books (spec §1.1), or
the ids one produces are not the ids the other was trained on and the forecast is noise
(or an index error). Widths (d_model, heads, layers) are each model's own and may differ.
"""

from __future__ import annotations

from pathlib import Path

from kronos_server.errors import CheckpointError, InvalidInputError
from kronos_server.model.checkpoint import CONFIG_FILE
from kronos_server.model.config import PredictorConfig, TokenizerConfig

# the keys that must agree, in the order they are reported
SHARED_KEYS = ("s1_bits", "s2_bits")

_OWN_TOKENIZERS = (
    "Kronos-mini: NeoQuasar/Kronos-Tokenizer-2k; "
    "Kronos-small and Kronos-base: NeoQuasar/Kronos-Tokenizer-base"
)


class CheckpointPairError(CheckpointError, InvalidInputError):
    """The operator paired checkpoints that do not fit: a configuration mistake (exit 2), not
    a broken file."""

    code = "INVALID_ARGUMENT"


def _values(config: TokenizerConfig | PredictorConfig) -> str:
    return ", ".join(f"{key}={getattr(config, key)}" for key in SHARED_KEYS)


def _advice(predictor_embedded: bool, tokenizer_embedded: bool) -> tuple[str, str]:
    """(the setting to fix, what to do) for the way the pair was configured."""
    if tokenizer_embedded and not predictor_embedded:
        return "KRONOS_TOKENIZER_PATH", (
            "KRONOS_MODEL_PATH is set but KRONOS_TOKENIZER_PATH is not, so the embedded demo "
            "tokenizer was tried with it: set KRONOS_TOKENIZER_PATH (forecast: --tokenizer) to the "
            f"predictor's own tokenizer ({_OWN_TOKENIZERS})"
        )
    if predictor_embedded and not tokenizer_embedded:
        return "KRONOS_MODEL_PATH", (
            "KRONOS_TOKENIZER_PATH is set but KRONOS_MODEL_PATH is not, so the embedded demo "
            "predictor was tried with it: set KRONOS_MODEL_PATH (forecast: --model) to a predictor "
            "trained with this tokenizer"
        )
    return "KRONOS_TOKENIZER_PATH", (
        "set KRONOS_MODEL_PATH and KRONOS_TOKENIZER_PATH to a predictor and the tokenizer it was "
        f"trained with ({_OWN_TOKENIZERS})"
    )


def check_pair(
    predictor: PredictorConfig,
    predictor_dir: Path,
    tokenizer: TokenizerConfig,
    tokenizer_dir: Path,
    *,
    predictor_embedded: bool = False,
    tokenizer_embedded: bool = False,
) -> None:
    """Raise :class:`CheckpointPairError` naming both config files and both values unless
    every key of :data:`SHARED_KEYS` agrees."""
    if all(getattr(predictor, key) == getattr(tokenizer, key) for key in SHARED_KEYS):
        return
    predictor_file, tokenizer_file = predictor_dir / CONFIG_FILE, tokenizer_dir / CONFIG_FILE
    setting, advice = _advice(predictor_embedded, tokenizer_embedded)
    raise CheckpointPairError(
        f"the predictor does not fit the tokenizer: predictor {predictor_file} has {_values(predictor)} "
        f"but tokenizer {tokenizer_file} has {_values(tokenizer)} (the predictor's vocabularies must "
        f"be the tokenizer's code books); {advice}",
        field=setting,
        details={
            "predictor_config": str(predictor_file),
            "tokenizer_config": str(tokenizer_file),
            "predictor": {key: getattr(predictor, key) for key in SHARED_KEYS},
            "tokenizer": {key: getattr(tokenizer, key) for key in SHARED_KEYS},
        },
    )
