"""The book's figures as what they are (issue 24): early-stopping rules (``StopRule``), the book's reported
cross-entropy, and epochs visited in a given order (``permutations=``, the replay of ch. 3)."""

import jax
import numpy as np
import pytest

from fdl import dense, fit, serial
from fdl.losses import softmax_cross_entropy
from fdl.metrics import accuracy, book_cross_entropy
from fdl.optim import momentum, sgd
from fdl.train import GivenPermutations, StopRule
from fdl.train.run import run_keys

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 12)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[np.argmax(X @ RNG.normal(size=(12, 3)) + RNG.normal(size=(300, 3)), 1)]
XT, YT = X[:90] + 0.3 * RNG.normal(size=(90, 12)).astype(np.float32), Y[:90]
MODEL = serial(dense(16, "tanh", weight_init="glorot", keep_prob=0.8), dense(3, weight_init="glorot"))
OPT = momentum(0.3, 0.9)  # fast enough that the test loss rises within the run
KW = dict(
    epochs=16, eval_every=2, batch_size=33, log=None, metrics={"accuracy": accuracy, "book loss": book_cross_entropy}
)
BOOK = StopRule("book loss", restore_best=False)


def leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_true_is_the_default_rule():
    a, ha = fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=1, early_stopping=True, **KW)
    b, hb = fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=1, early_stopping=StopRule(), **KW)
    assert leaves_equal(a, b) and ha.evals == hb.evals and ha.stopped == hb.stopped


@pytest.mark.parametrize("rule", [StopRule(), StopRule(restore_best=False), BOOK, StopRule("book loss")])
def test_a_rule_read_off_one_longer_run_is_what_fit_returns(rule):
    """``StopRule.choose`` on the evaluations of a run without stopping names the params ``fit`` returns
    under that rule (training does not depend on stopping), for two seeds trained together."""
    full, histories = fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=[1, 2], early_stopping=False, **KW)
    params, stopped = fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=[1, 2], early_stopping=rule, **KW)
    assert any(h.stopped for h in stopped), "the rule should stop a run here"
    for r, (h, s) in enumerate(zip(histories, stopped, strict=True)):
        i = rule.choose(h.evals)
        assert i is not None and 0 <= i < len(h.evals)
        assert s.evals == h.evals[: len(s.evals)]
        assert s.best_epoch == h.evals[i]["epoch"]
        got = float(accuracy(MODEL.apply(jax.tree.map(lambda a, r=r: a[r], params), XT), YT))
        assert got == pytest.approx(h.evals[i]["accuracy"], abs=1e-6)


def test_keeping_the_last_model_returns_the_params_trained_through_the_stopping_evaluation():
    params, h = fit(
        MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=3, early_stopping=StopRule(restore_best=False), **KW
    )
    assert h.stopped and "keeping the model trained through epoch" in h.stopped
    stop_epoch = h.evals[-1]["epoch"]
    assert h.best_epoch == stop_epoch and h.state.epoch == stop_epoch
    through, _ = fit(
        MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=3, early_stopping=False, **{**KW, "epochs": stop_epoch}
    )
    assert leaves_equal(params, through)
    best, hb = fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=3, **KW)
    assert hb.best_epoch < stop_epoch and not leaves_equal(best, params)


def test_a_rule_must_watch_an_evaluated_value():
    with pytest.raises(
        ValueError,
        match=r"monitors 'book loss', which is not evaluated; choose one of \['loss', "
        r"'accuracy'\]",
    ):
        fit(
            MODEL,
            softmax_cross_entropy,
            OPT,
            X,
            Y,
            XT,
            YT,
            early_stopping=BOOK,
            **{**KW, "metrics": {"accuracy": accuracy}},
        )
    with pytest.raises(TypeError, match="early_stopping must be True, False or a fdl.train.StopRule"):
        fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, early_stopping="book", **KW)
    with pytest.raises(TypeError, match="monitor must be a name .str. and restore_best a bool"):
        fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, early_stopping=StopRule("loss", "no"), **KW)
    with pytest.raises(ValueError, match="monitors 'x', which is not evaluated"):  # even without test data
        fit(MODEL, softmax_cross_entropy, OPT, X, Y, early_stopping=StopRule("x"), **KW)
    with pytest.raises(ValueError, match="a metric may not be named 'loss'"):  # it would replace the test loss
        fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, **{**KW, "metrics": {"loss": book_cross_entropy}})


@pytest.mark.parametrize(
    "losses,best,last,never",
    [
        ([3.0, 2.0, 2.5, 1.0], 1, 2, False),
        ([3.0, 2.0, 2.0], 1, 2, False),  # equal is not an improvement (the book's strict <)
        ([3.0, 2.0, 1.0], None, None, True),
        ([3.0, float("nan"), 1.0], 0, 0, False),  # non-finite: the best so far, whatever the rule
        ([float("inf"), 1.0], -1, -1, False),  # diverged at once: the initial params
    ],
)
def test_choose(losses, best, last, never):
    evals = [{"loss": v, "x": v} for v in losses]
    assert StopRule().choose(evals) == best
    assert StopRule("x", restore_best=False).choose(evals) == last


def test_book_cross_entropy_is_the_books_formula_and_finite_in_float32():
    def book(x, y, eps=1e-9):  # the book's SoftmaxCrossEntropy._output, in float64
        e = np.exp(x - x.max(1, keepdims=True))
        p = np.clip(e / e.sum(1, keepdims=True), eps, 1 - eps)
        return np.sum(-y * np.log(p) - (1 - y) * np.log(1 - p)) / len(x)

    rng = np.random.default_rng(1)
    for scale, rel in ((0.5, 1e-12), (5.0, 1e-12), (60.0, 1e-8)):  # 60: softmax rounds to 1 in float32, and
        x, y = rng.normal(size=(40, 10)) * scale, np.eye(10)[rng.integers(0, 10, 40)]  # the book's 1 - p loses
        want = book(x, y)  # digits in float64 (fdl's log(1 - p) is a logsumexp of the other classes)
        assert float(book_cross_entropy(x, y)) == pytest.approx(want, rel=rel)
        assert float(book_cross_entropy(x.astype(np.float32), y.astype(np.float32))) == pytest.approx(want, rel=1e-5)
    with pytest.raises(
        ValueError,
        match=r"one-hot rows of the predictions' shape \(2, 3\); for class labels pass "
        r"fdl.data.one_hot\(labels, 3\)",
    ):
        book_cross_entropy(np.zeros((2, 3)), np.zeros(2, int))
    with pytest.raises(ValueError, match="at least 2 classes"):
        book_cross_entropy(np.zeros((2, 1)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"eps must be in \(0, 0.5\)"):
        book_cross_entropy(x, y, eps=0.6)
    # every row is an example, whatever the leading axes; boolean one-hot targets count as 0/1
    assert float(book_cross_entropy(x.reshape(4, 10, 10), y.reshape(4, 10, 10) > 0)) == pytest.approx(
        float(book_cross_entropy(x, y)), rel=1e-12
    )


def test_given_permutations_equal_to_the_drawn_ones_train_bitwise_the_same():
    """``permutations=`` with the very permutations ``fit`` draws from a seed (ShuffledEpochs' scheme) gives the
    seed's run bitwise, dropout masks included; other orders give another run."""
    kw = {**KW, "epochs": 4}
    want, hw = fit(MODEL, softmax_cross_entropy, sgd(0.1), X, Y, XT, YT, seed=5, **kw)
    key = run_keys([5])[0, 1]
    perms = np.stack(
        [np.asarray(jax.random.permutation(jax.random.split(jax.random.fold_in(key, e))[0], len(X))) for e in range(4)]
    )
    got, hg = fit(MODEL, softmax_cross_entropy, sgd(0.1), X, Y, XT, YT, seed=5, permutations=perms, **kw)
    assert leaves_equal(want, got) and hw.evals == hg.evals
    other, _ = fit(MODEL, softmax_cross_entropy, sgd(0.1), X, Y, XT, YT, seed=5, permutations=perms[::-1], **kw)
    assert not leaves_equal(want, other)


def test_given_permutations_are_checked():
    ok = np.stack([np.arange(300)] * 3)
    with pytest.raises(
        ValueError,
        match=r"permutations \(4, 50\) must have one row per epoch and one column per "
        r"training example \(300\)",
    ):
        fit(
            MODEL, softmax_cross_entropy, sgd(0.1), X, Y, epochs=4, log=None, permutations=np.stack([np.arange(50)] * 4)
        )
    with pytest.raises(ValueError, match=r"permutations \(3, 300\) must be \(4, 300\) or longer"):
        fit(MODEL, softmax_cross_entropy, sgd(0.1), X, Y, epochs=4, log=None, permutations=ok)
    with pytest.raises(ValueError, match=r"permutations\[1\] is not a permutation of 0 .. 299"):
        GivenPermutations(np.stack([np.arange(300), np.zeros(300, int)]), 30)
    with pytest.raises(ValueError, match=r"must be an \(epochs, n\) integer array"):
        GivenPermutations(np.arange(300), 30)
