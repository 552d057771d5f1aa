"""Tests of fdl.layers: one file per layer module."""
