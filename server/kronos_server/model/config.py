"""Typed views of the two ``config.json`` files of a Kronos checkpoint (spec §1.1, §1.2)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from kronos_server.errors import CheckpointError
from kronos_server.forecast.types import FEATURES


def _take(cls: type, raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Keep the keys ``cls`` knows; unknown keys are ignored, missing required ones named."""
    known = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
    missing = [
        name
        for name, f in known.items()
        if name not in raw and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise CheckpointError(f"{where}: config.json lacks required keys {missing}", field="config.json")
    values = {k: raw[k] for k in known if k in raw}
    values["extra"] = {k: v for k, v in raw.items() if k not in known}
    return values


@dataclass(frozen=True)
class TokenizerConfig:
    d_in: int
    d_model: int
    n_heads: int
    ff_dim: int
    n_enc_layers: int
    n_dec_layers: int
    s1_bits: int
    s2_bits: int
    group_size: int
    beta: float = 0.05
    gamma0: float = 1.0
    gamma: float = 1.1
    zeta: float = 0.05
    ffn_dropout_p: float = 0.0
    attn_dropout_p: float = 0.0
    resid_dropout_p: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def codebook_dim(self) -> int:
        return self.s1_bits + self.s2_bits

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "tokenizer") -> TokenizerConfig:
        cfg = cls(**_take(cls, raw, where))
        if cfg.d_in != len(FEATURES):
            # prepare() feeds the tokenizer exactly these columns (spec §1.1: d_in is always 6)
            raise CheckpointError(
                f"{where}: d_in is {cfg.d_in}, but a Kronos tokenizer reads {len(FEATURES)} features "
                f"per candle ({', '.join(FEATURES)})",
                field="config.json",
            )
        if cfg.s1_bits != cfg.s2_bits:
            raise CheckpointError(f"{where}: s1_bits ({cfg.s1_bits}) must equal s2_bits ({cfg.s2_bits})")
        if cfg.d_model % cfg.n_heads:
            raise CheckpointError(f"{where}: d_model {cfg.d_model} is not divisible by n_heads {cfg.n_heads}")
        if cfg.n_enc_layers < 1 or cfg.n_dec_layers < 1:
            raise CheckpointError(f"{where}: n_enc_layers and n_dec_layers must be >= 1")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out.update(self.extra)
        return dict(sorted(out.items()))


@dataclass(frozen=True)
class PredictorConfig:
    s1_bits: int
    s2_bits: int
    n_layers: int
    d_model: int
    n_heads: int
    ff_dim: int
    learn_te: bool = True
    ffn_dropout_p: float = 0.0
    attn_dropout_p: float = 0.0
    resid_dropout_p: float = 0.0
    token_dropout_p: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "predictor") -> PredictorConfig:
        cfg = cls(**_take(cls, raw, where))
        if cfg.d_model % cfg.n_heads:
            raise CheckpointError(f"{where}: d_model {cfg.d_model} is not divisible by n_heads {cfg.n_heads}")
        if cfg.d_model % 8:
            raise CheckpointError(f"{where}: d_model {cfg.d_model} must be a multiple of 8 (4-head s2 head)")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out.update(self.extra)
        return dict(sorted(out.items()))
