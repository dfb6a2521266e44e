"""Benchmarks of fmcsa-sync: `./fmcsa bench [--quick]` runs `python -m bench.run` (see BENCHMARKS.md)."""
