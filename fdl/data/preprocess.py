"""The book's input preprocessing for MNIST (ch. 4-5) and one-hot encoding of class labels."""

from __future__ import annotations

import numpy as np


def mnist_preprocess(X_train, X_test, flatten: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Scale images as the book: subtract the training mean, divide by the training std (global scalars).

    ``X' = (X - mean(X_train)) / std(X_train)`` for both sets, the statistics over every training pixel (in
    float64).

    Args:
        X_train: (n_train, H, W) images (any real dtype, e.g. the uint8 of ``load_mnist``); with
            ``flatten=True`` already-flat (n_train, H*W) arrays are accepted too.
        X_test: (n_test, ...) with the same per-image shape.
        flatten: True -> (n, H*W) for dense networks (784 for MNIST); False -> (n, 1, H, W), NCHW with one
            channel, for the convolutional networks of chapter 5.

    Returns:
        (X_train, X_test) as float32.

    Raises:
        ValueError: an array of the wrong rank, images of different shapes in the two sets, NaN or Inf, an
            empty X_train, or an X_train whose pixels are all equal (zero std).
        TypeError: an array that does not hold real numbers (integer or floating).
    """
    X_train, X_test = np.asarray(X_train), np.asarray(X_test)
    allowed = (3, 2) if flatten else (3,)
    for name, X in (("X_train", X_train), ("X_test", X_test)):
        if X.ndim not in allowed:
            layout = "(n, H, W) or (n, H*W)" if flatten else "(n, H, W)"
            raise ValueError(f"mnist_preprocess: {name} must be {layout}, got shape {X.shape}")
        if not (np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.floating)):
            raise TypeError(f"mnist_preprocess: {name} must hold real numbers, got dtype {X.dtype}")
        if np.issubdtype(X.dtype, np.floating) and not np.all(np.isfinite(X)):
            raise ValueError(f"mnist_preprocess: {name} contains NaN or Inf; clean or drop those images first")
    if X_train.shape[1:] != X_test.shape[1:]:
        raise ValueError(
            f"mnist_preprocess: X_train and X_test images differ in shape: {X_train.shape[1:]} and {X_test.shape[1:]}"
        )
    if X_train.shape[0] == 0:
        raise ValueError("mnist_preprocess: X_train is empty; the mean and std come from it")
    mean = X_train.mean(dtype=np.float64)
    std = X_train.std(dtype=np.float64)
    if not std > 0:
        raise ValueError("mnist_preprocess: X_train has zero standard deviation (all pixels equal)")

    def scale(X):
        out = ((X.astype(np.float64) - mean) / std).astype(np.float32)
        return out.reshape(X.shape[0], -1) if flatten else out[:, None, :, :]

    return scale(X_train), scale(X_test)


def one_hot(labels, n_classes: int) -> np.ndarray:
    """Encode integer class labels as one-hot rows (book ch. 4's MNIST labels).

    Args:
        labels: integer array of any shape (typically (n,)) with values in [0, n_classes).
        n_classes: number of classes (10 for MNIST).

    Returns:
        float32 array of shape ``labels.shape + (n_classes,)``.

    Raises:
        ValueError: ``n_classes`` not a positive integer, or labels outside [0, n_classes).
        TypeError: labels that are not integers (e.g. scores or one-hot rows).
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"one_hot: n_classes must be a positive integer, got {n_classes!r}")
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(
            f"one_hot: labels must be integers, got dtype {labels.dtype}; pass class indices "
            "(e.g. labels.astype(int)), not scores or one-hot rows"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)]
        raise ValueError(f"one_hot: labels must be in [0, {n_classes}), found {bad.ravel()[:5].tolist()}")
    return (labels[..., None] == np.arange(n_classes)).astype(np.float32)
