"""Tests of fdl.ops: one file per op module."""
