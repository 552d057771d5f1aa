"""The scalar autodiff of ch. 6.1 against the book's checks and against jax.grad."""

import random

import jax
import numpy as np
import pytest

from fdl.chapters.autodiff import NumberWithGrad


def test_book_first_check():
    a = NumberWithGrad(3)
    b = a * 4
    c = b + 3
    c.backward()
    assert a.grad == 4 and b.grad == 1 and c.num == 15


def test_book_second_check_accumulates():
    a = NumberWithGrad(3)
    e = (a * 4 + 3) * (a + 2)
    e.backward()
    assert e.num == 75 and a.grad == 35  # d/da (4a^2 + 11a + 6) = 8a + 11


def test_backward_twice_does_not_double():
    a = NumberWithGrad(2)
    e = a * a
    e.backward()
    e.backward()
    assert a.grad == 4


def test_shared_subexpression_reaches_inputs_after_all_its_users():
    a = NumberWithGrad(3)
    x = a + 1
    e = x * (x * 2)  # 2 (a + 1)^2
    e.backward()
    assert a.grad == 16


def test_constants_on_either_side_and_bad_values():
    a = NumberWithGrad(1.5)
    e = 2 * a + 1
    e.backward()
    assert a.grad == 2
    with pytest.raises(TypeError):
        NumberWithGrad("3")


def _random_expression(rng, n_vars, depth):
    """A random tree of + and * over variables and constants, as a function of a list of numbers."""
    if depth == 0 or rng.random() < 0.2:
        if rng.random() < 0.7:
            i = rng.randrange(n_vars)
            return lambda v: v[i]
        c = rng.uniform(-2, 2)
        return lambda v: c
    left, right = _random_expression(rng, n_vars, depth - 1), _random_expression(rng, n_vars, depth - 1)
    if rng.random() < 0.5:
        return lambda v: left(v) + right(v)
    return lambda v: left(v) * right(v)


@pytest.mark.parametrize("seed", range(20))
def test_random_expressions_against_jax_grad(seed):
    rng = random.Random(seed)
    n = 3
    f = _random_expression(rng, n, 5)
    values = [rng.uniform(-1.5, 1.5) for _ in range(n)]
    xs = [NumberWithGrad(v) for v in values]
    out = f(xs)
    if not isinstance(out, NumberWithGrad):  # the tree happened to be a constant
        return
    out.backward()
    want = jax.grad(lambda v: f([v[i] for i in range(n)]) + 0.0)(np.array(values))
    got = [x.grad if x.grad is not None else 0.0 for x in xs]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out.num, f(values), rtol=1e-12)
