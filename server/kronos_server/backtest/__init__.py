"""Backtests: forecasts from past origins of a series, scored against what happened next.

:mod:`.scores` holds the scoring rules (pure numpy), :mod:`.baselines` the reference
forecasters every backtest is compared with (naive, drift, volatility random walk).
"""
