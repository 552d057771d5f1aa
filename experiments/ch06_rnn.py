"""Chapter 6: character-level RNN, LSTM and GRU language models on Hamlet, trained through the hand-written BPTT.

The book's five configurations (hidden 256, sequence length 25, batch 32, element-wise clipping to +/-2, the
book's summed loss; optimizers and initial scales as in the book's notebook):

    RNN                    SGD 0.001       scale 2 / (vocab + vocab)
    LSTM                   AdaGrad 0.01    scale 0.01
    RNN(->128) -> LSTM     AdaGrad 0.01    scales 0.1, 0.01
    LSTM(->128) -> LSTM    SGD 0.01        scales 0.1, 0.01
    GRU(->128) -> LSTM     AdaGrad 0.01    scales 0.1, 0.01

and one of fdl's own: the LSTM with Adam (lr 2e-3, mean loss, no clipping, Glorot initialisation).

Batches: ``--batches random`` (default) draws 32 windows at random positions of the training text for every
step; ``--batches book`` takes the book's, 32 windows starting at consecutive characters, the next batch 32
characters on (2000 such steps see only 64 000 characters, and the 32 windows of a batch nearly coincide).
Either way the layers' start states are carried from batch to batch as the book does.

Every 100 steps the validation cross-entropy (nats per character; the last 10 % of the text in
non-overlapping windows, run from the carried state) is printed; at the end a 200-character sample, the
table and results.json (metric "ce"). The unigram cross-entropy of the validation text is the baseline a
model without context reaches.

    python experiments/ch06_rnn.py [--quick] [--steps N] [--batches random|book] [--configs LSTM,GRU] [--seeds N]
                                   [--out DIR]

Each configuration trains one run (seed ``--seed`` + its position in the list), or with ``--seeds N`` N runs of
it together as one compiled program (``fit_chars(..., seed=[...])``; seeds ``--seed`` + position + k x the
number of configurations, k = 0 .. N - 1, so the first is the one-run seed): the log then gives the mean ± sd
over the runs at each evaluation, the table and results.json the mean, and the gradient check and the sample
come from the first seed's run.

With ``--out`` and matplotlib installed it also saves ``validation_curves.png``: each configuration's
validation cross-entropy against the training step, with the unigram baseline.
"""

from __future__ import annotations

import jax
import optax

from fdl import optim
from fdl.data import load_text
from fdl.data.text import Vocabulary, book_batch, split, unigram_cross_entropy, windows
from fdl.harness.experiment import Results, mean_sd, parse_args, positive_int
from fdl.recurrent import fit_chars, gradient_norms, rnn_layer, sample, stack

# name -> (layers as (cell, output "hidden"|"vocab", weight_scale, None for the book's default, or an
# initialiser's name), optimizer, reduction)
CONFIGS = {
    "RNN | SGD 0.001 (book)": ([("rnn", "vocab", None)], ("sgd", 0.001), "sum"),
    "LSTM | AdaGrad 0.01 (book)": ([("lstm", "vocab", 0.01)], ("adagrad", 0.01), "sum"),
    "RNN->LSTM | AdaGrad 0.01 (book)": ([("rnn", "hidden", 0.1), ("lstm", "vocab", 0.01)], ("adagrad", 0.01), "sum"),
    "LSTM->LSTM | SGD 0.01 (book)": ([("lstm", "hidden", 0.1), ("lstm", "vocab", 0.01)], ("sgd", 0.01), "sum"),
    "GRU->LSTM | AdaGrad 0.01 (book)": ([("gru", "hidden", 0.1), ("lstm", "vocab", 0.01)], ("adagrad", 0.01), "sum"),
    "LSTM | Adam 2e-3, Glorot init (fdl)": ([("lstm", "vocab", "glorot")], ("adam", 2e-3), "mean"),
}


def make_optimizer(kind: str, lr: float) -> optax.GradientTransformation:
    if kind == "adam":
        return optax.adam(lr)
    rule = optim.adagrad(lr) if kind == "adagrad" else optax.sgd(lr)
    return optax.chain(optim.clip(2.0), rule)  # the book clips every gradient element to [-2, 2] first


def build_model(spec, hidden: int, vocab: int, stacked_out: int):
    layers = [
        rnn_layer(
            hidden,
            vocab if out == "vocab" else stacked_out,
            cell,
            **({"weight_init": scale} if isinstance(scale, str) else {"weight_scale": scale}),
        )
        for cell, out, scale in spec
    ]
    return stack(*layers)


def train(name, model, tx, reduction, data, *, steps, batch, seq_len, eval_every, seed, batches, log):
    """Train one configuration through :func:`fdl.recurrent.fit_chars` (the shared trainer).

    ``seed``: an int, or a list of seeds whose runs train together.
    Returns (final state, [(step, validation ce)], seconds per training step); for a list of seeds the stacked
    state, the validation ce averaged over the runs, and the seconds per step of all the runs together.
    """
    train_ids, vx, vy, vocab = data
    state, history = fit_chars(
        model,
        tx,
        train_ids,
        steps=steps,
        batch_size=batch,
        sequence_length=seq_len,
        batches=batches,
        valid=(vx, vy),
        eval_every=eval_every,
        seed=seed,
        reduction=reduction,
        log=None,
    )
    per_char = batch * seq_len if reduction == "sum" else 1
    histories = list(history) if isinstance(history, list | tuple) else [history]
    if len(histories) == 1:
        for e, train_loss in zip(history.evals, history.train_loss, strict=False):
            log(f"  {name}: step {e['step']:5d}  train ce {train_loss / per_char:.3f}  validation ce {e['loss']:.3f}")
        curve = [(e["step"], e["loss"]) for e in history.evals]
    else:  # one line per evaluation: mean ± sd over the runs still training
        curve = []
        for i in range(max(len(h.evals) for h in histories)):
            alive = [h for h in histories if len(h.evals) > i]
            (t, t_sd), (v, v_sd) = (
                mean_sd([h.train_loss[i] / per_char for h in alive if len(h.train_loss) > i]),
                mean_sd([h.evals[i]["loss"] for h in alive]),
            )
            step = alive[0].evals[i]["step"]
            log(
                f"  {name}: step {step:5d}  train ce {t:.3f} ± {t_sd:.3f}  validation ce {v:.3f} ± {v_sd:.3f}"
                f"  ({len(alive)} runs)"
            )
            curve.append((step, v))
    for h in histories:
        if h.stopped:
            log(f"  {name}: {h.stopped}")
    return state, curve, sum(histories[0].seconds) / max(histories[0].best_step, 1)


def step_seconds(model, vocab, train_ids, batch, seq_len, grad, repeats):
    """Seconds per training step (book AdaGrad + clip, the book's batches) with the manual BPTT or jax.grad,
    in compiled chunks of ``repeats`` steps after a compiled warm-up chunk."""
    tx = make_optimizer("adagrad", 0.01)
    _, history = fit_chars(
        model,
        tx,
        train_ids,
        steps=2 * repeats,
        batch_size=batch,
        sequence_length=seq_len,
        batches="book",
        eval_every=repeats,
        grad=grad,
        reduction="sum",
        log=None,
    )
    return history.seconds[-1] / repeats


def main(argv=None):
    def extra(parser):
        parser.add_argument("--steps", type=int, default=None, help="training steps per configuration")
        parser.add_argument(
            "--batches",
            choices=("book", "random"),
            default="random",
            help="the book's consecutive windows, or windows at random positions",
        )
        parser.add_argument("--configs", type=str, default=None, help="comma-separated configuration prefixes")
        parser.add_argument(
            "--seeds", type=positive_int, default=1, help="runs per configuration, trained together (default 1)"
        )

    args = parse_args("Chapter 6: character RNN/LSTM/GRU models", argv, extra=extra)
    quick = args.quick
    hidden, stacked_out = (16, 8) if quick else (256, 128)
    seq_len, batch = (10, 8) if quick else (25, 32)
    steps = args.steps or (30 if quick else 2000)
    eval_every = 10 if quick else 100

    text = load_text("hamlet")
    if quick:
        text = text[:20_000]
    vocab = Vocabulary.from_text(text)
    train_text, valid_text = split(text, 0.1)
    train_ids, valid_ids = vocab.encode(train_text), vocab.encode(valid_text)
    vx, vy = windows(valid_ids, seq_len, vocab_size=vocab.size)
    baseline = unigram_cross_entropy(train_ids, valid_ids, vocab.size)
    print(
        f"hamlet: {len(text)} characters, vocabulary {vocab.size}, {len(train_ids)} training / "
        f"{len(valid_ids)} validation; unigram validation ce {baseline:.3f} nats/char"
    )
    print(f"hidden {hidden}, sequence length {seq_len}, batch {batch}, {steps} steps per configuration")

    names = list(CONFIGS)
    if quick and not args.configs:  # a smoke run: one of each cell kind and both optimizer families
        names = ["LSTM | AdaGrad 0.01 (book)", "GRU->LSTM | AdaGrad 0.01 (book)", "LSTM | Adam 2e-3, Glorot init (fdl)"]
    if args.configs:
        wanted = [w.strip() for w in args.configs.split(",")]
        names = [n for n in names if any(n.startswith(w) for w in wanted)]
    results = Results("ch06")
    results.add("unigram baseline (character frequencies)", "ce", baseline)
    data = (train_ids, vx, vy, vocab)
    curves = {}  # configuration -> [(step, validation ce)]
    seeds = {}  # configuration -> its seeds
    for i, name in enumerate(names):
        spec, (kind, lr), reduction = CONFIGS[name]
        model = build_model(spec, hidden, vocab.size, stacked_out)
        seeds[name] = [args.seed + i + len(CONFIGS) * k for k in range(args.seeds)]
        print(f"\n{name}: {model}" + (f" ({args.seeds} seeds: {seeds[name]})" if args.seeds > 1 else ""))
        state, history, per_step = train(
            name,
            model,
            make_optimizer(kind, lr),
            reduction,
            data,
            steps=steps,
            batch=batch,
            seq_len=seq_len,
            eval_every=eval_every,
            seed=seeds[name] if args.seeds > 1 else seeds[name][0],
            batches=args.batches,
            log=print,
        )
        if args.seeds > 1:
            print(f"  {per_step * 1000:.1f} ms per step of the {args.seeds} runs together")
            state = jax.tree.map(lambda a: a[0], state._replace(epoch=None))  # the first seed's run
        else:
            print(f"  {per_step * 1000:.1f} ms per step")
        if name.startswith("GRU"):
            x, y = book_batch(train_ids, 0, batch, seq_len, vocab_size=vocab.size)
            norms = gradient_norms(model, state.params, x, y, model.zero_state(), vocab.size)[0]
            zero = [k for k, v in norms.items() if v == 0.0]
            print("  GRU layer: largest |gradient| per weight: " + ", ".join(f"{k} {v:.2g}" for k, v in norms.items()))
            print(f"  GRU weights with an all-zero gradient: {zero or 'none'}")
        text_out = sample(
            model, state.params, state.aux, vocab, key=jax.random.key(seeds[name][0]), length=200, prompt="\n"
        )
        print("  sample:\n    " + text_out.replace("\n", "\n    "))
        results.add(name, "ce", history[-1][1] if history else float("nan"))
        curves[name] = history

    if not quick or args.steps:
        model = build_model(CONFIGS["LSTM | AdaGrad 0.01 (book)"][0], hidden, vocab.size, stacked_out)
        repeats = 5 if quick else 30
        for grad in ("manual", "autodiff"):
            seconds = step_seconds(model, vocab, train_ids, batch, seq_len, grad, repeats)
            results.add(
                f"LSTM train step, {'hand-written BPTT' if grad == 'manual' else 'jax.grad'}", "seconds", seconds
            )

    results.meta["seeds"] = seeds
    print(
        "\nValidation cross-entropy after the last step (nats per character"
        + (f"; mean over {args.seeds} seeds):" if args.seeds > 1 else "):")
    )
    print(results.table())
    path = results.write(args.out)
    if path:
        print(f"wrote {path}")
        plot_curves(curves, baseline, steps, args.out)
    return results


def plot_curves(curves: dict, baseline: float, steps: int, out) -> None:
    import plotting  # experiments/plotting.py, a sibling module

    series = {name: ([s for s, _ in h], [v for _, v in h]) for name, h in curves.items()}
    series["unigram baseline"] = ([0, steps], [baseline, baseline])
    plotting.curves(
        out,
        "validation_curves.png",
        [("validation cross-entropy", "nats per character", series)],
        xlabel="training step",
    )


if __name__ == "__main__":
    main()
