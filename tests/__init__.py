"""fdl's test suite: a folder per package of fdl and a test file per module; shared helpers in tests/helpers.py."""
