"""fdl's training-step benchmark: fdl (hand-written VJPs), fdl through ``jax.grad`` and PyTorch, on the book's
workloads; ``python -m benchmarks --help`` (or ``fdl benchmark --help``) lists the options, README.md here the
method.

By job: :mod:`~benchmarks.workloads` (the models, from fdl's layers), :mod:`~benchmarks.inputs` (weights, data
and batch orders, drawn through fdl's samplers), :mod:`~benchmarks.fdl_runner` and
:mod:`~benchmarks.torch_runner` (with :mod:`~benchmarks.torch_models`) time one implementation,
:mod:`~benchmarks.worker` (a process per measurement, JSON lines), :mod:`~benchmarks.device` (the machine),
:mod:`~benchmarks.compare` (implementations side by side) and :mod:`~benchmarks.runs` (``--runs``), with
:mod:`~benchmarks.report` (what they share), and :mod:`~benchmarks.cli`. ``gpu_check.sh`` is the accelerator
check, which runs the benchmark among its stages.
"""
