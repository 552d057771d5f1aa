"""The book's optimizer rules, checked against the formulas written out by hand in numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fdl import optim


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


@pytest.mark.parametrize("bad", [dict(final_lr=0.05), dict(decay_type="linear"),
                                 dict(final_lr=0.05, decay_type="cosine"), dict(final_lr=-1.0, decay_type="linear")])
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
    optax_tx = optax.sgd(optim.per_epoch_schedule(0.2, 0.05, "exponential", epochs=3, steps_per_epoch=2),
                         momentum=mu)
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
