"""Tests of fdl.data: one file per data module."""
