"""Tests of the scripts in experiments/, run as a user runs them."""
