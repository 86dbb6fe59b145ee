"""Images per second of the metrics pass and of each attack at its defaults, on a trained
small_net, with the median distance each finds (a faster setting must not hide a weaker attack).

    python -m benchmarks.attacks [--dataset=fashion_mnist] [--images=100]

The model is small_net trained for one epoch (lambda = 100, mnist_quick settings); the metrics
pass is the reference row.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.common import record  # noqa: E402
from experiments import presets  # noqa: E402
from robust_saliency import attacks, data, metrics, runs  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--methods", default=",".join(attacks.ATTACKS))
    args = parser.parse_args()
    config = presets.get("mnist_quick").train.replace(
        data={"dataset": args.dataset}, penalty={"lam": 100.0}, schedule={"epochs": 1})
    with tempfile.TemporaryDirectory() as run_dir:
        runs.train(config, run_dir, verbose=0)
        model = runs.load_model(run_dir)
    x, _ = data.load_arrays(args.dataset, "validation", num_examples=args.images)
    metrics.measure(model, x[:10])  # trace once, outside the timing
    start = time.perf_counter()
    lin = metrics.measure(model, x)["lin_robustness"]
    seconds = time.perf_counter() - start
    rows = [["metrics.measure (reference)", f"{seconds:.2f}", f"{len(x) / seconds:.1f}",
             f"lin_robustness {np.median(lin):.4f}"]]
    for method in args.methods.split(","):
        start = time.perf_counter()
        dist = attacks.minimal_distance(model, x, method, data.bounds(args.dataset))
        seconds = time.perf_counter() - start
        rows.append([f"attack {method}", f"{seconds:.2f}", f"{len(x) / seconds:.1f}",
                     f"{np.median(dist[np.isfinite(dist)]):.4f} ({np.isinf(dist).sum()} not "
                     "found)"])
    record(f"attacks at their defaults, small_net (1 epoch, lambda=100) on {args.dataset}, "
           f"{len(x)} images, batch 100", ["stage", "seconds", "images/s", "median distance"],
           rows)


if __name__ == "__main__":
    main()
