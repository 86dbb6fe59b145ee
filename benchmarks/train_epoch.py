"""Seconds per epoch of the mnist_quick protocol, lambda = 0 against lambda > 0, in one run.

    python -m benchmarks.train_epoch [--dataset=fashion_mnist] [--repeats=3]

Each row trains fresh models of the preset's configuration for one epoch (after one warm-up
epoch that pays for tracing) on its training subset; validation and callbacks are left out so
that only the training step is timed.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.common import record, time_call, timing_cells  # noqa: E402
from experiments import presets  # noqa: E402
from robust_saliency import data, runs  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--lam", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    preset = presets.get("mnist_quick")
    rows, base = [], None
    for lam in (0.0, args.lam):
        config = preset.train.replace(data={"dataset": args.dataset}, penalty={"lam": lam})
        x, y = data.load_arrays(config.data.dataset, "train",
                                num_examples=config.data.train_subset)
        dataset = data.make_dataset(x, y, config.batch_size, shuffle=True, drop_remainder=True)
        model = runs.build_model(config, len(x) // config.batch_size)
        t = time_call(lambda m=model, d=dataset: m.fit(d, epochs=1, verbose=0, shuffle=False),
                      repeats=args.repeats)
        base = base or t["median"]
        rows.append([f"lambda={lam:g}", *timing_cells(t), f"{t['median'] / base:.2f}"])
    record(f"train epoch, mnist_quick on {args.dataset} ({len(x)} images, batch "
           f"{config.batch_size})", ["run", "median s/epoch", "min-max s", "ratio to lambda=0"],
           rows)


if __name__ == "__main__":
    main()
