"""fdl.recurrent.sample: text from a character model: seeded, in the vocabulary, greedy at a low temperature, the
default prompt, bad input."""

import jax
import jax.numpy as jnp
import pytest

from fdl.data.text import Vocabulary
from fdl.recurrent import rnn_layer, sample
from fdl.recurrent.model import stack


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
    out = sample(
        model, params, model.zero_state(), vocab, key=jax.random.key(0), length=20, prompt="a", temperature=1e-3
    )
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


def test_sample_default_prompt_without_a_newline_in_the_text():
    vocab = Vocabulary.from_text("abcabc")
    model = stack(rnn_layer(8, vocab.size, "lstm"))
    params = model.init(jax.random.key(0), (vocab.size,))
    got = sample(model, params, model.zero_state(), vocab, key=jax.random.key(1), length=10)
    assert got == sample(model, params, model.zero_state(), vocab, key=jax.random.key(1), length=10, prompt="a")
    assert len(got) == 10 and set(got) <= set("abc")
