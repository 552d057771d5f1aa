"""fdl.compile_cache: a second process loads every program of a small ``fit`` from the cache (JAX's own counters say
so), a broken cache directory costs time but never a crash or a different result, the user's own JAX cache is left
alone, and the off switch works.

Each process runs :data:`WORKER`: a ``fit`` of a small regression, printing JAX's compilation-cache events and the
trained params' bytes.
"""

import json
import logging
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from fdl import compile_cache

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import json
import sys
import jax
counts = {}
def count(event, **kwargs):
    if event.startswith("/jax/compilation_cache/"):
        name = event.rsplit("/", 1)[1]
        counts[name] = counts.get(name, 0) + 1
jax.monitoring.register_event_listener(count)   # before fdl: its import may compile already
import numpy as np
import fdl
from fdl.optim import sgd
rng = np.random.RandomState(0)
X = rng.randn(64, 4)
y = np.tanh(X @ rng.randn(4, 1))
params = {} if "--import-only" in sys.argv else fdl.fit(
    fdl.serial(fdl.dense(6, "sigmoid", keep_prob=0.9), fdl.dense(1)), fdl.mean_squared_error, sgd(0.05), X, y,
    epochs=4, batch_size=16, seed=3, log=None)[0]
print(json.dumps({"counts": counts, "dir": str(fdl.compile_cache.cache_dir()),
                  "thresholds": [jax.config.jax_persistent_cache_min_compile_time_secs,
                                 jax.config.jax_persistent_cache_min_entry_size_bytes],
                  "params": [np.asarray(p).tobytes().hex() for p in jax.tree.leaves(params)]}))
"""


def run_worker(tmp_path, prefix=(), args=(), **env):
    """Run :data:`WORKER` in a fresh process with only ``env`` configuring the caches; its JSON and its stderr."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE", "JAX_ENABLE_COMPILATION_CACHE", "FDL_"))
    }
    base.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), HOME=str(tmp_path / "home"), **env
    )
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", WORKER, *args],
        env=base,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1]), proc.stderr


@pytest.fixture(scope="module")
def uncached(tmp_path_factory):
    """The off switch: ``FDL_JAX_CACHE=off``; its params are what every cached run must reproduce bit for bit."""
    tmp = tmp_path_factory.mktemp("off")
    out, _ = run_worker(tmp, FDL_JAX_CACHE="off")
    out["default_dir"] = tmp / "home" / ".cache" / "fdl" / "jax"
    return out


@pytest.fixture(scope="module")
def cold_warm(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache") / "jax"
    first, _ = run_worker(cache.parent, FDL_JAX_CACHE=str(cache))
    entries = len(list(cache.glob("*-cache")))
    second, _ = run_worker(cache.parent, FDL_JAX_CACHE=str(cache))
    return cache, first, second, entries


def test_the_off_switch_writes_nothing_and_reads_nothing(uncached):
    assert uncached["dir"] == "None"
    assert "cache_hits" not in uncached["counts"] and "cache_misses" not in uncached["counts"]
    assert not uncached["default_dir"].exists()


def test_a_second_process_compiles_nothing_new(cold_warm, uncached):
    cache, first, second, entries = cold_warm
    assert first["dir"] == second["dir"] == str(cache)
    requests = first["counts"]["compile_requests_use_cache"]
    assert requests > 3  # initialisation, the training chunk, eager ops
    # The first process writes every program it compiles, however small; the second loads every one of them.
    assert first["counts"].get("cache_misses") == requests and "cache_hits" not in first["counts"]
    assert second["counts"]["compile_requests_use_cache"] == requests
    assert second["counts"].get("cache_hits") == requests and "cache_misses" not in second["counts"]
    assert entries == requests
    assert first["params"] == second["params"] == uncached["params"]


def _corrupt_entries(cache: Path) -> None:
    """Half the entries truncated (a write cut short), the others garbage, and junk beside them."""
    entries = sorted(cache.glob("*-cache"))
    for i, entry in enumerate(entries):
        data = entry.read_bytes()
        entry.write_bytes(data[: len(data) // 2] if i % 2 else b"not an executable" * 8)
    (cache / "junk.bin").write_bytes(bytes(100))
    (cache / "x-cache").write_bytes(b"x")
    (cache / "a-directory-cache").mkdir()


def _read_only(cache: Path) -> None:
    cache.mkdir()
    cache.chmod(0o555)


BROKEN = {"a file in its place": lambda cache: cache.write_bytes(b"not a directory"), "read-only": _read_only}


@pytest.mark.parametrize("broken", BROKEN)
def test_an_unusable_directory_turns_the_cache_off_with_one_message(broken, tmp_path, uncached):
    cache = tmp_path / "jax"
    BROKEN[broken](cache)
    prefix = ()
    if broken == "read-only" and os.geteuid() == 0:  # root writes anywhere unless it gives up DAC override
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: a read-only directory is writable")
        drop = "-dac_override,-dac_read_search"
        prefix = ("setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}")
    out, stderr = run_worker(tmp_path, prefix, FDL_JAX_CACHE=str(cache))
    assert out["dir"] == "None" and out["params"] == uncached["params"]
    assert stderr.count("fdl: the compilation cache is off") == 1 and str(cache) in stderr, stderr


def test_corrupt_entries_are_compiled_afresh_with_the_same_results(cold_warm, uncached):
    cache, *_ = cold_warm
    _corrupt_entries(cache)  # after both runs of the fixture; entries are keyed on this path, so corrupt in place
    out, stderr = run_worker(cache.parent, FDL_JAX_CACHE=str(cache))
    assert "cache_hits" not in out["counts"]
    assert out["params"] == uncached["params"]
    assert "Error reading persistent compilation cache entry" in stderr  # JAX warns and compiles again


def test_the_users_own_jax_cache_is_left_alone(tmp_path):
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    out, _ = run_worker(
        tmp_path, args=["--import-only"], JAX_COMPILATION_CACHE_DIR=str(theirs), FDL_JAX_CACHE=str(ours)
    )
    assert out["dir"] == str(theirs) and not ours.exists()
    assert out["thresholds"] == [1.0, 0]  # JAX's defaults: fdl lowers them only for its own cache


def test_the_default_directory_is_under_fdls_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("FDL_DATA_DIR", str(tmp_path))
    assert compile_cache.default_dir() == tmp_path / "jax"
    monkeypatch.delenv("FDL_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert compile_cache.default_dir() == tmp_path / "home" / ".cache" / "fdl" / "jax"


@pytest.fixture
def restore_cache():
    before = compile_cache.cache_dir()
    yield
    compile_cache.disable()
    if before is not None:
        compile_cache.enable(before)


def test_enable_and_disable_in_a_running_program(tmp_path, restore_cache):
    compile_cache.disable()
    assert compile_cache.cache_dir() is None
    assert compile_cache.enable(tmp_path / "c") == tmp_path / "c"  # after compiles already happened: it still works
    jax.jit(lambda x: x * 7.25 + 1.0)(jnp.arange(3.0)).block_until_ready()
    assert list((tmp_path / "c").glob("jit__lambda-*-cache"))
    compile_cache.disable()
    assert compile_cache.cache_dir() is None
    jax.jit(lambda x: x * 3.75 - 2.0)(jnp.arange(3.0)).block_until_ready()
    assert len(list((tmp_path / "c").glob("jit__lambda-*-cache"))) == 1


def test_an_unusable_directory_is_reported_once_and_never_raises(tmp_path, caplog, restore_cache):
    (tmp_path / "file").write_text("")
    before = compile_cache.cache_dir()
    with caplog.at_level(logging.WARNING, logger="fdl.compile_cache"):
        assert compile_cache.enable(tmp_path / "file" / "jax") is None
    assert len(caplog.records) == 1 and "cannot create" in caplog.text
    assert compile_cache.cache_dir() == before  # the cache in use, if any, is kept


def test_a_cache_warning_is_not_a_test_failure():
    # JAX reports a bad entry as a UserWarning and compiles afresh; tests/conftest.py keeps filterwarnings = error
    # from turning that into a failure
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn(
            "Error reading persistent compilation cache entry for 'jit_f': error: truncated", UserWarning, stacklevel=1
        )
    assert len(caught) == 1
