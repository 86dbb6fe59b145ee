"""Linearized robustness (eq. 9) on small_net: the shipped kernel against the alternatives.

    python -m benchmarks.lin_robustness [--images=500]

Rows: a naive eager loop with one tape call per class (the baseline), a compiled pfor-vectorised
Jacobian over the classes (the first design), the shipped kernel (compiled, one forward and one
unrolled backward pass per class on a persistent tape), and the whole `metrics.measure` pass.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import mnist_like, record, tensor_batches, time_call, timing_cells  # noqa: E402
from robust_saliency import logit_gradients, metrics, models  # noqa: E402


def naive_eager(model, x):
    grads = []
    for i in range(model.output_shape[-1]):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = tf.reduce_sum(model(x, training=False)[:, i])
        grads.append(tf.reshape(tape.gradient(score, x), [x.shape[0], -1]))
    grads = tf.stack(grads, axis=1)
    logits = model(x, training=False)
    pred = tf.argmax(logits, 1, output_type=tf.int32)
    g = tf.gather(grads, pred, batch_dims=1)
    margin = tf.gather(logits, pred[:, None], batch_dims=1) - logits
    ratio = margin / tf.norm(g[:, None] - grads, axis=-1)
    ratio = tf.where(tf.one_hot(pred, logits.shape[1]) > 0, np.inf, ratio)
    return tf.reduce_min(ratio, 1)


def pfor_jacobian(model):
    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = model(x, training=False)
            sums = tf.reduce_sum(logits, axis=0)
        jac = tape.jacobian(sums, x, experimental_use_pfor=True)
        grads = tf.transpose(tf.reshape(jac, [logits.shape[1], tf.shape(x)[0], -1]), [1, 0, 2])
        pred = tf.argmax(logits, 1, output_type=tf.int32)
        g = tf.gather(grads, pred, batch_dims=1)
        margin = tf.gather(logits, pred[:, None], batch_dims=1) - logits
        ratio = margin / tf.norm(g[:, None] - grads, axis=-1)
        ratio = tf.where(tf.one_hot(pred, logits.shape[1]) > 0, np.inf, ratio)
        return tf.reduce_min(ratio, 1)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = models.small_net()
    x, _ = mnist_like(args.images)
    batches = tensor_batches(x, args.batch_size)
    kernel = tf.function(lambda b: logit_gradients.runner_up(model, b)[4])
    loop = pfor_jacobian(model)

    def over_batches(fn):
        return lambda: [fn(b).numpy() for b in batches]

    reference = np.concatenate(over_batches(lambda b: naive_eager(model, b))())
    shipped = np.concatenate(over_batches(kernel)())
    np.testing.assert_allclose(shipped, reference, rtol=1e-4)
    candidates = [
        ("naive eager loop, one tape per class (baseline)", over_batches(
            lambda b: naive_eager(model, b))),
        ("compiled pfor-vectorised Jacobian over classes", over_batches(loop)),
        ("shipped: compiled, one unrolled backward per class", over_batches(kernel)),
        ("metrics.measure, every quantity", lambda: metrics.measure(
            model, x, batch_size=args.batch_size)),
    ]
    rows = []
    base = None
    for name, fn in candidates:
        t = time_call(fn, repeats=args.repeats)
        base = base or t["median"]
        rows.append([name, *timing_cells(t), f"{args.images / t['median']:.0f}",
                     f"{base / t['median']:.2f}x"])
    record(f"lin_robustness kernel, small_net, {args.images} images, batch {args.batch_size}",
           ["variant", "median s", "min-max s", "images/s", "speed-up vs baseline"], rows)


if __name__ == "__main__":
    main()
