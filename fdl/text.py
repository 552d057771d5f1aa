"""Character data for the ch. 6 language models: vocabulary, windows, split, batches and sampling.

* :class:`Vocabulary`: the sorted distinct characters of a text, so the same text always gives the same
  indices (erratum 8: the book's ``list(set(text))`` order changes from run to run).
* :func:`windows`: inputs ``text[s : s + T]`` and targets shifted by one, ``text[s + 1 : s + T + 1]``.
* :func:`book_batch`: the book's batches (RNNTrainer): ``batch_size`` windows starting at consecutive
  characters ``p, p + 1, ...``; the next batch starts ``batch_size`` characters later, back to 0 at the end.
* :func:`sample`: text from a trained model one character at a time (book: RNNTrainer.sample_output),
  seeded, with a temperature.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class Vocabulary:
    """The characters of a text in sorted order; ``encode``/``decode`` map between text and indices."""

    chars: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        if not text:
            raise ValueError("Vocabulary.from_text: the text is empty")
        return cls(tuple(sorted(set(text))))

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Indices (len(text),) int32; a ValueError names any character not in the vocabulary."""
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(f"characters not in the vocabulary of {self.size}: {''.join(unknown)!r}")
        return np.fromiter((index[c] for c in text), dtype=np.int32, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


def split(text: str, validation_fraction: float = 0.1) -> tuple[str, str]:
    """The first ``1 - validation_fraction`` of the text for training, the rest for validation (no shuffling:
    the order of characters is the data)."""
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
        raise ValueError(f"{what}: the text has {len(ids)} characters, fewer than the {need} needed "
                         f"(a window of {sequence_length} plus its shifted target)")


def windows(ids, sequence_length: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Input windows and their targets shifted by one: both (n_windows, sequence_length).

    Window ``k`` starts at ``k * stride`` (default ``stride = sequence_length``: non-overlapping, as used for
    validation); ``stride=1`` gives every window of the text.
    """
    ids = np.asarray(ids)
    _check_length(ids, sequence_length, "windows")
    stride = sequence_length if stride is None else stride
    if stride <= 0:
        raise ValueError(f"windows: stride must be positive, got {stride!r}")
    starts = np.arange(0, len(ids) - sequence_length, stride)
    idx = starts[:, None] + np.arange(sequence_length)[None, :]
    return ids[idx], ids[idx + 1]


def book_batch(ids, step: int, batch_size: int, sequence_length: int) -> tuple[np.ndarray, np.ndarray]:
    """The book's batch number ``step``: windows at ``p + i`` for ``i < batch_size``, ``p = batch_size * k``.

    The book moves ``p`` on by ``batch_size`` after every batch and returns to 0 when
    ``p + sequence_length + batch_size + 1`` would pass the end of the text.
    """
    ids = np.asarray(ids)
    _check_length(ids, sequence_length, "book_batch", extra=batch_size)
    starts_per_pass = (len(ids) - sequence_length - batch_size - 1) // batch_size + 1
    p = (step % starts_per_pass) * batch_size
    idx = p + np.arange(batch_size)[:, None] + np.arange(sequence_length)[None, :]
    return ids[idx], ids[idx + 1]


def random_batch(ids, key, batch_size: int, sequence_length: int) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` windows at start positions drawn uniformly (with replacement) by ``key``."""
    ids = np.asarray(ids)
    _check_length(ids, sequence_length, "random_batch")
    starts = np.asarray(jax.random.randint(key, (batch_size,), 0, len(ids) - sequence_length))
    idx = starts[:, None] + np.arange(sequence_length)[None, :]
    return ids[idx], ids[idx + 1]


def unigram_cross_entropy(train_ids, valid_ids, vocab_size: int) -> float:
    """Cross-entropy (nats/char) of the validation text under the training text's character frequencies
    (add-one smoothed): the baseline a model that ignores context reaches."""
    counts = np.bincount(np.asarray(train_ids), minlength=vocab_size) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[np.asarray(valid_ids)].mean())


def sample(model, params, states, vocab: Vocabulary, *, key, length: int = 200, prompt: str = "\n",
           temperature: float = 1.0) -> str:
    """``length`` characters drawn one at a time from ``model`` after reading ``prompt`` (book: sample_output).

    Each next character is drawn from ``softmax(logits / temperature)`` with ``jax.random.categorical``;
    it is then fed back as the next input. ``states`` are the model's start states (e.g. the ones training
    ended with, or ``model.zero_state()``). Returns the sampled text (without the prompt).
    """
    if not prompt:
        raise ValueError("sample: the prompt must contain at least one character")
    if not temperature > 0:
        raise ValueError(f"sample: temperature must be positive, got {temperature!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
        raise ValueError(f"sample: length must be a positive integer, got {length!r}")
    prompt_ids = vocab.encode(prompt)
    dtype = jax.tree.leaves(params)[0].dtype
    return vocab.decode(_sample(model, vocab.size, length, params, states, jnp.asarray(prompt_ids)[None],
                                key, jnp.asarray(temperature, dtype)))


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _sample(model, vocab_size, length, params, states, prompt_ids, key, temperature):
    dtype = temperature.dtype
    logits, states = model.apply(params, jax.nn.one_hot(prompt_ids, vocab_size, dtype=dtype), states)

    def body(carry, k):
        last_logits, states = carry
        char = jax.random.categorical(k, last_logits / temperature)
        logits, states = model.apply(params, jax.nn.one_hot(char[None, None], vocab_size, dtype=dtype), states)
        return (logits[0, -1], states), char

    _, chars = jax.lax.scan(body, (logits[0, -1], states), jax.random.split(key, length))
    return chars
