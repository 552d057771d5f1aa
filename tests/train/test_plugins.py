"""fdl.train.plugins: Progress without tqdm, and the Checkpoint plugin's arguments (its runs: tests/test_checkpoint.py;
DataParallel's: tests/test_parallel.py)."""

import pytest

from fdl.train import Progress
from tests.helpers import assert_refused_before_writing, fit_regression, fit_tiny


def test_progress_lines_without_tqdm(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    monkeypatch.setenv("FDL_PROGRESS_NOTED", "0")  # the note is said once per process
    logs = []
    fit_regression(epochs=2, early_stopping=False, plugins=[Progress()], log=logs.append)
    assert [line.split(":")[0] for line in logs if line.startswith("epoch")] == ["epoch 1/2", "epoch 2/2"]
    assert any("tqdm is not installed" in line for line in logs)


HYPERPARAMETERS = {
    "fit Checkpoint every 0": (
        lambda ck: fit_tiny(every=0, checkpoint=ck, resume=True),
        "Checkpoint every must be a positive integer",
    ),
}


@pytest.mark.parametrize("case", sorted(HYPERPARAMETERS))
def test_non_positive_hyperparameters(tmp_path, case):
    """Refused when given, before anything is read or written: an existing checkpoint is left as it was."""
    assert_refused_before_writing(tmp_path, *HYPERPARAMETERS[case])
