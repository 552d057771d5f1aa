"""Tests of fdl.chapters: the chapter demos."""
