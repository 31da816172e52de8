"""Benchmarks: each runs as ``python -m bench.NAME`` and ends with a ``RESULT NAME key=value ...`` line."""
