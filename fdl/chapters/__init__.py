"""The chapter demos: the book's steps before the library, written out by hand.

:mod:`~fdl.chapters.foundations` (ch. 1), :mod:`~fdl.chapters.fundamentals` (ch. 2) and
:mod:`~fdl.chapters.autodiff` (ch. 6's ``NumberWithGrad``); nothing in the library uses them.
"""
