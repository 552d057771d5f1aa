"""Character data: vocabulary, windows shifted by one, the book's batches, split, baseline, sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl.data.text import Vocabulary, book_batch, random_batch, split, unigram_cross_entropy, windows
from fdl.recurrent import rnn_layer, sample
from fdl.recurrent.model import stack


def test_vocabulary_is_sorted_and_round_trips():
    vocab = Vocabulary.from_text("hello, world")
    assert vocab.chars == tuple(sorted(set("hello, world")))
    assert vocab.size == 9
    ids = vocab.encode("world")
    assert ids.dtype == np.int32 and vocab.decode(ids) == "world"
    assert Vocabulary.from_text("ba") == Vocabulary.from_text("ab")


def test_bad_text():
    with pytest.raises(ValueError, match="empty"):
        Vocabulary.from_text("")
    with pytest.raises(ValueError, match="not in the vocabulary.*'xz'"):
        Vocabulary.from_text("abc").encode("axcz")
    with pytest.raises(ValueError, match="fewer than the 6 needed"):
        windows(np.arange(5), 5)
    with pytest.raises(ValueError, match="sequence_length"):
        windows(np.arange(5), 0)
    with pytest.raises(ValueError, match="fewer than"):
        book_batch(np.arange(10), 0, 4, 6)
    with pytest.raises(ValueError, match="validation_fraction"):
        split("abcdef", 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        split("a", 0.5)


def test_windows_and_targets_shifted_by_one():
    ids = np.arange(11)
    x, y = windows(ids, 4)
    np.testing.assert_array_equal(x, [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(y, x + 1)
    x, y = windows(ids, 4, stride=1)
    assert x.shape == (7, 4) and x[-1, -1] == 9 and y[-1, -1] == 10


def test_book_batches_consecutive_and_wrap():
    ids = np.arange(100)
    x, y = book_batch(ids, 0, 3, 5)
    np.testing.assert_array_equal(x[:, 0], [0, 1, 2])
    np.testing.assert_array_equal(x[1], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(y, x + 1)
    assert book_batch(ids, 1, 3, 5)[0][0, 0] == 3
    # the book starts over when p + T + batch + 1 > len: starts 0, 3, ..., 90 (31 of them), then 0 again
    assert book_batch(ids, 30, 3, 5)[0][0, 0] == 90
    assert book_batch(ids, 31, 3, 5)[0][0, 0] == 0


def test_random_batch_is_seeded():
    ids = np.arange(50)
    a = random_batch(ids, jax.random.key(1), 4, 6)
    np.testing.assert_array_equal(a[0], random_batch(ids, jax.random.key(1), 4, 6)[0])
    np.testing.assert_array_equal(a[1], a[0] + 1)
    assert a[1].max() < 50


def test_split_keeps_order():
    train, valid = split("abcdefghij", 0.2)
    assert (train, valid) == ("abcdefgh", "ij")


def test_unigram_baseline():
    # training text "aab": p(a) = 3/5, p(b) = 2/5 with add-one smoothing; validation "ab"
    got = unigram_cross_entropy([0, 0, 1], [0, 1], 2)
    np.testing.assert_allclose(got, -(np.log(3 / 5) + np.log(2 / 5)) / 2)


def _model(vocab):
    model = stack(rnn_layer(8, vocab.size, "lstm"))
    return model, model.init(jax.random.key(0), (vocab.size,))


def test_sample_seeded_and_in_vocabulary():
    vocab = Vocabulary.from_text("to be or not to be")
    model, params = _model(vocab)
    a = sample(model, params, model.zero_state(), vocab, key=jax.random.key(3), length=40, prompt="to")
    b = sample(model, params, model.zero_state(), vocab, key=jax.random.key(3), length=40, prompt="to")
    c = sample(model, params, model.zero_state(), vocab, key=jax.random.key(4), length=40, prompt="to")
    assert a == b and a != c and len(a) == 40 and set(a) <= set(vocab.chars)


def test_sample_low_temperature_is_greedy():
    vocab = Vocabulary.from_text("abc")
    model, params = _model(vocab)
    # make the output prefer "c" whatever the state
    params[0]["B_v"] = jnp.array([[0.0, 0.0, 1.0]], jnp.float32)
    out = sample(model, params, model.zero_state(), vocab, key=jax.random.key(0), length=20, prompt="a",
                 temperature=1e-3)
    assert out == "c" * 20


def test_sample_bad_input():
    vocab = Vocabulary.from_text("abc")
    model, params = _model(vocab)
    with pytest.raises(ValueError, match="not in the vocabulary.*'z'"):
        sample(model, params, model.zero_state(), vocab, key=jax.random.key(0), prompt="az")
    with pytest.raises(ValueError, match="prompt"):
        sample(model, params, model.zero_state(), vocab, key=jax.random.key(0), prompt="")
    with pytest.raises(ValueError, match="temperature"):
        sample(model, params, model.zero_state(), vocab, key=jax.random.key(0), temperature=0.0)
