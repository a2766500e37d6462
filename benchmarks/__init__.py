"""Benchmarks for `make bench`: one module per scenario, each printing figures, never asserting time."""
