"""Strict JAX for every test: float64 (the gradient checks need it) and no implicit rank promotion; a compilation
cache of each test process's own."""

import atexit
import os
import shutil
import tempfile

import jax
import pytest

# Each test process (each pytest-xdist worker) has a compilation cache of its own (fdl/compile_cache.py), set before
# any test module imports fdl: the tests never read or fill the user's ~/.cache/fdl/jax, two workers never write one
# entry at once (JAX writes an entry in place, not by an atomic rename), and a program compiled again in this
# process, or by a script it runs, is loaded, not compiled (tests/train/test_fit.py: a quarter less CPU time).
# FDL_JAX_CACHE set by the caller (e.g. FDL_JAX_CACHE=0) is kept.
if "FDL_JAX_CACHE" not in os.environ:
    os.environ["FDL_JAX_CACHE"] = tempfile.mkdtemp(prefix="fdl-jax-cache-")
    atexit.register(shutil.rmtree, os.environ["FDL_JAX_CACHE"], ignore_errors=True)

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key():
    return jax.random.key(0)


def pytest_configure(config):
    # JAX reports an unreadable or unwritable cache entry as a UserWarning and compiles afresh: time lost, never a
    # result, so filterwarnings = error must not make it a failure
    config.addinivalue_line(
        "filterwarnings", "default:Error (reading|writing) persistent compilation cache entry:UserWarning"
    )
