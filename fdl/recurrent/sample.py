"""Text from a trained character model, one character at a time (book ch. 6: RNNTrainer.sample_output)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ..data.text import Vocabulary


def sample(
    model,
    params,
    states,
    vocab: Vocabulary,
    *,
    key,
    length: int = 200,
    prompt: str | None = None,
    temperature: float = 1.0,
) -> str:
    """``length`` characters drawn one at a time from ``model`` after reading ``prompt`` (book: sample_output).

    Each next character is drawn from ``softmax(logits / temperature)`` with ``jax.random.categorical``;
    it is then fed back as the next input. ``states`` are the model's start states (e.g. the ones training
    ended with, or ``model.zero_state()``). Returns the sampled text (without the prompt).

    The default prompt is a newline when the vocabulary has one (a model then starts as at the beginning of a
    line), else the vocabulary's first character (``vocab.chars[0]``, the smallest in sort order). A prompt
    with a character outside the vocabulary raises the ValueError of :meth:`Vocabulary.encode`.

    ``params`` and ``states`` as the model's ``apply`` takes them (the one-hot inputs are built in the params'
    dtype); returns a ``str`` of ``length`` characters.

    Raises:
      ValueError: an empty prompt, ``temperature`` not positive, ``length`` not a positive integer, or a
        prompt character outside the vocabulary. The model's own errors propagate.
    """
    if prompt is None:
        prompt = "\n" if "\n" in vocab.chars else vocab.chars[0]
    if not prompt:
        raise ValueError("sample: the prompt must contain at least one character")
    if not temperature > 0:
        raise ValueError(f"sample: temperature must be positive, got {temperature!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
        raise ValueError(f"sample: length must be a positive integer, got {length!r}")
    prompt_ids = vocab.encode(prompt)
    dtype = jax.tree.leaves(params)[0].dtype
    return vocab.decode(
        _sample(
            model,
            vocab.size,
            length,
            params,
            states,
            jnp.asarray(prompt_ids)[None],
            key,
            jnp.asarray(temperature, dtype),
        )
    )


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
