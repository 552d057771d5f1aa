"""fdl.recurrent.char_windows: the sampler draws the text helpers' windows (random and the book's)."""

import jax
import numpy as np
import pytest

from fdl.data.text import book_batch, random_batch
from fdl.recurrent import CharWindows

IDS = np.random.RandomState(1).randint(0, 9, 300).astype(np.int32)


@pytest.mark.parametrize("batches", ["random", "book"])
def test_char_windows_are_the_text_helpers_windows(batches):
    sampler, key = CharWindows(len(IDS), 4, 7, batches), jax.random.key(3)
    starts, _, last = sampler.plan(IDS, key, 0, 5, 3, False)
    assert last is None
    for i, k in enumerate(range(5, 8)):
        want = book_batch(IDS, k, 4, 7) if batches == "book" else random_batch(IDS, jax.random.fold_in(key, k), 4, 7)
        got = sampler.batch(IDS, starts[i])
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
