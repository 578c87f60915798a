"""Benchmarks of DESIGN.md section 10; run them with ``python -m benchmarks.run``."""
