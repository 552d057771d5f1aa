"""``python -m benchmarks [--quick] [--workloads W1 W3] [--out DIR] ...``, from the repository root."""

from .cli import main

main()
