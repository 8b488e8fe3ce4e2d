"""Loaded at start-up by every Python process whose PYTHONPATH holds this
directory (bench/drover.py puts it there for the run it measures): counts
the process's AWS requests and resources for the benchmark (bench.usage)."""

from bench.usage import install

install()
