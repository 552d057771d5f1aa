"""fdl.data.text: the shipped Hamlet and text files, the character vocabulary, windows shifted by one, the book's
batches, split, baseline; ids outside the vocabulary and other bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl.data import load_text, text
from fdl.data.text import (
    Vocabulary,
    book_batch,
    check_ids,
    random_batch,
    split,
    unigram_cross_entropy,
    windows,
)
from tests.helpers import assert_untouched, snapshot


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


# ---------------------------------------------------------------- load_text: Hamlet and text files


def test_hamlet_is_the_shipped_gutenberg_text():
    hamlet = load_text()
    assert hamlet == load_text("hamlet")
    assert len(hamlet) == 173_942
    assert len(set(hamlet)) == 65
    assert hamlet.startswith("HAMLET, PRINCE OF DENMARK")
    assert "To be, or not to be" in hamlet


def test_any_text_file(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("hello world\n", encoding="utf-8")
    assert load_text(path) == "hello world\n"
    assert load_text(str(path)) == "hello world\n"


def test_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="hamlet"):  # the message lists the shipped names
        load_text("macbeth")
    with pytest.raises(FileNotFoundError, match="neither"):
        load_text(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_text(empty)
    altered = tmp_path / "hamlet.txt"
    altered.write_text("Something is rotten")
    monkeypatch.setitem(text.SHIPPED_TEXTS, "hamlet", (altered, text.SHIPPED_TEXTS["hamlet"][1]))
    with pytest.raises(ValueError, match="SHA-256"):
        load_text("hamlet")


def test_load_text_drops_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffab\nba".encode())
    text = load_text(path)
    assert text == "ab\nba" and Vocabulary.from_text(text).chars == ("\n", "a", "b")


# ---------------------------------------------------------------- ids outside the vocabulary


def test_check_ids_refuses_ids_outside_the_vocabulary():
    assert check_ids(np.array([[0, 2], [1, 0]]), 3) is not None
    with pytest.raises(
        ValueError,
        match=r"id 3 at position \(1, 0\) is outside the vocabulary of 3 characters "
        r"\(1 of 4 ids are; valid ids are 0 to 2\); encode the text",
    ):
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


# ---------------------------------------------------------------- the bad-input catalogue's cases


def test_labels_instead_of_one_hot_targets():
    """The vocabulary's case (characters outside it); the losses' and fit's are in their test files under the same
    name."""
    with pytest.raises(ValueError, match="characters not in the vocabulary of 3: 'd'"):
        text.Vocabulary.from_text("abc").encode("abd")


def test_empty_text(tmp_path):
    """The text helpers' cases; the recurrent layer's is in tests/recurrent/test_layers.py under the same name."""
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="is empty; a character model needs some text"):
        load_text(path)
    assert_untouched(tmp_path, before)
    with pytest.raises(ValueError, match="Vocabulary.from_text: the text is empty"):
        text.Vocabulary.from_text("")


def test_non_positive_hyperparameters_conv_recurrent_text():
    """The text helpers' cases; the conv2d and recurrent layers' are in their test files under the same name."""
    for call, message in [
        (lambda: text.windows(np.arange(9), 0), "sequence_length must be a positive integer, got 0"),
        (lambda: text.windows(np.arange(9), 2, stride=0), "stride must be positive, got 0"),
        (lambda: text.split("abc", 0.0), r"validation_fraction must be in \(0, 1\), got 0.0"),
    ]:
        with pytest.raises(ValueError, match=message):
            call()


def test_data_missing_while_offline(offline, tmp_path):
    """load_text's case (MNIST's are in tests/data/test_mnist.py under the same name)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "notes.txt").write_text("the user's own file")
    before = snapshot(tmp_path)
    with pytest.raises(FileNotFoundError, match="is neither a shipped corpus \\(hamlet\\) nor an existing text file"):
        load_text(tmp_path / "macbeth.txt")
    assert_untouched(tmp_path, before)


def test_corrupt_shipped_data(monkeypatch, tmp_path):
    """An altered shipped file (Hamlet) is refused by its SHA-256, with what to do; it is not changed.

    The Boston CSV's case is in tests/data/test_boston.py under the same name."""
    hamlet_path, sha = text.SHIPPED_TEXTS["hamlet"]
    hamlet = tmp_path / "hamlet.txt"
    hamlet.write_bytes(hamlet_path.read_bytes()[:1000])
    monkeypatch.setitem(text.SHIPPED_TEXTS, "hamlet", (hamlet, sha))
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match=r"load_text\('hamlet'\): .*expected bbe563.*reinstall fdl"):
        load_text("hamlet")
    assert_untouched(tmp_path, before)


def test_sequence_shorter_than_its_window():
    ids = np.arange(5)
    with pytest.raises(
        ValueError,
        match=r"windows: the text has 5 characters, fewer than the 11 needed "
        r"\(a window of 10 plus its shifted target\)",
    ):
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
