"""Tests of fdl.train: one file per module of the trainer."""
