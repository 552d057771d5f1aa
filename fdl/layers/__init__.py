"""Layers built from the ops: init/apply pairs and their serial composition."""

from .core import Layer, apply_dropout, dropout, flatten, reshape, serial
from .dense import dense

__all__ = ["Layer", "apply_dropout", "dropout", "flatten", "reshape", "serial", "dense"]
