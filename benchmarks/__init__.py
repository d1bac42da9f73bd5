"""Runnable benchmarks: `.venv/bin/python -m benchmarks.<module>`; `python -m benchmarks.run` runs the core set."""
