"""Data-parallel training on 8 simulated CPU devices matches single-device training; the runs of a multi-run fit
split over devices; the guards and messages of several processes (simulated here; tests/test_multihost.py runs
two real processes).

The device count is fixed when jax starts, so the check runs in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=8.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

WORKER = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from fdl import dense, fit, serial
    from fdl.losses import mean_squared_error, softmax_cross_entropy
    from fdl.optim import momentum
    from fdl.train import DataParallel
    assert len(jax.devices("cpu")) == 8, jax.devices("cpu")
    rng = np.random.RandomState(0)
    cases = {
        "dense": (serial(dense(16, "tanh", keep_prob=0.8), dense(3)), mean_squared_error,
                  rng.randn(100, 6), rng.randn(100, 3)),
    }
    from fdl.layers import conv2d
    cases["conv"] = (serial(conv2d(4, 3, "tanh", flatten=True), dense(10)), softmax_cross_entropy,
                     rng.randn(100, 2, 6, 6), np.eye(10)[rng.randint(0, 10, 100)])
    out = {}
    for name, (model, loss, X, Y) in cases.items():
        for grad in ("manual", "autodiff"):
            runs = [fit(model, loss, momentum(0.05, 0.9), X, Y, epochs=3, batch_size=16, seed=1, log=None,
                        grad=grad, plugins=p)[0] for p in ([], [DataParallel("cpu")])]
            diffs = [float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                     for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1]))]
            sharded = jax.tree.leaves(runs[1])[0].sharding
            out[f"{name}/{grad}"] = {"max_diff": max(diffs), "devices": len(sharded.device_set)}

    # A character LSTM (RNN -> LSTM stack, the book's ch. 6 model in small) trained for several steps with its
    # start state carried between batches: fit_chars with the DataParallel plugin against one device.
    import optax
    from fdl.recurrent import CharWindows, char_loss_fn, fit_chars, rnn_layer, stack
    from fdl.train import TrainState, make_chunk, make_train_step
    vocab = 7
    model = stack(rnn_layer(12, 10, "rnn"), rnn_layer(16, vocab, "lstm"))
    ids = rng.randint(0, vocab, 300).astype(np.int32)
    for grad in ("manual", "autodiff"):
        finals = [fit_chars(model, optax.adagrad(0.05), ids, steps=5, batch_size=16, sequence_length=8, seed=3,
                            eval_every=5, grad=grad, log=None, plugins=p)[0] for p in ([], [DataParallel("cpu")])]
        diffs = [float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                 for a, b in zip(jax.tree.leaves(finals[0]), jax.tree.leaves(finals[1]))]
        sharded = jax.tree.leaves(finals[1].params)[0].sharding
        out[f"lstm/{grad}"] = {"max_diff": max(diffs), "devices": len(sharded.device_set)}

    # The batch really is split: XLA sums the gradients across devices (an all-reduce in the compiled chunk).
    plugin = DataParallel("cpu")
    from fdl.train import Run
    params = model.init(jax.random.key(3), (vocab,))
    state = TrainState(params, optax.adagrad(0.05).init(params), model.zero_state())
    run = plugin.setup(Run(state, None, jax.random.key(0), jax.numpy.asarray(ids), (), (), batch_size=16))
    step = make_train_step(char_loss_fn(model, vocab, grad="manual"), optax.adagrad(0.05))
    hlo = make_chunk(step, CharWindows(len(ids), 16, 8), shard=run.shard).lower(
        run.state, run.data, run.key, 0, 0, count=2).compile().as_text()
    assert "all-reduce" in hlo, "no all-reduce in the data-parallel LSTM chunk"
    try:  # 12 windows cannot be split among 8 devices: fdl's message, not XLA's
        fit_chars(model, optax.adagrad(0.05), ids, steps=2, batch_size=12, sequence_length=8, log=None,
                  plugins=[DataParallel("cpu")])
        raise AssertionError("an indivisible batch was accepted")
    except ValueError as e:
        assert "must be divisible by the 8 devices" in str(e), e

    # Runs split over the devices by their run axis (DataParallel(axis="runs")): against the same runs on one device
    from fdl.parallel import global_rows
    model, loss, X, Y = cases["dense"]
    runs = {}
    for seeds in ([1, 2], [1, 2, 3, 4]):
        stacked = [fit(model, loss, momentum(0.05, 0.9), X, Y, X[:20], Y[:20], epochs=3, eval_every=1, batch_size=16,
                       seed=seeds, log=None, plugins=p)[0] for p in ([], [DataParallel(2, axis="runs")])]
        diffs = [float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                 for a, b in zip(jax.tree.leaves(stacked[0]), jax.tree.leaves(stacked[1]))]
        sharding = jax.tree.leaves(stacked[1])[0].sharding
        runs[len(seeds)] = {"max_diff": max(diffs), "devices": len(sharding.device_set), "spec": str(sharding.spec)}
    try:
        fit(model, loss, momentum(0.05, 0.9), X, Y, epochs=1, seed=[1, 2, 3], log=None,
            plugins=[DataParallel(2, axis="runs")])
        raise AssertionError("3 runs were split over 2 devices")
    except ValueError as e:
        assert "the number of runs 3 must be divisible by the 2 devices" in str(e), e

    # Rows split over the devices (fdl.parallel.global_rows) train as the replicated rows do, bitwise; the gather of
    # a batch's rows is then an all-reduce in the compiled chunk
    Xg, Yg = global_rows((X[:96], Y[:96]))
    both = [fit(model, loss, momentum(0.05, 0.9), A, B, X[96:], Y[96:], epochs=3, eval_every=1, batch_size=16,
                log=None, plugins=[DataParallel("cpu")])[0] for A, B in ((X[:96], Y[:96]), (Xg, Yg))]
    rows = {"max_diff": max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                            for a, b in zip(jax.tree.leaves(both[0]), jax.tree.leaves(both[1]))),
            "spec": str(Xg.sharding.spec), "shape": list(Xg.shape)}
    json.dump({"cases": out, "runs": runs, "rows": rows}, sys.stdout)
""")


def test_eight_cpu_devices_match_one():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    everything = json.loads(proc.stdout.strip().splitlines()[-1])
    results = everything["cases"]
    assert set(results) == {f"{m}/{g}" for m in ("dense", "conv", "lstm") for g in ("manual", "autodiff")}
    for name, r in results.items():
        assert r["devices"] == 8, name
        assert r["max_diff"] < 1e-5, (name, r)
    # runs split over 2 devices: bitwise with 2 runs per device; with one run per device XLA compiles the run axis
    # of length 1 otherwise (a few ulp per step: 2e-6 after 18 momentum steps in float32)
    runs = {int(k): v for k, v in everything["runs"].items()}
    assert all(r["devices"] == 2 and r["spec"] == "P('batch',)" for r in runs.values()), runs
    assert runs[4]["max_diff"] == 0.0, runs
    assert runs[2]["max_diff"] < 1e-5, runs
    rows = everything["rows"]
    assert rows["spec"] == "P('batch',)" and rows["shape"] == [96, 6] and rows["max_diff"] == 0.0, rows


def test_batch_must_divide_among_devices():
    import jax

    from fdl.parallel import check_divisible, make_mesh

    mesh = make_mesh(1)
    check_divisible(7, mesh)
    with pytest.raises(ValueError, match="asked for 99 devices"):
        make_mesh(99)
    assert len(jax.devices()) >= 1


@pytest.mark.parametrize(
    "devices,error,match",
    [
        ("nosuchplatform", ValueError, "no such platform here"),
        (2.5, TypeError, "a platform name, a count or a list"),
        (["cpu"], TypeError, "expected jax.Device objects"),
        ([], ValueError, "at least one device"),
    ],
)
def test_bad_device_specs_say_what_to_pass(devices, error, match):
    from fdl.train import DataParallel

    with pytest.raises(error, match=match):
        DataParallel(devices)


def test_devices_by_platform_name():
    import jax

    from fdl.parallel import make_mesh

    assert make_mesh("cpu").devices.size == len(jax.devices("cpu"))


def test_mesh_must_hold_every_process(monkeypatch):
    import jax

    from fdl.parallel import make_mesh

    monkeypatch.setattr(jax, "process_count", lambda: 2)  # this process's devices are all of process 0
    with pytest.raises(
        ValueError,
        match=r"leaves out process\(es\) \[1\] of the 2 processes.*"
        r"this process's devices only.*DataParallel\('all'\)",
    ):
        make_mesh("all")


def test_one_voice_and_a_switch(monkeypatch):
    import jax

    from fdl import parallel

    lines = []
    log = lines.append
    assert parallel.voice(log) is log and parallel.speaks()  # one process: unchanged
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: True)
    assert parallel.voice(log) is None and not parallel.speaks() and not parallel.writes()
    monkeypatch.setattr(parallel, "_EVERY_PROCESS", [False])
    parallel.log_from_every_process()
    parallel.voice(log)("Validation loss after 1 epochs is 0.5")
    assert lines == ["[process 1] Validation loss after 1 epochs is 0.5"] and parallel.speaks()
    monkeypatch.setattr(jax, "process_index", lambda: 0)
    parallel.log_from_every_process(False)
    assert parallel.voice(log) is log and parallel.writes()


def _two_processes(monkeypatch, other):
    """Pretend to be process 0 of 2, process 1 sending ``other(mine)`` in every exchange."""
    import jax

    from fdl import parallel

    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: 0)
    monkeypatch.setattr(parallel, "_allgather", lambda a: np.stack([a, other(a)]))
    return parallel


def test_disagreeing_processes_get_fdls_message(monkeypatch):
    parallel = _two_processes(monkeypatch, lambda a: a + np.array([0, 1], a.dtype))
    parallel.agree({})
    with pytest.raises(
        parallel.ProcessMismatch,
        match=r"^the processes of this job disagree on the test data "
        r"\(processes 0 \| 1\): load it the same way$",
    ):
        parallel.agree(
            {"the training data": 7, "the test data": parallel.fingerprint(np.arange(3.0))},
            hint={"the test data": "load it the same way"},
        )


def test_a_check_that_fails_on_one_process_fails_on_all(monkeypatch):
    from fdl.checkpoint import CheckpointError

    def error_on_process_1(mine):
        text = json.dumps(["fdl.checkpoint", "CheckpointError", "run.npz: not an fdl checkpoint"]).encode()
        row = np.zeros_like(mine)
        row[0], row[1 : 1 + len(text)] = 1, np.frombuffer(text, np.uint8)
        return row

    parallel = _two_processes(monkeypatch, error_on_process_1)
    with pytest.raises(CheckpointError, match="^process 1: run.npz: not an fdl checkpoint$"):
        parallel.together(lambda: None)
    with pytest.raises(ZeroDivisionError):  # the process that failed raises its own error
        parallel.together(lambda: 1 / 0)
    parallel = _two_processes(monkeypatch, lambda mine: mine)
    assert parallel.together(lambda x: x + 1, 1) == 2


def test_fingerprints_and_broadcast_on_one_process():
    import jax

    from fdl import parallel

    tree = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.float32(-0.0), "k": jax.random.key(3)}
    assert parallel.fingerprint(tree) == parallel.fingerprint(dict(tree))
    assert parallel.fingerprint(tree) != parallel.fingerprint({**tree, "b": np.float32(0.0)})  # bits, not values
    got = parallel.broadcast({"w": tree["w"], "b": tree["b"]})
    assert got["b"].shape == () and np.signbit(got["b"]) and np.array_equal(got["w"], tree["w"])
    assert parallel.broadcast_json({"found": True}) == {"found": True}


@pytest.mark.parametrize("axis", ["rows", None])
def test_bad_axis_is_refused(axis):
    from fdl.train import DataParallel

    with pytest.raises(ValueError, match="axis must be 'batch'.*or 'runs'"):
        DataParallel(1, axis=axis)


def test_results_json_from_process_0_alone(tmp_path, monkeypatch):
    import jax

    from fdl.harness.experiment import Results

    results = Results("ch00")
    results.add("row", "accuracy", 0.5)
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    assert results.write(tmp_path) is None and not (tmp_path / "results.json").exists()
    monkeypatch.setattr(jax, "process_index", lambda: 0)
    assert results.write(tmp_path) == tmp_path / "results.json"
