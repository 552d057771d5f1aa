"""The reproduction harness: what the experiments use to retell the book and compare with it.

* :mod:`fdl.harness.book`: the book's published figures, one table per chapter.
* :mod:`fdl.harness.experiment`: the experiment scripts' shared command line (``--quick``, ``--seed``,
  ``--out``), result records (``results.json``) and tables.
* :mod:`fdl.harness.cli`: the ``fdl`` command (``fdl run``, ``fdl reproduce``, ``fdl benchmark``, ...).

It imports from the library and the chapter demos; neither imports from it.
"""
