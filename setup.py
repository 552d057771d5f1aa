"""Everything is in pyproject.toml except this one mapping, which pyproject's package discovery cannot express:
the chapter scripts of ``experiments/`` ship in the wheel as the data-only package ``fdl._experiments``, so that
``fdl reproduce`` and ``fdl run`` work from an installed wheel (fdl never imports them; it runs them as files).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["fdl", "fdl.*"]), "fdl._experiments"],
    package_dir={"fdl._experiments": "experiments"},
)
