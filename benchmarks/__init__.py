"""Benchmarks of the speed and memory targets; run them with ``python -m benchmarks.run``."""
