"""Several processes train one model: two local processes x 2 CPU devices against one process x 4.

Each worker below is a separate Python process started by :func:`launch` (the launcher the README shows): on
127.0.0.1 only, with a free port, ``jax.distributed.initialize`` first, JAX's default CPU collectives (gloo),
every process bounded by a timeout and ended, if need be, by its own handle (never by name).

* ``reference``: one process with 4 devices trains with ``DataParallel("all")``;
* ``pair`` (two processes x 2 devices): the guards (a mesh without process 1's devices, per-process meshes, test
  data, seeds or row counts that differ between processes, a damaged checkpoint on process 0's disk: fdl's
  messages, on both processes), then the same
  training with the whole data set in each process, then with each process feeding only its half of the rows
  (``fdl.parallel.global_rows``), then a checkpointed run that the test kills after its second epoch;
* ``resume`` (two processes): the killed run resumed; each process has a checkpoint folder of its own (disks of
  their own), and only process 0's holds the file.

The contract: the processes agree bitwise; the half-rows run equals the whole-data run bitwise; the resumed run
equals the uninterrupted one bitwise; two processes equal one process with 4 devices within 1e-6 (float32: the
cross-process gradient sum is added in another order).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    role, pid, count, port, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], Path(sys.argv[5])
    import jax
    if count > 1:
        # JAX's gloo CPU collectives, pinned to the loopback address where this jax has the switch (else gloo
        # binds the address of the machine's host name)
        from jax._src import xla_bridge
        make = getattr(getattr(xla_bridge, "_jax", None), "make_gloo_tcp_collectives", None)
        if make is not None:
            xla_bridge._jax.make_gloo_tcp_collectives = (
                lambda distributed_client, **kw: make(distributed_client, hostname="127.0.0.1"))
        # first, before any device, mesh or array:
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=count, process_id=pid,
                                   coordinator_bind_address=f"127.0.0.1:{port}", initialization_timeout=60)
    import numpy as np
    from fdl import dense, fit, serial
    from fdl.checkpoint import CheckpointError, save_params
    from fdl.losses import mean_squared_error
    from fdl.optim import momentum
    from fdl.parallel import ProcessMismatch, global_rows
    from fdl.train import Checkpoint, DataParallel, Plugin
    assert len(jax.devices()) == 4 and jax.process_count() == count, (jax.devices(), jax.process_count())

    rng = np.random.RandomState(0)
    X = rng.randn(320, 8).astype(np.float32)
    Y = np.sin(X @ rng.randn(8, 3) / 3).astype(np.float32)
    X_train, Y_train, X_test, Y_test = X[:256], Y[:256], X[256:], Y[256:]
    model = serial(dense(16, "tanh", keep_prob=0.9), dense(3))

    def train(X, Y, X_test=X_test, *, seed=1, plugins=(), log=None):
        return fit(model, mean_squared_error, momentum(0.02, 0.9), X, Y, X_test, Y_test, epochs=4, eval_every=1,
                   batch_size=32, seed=seed, log=log, plugins=[DataParallel("all"), *plugins])

    def refused(error, match, call):
        try:
            call()
        except error as e:
            assert match in str(e), str(e)
            return str(e)
        raise AssertionError(f"not refused: {match}")

    class Stall(Plugin):  # after the checkpoint of epoch 2 is written, wait to be killed
        order = 15
        def after_chunk(self, run):
            if run.done == 2:
                print("CHECKPOINTED", flush=True)
                time.sleep(600)
            return run

    result, logs = {}, {}
    if role == "pair":
        messages = {
            "count": refused(ValueError, "leaves out process(es) [1]", lambda: DataParallel(2)),
            "local": refused(ValueError, "this process's devices only", lambda: DataParallel(jax.local_devices())),
            "test data": refused(ProcessMismatch, "disagree on the test data",
                                 lambda: train(X_train, Y_train, X_test + pid)),
            "seed": refused(ProcessMismatch, "on the initial state", lambda: train(X_train, Y_train, seed=1 + pid)),
            "rows": refused(ProcessMismatch, "disagree on the number of rows",
                            lambda: global_rows((X_train[:120 + 8 * pid], Y_train[:120 + 8 * pid]))),
        }
        bad = out / f"checkpoints{pid}" / "bad.npz"  # a damaged checkpoint on process 0's disk alone
        if pid == 0:
            bad.parent.mkdir()
            bad.write_bytes(b"not a checkpoint")
        messages["checkpoint"] = refused(CheckpointError, "not a readable fdl checkpoint",
                                         lambda: train(X_train, Y_train, plugins=[Checkpoint(bad, resume=True)]))
        if pid == 0:
            bad.unlink()
        (out / f"messages{pid}.json").write_text(json.dumps(messages))
        lines = []
        result["full"] = train(X_train, Y_train, log=lines.append)[0]
        logs["full"] = lines
        half = slice(pid * 128, (pid + 1) * 128)
        X_mine, Y_mine = global_rows((X_train[half], Y_train[half]))
        assert X_mine.shape == (256, 8), X_mine.shape
        result["half"] = train(X_mine, Y_mine)[0]
    if role == "reference":
        result["full"] = train(X_train, Y_train)[0]
    folder = out / f"checkpoints{pid}"  # a disk of each process's own
    if role == "resume":
        lines = []
        result["resumed"] = train(X_train, Y_train, plugins=[Checkpoint(folder / "run.npz", resume=True)],
                                  log=lines.append)[0]
        logs["resumed"] = lines
    for name, params in result.items():
        save_params(out / f"{role}{pid}_{name}.npz", params)
    (out / f"{role}{pid}_logs.json").write_text(json.dumps(logs))
    if role == "pair":
        train(X_train, Y_train, plugins=[Checkpoint(folder / "run.npz", resume=True), Stall()])
        raise AssertionError("the checkpointed run was not stopped")
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(script: str, role: str, count: int, out: Path, *, devices: int) -> list[subprocess.Popen]:
    """Start ``count`` processes of ``script`` (one job: ``python -c script role i count port out``), each with
    ``devices`` CPU devices, output to ``out/<role><i>.log``."""
    port = free_port()
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        PYTHONPATH=str(ROOT),
    )
    procs = []
    for i in range(count):
        env["FDL_JAX_CACHE"] = str(out / f"cache-{role}-{i}" if role == "reference" else out / f"cache-{i}")
        log = open(out / f"{role}{i}.log", "w")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", script, role, str(i), str(count), str(port), str(out)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=out,
            )
        )
        log.close()
    return procs


def finish(procs: list[subprocess.Popen], out: Path, role: str, deadline: float) -> None:
    """Wait for ``procs`` until ``deadline``; kill those still running (only these), then fail if any failed."""
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, p in enumerate(procs):
        assert p.returncode == 0, (
            f"{role} process {i} ended with {p.returncode}:\n" + (out / f"{role}{i}.log").read_text()[-4000:]
        )


def wait_for(procs, out: Path, role: str, word: str, deadline: float) -> None:
    """Wait until every process of ``procs`` printed ``word`` (or one ended, or the deadline passed)."""
    while time.monotonic() < deadline:
        if all(word in (out / f"{role}{i}.log").read_text() for i in range(len(procs))):
            return
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.2)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    logs = "\n".join((out / f"{role}{i}.log").read_text()[-3000:] for i in range(len(procs)))
    raise AssertionError(f"{role}: not every process printed {word}:\n{logs}")


def params(out: Path, name: str) -> list[np.ndarray]:
    with np.load(out / f"{name}.npz") as f:
        return [f[k] for k in sorted(f.files) if k != "meta"]


def max_diff(a, b) -> float:
    return max(float(np.max(np.abs(x.astype(np.float64) - y))) for x, y in zip(a, b, strict=True))


def test_two_processes_train_as_one(tmp_path):
    tic = time.monotonic()
    deadline = tic + 240
    pair = launch(WORKER, "pair", 2, tmp_path, devices=2)
    reference = launch(WORKER, "reference", 1, tmp_path, devices=4)
    wait_for(pair, tmp_path, "pair", "CHECKPOINTED", deadline)
    for p in pair:  # killed after epoch 2's checkpoint: the run is resumed below
        p.kill()
        p.wait()
    assert (tmp_path / "checkpoints0" / "run.npz").exists()
    assert not (tmp_path / "checkpoints1").exists(), "process 1 wrote a checkpoint"
    assert sorted(p.name for p in (tmp_path / "checkpoints0").iterdir()) == ["run.npz"]
    resume = launch(WORKER, "resume", 2, tmp_path, devices=2)
    finish(reference, tmp_path, "reference", deadline)
    finish(resume, tmp_path, "resume", deadline)

    messages = [json.loads((tmp_path / f"messages{i}.json").read_text()) for i in range(2)]
    assert messages[0]["test data"] == messages[1]["test data"]  # the same words on both processes
    assert "DataParallel('all')" in messages[1]["local"] and "global_rows" not in messages[0]["seed"]
    assert "same seed" in messages[0]["seed"] and "same number of rows" in messages[1]["rows"]
    assert messages[1]["checkpoint"].startswith("process 0 (which reads the checkpoints): CheckpointError: ")

    full = [params(tmp_path, f"pair{i}_full") for i in range(2)]
    assert max_diff(full[0], full[1]) == 0.0, "the processes disagree"
    one = params(tmp_path, "reference0_full")
    assert max_diff(full[0], one) < 1e-6, max_diff(full[0], one)
    assert max_diff(params(tmp_path, "pair0_half"), full[0]) == 0.0, "half rows per process != whole data"
    assert max_diff(params(tmp_path, "pair1_half"), full[0]) == 0.0
    for i in range(2):
        assert max_diff(params(tmp_path, f"resume{i}_resumed"), full[0]) == 0.0, "resumed != uninterrupted"

    logs = [json.loads((tmp_path / f"pair{i}_logs.json").read_text())["full"] for i in range(2)]
    assert any(line.startswith("Validation loss after 1 epochs") for line in logs[0]) and logs[1] == []
    resumed = [json.loads((tmp_path / f"resume{i}_logs.json").read_text())["resumed"] for i in range(2)]
    assert resumed[0][0].startswith("Resuming from") and "after epoch 2" in resumed[0][0] and resumed[1] == []
    print(f"two processes x 2 against one x 4: max |diff| {max_diff(full[0], one):.3g}; {time.monotonic() - tic:.1f} s")
