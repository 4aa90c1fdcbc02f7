"""The engine benchmark (``benchmarks/bench_engine.py``): its workload and one module per section."""
