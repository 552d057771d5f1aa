"""Data sets of the book: Boston housing (ch. 2-3, shipped), MNIST (ch. 4-5, cached download), text (ch. 6).

Every shipped file is checked against the SHA-256 recorded in PROVENANCE.md when it is loaded.
"""

from fdl.data.boston import boston_split, load_boston
from fdl.data.mnist import MnistUnavailableError, load_mnist
from fdl.data.preprocess import mnist_preprocess, one_hot
from fdl.data.text import load_text

__all__ = [
    "MnistUnavailableError",
    "boston_split",
    "load_boston",
    "load_mnist",
    "load_text",
    "mnist_preprocess",
    "one_hot",
]
