"""Benchmarks, each measured beside its peer in the same run (``edgefw bench``)."""
