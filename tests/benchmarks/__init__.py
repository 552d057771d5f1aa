"""Tests of the benchmark package (benchmarks/), run as a user runs it."""
