"""Kronos tokenizer: candles <-> hierarchical (s1, s2) token ids (spec §2)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from kronos_server.model.config import TokenizerConfig
from kronos_server.model.layers import Block, run_blocks


class _BSQBuffers(nn.Module):
    """The quantizer's persistent buffers; stored in checkpoints, unused at inference."""

    def __init__(self, codebook_dim: int, group_size: int):
        super().__init__()
        self.register_buffer("basis", 2 ** torch.arange(codebook_dim - 1, -1, -1, dtype=torch.int64))
        self.register_buffer("group_basis", 2 ** torch.arange(group_size - 1, -1, -1, dtype=torch.int64))


class _QuantizerWrapper(nn.Module):
    def __init__(self, codebook_dim: int, group_size: int):
        super().__init__()
        self.bsq = _BSQBuffers(codebook_dim, group_size)


class KronosTokenizer(nn.Module):
    def __init__(self, config: TokenizerConfig):
        super().__init__()
        self.config = config
        d, c = config.d_model, config.codebook_dim
        self.embed = nn.Linear(config.d_in, d)
        self.encoder = nn.ModuleList(
            Block(d, config.n_heads, config.ff_dim) for _ in range(config.n_enc_layers - 1)
        )
        self.decoder = nn.ModuleList(
            Block(d, config.n_heads, config.ff_dim) for _ in range(config.n_dec_layers - 1)
        )
        self.quant_embed = nn.Linear(d, c)
        self.post_quant_embed_pre = nn.Linear(config.s1_bits, d)  # training-only path
        self.post_quant_embed = nn.Linear(c, d)
        self.head = nn.Linear(d, config.d_in)
        self.tokenizer = _QuantizerWrapper(c, config.group_size)
        bits = torch.arange(config.s1_bits, dtype=torch.int64)
        self.register_buffer("_bit_weights", 2**bits, persistent=False)

    _bit_weights: Tensor

    def encode_latent(self, x: Tensor) -> Tensor:
        """Normalised candles [B, n, d_in] -> quantizer coordinates z [B, n, C] (pre-sign)."""
        h = self.embed(x)
        h = run_blocks(self.encoder, h, torch.arange(x.shape[1], device=x.device))
        return self.quant_embed(h)

    def bits_to_ids(self, bits: Tensor) -> tuple[Tensor, Tensor]:
        """{0,1} bits [..., C] (LSB first) -> (s1, s2) ids."""
        n1 = self.config.s1_bits
        s1 = (bits[..., :n1] * self._bit_weights).sum(-1)
        s2 = (bits[..., n1:] * self._bit_weights).sum(-1)
        return s1, s2

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised candles [B, n, d_in] -> (s1, s2) int64 ids [B, n]; causal over rows."""
        z = self.encode_latent(x)
        return self.bits_to_ids((z > 0).to(torch.int64))

    def ids_to_code(self, s1: Tensor, s2: Tensor) -> Tensor:
        """(s1, s2) [B, L] -> code vectors [B, L, C] with entries ±1/sqrt(C)."""
        n1 = self.config.s1_bits
        shifts = torch.arange(n1, device=s1.device)
        b1 = (s1.unsqueeze(-1) >> shifts) & 1
        b2 = (s2.unsqueeze(-1) >> shifts) & 1
        bits = torch.cat((b1, b2), dim=-1).to(torch.float32)
        scale = torch.tensor(1.0 / math.sqrt(self.config.codebook_dim), dtype=torch.float32)
        return (2.0 * bits - 1.0) * scale

    def decode_code(self, code: Tensor) -> Tensor:
        h = self.post_quant_embed(code)
        h = run_blocks(self.decoder, h, torch.arange(code.shape[1], device=code.device))
        return self.head(h)

    def decode(self, s1: Tensor, s2: Tensor) -> Tensor:
        """(s1, s2) [B, L] -> normalised candles [B, L, d_in]; causal, RoPE from position 0."""
        return self.decode_code(self.ids_to_code(s1, s2))
