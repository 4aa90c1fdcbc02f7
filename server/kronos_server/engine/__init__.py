"""Batched Kronos inference: sampling, the recompute oracle and the continuous-batching engine."""
