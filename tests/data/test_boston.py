"""fdl.data.boston: Boston housing: the shipped CSV, its hash check, and the book's standardise-then-split (ch. 2)."""

import shutil

import numpy as np
import pytest

from fdl.data import boston, boston_split, load_boston
from tests.helpers import assert_refused_before_writing, assert_untouched, snapshot


def test_load_boston_shapes_and_known_rows():
    X, y = load_boston()
    assert X.shape == (506, 13) and y.shape == (506, 1)
    assert X.dtype == np.float64 and y.dtype == np.float64
    # first row of the classic data set: CRIM 0.00632, ZN 18, ..., LSTAT 4.98, MEDV 24.0
    np.testing.assert_allclose(X[0, [0, 1, 12]], [0.00632, 18.0, 4.98])
    assert y[0, 0] == 24.0
    assert y.min() == 5.0 and y.max() == 50.0


def test_split_is_the_books():
    X_train, X_test, y_train, y_test = boston_split()
    assert X_train.shape == (354, 13) and X_test.shape == (152, 13)
    assert y_train.shape == (354, 1) and y_test.shape == (152, 1)
    X, y = load_boston()
    Xs = (X - X.mean(0)) / X.std(0)  # population std over all 506 rows, before the split
    perm = np.random.RandomState(80718).permutation(506)
    np.testing.assert_array_equal(X_test, Xs[perm[:152]])
    np.testing.assert_array_equal(X_train, Xs[perm[152:]])
    np.testing.assert_array_equal(y_test, y[perm[:152]])
    np.testing.assert_allclose(np.concatenate([X_train, X_test]).std(0), 1.0)


def test_least_squares_reproduces_the_books_ols_figures():
    # Book ch. 2: sklearn LinearRegression on this split gives MAE 3.5671, RMSE 5.0476 on the test set.
    X_train, X_test, y_train, y_test = boston_split()
    design = np.hstack([X_train, np.ones((354, 1))])
    w, *_ = np.linalg.lstsq(design, y_train, rcond=None)
    err = np.hstack([X_test, np.ones((152, 1))]) @ w - y_test
    assert np.mean(np.abs(err)) == pytest.approx(3.5671, abs=5e-4)
    assert np.sqrt(np.mean(err**2)) == pytest.approx(5.0476, abs=5e-4)


def test_split_options():
    X_train, X_test, *_ = boston_split(test_size=100, seed=1)
    assert X_test.shape == (100, 13) and X_train.shape == (406, 13)
    assert boston_split(test_size=0.5)[1].shape == (253, 13)
    for bad in (0.0, 1.0, 0, 506, -3, True, "0.3"):
        with pytest.raises((ValueError, TypeError), match="test_size"):
            boston_split(test_size=bad)


def test_altered_csv_is_refused(tmp_path, monkeypatch):
    altered = tmp_path / "boston_housing.csv"
    original = boston.BOSTON_CSV.read_bytes()
    altered.write_bytes(original.replace(b"2.400000000000000000e+01", b"2.500000000000000000e+01", 1))
    monkeypatch.setattr(boston, "BOSTON_CSV", altered)
    with pytest.raises(ValueError, match="SHA-256"):
        load_boston()
    monkeypatch.setattr(boston, "BOSTON_CSV", tmp_path / "missing.csv")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_boston()


# ---------------------------------------------------------------- the bad-input catalogue's cases


def test_shipped_data_file_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(boston, "BOSTON_CSV", tmp_path / "boston_housing.csv")
    with pytest.raises(FileNotFoundError, match="shipped data file .*boston_housing.csv is missing; reinstall fdl"):
        boston.load_boston()
    assert not list(tmp_path.iterdir())


def test_corrupt_shipped_data(monkeypatch, tmp_path):
    """An altered shipped file (the Boston CSV) is refused by its SHA-256, with what to do; it is not changed.

    Hamlet's case is in tests/data/test_text.py under the same name."""
    csv = tmp_path / "boston_housing.csv"
    shutil.copy(boston.BOSTON_CSV, csv)
    csv.write_bytes(csv.read_bytes().replace(b"0", b"1", 1))
    monkeypatch.setattr(boston, "BOSTON_CSV", csv)
    before = snapshot(tmp_path)
    with pytest.raises(
        ValueError,
        match=r"load_boston: .* has SHA-256 \w+, expected 8594f0.*altered or truncated, "
        "reinstall fdl",
    ):
        boston.boston_split()
    assert_untouched(tmp_path, before)


HYPERPARAMETERS = {
    "boston test_size 0": (lambda ck: boston.boston_split(test_size=0), "test_size gives 0 test rows"),
}


@pytest.mark.parametrize("case", sorted(HYPERPARAMETERS))
def test_non_positive_hyperparameters(tmp_path, case):
    """Refused when given, before anything is read or written: an existing checkpoint is left as it was."""
    assert_refused_before_writing(tmp_path, *HYPERPARAMETERS[case])
