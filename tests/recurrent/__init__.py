"""Tests of fdl.recurrent: cells, layers, models, sampling."""
