"""fdl 0.1's moved names fail naming their 0.2 replacement (the dated table in ``fdl/_moved.py``), each replacement
exists, and the table goes in 0.4; fdl 0.1's keyword arguments are unknown keywords to Python."""

import importlib
import sys

import numpy as np
import pytest

import fdl
from fdl._moved import MOVED
from fdl.layers import conv2d, dense
from fdl.losses import mean_squared_error
from fdl.optim import sgd
from fdl.train import make_train_step

MODULES = sorted(old for old in MOVED if old.count(".") == 1)  # fdl.X: the modules that left the top level
ATTRIBUTES = sorted(set(MOVED) - set(MODULES))


def _resolve(dotted: str):
    """The object a plain dotted name names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(dotted)


def test_the_table_holds_the_modules_that_left_the_top_level():
    assert MODULES == [
        "fdl.autodiff",
        "fdl.book",
        "fdl.cli",
        "fdl.experiment",
        "fdl.foundations",
        "fdl.fundamentals",
        "fdl.text",
    ]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(" ")[0].split("."))


@pytest.mark.parametrize("old", sorted(MOVED))
def test_each_entry_is_dated_and_goes_before_its_version(old):
    entry = MOVED[old]
    assert entry.old == old
    assert entry.since == "0.2 (2026-12-01)" and entry.removed_in == "0.4"
    # when fdl reaches removed_in, delete the entry: the old name is then simply unknown
    assert _version(fdl.__version__)[:2] < _version(entry.removed_in), f"{old}: its entry is due to go"


@pytest.mark.parametrize("old", MODULES)
def test_a_moved_module_fails_naming_the_new_one(old):
    new = MOVED[old].new.split(" ")[0]
    with pytest.raises(
        AttributeError,
        match=rf"{old} was moved or renamed in fdl 0\.2 \(2026-12-01\); use {new} "
        r".*goes in fdl 0\.4",
    ):
        getattr(fdl, old.split(".")[1])
    # imported, it is Python's own error: fdl hooks no import
    with pytest.raises(ModuleNotFoundError, match=f"No module named '{old}'"):
        importlib.import_module(old)
    with pytest.raises(ImportError, match=f"cannot import name '{old.split('.')[1]}' from 'fdl'"):
        exec(f"from fdl import {old.split('.')[1]}", {})


def test_fdl_installs_no_import_hook():
    assert not [f for f in sys.meta_path if type(f).__module__.startswith("fdl")]


@pytest.mark.parametrize("old", ATTRIBUTES)
def test_a_moved_name_fails_naming_the_new_one(old):
    module, name = old.rsplit(".", 1)
    new = MOVED[old].new.split(" ")[0].split("(")[0]
    with pytest.raises(AttributeError, match=rf"{old} was moved or renamed in fdl 0\.2 .*; use {new}"):
        getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("old", sorted(MOVED))
def test_each_replacement_exists(old):
    for new in MOVED[old].new.replace(" and ", " ").split(" "):
        if new.startswith("fdl."):
            assert _resolve(new.split("(")[0]) is not None


def test_an_unknown_name_is_reported_plainly():
    with pytest.raises(AttributeError, match="module 'fdl' has no attribute 'nonesuch'"):
        fdl.nonesuch  # noqa: B018
    with pytest.raises(AttributeError, match="module 'fdl.ops' has no attribute 'nonesuch'"):
        fdl.ops.nonesuch  # noqa: B018


CALLS = {
    "fit": lambda **kw: fdl.fit(dense(1), mean_squared_error, sgd(0.1), np.zeros((4, 2)), np.zeros((4, 1)), **kw),
    "dense": lambda **kw: dense(3, **kw),
    "conv2d": lambda **kw: conv2d(2, 3, **kw),
    "make_train_step": lambda **kw: make_train_step(fdl.train.model_loss(dense(1), mean_squared_error), sgd(0.1), **kw),
}
# fdl 0.1's keywords, gone in 0.2 (fit's restart= in 0.3); CHANGELOG.md's migration table names their replacements
OLD_KEYWORDS = {
    "fit": [
        "checkpoint",
        "checkpoint_every",
        "devices",
        "eval_batch_size",
        "opt_state",
        "params",
        "progress",
        "restart",
        "resume",
    ],
    "dense": ["dropout"],
    "conv2d": ["dropout"],
    "make_train_step": ["grad"],
}


@pytest.mark.parametrize("func, keyword", sorted((f, k) for f, names in OLD_KEYWORDS.items() for k in names))
def test_a_removed_keyword_is_an_unknown_keyword(func, keyword):
    with pytest.raises(TypeError, match=rf"^{func}\(\) got an unexpected keyword argument '{keyword}'$"):
        CALLS[func](**{keyword: 0.8})


@pytest.mark.parametrize("func", sorted(CALLS))
def test_a_misspelt_keyword_is_reported_as_python_does(func):
    with pytest.raises(TypeError, match=rf"^{func}\(\) got an unexpected keyword argument 'dropuot'$"):
        CALLS[func](dropuot=0.8)
