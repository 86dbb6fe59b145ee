"""metrics.measure on 1,000 small_net images against a naive eager loop and against its own lower
limit, and the 1000-class path on a small ResNet.

    python -m benchmarks.metrics [--images=1000] [--repeats=3]

Rows: the naive eager loop (one tape call per class, the baseline), the lower limit (one forward
pass, n backward passes and the xi pass, as bare compiled tape calls), and the shipped
metrics.measure (which also computes the JVP x-terms and every derived column). Targets: >= 3x
faster than the naive loop and <= 1.5x the lower limit. Then time and peak memory per
image of measure on ResNet50 at 32x32 with 1000 classes (chunked, while-loop Jacobian).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import (  # noqa: E402
    mnist_like,
    peak_rss_mb,
    record,
    tensor_batches,
    time_call,
    timing_cells,
)
from benchmarks.lin_robustness import naive_eager  # noqa: E402
from robust_saliency import metrics, models  # noqa: E402


def lower_limit(model):
    """Forward + n backward passes + the xi pass (forward and backward), nothing else."""
    n = model.output_shape[-1]

    @tf.function
    def run(x):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            logits = model(x, training=False)
            sums = [tf.reduce_sum(logits[:, c]) for c in range(n)]
        grads = [tape.gradient(s, x) for s in sums]
        xi = x + 0.01 * grads[0]
        with tf.GradientTape() as tape2:
            tape2.watch(xi)
            score = tf.reduce_sum(model(xi, training=False)[:, 0])
        return grads, tape2.gradient(score, xi)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = models.small_net()
    x, _ = mnist_like(args.images)
    batches = tensor_batches(x, args.batch_size)
    limit = lower_limit(model)
    candidates = [
        ("naive eager loop, one tape per class (baseline)",
         lambda: [naive_eager(model, b) for b in batches]),
        ("lower limit: forward + 10 backward + xi pass, compiled",
         lambda: [limit(b) for b in batches]),
        ("metrics.measure as shipped, every quantity",
         lambda: metrics.measure(model, x, batch_size=args.batch_size)),
    ]
    times = {name: time_call(fn, repeats=args.repeats) for name, fn in candidates}
    base = times[candidates[0][0]]["median"]
    floor = times[candidates[1][0]]["median"]
    shipped = times[candidates[2][0]]["median"]
    rows = [[name, *timing_cells(t), f"{args.images / t['median']:.0f}",
             f"{base / t['median']:.2f}x"] for name, t in times.items()]
    speedup, overhead = base / shipped, shipped / floor
    notes = (f"shipped vs naive: {speedup:.2f}x faster (target >= 3: "
             f"{'met' if speedup >= 3 else 'not met'}); shipped / lower limit: {overhead:.2f} "
             f"(target <= 1.5: {'met' if overhead <= 1.5 else 'not met'})")
    record(f"metrics.measure, small_net, {args.images} images, batch {args.batch_size}",
           ["variant", "median s", "min-max s", "images/s", "speed-up vs naive"], rows, notes)

    resnet = models.resnet50(input_shape=(32, 32, 3), num_classes=1000)
    xr = np.random.default_rng(1).uniform(-100, 100, (8, 32, 32, 3)).astype("float32")
    metrics.measure(resnet, xr[:1], bounds=(-100, 100))  # trace
    start = time.perf_counter()
    metrics.measure(resnet, xr, batch_size=8, bounds=(-100, 100))
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    record("metrics.measure, 1000 classes, ResNet50 at 32x32, 8 images",
           ["seconds per image", "process peak RSS MB (whole benchmark)"],
           [[f"{seconds / len(xr):.2f}", f"{peak:.0f}"]])


if __name__ == "__main__":
    main()
