"""fdl.ops.activations: each activation's hand-written VJP against jax.grad and finite differences, the kinks
(relu and leaky_relu at exactly 0), property tests, and bad input (a plain function instead of an op)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdl import conv2d, dense, ops
from fdl.testing import check_op
from tests.helpers import normal
from tests.strategies import PROPERTY, assert_vjps_agree, call, draw, floats, seed

SHAPES = [(1, 1), (1, 7), (5, 3), (64, 33)]
MODES = ("manual", "autodiff")
KINKS = st.one_of(st.sampled_from((0.0, -0.0)), floats())  # exact zeros (relu's kink) drawn often


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(ops.ACTIVATIONS))
def test_activation(name, shape):
    check_op(ops.ACTIVATIONS[name], normal(1, shape, 2.0))


def test_leaky_relu_slope_is_static_and_used_in_both_passes():
    x = normal(2, (4, 5))
    check_op(ops.leaky_relu, x, slope=0.05)
    g = jax.grad(lambda v: ops.leaky_relu(v, slope=0.05).sum())(jnp.array([-1.0, 2.0]))
    np.testing.assert_allclose(g, [0.05, 1.0])


def test_relu_gradient_is_zero_for_negative_inputs():
    # Erratum 3: the book's mask lets gradients through negative inputs.
    g = jax.grad(lambda v: ops.relu(v).sum())(jnp.array([-2.0, -0.5, 0.5, 3.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, 1.0])


# ---------------------------------------------------------------- kinks: both modes take one derivative at 0


@pytest.mark.parametrize("mode", MODES)
def test_kinks_take_the_left_derivative_in_both_modes(mode):
    # Before: jax.grad of relu's plain forward (jnp.maximum) gave 0.5 at 0; the hand-written backward 0.
    x = jnp.array([-1.0, -0.0, 0.0, 2.0])
    np.testing.assert_array_equal(jax.grad(lambda v: ops.relu(v, grad=mode).sum())(x), [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(
        jax.grad(lambda v: ops.leaky_relu(v, grad=mode, slope=0.1).sum())(x), [0.1, 0.1, 0.1, 1.0]
    )


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_activations_at_exact_zeros_pass_the_harness(name):
    x = jnp.array([[0.0, -0.0, 1.5, -2.0], [0.0, 0.0, 0.0, 3.0]])
    check_op(ops.ACTIVATIONS[name], x)


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
def test_relu_at_zero_passes_no_gradient(grad):
    """fdl's relu takes the derivative 0 at x = 0 (and -0) on both paths; jnp.maximum(x, 0) would split the tie."""
    x = jnp.array([[-1.0, 0.0, -0.0, 2.0]])
    np.testing.assert_array_equal(jax.grad(lambda v: ops.relu(v, grad=grad).sum())(x), [[0.0, 0.0, 0.0, 1.0]])


# ---------------------------------------------------------------- property tests (tests/strategies.py)


@PROPERTY
@given(st.data(), st.sampled_from(((1, 1), (8, 9))))
def test_elementwise_ops(data, shape):
    """linear, sigmoid, tanh (inputs up to +/-20), relu and leaky_relu (exact zeros drawn often).

    At the kink x = 0 (and -0) both paths take the left derivative: 0 for relu, the slope for leaky_relu.
    """
    wide, kinks = draw(data, shape, 20.0), draw(data, shape, elements=KINKS)
    assert_vjps_agree(
        {
            "linear": (call(ops.linear), (wide,), 1),
            "sigmoid": (call(ops.sigmoid), (wide,), 1),
            "tanh": (call(ops.tanh), (wide,), 1),
            "relu": (call(ops.relu), (kinks,), 1),
            "leaky_relu(0.2)": (call(ops.leaky_relu), (kinks,), 1),
            "leaky_relu(0.01)": (call(ops.leaky_relu, slope=0.01), (kinks,), 1),
        },
        seed(data),
    )


# ---------------------------------------------------------------- bad input

UNKNOWN_NAMES = {
    "activation lookup": (lambda: ops.get_activation("softplus"), "unknown activation 'softplus'; choose one of"),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN_NAMES))
def test_unknown_names(case):
    call, message = UNKNOWN_NAMES[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_integer_input_to_differentiable_code():
    """No gradient flows into integers (JAX refuses), so integer data never yields silent garbage gradients.

    The op's case of the bad-input catalogue's test; the dense layer's, conv2d's and the recurrent layer's are in
    their test files under the same name.
    """
    ints = jnp.arange(8).reshape(2, 4)
    with pytest.raises(TypeError, match="grad requires real- or complex-valued inputs"):
        jax.grad(lambda x: ops.sigmoid(x).sum())(ints)


PLAIN_FUNCTIONS = {
    "jax.nn.softplus": jax.nn.softplus,
    "jax.nn.relu": jax.nn.relu,
    "jnp.tanh": jnp.tanh,
    "a lambda": lambda x: x,
}


@pytest.mark.parametrize("name", sorted(PLAIN_FUNCTIONS))
def test_a_plain_function_as_activation_is_refused_when_the_layer_is_built(name):
    """Before: dense(8, jax.nn.softplus) was built, and its first apply failed inside JAX about kwargs['grad'].

    dense and conv2d resolve their activation through get_activation (the recurrent layers take none).
    """
    fn = PLAIN_FUNCTIONS[name]
    message = (
        r"activation: got the plain function .*, which is not an fdl op .* pass one of the names "
        r"\['leaky_relu', 'linear', 'relu', 'sigmoid', 'tanh'\], an op such as fdl\.ops\.relu, or make one "
        r"from your function and its backward: fdl\.ops\.op\(backward\)\(forward\)"
    )
    for build in (lambda: ops.get_activation(fn), lambda: dense(8, fn), lambda: conv2d(4, 3, fn)):
        with pytest.raises(TypeError, match=message):
            build()


def test_a_plain_function_with_an_fdl_namesake_is_pointed_at_the_name():
    with pytest.raises(TypeError, match=r"fdl has its own 'relu': pass activation='relu'"):
        dense(8, jax.nn.relu)
    with pytest.raises(TypeError, match=r"got 3 of type int, which is not an fdl op"):
        dense(8, 3)


@pytest.mark.parametrize("mode", MODES)
def test_the_op_the_message_suggests_trains_in_both_modes(mode):
    softplus = ops.op(lambda g, out, x: (g * jax.nn.sigmoid(x),))(jax.nn.softplus)  # as the message spells it
    check_op(softplus, normal(3, (4, 5), 2.0))
    layer = dense(3, softplus)
    params = layer.init(jax.random.key(0), (4,))
    x = normal(4, (2, 4))
    np.testing.assert_allclose(layer.apply(params, x, grad=mode), jax.nn.softplus(x @ params["W"] + params["B"]))
    # a partial of an fdl op keeps its backward, so it is taken too
    leaky = dense(3, functools.partial(ops.leaky_relu, slope=0.01))
    assert leaky.apply(params, -jnp.abs(x), grad=mode).shape == (2, 3)
