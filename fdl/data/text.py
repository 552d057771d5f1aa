"""Text for the character models of chapter 6: corpora, the vocabulary, windows and batches.

* :func:`load_text`: a corpus as one string; ``hamlet`` ships with fdl (Project Gutenberg's *Hamlet*, see
  PROVENANCE.md).
* :class:`Vocabulary`: the sorted distinct characters of a text (erratum 8: the book's ``list(set(text))``
  order changes from run to run).
* :func:`split`, :func:`windows`, :func:`book_batch` (the book's consecutive batches), :func:`random_batch`
  (fdl's default) and :func:`check_ids`, which the batch functions apply to the ids they return.

Sampling from a trained model is :func:`fdl.recurrent.sample`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from fdl.data._files import DATA_DIR, read_verified

SHIPPED_TEXTS = {
    "hamlet": (DATA_DIR / "hamlet.txt", "bbe5635616c6e0e0bcf01b7b8c324be8b42451c51848f11c283bd2f4442b1e0a"),
}


def load_text(name_or_path: str | os.PathLike = "hamlet", encoding: str = "utf-8") -> str:
    """Return a corpus as one string (book ch. 6: the character models' training text).

    The book's corpus is not published; the shipped *Hamlet* stands in for it.

    Args:
        name_or_path: a shipped corpus name (``"hamlet"``) or the path of any text file.
        encoding: the file's encoding (the shipped texts are ASCII).

    Returns:
        A ``str``, without a leading byte-order mark.

    Raises:
        FileNotFoundError: no shipped corpus by that name and no such file.
        ValueError: the text is empty, or a shipped file was altered.
        UnicodeDecodeError: the file is not valid in ``encoding`` (a ValueError subclass).
    """
    if isinstance(name_or_path, str) and name_or_path in SHIPPED_TEXTS:
        path, sha = SHIPPED_TEXTS[name_or_path]
        text = read_verified(path, sha, f"load_text({name_or_path!r})").decode(encoding)
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"load_text: {str(name_or_path)!r} is neither a shipped corpus "
                f"({', '.join(sorted(SHIPPED_TEXTS))}) nor an existing text file"
            )
        text = path.read_text(encoding=encoding)
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark is not a character of the text
    if not text:
        raise ValueError(f"load_text: {str(path)!r} is empty; a character model needs some text")
    return text


_FIX = (
    "encode the text with the Vocabulary the model was built with (Vocabulary.from_text of the training "
    "text) and give the model and the loss that vocabulary's size"
)


@dataclass(frozen=True)
class Vocabulary:
    """The characters of a text in sorted order; ``encode``/``decode`` map between text and indices.

    The book's ch. 6 character vocabulary, sorted (erratum 8). ``chars``: a tuple of one-character strings;
    ``size``: their number, the models' one-hot width. Ids are int32.

    Raises:
      ValueError: ``from_text`` of an empty text; ``encode`` of a character not in the vocabulary;
        ``decode`` of an id outside ``[0, size)``.
      TypeError: ``decode`` of non-integer ids.
    """

    chars: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        """The sorted distinct characters of ``text``; ValueError for an empty text."""
        if not text:
            raise ValueError("Vocabulary.from_text: the text is empty")
        return cls(tuple(sorted(set(text))))

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Indices (len(text),) int32, each in ``[0, size)``.

        Raises ValueError naming every character that is not in the vocabulary.
        """
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(
                f"Vocabulary.encode: characters not in the vocabulary of {self.size}: "
                f"{''.join(unknown)!r}; build the Vocabulary from a text that contains every "
                "character you will encode (e.g. the whole corpus before splitting it)"
            )
        return np.fromiter((index[c] for c in text), dtype=np.int32, count=len(text))

    def decode(self, ids) -> str:
        """The text of ``ids`` (any shape, C order); raises :func:`check_ids`' errors."""
        ids = check_ids(ids, self.size, "Vocabulary.decode")
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


def check_ids(ids, vocab_size: int | None, what: str = "character ids"):
    """Check that ``ids`` are integers in ``[0, vocab_size)`` and return them unchanged.

    Args:
        ids: an integer array (numpy or jax) of any shape, e.g. targets (batch, time).
        vocab_size: the number of characters of the vocabulary (``Vocabulary.size``; the model's input and
            output width); None checks only that the ids are non-negative integers.
        what: the name used in the message.

    Raises:
        TypeError: ``ids`` are not integers (float ids would be rounded silently).
        ValueError: an id is negative or ``>= vocab_size`` (one-hot encoding would make it an all-zero row,
            which trains silently at loss 0).

    Under ``jax.jit`` the values are unknown and nothing is checked: call it outside the jitted step.
    """
    if vocab_size is not None and (
        isinstance(vocab_size, bool) or not isinstance(vocab_size, int | np.integer) or vocab_size <= 0
    ):
        raise ValueError(f"{what}: vocab_size must be a positive integer, got {vocab_size!r}")
    if isinstance(ids, jax.core.Tracer):
        return ids
    values = np.asarray(ids)
    if values.dtype.kind not in "iu":
        raise TypeError(
            f"{what}: character ids must be integers, got dtype {values.dtype}; encode text with "
            "Vocabulary.encode, or cast with .astype(int) if the values are whole numbers"
        )
    bad = (values < 0) if vocab_size is None else (values < 0) | (values >= vocab_size)
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        if vocab_size is None:
            raise ValueError(
                f"{what}: id {int(values[pos])} at position {pos} is negative ({int(bad.sum())} of "
                f"{values.size} ids are); character ids run from 0 to the vocabulary size - 1; {_FIX}"
            )
        raise ValueError(
            f"{what}: id {int(values[pos])} at position {pos} is outside the vocabulary of "
            f"{vocab_size} characters ({int(bad.sum())} of {values.size} ids are; valid ids are 0 to "
            f"{vocab_size - 1}); {_FIX}"
        )
    return ids


def split(text: str, validation_fraction: float = 0.1) -> tuple[str, str]:
    """The first ``1 - validation_fraction`` of the text for training, the rest for validation.

    No shuffling: the order of characters is the data. Returns two non-empty ``str``.

    Raises:
      ValueError: ``validation_fraction`` outside (0, 1), or a text of fewer than 2 characters.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"split: validation_fraction must be in (0, 1), got {validation_fraction!r}")
    if len(text) < 2:
        raise ValueError(f"split: need at least 2 characters, got {len(text)}")
    cut = min(max(1, round(len(text) * (1.0 - validation_fraction))), len(text) - 1)
    return text[:cut], text[cut:]


def _check_length(ids, sequence_length: int, what: str, extra: int = 0) -> None:
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length <= 0:
        raise ValueError(f"{what}: sequence_length must be a positive integer, got {sequence_length!r}")
    need = sequence_length + 1 + extra
    if len(ids) < need:
        raise ValueError(
            f"{what}: the text has {len(ids)} characters, fewer than the {need} needed "
            f"(a window of {sequence_length} plus its shifted target)"
        )


def _checked(ids, vocab_size: int | None, what: str) -> np.ndarray:
    """``ids`` as a 1-D integer numpy array, non-negative and (given ``vocab_size``) below it."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"{what}: ids must be 1-D (one id per character of the text), got shape {ids.shape}")
    check_ids(ids, vocab_size, what)
    return ids


def windows(
    ids, sequence_length: int, stride: int | None = None, *, vocab_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Input windows and their targets shifted by one: both (n_windows, sequence_length), the dtype of ``ids``.

    Window ``k`` starts at ``k * stride`` (default ``sequence_length``: non-overlapping); ``ids`` are 1-D
    (book ch. 6).

    Raises:
      ValueError: ids not 1-D, negative or (with ``vocab_size``) too large; ``sequence_length`` not a positive
        integer, or longer than the text allows; ``stride`` not positive.
      TypeError: ids that are not integers.

    Examples:
        >>> vocab = Vocabulary.from_text("hello")
        >>> x, y = windows(vocab.encode("hello"), 2)
        >>> vocab.decode(x[0]), vocab.decode(y[0])  # the target is the input shifted by one character
        ('he', 'el')
    """
    ids = _checked(ids, vocab_size, "windows")
    _check_length(ids, sequence_length, "windows")
    stride = sequence_length if stride is None else stride
    if stride <= 0:
        raise ValueError(f"windows: stride must be positive, got {stride!r}")
    starts = np.arange(0, len(ids) - sequence_length, stride)
    idx = starts[:, None] + np.arange(sequence_length)[None, :]
    return ids[idx], ids[idx + 1]


def book_batch(
    ids, step: int, batch_size: int, sequence_length: int, *, vocab_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The book's batch number ``step``: windows at ``p + i`` for ``i < batch_size``, ``p = batch_size * k``.

    ``p`` returns to 0 when ``p + sequence_length + batch_size + 1`` would pass the end of the text. Both
    outputs are (batch_size, sequence_length), the dtype of ``ids`` (book ch. 6: RNNTrainer's batches).

    Raises:
      ValueError: ids not 1-D, negative or (with ``vocab_size``) too large; ``sequence_length`` not a positive
        integer; a text shorter than ``sequence_length + batch_size + 1`` characters.
      TypeError: ids that are not integers.
    """
    ids = _checked(ids, vocab_size, "book_batch")
    _check_length(ids, sequence_length, "book_batch", extra=batch_size)
    starts_per_pass = (len(ids) - sequence_length - batch_size - 1) // batch_size + 1
    p = (step % starts_per_pass) * batch_size
    idx = p + np.arange(batch_size)[:, None] + np.arange(sequence_length)[None, :]
    return ids[idx], ids[idx + 1]


def random_batch(
    ids, key, batch_size: int, sequence_length: int, *, vocab_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` windows at start positions drawn uniformly (with replacement) by ``key``.

    Both outputs are (batch_size, sequence_length), numpy arrays of the dtype of ``ids``; fdl's default in
    place of :func:`book_batch`.

    Raises:
      ValueError: ids not 1-D, negative or (with ``vocab_size``) too large; ``sequence_length`` not a positive
        integer; a text shorter than ``sequence_length + 1`` characters.
      TypeError: ids that are not integers.
    """
    ids = _checked(ids, vocab_size, "random_batch")
    _check_length(ids, sequence_length, "random_batch")
    starts = np.asarray(jax.random.randint(key, (batch_size,), 0, len(ids) - sequence_length))
    idx = starts[:, None] + np.arange(sequence_length)[None, :]
    return ids[idx], ids[idx + 1]


def unigram_cross_entropy(train_ids, valid_ids, vocab_size: int) -> float:
    """Cross-entropy (nats/char) of the validation text under the training text's character frequencies.

    Add-one smoothed: the baseline of a model that ignores context. ``train_ids``, ``valid_ids``: 1-D
    non-negative integer ids; returns a Python float.
    """
    counts = np.bincount(np.asarray(train_ids), minlength=vocab_size) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[np.asarray(valid_ids)].mean())
