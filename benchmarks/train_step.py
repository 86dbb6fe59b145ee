"""One training step of small_net on an MNIST-shaped batch of 100: plain, double backprop as
shipped, double backprop with XLA (jit_compile=True), and PyTorch eager double backprop; then
the same inside a whole epoch, as a job runs it (Keras `fit`, a PyTorch loop over the batches).

    python -m benchmarks.train_step [--steps=30] [--repeats=5] [--epoch_steps=90] [--rows=all]

The plain row (RobustModel with lambda = 0, the same step without the inner tape) is the
baseline. Each row times the compiled train step itself, call after call on one batch (see
step_seconds), like the PyTorch row. The PyTorch row runs when torch is importable: the same
network, SGD with momentum, weight decay and the batch-mean penalty, with
torch.autograd.grad(..., create_graph=True).
Targets (set for a 2-core CPU): double backprop / plain <= 2.2; ours / PyTorch <= 0.5.
The epoch rows: `fit` over epoch_steps batches of 100 (the quick preset's 90) of
data.make_dataset's pipeline, as the jobs feed it, one warm-up epoch first, the rows' epochs
interleaved; double backprop <= 0.8x PyTorch's epoch and <= 2.2x the plain `fit` epoch. A row
beside it passes the numpy arrays to `fit` (Keras' own autotuned pipeline, whose threads can
take the step's cores: data.lean_pipeline_options says why the jobs' pipeline does not).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Before TensorFlow: the kernels are then the ones the library chooses for a user's script and
# the jobs (oneDNN on every CPU unless TF_ENABLE_ONEDNN_OPTS says otherwise); imported after
# TensorFlow, TensorFlow's own choice would stand (off on CPUs without AVX-512).
import robust_saliency  # noqa: E402, F401, I001

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import mnist_like, record, torch_double_backprop_step  # noqa: E402
from robust_saliency import data, models, training  # noqa: E402

LAM, WEIGHT_DECAY, BATCH = 100.0, 1e-6, 100


def compiled_step(model, jit=False):
    """The model's train_step compiled as Keras compiles it (one tf.function per step)."""
    return tf.function(model.train_step, jit_compile=jit)


def step_seconds(step, x, y, *, steps, repeats, warmup=5):
    """Seconds per call of `step` on one constant batch, waiting for each step's result, as
    PyTorch's eager step does: timing through `fit` instead adds a fixed cost per call (the
    iterator, the callbacks; benchmarks/README.md) that dilutes every ratio towards 1."""
    data = (tf.constant(x), tf.constant(y))
    for _ in range(warmup):  # trace and warm up
        step(data)["loss"].numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step(data)["loss"].numpy()
        times.append((time.perf_counter() - start) / steps)
    return times


def small_net_model(lam):
    """The benchmarks' compiled small_net RobustModel at `lam` (seed 0, batch-mean penalty,
    SGD with momentum): the one every small_net step and epoch row times."""
    keras.utils.set_random_seed(0)
    model = training.RobustModel(models.small_net(), lam=lam, convention="batch_mean",
                                 batch_size=BATCH, weight_decay=WEIGHT_DECAY)
    model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9))
    return model


def keras_step_seconds(x, y, *, lam, jit, steps, repeats):
    model = small_net_model(lam)
    return step_seconds(compiled_step(model, jit), x, y, steps=steps, repeats=repeats)


def keras_fit_epoch(x, y, *, lam, arrays=False):
    """A function timing one `fit` epoch over x (batches of BATCH, no validation, no
    callbacks) in seconds per step, after a warm-up epoch that pays for tracing: on
    data.make_dataset's pipeline, as the jobs feed it, or with `arrays` on the numpy arrays
    themselves (Keras' own pipeline, as a user's script may)."""
    model = small_net_model(lam)
    dataset = None if arrays else data.make_dataset(x, y, BATCH)

    def epoch():
        start = time.perf_counter()
        if arrays:
            model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        else:
            model.fit(dataset, epochs=1, shuffle=False, verbose=0)
        return (time.perf_counter() - start) / (len(x) // BATCH)

    epoch()
    return epoch


def torch_step(x, y):
    """PyTorch eager double-backprop step on batch i of x: the same network, SGD with
    momentum, weight decay and the batch-mean penalty; returns (step(i), number of batches)."""
    import torch
    from torch import nn

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128 * 3 * 3, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10))
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    xs = torch.tensor(np.transpose(x, (0, 3, 1, 2)).copy()).split(BATCH)
    ys = torch.tensor(y).split(BATCH)

    def step(i=0):
        torch_double_backprop_step(net, opt, xs[i], ys[i], penalty_scale=LAM / BATCH**2,
                                   weight_decay=WEIGHT_DECAY)

    return step, len(xs)


def torch_step_seconds(x, y, *, steps, repeats):
    """Seconds per PyTorch eager double-backprop step, `steps` calls on the first batch."""
    step, _ = torch_step(x, y)
    for _ in range(5):
        step(0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step(0)
        times.append((time.perf_counter() - start) / steps)
    return times


def torch_epoch(x, y):
    """A function timing one PyTorch pass over every batch of x in seconds per step, after a
    warm-up pass (the counterpart of keras_fit_epoch)."""
    step, batches = torch_step(x, y)

    def epoch():
        start = time.perf_counter()
        for i in range(batches):
            step(i)
        return (time.perf_counter() - start) / batches

    epoch()
    return epoch


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epoch_steps", type=int, default=90)
    parser.add_argument("--rows", choices=("all", "epoch", "step"), default="all",
                        help="the fit-epoch table, the single-step table, or both")
    args = parser.parse_args()
    if args.rows != "step":
        epoch_rows(args.epoch_steps, args.repeats)
    if args.rows == "epoch":
        return
    x, y = mnist_like(BATCH)
    rows = {}
    rows["plain step, lambda=0 (baseline)"] = keras_step_seconds(
        x, y, lam=0.0, jit=False, steps=args.steps, repeats=args.repeats)
    rows["double backprop as shipped"] = keras_step_seconds(
        x, y, lam=LAM, jit=False, steps=args.steps, repeats=args.repeats)
    try:
        import torch  # noqa: F401
        rows["PyTorch eager double backprop"] = torch_step_seconds(
            x, y, steps=args.steps, repeats=args.repeats)
    except ImportError:
        pass
    # Last: once XLA has compiled, its runtime's threads slow every later step in the process
    # (benchmarks/RESULTS.md, measurements moved from the code).
    rows["double backprop, jit_compile=True"] = keras_step_seconds(
        x, y, lam=LAM, jit=True, steps=args.steps, repeats=args.repeats)
    table, notes = ratio_table(rows, "plain step, lambda=0 (baseline)",
                               "double backprop as shipped", "PyTorch eager double backprop",
                               torch_target=0.5)
    record(f"train_step, small_net, batch {BATCH}, lambda={LAM:g}",
           ["step", "median ms", "min-max ms", "ratio to plain"], table, notes=notes)


def ratio_table(rows, plain, shipped, torch_name, *, torch_target, plain_target=2.2):
    """(table rows, notes) of per-step times against the plain row, with the two targets."""
    base, ours = np.median(rows[plain]), np.median(rows[shipped])
    table = [[name, f"{np.median(t) * 1e3:.1f}", f"{min(t) * 1e3:.1f}-{max(t) * 1e3:.1f}",
              f"{np.median(t) / base:.2f}"] for name, t in rows.items()]
    notes = [f"double backprop / plain = {ours / base:.2f} (target <= {plain_target}: "
             f"{'met' if ours / base <= plain_target else 'not met'})"]
    if torch_name in rows:
        ratio = ours / np.median(rows[torch_name])
        notes.append(f"ours / PyTorch = {ratio:.2f} (target <= {torch_target}: "
                     f"{'met' if ratio <= torch_target else 'not met'})")
    else:
        notes.append("PyTorch not importable: no PyTorch row")
    return table, "; ".join(notes)


def epoch_rows(epoch_steps, repeats):
    """The fit-epoch rows, their repeats interleaved (one epoch of each row in turn), so that
    a slow phase of a shared or throttled machine falls on every row alike."""
    x, y = mnist_like(BATCH * epoch_steps)
    epochs = {
        "plain fit epoch, lambda=0 (baseline)": lambda: keras_fit_epoch(x, y, lam=0.0),
        "double backprop fit epoch as shipped": lambda: keras_fit_epoch(x, y, lam=LAM),
        "double backprop fit epoch, numpy arrays to fit": lambda: keras_fit_epoch(
            x, y, lam=LAM, arrays=True),
    }
    try:
        import torch  # noqa: F401
        epochs["PyTorch eager double backprop epoch"] = lambda: torch_epoch(x, y)
    except ImportError:
        pass
    timers = {name: make() for name, make in epochs.items()}
    rows = {name: [] for name in timers}
    for _ in range(repeats):
        for name, epoch in timers.items():
            rows[name].append(epoch())
    table, notes = ratio_table(rows, "plain fit epoch, lambda=0 (baseline)",
                               "double backprop fit epoch as shipped",
                               "PyTorch eager double backprop epoch", torch_target=0.8)
    record(f"train_step in a fit epoch of {epoch_steps} steps, small_net, batch {BATCH}, "
           f"lambda={LAM:g}, repeats interleaved",
           ["epoch", "median ms per step", "min-max ms", "ratio to plain"], table, notes=notes)


if __name__ == "__main__":
    main()
