"""fdl.optim: the book's optimizer rules, checked against the formulas written out by hand in numpy; build, and
optimizer constructors passed uncalled; bad hyperparameters."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fdl import optim
from fdl.optim import adagrad, clip, momentum, sgd
from tests.helpers import assert_refused_before_writing


def run(tx, grads, p0):
    params, state = jnp.asarray(p0), None
    state = tx.init(params)
    out = []
    for g in grads:
        upd, state = tx.update(jnp.asarray(g), state, params)
        params = optax.apply_updates(params, upd)
        out.append(np.asarray(params))
    return out


def test_epoch_rates_linear_and_exponential_end_at_final_lr():
    lin = optim.epoch_learning_rates(0.15, 0.05, "linear", 5)
    np.testing.assert_allclose(lin, [0.15, 0.125, 0.1, 0.075, 0.05])
    exp = optim.epoch_learning_rates(0.2, 0.05, "exponential", 3)
    np.testing.assert_allclose(exp, [0.2, 0.1, 0.05])


def test_single_epoch_has_no_decay_and_no_division_by_zero():
    assert optim.epoch_learning_rates(0.1, 0.05, "linear", 1) == [0.1]
    assert optim.epoch_learning_rates(0.1, 0.05, "exponential", 1) == [0.1]


@pytest.mark.parametrize(
    "bad",
    [
        dict(final_lr=0.05),
        dict(decay_type="linear"),
        dict(final_lr=0.05, decay_type="cosine"),
        dict(final_lr=-1.0, decay_type="linear"),
    ],
)
def test_bad_decay_arguments(bad):
    with pytest.raises(ValueError):
        optim.epoch_learning_rates(0.1, bad.get("final_lr"), bad.get("decay_type"), 3)


def test_schedule_holds_each_epoch_rate():
    sched = optim.per_epoch_schedule(0.3, 0.1, "linear", epochs=3, steps_per_epoch=2)
    np.testing.assert_allclose([float(sched(s)) for s in range(8)], [0.3, 0.3, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1])


def test_book_momentum_with_decaying_rate_matches_the_book_rule():
    rng = np.random.RandomState(0)
    grads = rng.randn(6, 4)
    epochs, spe, mu = 3, 2, 0.9
    tx = optim.momentum(0.2, mu, final_lr=0.05, decay_type="exponential")(epochs, spe)
    got = run(tx, grads, np.zeros(4))
    rates = optim.epoch_learning_rates(0.2, 0.05, "exponential", epochs)
    p, v = np.zeros(4), np.zeros(4)
    for t, g in enumerate(grads):
        v = mu * v + rates[t // spe] * g
        p = p - v
        np.testing.assert_allclose(got[t], p, rtol=1e-6, atol=1e-7)
    # optax's momentum scales after accumulating, which differs once the rate changes
    optax_tx = optax.sgd(optim.per_epoch_schedule(0.2, 0.05, "exponential", epochs=3, steps_per_epoch=2), momentum=mu)
    assert not np.allclose(run(optax_tx, grads, np.zeros(4))[-1], p, rtol=1e-3)


def test_book_momentum_constant_rate_equals_optax():
    grads = np.random.RandomState(1).randn(5, 3)
    a = run(optim.momentum(0.1, 0.9), grads, np.ones(3))
    b = run(optax.sgd(0.1, momentum=0.9), grads, np.ones(3))
    np.testing.assert_allclose(a[-1], b[-1], rtol=1e-6)


def test_book_adagrad():
    grads = np.random.RandomState(2).randn(5, 3)
    got = run(optim.adagrad(0.01, eps=1e-7), grads, np.ones(3))
    p, s = np.ones(3), np.zeros(3)
    for t, g in enumerate(grads):
        s = s + 1e-7 + g**2
        p = p - 0.01 * g / np.sqrt(s)
        np.testing.assert_allclose(got[t], p, rtol=1e-6)


def test_clip_then_adagrad_clips_elementwise():
    tx = optax.chain(optim.clip(2.0), optim.adagrad(0.01))
    g = jnp.array([5.0, -7.0, 0.5])
    upd, _ = tx.update(g, tx.init(jnp.zeros(3)))
    clipped = np.array([2.0, -2.0, 0.5])
    np.testing.assert_allclose(upd, -0.01 * clipped / np.sqrt(1e-7 + clipped**2), rtol=1e-6)


def test_sgd_and_factories_build():
    assert isinstance(optim.sgd(0.1), optax.GradientTransformation)
    factory = optim.sgd(0.1, final_lr=0.01, decay_type="linear")
    assert isinstance(optim.build(factory, 10, 5), optax.GradientTransformation)
    with pytest.raises(TypeError):
        optim.build("adam", 1, 1)
    with pytest.raises(ValueError):
        optim.sgd(0.0)
    with pytest.raises(ValueError):
        optim.momentum(0.1, 1.5)


def test_jit_compatible():
    tx = optim.momentum(0.1, 0.9, final_lr=0.01, decay_type="linear")(4, 3)
    state = tx.init(jnp.zeros(2))
    upd, state = jax.jit(tx.update)(jnp.ones(2), state, jnp.zeros(2))
    np.testing.assert_allclose(upd, [-0.1, -0.1], rtol=1e-6)


# ---------------------------------------------------------------- optimizer constructors passed uncalled


@pytest.mark.parametrize(
    "constructor, message",
    [
        (optax.adam, r"pass optax\.adam\(0\.001\), not optax\.adam"),
        (optax.sgd, r"pass optax\.sgd\(0\.001\), not optax\.sgd"),
        (functools.partial(optax.adam, b1=0.8), r"pass optax\.adam\(0\.001\), not optax\.adam"),
        (optim.sgd, r"pass fdl\.optim\.sgd\(0\.01\), not fdl\.optim\.sgd"),
        (optim.momentum, r"pass fdl\.optim\.momentum\(0\.01, 0\.9\), not fdl\.optim\.momentum"),
        (optim.adagrad, r"pass fdl\.optim\.adagrad\(0\.01\), not fdl\.optim\.adagrad"),
    ],
)
def test_build_refuses_an_uncalled_constructor(constructor, message):
    with pytest.raises(TypeError, match=message):
        optim.build(constructor, 10, 5)


def test_build_still_takes_transformations_and_factories():
    assert isinstance(optim.build(optax.adam(0.001), 3, 4), optax.GradientTransformation)
    decaying = optim.sgd(0.1, final_lr=0.01, decay_type="linear")
    assert isinstance(decaying, optim.Decaying) and optim.uncalled_constructor(decaying) is None
    assert isinstance(optim.build(decaying, 3, 4), optax.GradientTransformation)
    own = lambda epochs, steps_per_epoch: optax.sgd(optax.linear_schedule(0.1, 0.0, epochs * steps_per_epoch))
    assert isinstance(optim.build(own, 3, 4), optax.GradientTransformation)


# ---------------------------------------------------------------- the bad-input catalogue's cases

HYPERPARAMETERS = {
    "sgd lr 0": (lambda ck: sgd(0.0), "learning rate must be positive, got 0.0"),
    "sgd lr -0.1": (lambda ck: sgd(-0.1), "learning rate must be positive, got -0.1"),
    "sgd lr nan": (lambda ck: sgd(float("nan")), "learning rate must be positive, got nan"),
    "momentum final_lr 0": (lambda ck: momentum(0.1, final_lr=0.0, decay_type="linear"), "final_lr must be positive"),
    "momentum mu 1": (lambda ck: momentum(0.1, 1.0), r"momentum mu must be in \[0, 1\), got 1.0"),
    "adagrad lr": (lambda ck: adagrad(0.0), "adagrad learning rate must be positive"),
    "adagrad eps": (lambda ck: adagrad(0.1, eps=-1e-7), "adagrad eps must be positive"),
    "clip": (lambda ck: clip(0.0), "clip max_delta must be positive"),
}


@pytest.mark.parametrize("case", sorted(HYPERPARAMETERS))
def test_non_positive_hyperparameters(tmp_path, case):
    """Refused when given, before anything is read or written: an existing checkpoint is left as it was."""
    assert_refused_before_writing(tmp_path, *HYPERPARAMETERS[case])


UNKNOWN_NAMES = {
    "decay type": (lambda: sgd(0.1, final_lr=0.01, decay_type="cosine"), "decay_type must be one of"),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN_NAMES))
def test_unknown_names(case):
    call, message = UNKNOWN_NAMES[case]
    with pytest.raises(ValueError, match=message):
        call()
