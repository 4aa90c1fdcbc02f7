"""Training from scratch of a small Kronos-architecture tokenizer and predictor.

This package produces the embedded default model (``kronos_server/default_model``). It is
training-only code: the model modules in :mod:`kronos_server.model` stay inference-faithful,
and every piece of training math (straight-through quantisation, the coarse decoding path,
teacher-forced s2 logits) lives here.
"""
