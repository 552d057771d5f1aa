"""fdl 0.1's spellings fail naming their 0.2 replacement (``fdl/_moved.py``), and each replacement exists."""

import importlib

import numpy as np
import pytest

import fdl
from fdl._moved import KEYWORDS, MOVED
from fdl.layers import conv2d, dense
from fdl.losses import mean_squared_error
from fdl.optim import sgd

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
    assert MODULES == ["fdl.autodiff", "fdl.book", "fdl.cli", "fdl.experiment", "fdl.foundations",
                       "fdl.fundamentals", "fdl.text"]


@pytest.mark.parametrize("old", MODULES)
def test_a_moved_module_fails_naming_the_new_one(old):
    new = MOVED[old].split(" ")[0]
    with pytest.raises(ModuleNotFoundError, match=f"{old} was moved or renamed in fdl 0.2; use {new}"):
        importlib.import_module(old)
    with pytest.raises(ImportError, match=f"use {new}"):  # importlib's from-list must not swallow the message
        exec(f"from fdl import {old.split('.')[1]}", {})
    with pytest.raises(AttributeError, match=f"use {new}"):
        getattr(fdl, old.split(".")[1])


@pytest.mark.parametrize("old", ATTRIBUTES)
def test_a_moved_name_fails_naming_the_new_one(old):
    module, name = old.rsplit(".", 1)
    new = MOVED[old].split(" ")[0].split("(")[0]
    with pytest.raises(AttributeError, match=rf"{old} was moved or renamed in fdl 0.2; use {new}"):
        getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("old", sorted(MOVED))
def test_each_replacement_exists(old):
    for new in MOVED[old].replace(" and ", " ").split(" "):
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
}


@pytest.mark.parametrize("func, keyword", sorted((f, k) for f, table in KEYWORDS.items() for k in table))
def test_a_removed_keyword_fails_naming_its_replacement(func, keyword):
    new = KEYWORDS[func][keyword].split("(")[0].split(" ")[0]
    with pytest.raises(TypeError, match=rf"{func}\(\) no longer takes {keyword}= \(fdl 0.2, .*\); use {new}"):
        CALLS[func](**{keyword: 0.8})


@pytest.mark.parametrize("func", sorted(CALLS))
def test_a_misspelt_keyword_is_reported_as_python_does(func):
    with pytest.raises(TypeError, match=rf"{func}\(\) got an unexpected keyword argument 'dropuot'"):
        CALLS[func](dropuot=0.8)
