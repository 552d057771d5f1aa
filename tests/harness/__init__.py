"""Tests of fdl.harness: the reproduction harness."""
