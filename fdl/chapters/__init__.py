"""The chapter demos: the book's steps before the library, written out by hand.

* :mod:`fdl.chapters.foundations`: ch. 1, derivatives, the chain rule, and the matrix forward/backward
  functions, each checked against ``jax.grad``.
* :mod:`fdl.chapters.fundamentals`: ch. 2, linear regression and a 13-13-1 network with hand-derived
  gradients and a NumPy training loop (the book's code before its ``Trainer``).
* :mod:`fdl.chapters.autodiff`: ch. 6's scalar automatic differentiation (``NumberWithGrad``).

These import from the library (never the other way) and from each other; nothing in the library uses them.
"""
