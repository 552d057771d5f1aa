"""fdl.ops._op: the Op (forward + hand-written backward), the grad modes, and the cotangent-dtype contract."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fdl import dense, ops, serial
from fdl.losses import softmax_cross_entropy

MODES = ("manual", "autodiff")


def test_manual_path_uses_the_handwritten_backward():
    # A deliberately altered backward changes jax.grad of the manual path only.
    calls = []

    def backward(g, out, x):
        calls.append(1)
        return (3.0 * g,)

    triple = ops.Op(lambda x: x, backward, "triple_grad")
    x = jnp.ones(3)
    np.testing.assert_allclose(jax.grad(lambda v: triple(v).sum())(x), 3.0)
    np.testing.assert_allclose(jax.grad(lambda v: triple(v, grad="autodiff").sum())(x), 1.0)
    assert calls


def test_unknown_grad_mode_and_activation():
    with pytest.raises(ValueError, match="grad must be one of"):
        ops.sigmoid(jnp.ones(2), grad="numeric")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        ops.get_activation("swish")


@pytest.mark.parametrize("mode", MODES)
def test_float32_params_with_float64_data_get_float32_gradients(mode):
    # Before (manual): float64 gradients for float32 params; fit with momentum failed inside the scanned epoch.
    model = serial(dense(4, "relu"), dense(3))
    params = model.init(jax.random.key(0), (5,))
    x = jax.random.normal(jax.random.key(1), (6, 5), jnp.float64)
    y = jax.nn.one_hot(jnp.arange(6) % 3, 3, dtype=jnp.float64)

    def loss(p):
        return softmax_cross_entropy(model.apply(p, x, grad=mode), y, grad=mode)

    grads = jax.grad(loss)(params)
    assert {str(g.dtype) for g in jax.tree.leaves(grads)} == {"float32"}
    opt = optax.sgd(0.1, momentum=0.9)

    def step(carry, _):
        p, state = carry
        updates, state = opt.update(jax.grad(loss)(p), state, p)
        return (optax.apply_updates(p, updates), state), None

    (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), length=2)
    assert {str(a.dtype) for a in jax.tree.leaves(p)} == {"float32"}
