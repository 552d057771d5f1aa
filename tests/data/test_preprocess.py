"""fdl.data.preprocess: mnist_preprocess (book ch. 4) and one_hot labels, and their bad input."""

import numpy as np
import pytest

from fdl.data import mnist_preprocess, one_hot
from tests.helpers import mnist_tiny_arrays

ARRAYS = mnist_tiny_arrays()


def test_preprocess_as_the_book():
    x_train, _, x_test, _ = ARRAYS
    a, b = mnist_preprocess(x_train, x_test)
    assert a.shape == (30, 784) and b.shape == (10, 784) and a.dtype == b.dtype == np.float32
    mu, sigma = x_train.astype(np.float64).mean(), x_train.astype(np.float64).std()
    np.testing.assert_allclose(b, (x_test.reshape(10, 784) - mu) / sigma, rtol=1e-6)  # training statistics
    assert abs(a.mean()) < 1e-6 and a.std() == pytest.approx(1.0, rel=1e-5)
    shifted = mnist_preprocess(x_train, x_test.astype(np.float64) + 10.0)[1]  # not re-centred on itself
    np.testing.assert_allclose(shifted - b, 10.0 / sigma, rtol=1e-5)
    c, d = mnist_preprocess(x_train, x_test, flatten=False)
    assert c.shape == (30, 1, 28, 28) and d.shape == (10, 1, 28, 28)
    np.testing.assert_array_equal(c.reshape(30, 784), a)
    flat = mnist_preprocess(x_train.reshape(30, 784), x_test.reshape(10, 784))  # flat input accepted
    np.testing.assert_array_equal(flat[0], a)
    np.testing.assert_array_equal(flat[1], b)


def test_preprocess_errors():
    x = np.ones((4, 28, 28), np.uint8)
    with pytest.raises(ValueError, match="differ in shape"):
        mnist_preprocess(np.arange(4 * 784).reshape(4, 28, 28), np.zeros((2, 27, 28)))
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        mnist_preprocess(x.reshape(4, 784), x.reshape(4, 784), flatten=False)
    with pytest.raises(ValueError, match="zero standard deviation"):
        mnist_preprocess(x, x)


def test_one_hot():
    out = one_hot(np.array([0, 3, 9]), 10)
    assert out.shape == (3, 10) and out.dtype == np.float32
    np.testing.assert_array_equal(out.argmax(1), [0, 3, 9])
    np.testing.assert_array_equal(out.sum(1), 1.0)
    assert one_hot(np.array([[1, 0]], np.uint8), 2).tolist() == [[[0.0, 1.0], [1.0, 0.0]]]
    with pytest.raises(ValueError, match=r"\[0, 10\).*\[10\]"):
        one_hot(np.array([1, 10]), 10)
    with pytest.raises(ValueError, match="-1"):
        one_hot(np.array([-1]), 10)
    with pytest.raises(TypeError, match="integers"):
        one_hot(np.array([0.0, 2.5]), 10)
    with pytest.raises(ValueError, match="n_classes"):
        one_hot(np.array([0]), 0)


# ---------------------------------------------------------------- the bad-input catalogue's cases

WRONG_SHAPES = {
    "mnist_preprocess rank": (
        lambda: mnist_preprocess(np.zeros((2, 784)), np.zeros((1, 784)), flatten=False),
        r"X_train must be \(n, H, W\), got shape \(2, 784\)",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_SHAPES))
def test_wrong_shapes_and_ranks(case):
    call, message = WRONG_SHAPES[case]
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("where", ["X_train", "X_test"])
def test_mnist_preprocess_names_non_finite_pixels(where):
    images = {"X_train": np.arange(32.0).reshape(2, 4, 4), "X_test": np.arange(16.0).reshape(1, 4, 4)}
    images[where][0, 1, 2] = np.nan if where == "X_train" else np.inf
    with pytest.raises(ValueError, match=f"mnist_preprocess: {where} contains NaN or Inf"):
        mnist_preprocess(images["X_train"], images["X_test"])


@pytest.mark.parametrize(
    "labels, n, message",
    [
        ([0, 3, 10], 10, r"labels must be in \[0, 10\), found \[10\]"),
        ([-1, 2], 3, r"labels must be in \[0, 3\), found \[-1\]"),
        ([0.0, 2.0], 3, r"labels must be integers, got dtype float64; pass class indices"),
    ],
)
def test_labels_out_of_range(labels, n, message):
    with pytest.raises((ValueError, TypeError), match=message):
        one_hot(np.array(labels), n)


EMPTY = {
    "mnist_preprocess": (
        lambda: mnist_preprocess(np.zeros((0, 4, 4)), np.zeros((1, 4, 4))),
        "X_train is empty; the mean and std come from it",
    ),
    "one_hot classes": (lambda: one_hot(np.array([0]), 0), "n_classes must be a positive integer, got 0"),
}


@pytest.mark.parametrize("case", sorted(EMPTY))
def test_empty_data(case):
    call, message = EMPTY[case]
    with pytest.raises(ValueError, match=message):
        call()
