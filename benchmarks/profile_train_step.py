"""Where the double-backprop step's time goes: a tf.profiler trace of the shipped step, its
convolution FLOPs, and this machine's own ceiling, to explain the train_step targets.

    python -m benchmarks.profile_train_step [--steps=20]

Rows: the step's time per TensorFlow op type (summed over the executor's threads), from the
XSpace trace that tf.profiler writes. Notes: the step's convolution FLOPs counted from the
layer shapes, the rate the step achieves, the rate of a large float32 matmul measured in the same
run (the CPU's practical peak), the fastest step that peak allows, and the PyTorch step time
when torch is importable. A second table times one small_net convolution with and without XLA,
the evidence for why jit_compile=True is slower here; a third replaces the max-pool, whose
second derivative was the largest non-convolution kernel (MaxPoolGradGrad), by the shipped
pooling.MaxPooling2D and two other equivalent implementations.
"""

import argparse
import collections
import glob
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from benchmarks.common import mnist_like, record, time_call  # noqa: E402
from benchmarks.train_step import (  # noqa: E402
    BATCH,
    LAM,
    WEIGHT_DECAY,
    compiled_step,
    step_seconds,
    torch_step_seconds,
)
from robust_saliency import models, training  # noqa: E402


def conv_macs(network, batch):
    """Multiply-adds of each Conv2D/Dense layer's forward pass at this batch size, in order."""
    macs = []
    for layer in network.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw, c_in, _ = layer.kernel.shape
            macs.append(batch * h * w * c_out * kh * kw * c_in)
        elif isinstance(layer, keras.layers.Dense):
            c_in, c_out = layer.kernel.shape
            macs.append(batch * c_in * c_out)
    return macs


def step_flops(macs, double):
    """FLOPs of one training step's linear layers.

    Plain: forward, weight gradient, and input gradient for every layer but the first (3 passes,
    2 for the first). Double backprop adds the inner input gradient of every layer (the first's
    too), and the outer tape differentiates each of those backprop-input ops w.r.t. its filter
    and its incoming gradient (2 more passes): 6 passes per layer, 5 for the first.
    """
    first, rest = macs[0], sum(macs[1:])
    passes = (5 * first + 6 * rest) if double else (2 * first + 3 * rest)
    return 2 * passes


def profile_ops(step, x, y, steps, log_dir):
    """(op type -> ms per step summed over threads, busy ms per executor thread, wall ms per
    step measured before profiling) of the compiled train step `step`."""
    wall = np.median(step_seconds(step, x, y, steps=steps, repeats=3)) * 1e3
    tf.profiler.experimental.start(log_dir)
    step_seconds(step, x, y, steps=steps, repeats=1, warmup=0)
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    path = sorted(glob.glob(os.path.join(log_dir, "**", "*.xplane.pb"), recursive=True))[-1]
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    host = next(p for p in space.planes if p.name == "/host:CPU")
    ops, busy = collections.Counter(), collections.Counter()
    for line in host.lines:
        if not line.name.startswith("tf_Compute"):
            continue
        for event in line.events:
            name = host.event_metadata[event.metadata_id].name
            ms = event.duration_ps / 1e9 / steps
            if name == "ExecutorState::Process":
                busy[line.name] += ms
            elif ":" in name:  # "scope/op_name:OpType" events are the kernels themselves
                ops[name.rsplit(":", 1)[1]] += ms
    return ops, sorted(busy.values()), wall


def matmul_gflops(n=2048, repeats=5):
    a = tf.random.uniform((n, n))
    b = tf.random.uniform((n, n))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    return 2 * n**3 / time_call(lambda: matmul().numpy(), repeats=repeats)["median"] / 1e9


def conv_rates(repeats=10):
    """GFLOP/s of small_net's second convolution (100 x 14 x 14 x 32 -> 64), eager kernels
    (oneDNN) against XLA. Run it last: after an XLA compilation every later step in the process
    is slower (benchmarks/RESULTS.md, measurements moved from the code), so nothing is timed
    after it."""
    x = tf.random.uniform((BATCH, 14, 14, 32))
    k = tf.random.uniform((3, 3, 32, 64))
    flops = 2 * BATCH * 14 * 14 * 64 * 9 * 32
    rows = []
    for jit in (False, True):
        conv = tf.function(lambda: tf.reduce_sum(tf.nn.conv2d(x, k, 1, "SAME")),
                           jit_compile=jit)
        t = time_call(lambda conv=conv: conv().numpy(), repeats=repeats, warmup=3)
        rows.append([f"conv 14x14x32->64, jit_compile={jit}", f"{t['median'] * 1e3:.2f}",
                     f"{flops / t['median'] / 1e9:.0f}"])
    return rows


@tf.custom_gradient
def _argmax_pool(x):
    y, index = tf.nn.max_pool_with_argmax(x, 2, 2, "VALID", include_batch_in_index=True)

    def grad(dy):  # a scatter, whose own gradient is a gather: no MaxPoolGradGrad kernel
        flat = tf.scatter_nd(tf.reshape(index, [-1, 1]), tf.reshape(dy, [-1]),
                             tf.reshape(tf.size(x, out_type=tf.int64), [1]))
        return tf.reshape(flat, tf.shape(x))

    return y, grad


@tf.custom_gradient
def _first_order_only_pool(x):
    """max-pool whose gradient has no gradient of its own: WRONG second derivatives, used only
    to time the step without MaxPoolGradGrad (the lower bound a faster kernel could reach)."""
    y = tf.nn.max_pool2d(x, 2, 2, "VALID")

    def grad(dy):
        return tf.raw_ops.MaxPoolGrad(orig_input=tf.stop_gradient(x), orig_output=tf.stop_gradient(
            y), grad=tf.stop_gradient(dy), ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
            padding="VALID")

    return y, grad


def _reshape_pool(x):  # reduce_max's gradient is elementwise masks, so is its second
    _, h, w, c = x.shape
    x = tf.reshape(x[:, :h // 2 * 2, :w // 2 * 2], [-1, h // 2, 2, w // 2, 2, c])
    return tf.reduce_max(x, axis=[2, 4])


def pool_variant_rows(x, y, steps, repeats=3):
    """The shipped max-pool (pooling.MaxPooling2D) against Keras' (whose second derivative is
    TensorFlow's MaxPoolGradGrad, the largest non-convolution kernel of the profile), two other
    max-pools that avoid that kernel (the check column: the same function and gradients), and
    the step without a second derivative of the pool at all (wrong; the floor a faster kernel
    could reach)."""
    variants = {"pooling.MaxPooling2D (shipped)": None,
                "keras.layers.MaxPooling2D (MaxPoolGradGrad)": keras.layers.MaxPooling2D,
                "argmax + scatter_nd gradient": _argmax_pool,
                "reshape + reduce_max": _reshape_pool,
                "bound: no MaxPoolGradGrad (second derivative dropped, wrong)":
                _first_order_only_pool}
    compiled, penalties = {}, {}
    for name, pool in variants.items():
        keras.utils.set_random_seed(0)
        shipped = models.small_net()

        def swap(layer, pool=pool):
            if pool is None or not isinstance(layer, keras.layers.MaxPooling2D):
                return layer.__class__.from_config(layer.get_config())
            if pool is keras.layers.MaxPooling2D:
                return pool.from_config(layer.get_config())
            return keras.layers.Lambda(pool, output_shape=lambda s: (
                s[0], s[1] // 2, s[2] // 2, s[3]))

        network = keras.models.clone_model(shipped, clone_function=swap)
        network.set_weights(shipped.get_weights())
        with tf.GradientTape() as tape:
            xt = tf.constant(x)
            tape.watch(xt)
            total = tf.reduce_sum(network(xt)[:, 0])
        penalties[name] = float(tf.reduce_sum(tape.gradient(total, xt) ** 2))
        model = training.RobustModel(network, lam=LAM, convention="batch_mean",
                                     batch_size=BATCH, weight_decay=WEIGHT_DECAY)
        model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9))
        compiled[name] = compiled_step(model)
    times = {name: [] for name in compiled}
    for _ in range(repeats):  # interleaved, so drifting load hits every variant alike
        for name, step in compiled.items():
            times[name] += [t * 1e3 for t in step_seconds(step, x, y, steps=steps, repeats=1)]
    base = np.median(next(iter(times.values())))
    return [[name, f"{np.median(t):.1f}", f"{np.median(t) / base:.2f}",
             f"{penalties[name]:.6g}"] for name, t in times.items()]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    x, y = mnist_like(BATCH)
    pool_rows = pool_variant_rows(x, y, args.steps)
    keras.utils.set_random_seed(0)
    model = training.RobustModel(models.small_net(), lam=LAM, convention="batch_mean",
                                 batch_size=BATCH, weight_decay=WEIGHT_DECAY)
    model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9))
    with tempfile.TemporaryDirectory() as log_dir:
        ops, busy, wall = profile_ops(compiled_step(model), x, y, args.steps, log_dir)
    total = sum(ops.values())
    rows = [[op, f"{ms:.2f}", f"{100 * ms / total:.1f}%"] for op, ms in ops.most_common(12)]
    conv_ms = sum(ms for op, ms in ops.items() if "Conv2D" in op or "MatMul" in op)
    flops = step_flops(conv_macs(model.network, BATCH), double=True)
    peak = matmul_gflops()
    notes = [
        f"wall {wall:.1f} ms/step; executor threads busy {', '.join(f'{b:.1f}' for b in busy)} "
        f"ms/step; kernels {total:.1f} ms/step summed over threads, convolutions and matmuls "
        f"{conv_ms:.1f} ms ({100 * conv_ms / total:.0f}%)",
        f"step FLOPs (conv + dense, counted from layer shapes) {flops / 1e9:.2f} G: achieved "
        f"{flops / wall / 1e6:.0f} GFLOP/s over the step, {flops / conv_ms / 1e6 * len(busy):.0f}"
        f" GFLOP/s inside the conv/matmul kernels (both threads)",
        f"2048^3 float32 matmul in the same run: {peak:.0f} GFLOP/s (this CPU's practical peak); "
        f"a step at that peak would take {flops / peak / 1e6:.1f} ms",
    ]
    try:
        import torch  # noqa: F401
        torch_ms = np.median(torch_step_seconds(x, y, steps=10, repeats=3)) * 1e3
        notes.append(
            f"PyTorch eager step {torch_ms:.1f} ms: ours / PyTorch <= 0.5 needs <= "
            f"{torch_ms / 2:.1f} ms/step, i.e. {flops / (torch_ms / 2) / 1e6:.0f} GFLOP/s, "
            f"{flops / (torch_ms / 2) / 1e6 / peak:.2f}x the measured peak")
    except ImportError:
        notes.append("PyTorch not importable: no PyTorch time")
    record(f"train_step profile, small_net double backprop, batch {BATCH}, lambda={LAM:g}",
           ["op type", "ms per step (threads summed)", "share of kernel time"], rows,
           notes="\n\n".join(notes))
    record("one convolution, oneDNN kernels vs XLA (why jit_compile=True is slower here)",
           ["kernel", "median ms", "GFLOP/s"], conv_rates())  # last: see conv_rates
    record("double-backprop step with other max-pool implementations (same weights)",
           ["max-pool", "median ms/step", "ratio to shipped", "||grad_x Psi^0||^2 (check)"],
           pool_rows)


if __name__ == "__main__":
    main()
