"""Layers built from the ops: init/apply pairs and their serial composition."""

from .conv import conv2d
from .core import Layer, apply_dropout, dropout, flatten, reshape, serial
from .dense import dense

__all__ = ["Layer", "apply_dropout", "dropout", "flatten", "reshape", "serial", "dense", "conv2d"]
