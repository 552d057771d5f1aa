"""Mistakes a new user makes in the first hour (issue 15), each refused with a message that says what to do."""

import functools
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fdl
from fdl import optim
from fdl.data import load_mnist, load_text
from fdl.data.idx import read_idx
from fdl.data.text import Vocabulary, book_batch, check_ids, random_batch, windows
from fdl.recurrent import rnn_layer, sample
from fdl.recurrent.model import stack

TINY = Path(__file__).parent / "fixtures" / "mnist_tiny"

# ---------------------------------------------------------------- optimizer constructors passed uncalled


@pytest.mark.parametrize("constructor, message", [
    (optax.adam, r"pass optax\.adam\(0\.001\), not optax\.adam"),
    (optax.sgd, r"pass optax\.sgd\(0\.001\), not optax\.sgd"),
    (functools.partial(optax.adam, b1=0.8), r"pass optax\.adam\(0\.001\), not optax\.adam"),
    (optim.sgd, r"pass fdl\.optim\.sgd\(0\.01\), not fdl\.optim\.sgd"),
    (optim.momentum, r"pass fdl\.optim\.momentum\(0\.01, 0\.9\), not fdl\.optim\.momentum"),
    (optim.adagrad, r"pass fdl\.optim\.adagrad\(0\.01\), not fdl\.optim\.adagrad"),
])
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


def test_fit_with_an_uncalled_optax_constructor_says_to_call_it():
    X = jnp.asarray(np.random.RandomState(0).randn(8, 3))
    y = X.sum(axis=1, keepdims=True)
    with pytest.raises(TypeError, match=r"pass optax\.adam\(0\.001\), not optax\.adam"):
        fdl.fit(fdl.serial(fdl.dense(1)), fdl.mean_squared_error, optax.adam, X, y, epochs=1)


# ---------------------------------------------------------------- character ids outside the vocabulary


def test_check_ids_refuses_ids_outside_the_vocabulary():
    assert check_ids(np.array([[0, 2], [1, 0]]), 3) is not None
    with pytest.raises(ValueError, match=r"id 3 at position \(1, 0\) is outside the vocabulary of 3 characters "
                                         r"\(1 of 4 ids are; valid ids are 0 to 2\); encode the text"):
        check_ids(np.array([[0, 2], [3, 0]]), 3)
    with pytest.raises(ValueError, match=r"id -1 at position \(0,\)"):
        check_ids(jnp.array([-1, 0]), 3)
    with pytest.raises(TypeError, match="character ids must be integers, got dtype float"):
        check_ids(np.array([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="vocab_size must be a positive integer"):
        check_ids(np.array([0]), 0)


def test_check_ids_passes_tracers_through():
    assert jax.jit(lambda ids: check_ids(ids, 3) * 2)(jnp.array([1, 2])).tolist() == [2, 4]


def test_window_helpers_refuse_out_of_vocabulary_ids():
    ids = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    with pytest.raises(ValueError, match=r"windows: id 5 at position \(5,\) is outside the vocabulary of 5"):
        windows(ids, 3, vocab_size=5)
    with pytest.raises(ValueError, match=r"book_batch: id 9 .* vocabulary of 9"):
        book_batch(ids, 0, 2, 3, vocab_size=9)
    with pytest.raises(ValueError, match="random_batch: id 9"):
        random_batch(ids, jax.random.key(0), 2, 3, vocab_size=9)
    with pytest.raises(ValueError, match=r"windows: id -2 at position \(1,\) is negative \(1 of 5 ids are\)"):
        windows(np.array([1, -2, 0, 1, 0]), 2)
    with pytest.raises(TypeError, match="windows: character ids must be integers"):
        windows(np.arange(6.0), 2)
    x, y = windows(ids, 3, vocab_size=10)
    assert x[1].tolist() == [3, 4, 5] and y[1].tolist() == [4, 5, 6]


def test_decode_refuses_out_of_vocabulary_ids():
    with pytest.raises(ValueError, match="Vocabulary.decode: id 7"):
        Vocabulary.from_text("abc").decode([0, 7])


# ---------------------------------------------------------------- files


def test_truncated_gz_in_an_idx_directory_names_the_file(tmp_path):
    for f in TINY.iterdir():
        shutil.copy(f, tmp_path / f.name)
    victim = next(p for p in sorted(tmp_path.iterdir()) if p.name.endswith(".gz"))
    victim.write_bytes(victim.read_bytes()[:-20])
    with pytest.raises(ValueError, match=rf"{victim.name}: the gzip file is corrupt or truncated .*download it "
                                         r"again, or replace it with the uncompressed file"):
        load_mnist(source=tmp_path)


def test_corrupt_gz_names_the_file(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz: the gzip file is corrupt .*BadGzipFile"):
        read_idx(path)


def test_load_text_drops_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffab\nba".encode())
    text = load_text(path)
    assert text == "ab\nba" and Vocabulary.from_text(text).chars == ("\n", "a", "b")


def test_sample_default_prompt_without_a_newline_in_the_text():
    vocab = Vocabulary.from_text("abcabc")
    model = stack(rnn_layer(8, vocab.size, "lstm"))
    params = model.init(jax.random.key(0), (vocab.size,))
    got = sample(model, params, model.zero_state(), vocab, key=jax.random.key(1), length=10)
    assert got == sample(model, params, model.zero_state(), vocab, key=jax.random.key(1), length=10, prompt="a")
    assert len(got) == 10 and set(got) <= set("abc")
