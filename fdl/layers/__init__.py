"""Layers built from the ops: init/apply pairs and their serial composition (book ch. 3-5)."""

from .conv import conv2d
from .core import Layer, apply_dropout, dropout, flatten, reshape, serial, summary
from .dense import dense

__all__ = ["Layer", "apply_dropout", "dropout", "flatten", "reshape", "serial", "summary", "dense", "conv2d"]
