"""conv2d (XLA primitives), conv2d_slices and conv2d_im2col: hand-written VJPs against jax.grad of a lax
conv2d_reference and against each other; conv2d_auto's choice between them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax import lax

import fdl.ops.conv as conv_module
from fdl.ops.conv import channel_bias_add, conv2d, conv2d_auto, conv2d_fastest, conv2d_im2col, conv2d_slices, im2col
from fdl.precision import matmul_precision
from fdl.testing import check_op, check_vjp
from tests.helpers import conv2d_reference
from tests.strategies import PROPERTY, assert_vjps_agree, call, draw, seed

IMPLS = [conv2d, conv2d_slices, conv2d_im2col]

# (batch, in_channels, out_channels, height, width, k): batch 1 and more, several channel counts, odd k 1/3/5,
# square and non-square images.
CASES = [
    (1, 1, 1, 4, 4, 3),
    (1, 1, 3, 5, 5, 5),
    (2, 3, 2, 5, 4, 3),
    (3, 2, 4, 4, 6, 1),
    (4, 3, 5, 7, 7, 5),
]


def random_case(n, c, o, h, w, k, seed=0):
    kx, kw = jax.random.split(jax.random.key(seed))
    return jax.random.normal(kx, (n, c, h, w), jnp.float64), jax.random.normal(kw, (c, o, k, k), jnp.float64)


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.name)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_manual_vjp_matches_autodiff_of_lax_reference(impl, case):
    x, W = random_case(*case)
    check_vjp(lambda x, W: impl(x, W, grad="manual"), conv2d_reference, (x, W))


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.name)
def test_autodiff_path_matches_reference(impl):
    x, W = random_case(2, 3, 2, 5, 4, 3, seed=1)
    check_vjp(lambda x, W: impl(x, W, grad="autodiff"), conv2d_reference, (x, W), numerical=False)


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.name)
def test_hand_computed_forward(impl):
    out = impl(jnp.ones((1, 1, 3, 3)), jnp.ones((1, 1, 3, 3)))
    np.testing.assert_array_equal(out[0, 0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.name)
def test_input_gradient_uses_the_flipped_kernel(impl):
    # One row [x0, x1, x2] and a kernel whose middle row is [1, 2, 3]: out[0] = 2 x0 + 3 x1, so the gradient
    # of out[0] is [2, 3, 0]. The book's unflipped kernel (erratum 4) would give [2, 1, 0].
    W = jnp.zeros((1, 1, 3, 3)).at[0, 0, 1].set(jnp.array([1.0, 2.0, 3.0]))
    dx = jax.grad(lambda x: impl(x, W)[0, 0, 0, 0])(jnp.ones((1, 1, 1, 3)))
    np.testing.assert_array_equal(dx[0, 0, 0], [2.0, 3.0, 0.0])


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.name)
def test_kernel_gradient_pairs_each_example_with_its_own_output_gradient(impl):
    # k = 1 makes dW a plain sum over examples and pixels of x * g; the book's batched version pairs rows
    # in the wrong order (erratum 4). Examples differ so a mispairing changes the value.
    x = jnp.array([1.0, 2.0]).reshape(2, 1, 1, 1)
    g = jnp.array([10.0, 100.0]).reshape(2, 1, 1, 1)
    _, vjp = jax.vjp(lambda W: impl(x, W), jnp.ones((1, 1, 1, 1)))
    assert float(vjp(g)[0].squeeze()) == 1.0 * 10.0 + 2.0 * 100.0


def test_the_two_implementations_agree_in_float32_under_jit():
    x, W = random_case(3, 2, 4, 6, 5, 5, seed=2)
    x, W = x.astype(jnp.float32), W.astype(jnp.float32)

    def loss_and_grads(impl):  # full float32: GPUs' default TF32 makes the two differ by ~1e-3 (issue 14)
        with matmul_precision("highest"):
            return jax.jit(jax.value_and_grad(lambda x, W: jnp.sum(jnp.tanh(impl(x, W))), (0, 1)))(x, W)

    for other in (conv2d_slices, conv2d_im2col):
        for a, b in zip(jax.tree.leaves(loss_and_grads(conv2d)), jax.tree.leaves(loss_and_grads(other)), strict=True):
            assert a.dtype == jnp.float32
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# One input channel (the case conv2d_auto gives to conv2d_slices on a CPU, the book's MNIST convolutions) and
# several.
EQUAL_CASES = [(3, 1, 4, 6, 5, 5), (2, 1, 3, 4, 4, 3), (2, 3, 2, 5, 4, 3)]


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
@pytest.mark.parametrize("other", [conv2d_im2col, conv2d_auto], ids=lambda f: getattr(f, "name", f.__name__))
@pytest.mark.parametrize("case", EQUAL_CASES, ids=str)
def test_formulations_are_the_same_function(case, other, grad):
    # conv2d_slices against XLA's convolution (conv2d), the appendix's matrix form and the automatic choice, in
    # the same gradient mode: forward and both gradients equal to float64 rounding (check_vjp's checks a and
    # b), plus finite differences of the slices form's hand-written (or jax.grad's) backward and its cotangent
    # dtypes.
    x, W = random_case(*case, seed=8)
    check_vjp(
        lambda x, W: conv2d_slices(x, W, grad=grad), lambda x, W: conv2d(x, W, grad=grad), (x, W), arg_names=("x", "W")
    )
    check_vjp(
        lambda x, W: conv2d_slices(x, W, grad=grad),
        lambda x, W: other(x, W, grad=grad),
        (x, W),
        arg_names=("x", "W"),
        numerical=False,
    )


def test_conv2d_fastest_picks_slices_for_one_channel_on_the_cpu(monkeypatch):
    cpu = jax.devices("cpu")[0]
    one, many = (jax.device_put(jnp.ones((2, c, 5, 5)), cpu) for c in (1, 16))
    assert conv_module.platform_of(one) == "cpu"
    assert conv2d_fastest(one) is conv2d_slices and conv2d_fastest(many) is conv2d
    assert conv2d_fastest(jnp.ones((1, 5, 5))) is conv2d  # not 4-D: conv2d says what is wrong
    monkeypatch.setattr(conv_module, "platform_of", lambda x: "gpu")  # on a GPU XLA's (cuDNN's) conv stays
    assert conv2d_fastest(one) is conv2d and conv2d_fastest(many) is conv2d


def test_platform_of_a_traced_input_is_the_default_device():
    seen = []
    jax.jit(lambda x: seen.append(conv_module.platform_of(x)) or x)(jnp.ones(2))
    assert seen == [jax.default_backend()]
    with jax.default_device(jax.devices("cpu")[0]):
        jax.jit(lambda x: seen.append(conv_module.platform_of(x)) or x)(jnp.ones(3))
    assert seen[-1] == "cpu"


def _primitives(jaxpr) -> set:
    """The names of every primitive in a jaxpr, nested jaxprs (custom_vjp bodies, scans) included."""
    found = set()
    for eqn in jaxpr.eqns:
        found.add(eqn.primitive.name)
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple) else (value,):
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    found |= _primitives(getattr(sub, "jaxpr", sub))
    return found


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
def test_conv2d_auto_decides_when_traced(grad):
    # The choice is in the traced program: for one input channel on a CPU a program of slices and matrix
    # products, no convolution primitive; for 16 channels (or on a GPU) XLA's convolution. Nothing is decided
    # per step.
    W1, W16 = jnp.ones((1, 4, 5, 5)), jnp.ones((16, 4, 5, 5))
    step = jax.grad(lambda x, W: jnp.sum(jnp.tanh(conv2d_auto(x, W, grad=grad))), (0, 1))
    one = _primitives(jax.make_jaxpr(step)(jnp.ones((2, 1, 6, 6)), W1).jaxpr)
    many = _primitives(jax.make_jaxpr(step)(jnp.ones((2, 16, 6, 6)), W16).jaxpr)
    assert "conv_general_dilated" in many
    if jax.default_backend() == "cpu":
        assert "conv_general_dilated" not in one and "dot_general" in one
    else:
        assert "conv_general_dilated" in one


def test_im2col_layout():
    # Example 0's row for pixel (i, j) = (1, 2) holds channel 0's 3x3 window, then channel 1's.
    x = jnp.arange(2 * 2 * 3 * 4, dtype=jnp.float64).reshape(2, 2, 3, 4)
    patches = im2col(x, 3)
    assert patches.shape == (2, 3 * 4, 2 * 9)
    x_pad = np.pad(np.asarray(x), ((0, 0), (0, 0), (1, 1), (1, 1)))
    np.testing.assert_array_equal(patches[1, 1 * 4 + 2], x_pad[1, :, 1:4, 2:5].reshape(-1))


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.name)
@pytest.mark.parametrize(
    "x_shape, W_shape, match",
    [
        ((1, 5, 5), (1, 1, 3, 3), "expected a 4-D array"),
        ((1, 1, 5, 5), (1, 3, 3), "expected a 4-D array"),
        ((1, 2, 5, 5), (3, 1, 3, 3), "input has 2 channels but the kernel expects 3"),
        ((1, 1, 5, 5), (1, 1, 4, 4), "kernel size must be odd"),
        ((1, 1, 5, 5), (1, 1, 3, 5), "kernel must be square"),
    ],
)
def test_bad_shapes_raise_clear_errors(impl, x_shape, W_shape, match):
    with pytest.raises(ValueError, match=match):
        impl(jnp.ones(x_shape), jnp.ones(W_shape))


def test_integer_input_is_rejected():
    with pytest.raises(TypeError, match="floating-point"):
        conv2d(jnp.ones((1, 1, 3, 3), jnp.int32), jnp.ones((1, 1, 3, 3)))


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.name)
def test_mixed_dtypes_promote_and_gradients_keep_each_dtype(impl):
    x, W = jnp.ones((1, 1, 4, 4), jnp.float32), jnp.ones((1, 2, 3, 3), jnp.float64)
    assert impl(x, W).dtype == jnp.float64
    dx, dW = jax.grad(lambda x, W: jnp.sum(impl(x, W)), (0, 1))(x, W)
    assert dx.dtype == jnp.float32 and dW.dtype == jnp.float64


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.name)
def test_harness_accepts_each_implementation_with_mixed_dtypes(impl):
    # check_op: forward, manual vs autodiff, finite differences, and cotangent dtypes (float32 x with float64 W
    # and the reverse: each gradient in its own input's dtype).
    check_op(impl, *random_case(2, 3, 2, 5, 4, 3, seed=3))


@pytest.mark.parametrize("tangents", ["both", "x", "W"])
def test_autodiff_forward_mode_matches_lax_reference(tangents):
    # The autodiff path declares its derivative (custom_jvp, the product rule); jax.jvp runs that rule
    # directly, so check it against lax's own JVP, with a tangent in x, in W, or both.
    x, W = random_case(2, 3, 4, 5, 6, 3, seed=4)
    dx, dW = random_case(2, 3, 4, 5, 6, 3, seed=5)
    dx, dW = (
        (dx if tangents in ("both", "x") else jnp.zeros_like(dx)),
        (dW if tangents in ("both", "W") else jnp.zeros_like(dW)),
    )
    out, t = jax.jvp(lambda x, W: conv2d(x, W, grad="autodiff"), (x, W), (dx, dW))
    out_ref, t_ref = jax.jvp(conv2d_reference, (x, W), (dx, dW))
    np.testing.assert_allclose(out, out_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t, t_ref, rtol=1e-12, atol=1e-12)
    if tangents != "both":  # a tangent in one argument only: the other's term must not be added
        np.testing.assert_allclose(
            t,
            jax.jvp(lambda a: conv2d_reference(a, W), (x,), (dx,))[1]
            if tangents == "x"
            else jax.jvp(lambda b: conv2d_reference(x, b), (W,), (dW,))[1],
            rtol=1e-12,
            atol=1e-12,
        )


def _conv_dimension_numbers(jaxpr) -> list:
    """The dimension numbers of every conv_general_dilated in a jaxpr, nested jaxprs (scan bodies) included."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            found.append(eqn.params["dimension_numbers"])
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple) else (value,):
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    found += _conv_dimension_numbers(getattr(sub, "jaxpr", sub))
    return found


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
def test_gradients_inside_scan_use_only_channels_last_convolutions(grad):
    # XLA:CPU runs a convolution fast inside a loop only in the form NHWC images, HWIO kernel ("canonical":
    # lhs (0, 3, 1, 2), rhs (3, 2, 0, 1), out (0, 3, 1, 2) in lax's spec order batch/feature/spatial). Every
    # convolution of a scanned train step, forward and both backward products, must be in that form.
    x, W = random_case(2, 3, 2, 5, 4, 3, seed=6)

    def step(W, x):
        return W - 0.1 * jax.grad(lambda W: jnp.sum(jnp.tanh(conv2d(x, W, grad=grad))))(W), None

    jaxpr = jax.make_jaxpr(lambda W, xs: lax.scan(step, W, xs))(W, jnp.stack([x, x]))
    specs = _conv_dimension_numbers(jaxpr.jaxpr)
    # the forward and the kernel gradient (and, in the hand-written backward, the unused input gradient that
    # XLA removes later)
    assert len(specs) == (2 if grad == "autodiff" else 3)
    for dn in specs:
        assert (dn.lhs_spec, dn.rhs_spec, dn.out_spec) == ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2)), dn
    # With the input gradient too (a second layer's input is a differentiated activation): three products.
    grads = jax.make_jaxpr(jax.grad(lambda x, W: jnp.sum(conv2d(x, W, grad=grad)), (0, 1)))(x, W)
    specs = _conv_dimension_numbers(grads.jaxpr)
    assert len(specs) == 3
    for dn in specs:
        assert (dn.lhs_spec, dn.rhs_spec, dn.out_spec) == ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2)), dn


def test_channel_bias_add_value_and_harness():
    x = jnp.zeros((2, 3, 2, 2), jnp.float64)
    B = jnp.array([1.0, -2.0, 0.5]).reshape(1, 3, 1, 1)
    out = channel_bias_add(x, B)
    np.testing.assert_array_equal(out[1, :, 1, 0], [1.0, -2.0, 0.5])
    # dB sums the output gradient over the batch and the pixels: 2 examples x 4 pixels of ones = 8 per channel.
    dB = jax.grad(lambda B: jnp.sum(channel_bias_add(x, B) * jnp.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)))(B)
    np.testing.assert_array_equal(dB.reshape(-1), [8.0, 16.0, 24.0])
    kx, kb = jax.random.split(jax.random.key(7))
    check_op(
        channel_bias_add,
        jax.random.normal(kx, (3, 4, 5, 2), jnp.float64),
        jax.random.normal(kb, (1, 4, 1, 1), jnp.float64),
    )


@pytest.mark.parametrize("B_shape", [(4,), (1, 4), (1, 3, 1, 1), (2, 4, 1, 1)])
def test_channel_bias_add_rejects_other_bias_shapes(B_shape):
    with pytest.raises(ValueError, match=r"B must have shape \(1, 4, 1, 1\)"):
        channel_bias_add(jnp.ones((2, 4, 3, 3)), jnp.ones(B_shape))


def test_channel_bias_add_rejects_bad_inputs():
    with pytest.raises(ValueError, match="expected a 4-D array"):
        channel_bias_add(jnp.ones((2, 4, 3)), jnp.ones((1, 4, 1, 1)))
    with pytest.raises(TypeError, match="floating-point"):
        channel_bias_add(jnp.ones((2, 4, 3, 3), jnp.int32), jnp.ones((1, 4, 1, 1)))


# ---------------------------------------------------------------- property tests (tests/strategies.py)

# (batch, in_channels, height, width, out_channels, k): 1 x 1 images, non-square, kernels larger than the image
CONV_SHAPES = ((1, 1, 1, 1, 1, 3), (2, 2, 4, 5, 1, 3), (3, 3, 2, 3, 2, 5))


@PROPERTY
@given(st.data(), st.sampled_from(CONV_SHAPES))
def test_conv2d_ops(data, shape):
    """conv2d (XLA) and conv2d_im2col (the chapter's loops, conv2d_loops: test_conv2d_loops_op in
    tests/ops/test_conv_loops.py)."""
    b, c, h, w, o, k = shape
    x, W = draw(data, (b, c, h, w)), draw(data, (c, o, k, k))
    cases = {
        "conv2d": (call(conv2d), (x, W), 2),
        "conv2d_slices": (call(conv2d_slices), (x, W), 2),
        "conv2d_im2col": (call(conv2d_im2col), (x, W), 2),
    }
    assert_vjps_agree(cases, seed(data))


# ---------------------------------------------------------------- the bad-input catalogue's conv cases


def test_wrong_shapes_conv_and_recurrent():
    """conv2d's and conv2d_im2col's cases of the bad-input catalogue's test; the conv2d layer's and the recurrent
    layer's are in their test files under the same name."""
    with pytest.raises(ValueError, match=r"conv2d input: expected a 4-D array \(batch, in_channels, height, width\)"):
        conv2d(jnp.zeros((1, 28, 28)), jnp.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"input has 3 channels but the kernel expects 1"):
        conv2d_im2col(jnp.zeros((1, 3, 5, 5)), jnp.zeros((1, 2, 3, 3)))


def test_integer_input_to_differentiable_code():
    """Ops that need floats say so (conv2d's case of the bad-input catalogue's test; the dense layer's, the
    activations' and the recurrent layer's are in their test files under the same name)."""
    with pytest.raises(TypeError, match=r"conv2d input: expected floating-point values, got dtype int.*astype"):
        conv2d(jnp.ones((1, 1, 3, 3), jnp.int32), jnp.ones((1, 1, 3, 3)))
