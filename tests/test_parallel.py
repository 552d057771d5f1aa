"""Data-parallel training on 8 simulated CPU devices matches single-device training.

The device count is fixed when jax starts, so the check runs in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=8.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

WORKER = textwrap.dedent('''
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
    json.dump(out, sys.stdout)
''')


def test_eight_cpu_devices_match_one():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(results) == {f"{m}/{g}" for m in ("dense", "conv", "lstm") for g in ("manual", "autodiff")}
    for name, r in results.items():
        assert r["devices"] == 8, name
        assert r["max_diff"] < 1e-5, (name, r)


def test_batch_must_divide_among_devices():
    import jax

    from fdl.parallel import check_divisible, make_mesh
    mesh = make_mesh(1)
    check_divisible(7, mesh)
    with pytest.raises(ValueError, match="asked for 99 devices"):
        make_mesh(99)
    assert len(jax.devices()) >= 1


@pytest.mark.parametrize("devices,error,match", [
    ("nosuchplatform", ValueError, "no such platform here"),
    (2.5, TypeError, "a platform name, a count or a list"),
    (["cpu"], TypeError, "expected jax.Device objects"),
    ([], ValueError, "at least one device"),
])
def test_bad_device_specs_say_what_to_pass(devices, error, match):
    from fdl.train import DataParallel
    with pytest.raises(error, match=match):
        DataParallel(devices)


def test_devices_by_platform_name():
    import jax

    from fdl.parallel import make_mesh
    assert make_mesh("cpu").devices.size == len(jax.devices("cpu"))
