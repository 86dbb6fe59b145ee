"""Cheaper CW settings against CW at its defaults (5 binary-search steps x 500 Adam steps of size
0.01) on a trained run's first validation images: the median distance each finds, relative to the
defaults' on the same images, the per-image ratio and the seconds. A preset may use a cheaper
setting only where its median is within 1% of the defaults'.

    python -m benchmarks.cw_settings --run_dir=results/mnist_converged_mnist/m00_lam10 \
        [--images=100] [--settings=5x100@0.05,5x150@0.05,3x200@0.05]

Settings are binary_search_steps x steps @ stepsize. The defaults run first: they are the
baseline every row is compared with.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.common import record  # noqa: E402
from robust_saliency import attacks, data, evaluation, results, run_folders, runs  # noqa: E402

DEFAULT = "5x500@0.01"


def parse_setting(text):
    """'5x150@0.05' -> {'binary_search_steps': 5, 'steps': 150, 'stepsize': 0.05}."""
    try:
        counts, stepsize = text.split("@")
        search, steps = counts.split("x")
        return {"binary_search_steps": int(search), "steps": int(steps),
                "stepsize": float(stepsize)}
    except ValueError as e:
        raise ValueError(f"a CW setting looks like 5x150@0.05 (binary-search steps x steps @ "
                         f"stepsize), got {text!r}") from e


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run_dir", required=True, help="A trained run (run.json, model.keras).")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--settings", default="5x100@0.05,5x150@0.05,3x200@0.05")
    args = parser.parse_args()
    settings = [parse_setting(s) for s in [DEFAULT, *args.settings.split(",")]]
    config = results.read_json(os.path.join(args.run_dir, results.RUN_JSON))["config"]
    x, _ = evaluation.validation_arrays(config, args.images)
    model = runs.load_model(args.run_dir)
    bounds = data.bounds(run_folders.saved_config(config).data.dataset)
    rows, reference = [], None
    for text, options in zip([DEFAULT, *args.settings.split(",")], settings):
        start = time.perf_counter()
        dist = attacks.minimal_distance(model, x, "cw", bounds, **options)
        seconds = time.perf_counter() - start
        if reference is None:
            reference = dist
        both = np.isfinite(dist) & np.isfinite(reference) & (reference > 0)
        ratio = dist[both] / reference[both]
        rows.append([text, f"{seconds:.1f}", f"{np.median(dist):.4f}",
                     f"{np.median(dist) / np.median(reference) - 1:+.2%}",
                     " / ".join(f"{q:.3f}" for q in np.quantile(ratio, [0.1, 0.5, 0.9])),
                     str(int(np.isinf(dist).sum()))])
    record(f"CW settings against the defaults, {args.run_dir} (lambda {config['lam']:g}), "
           f"first {len(x)} validation images",
           ["setting", "seconds", "median distance", "vs defaults", "per-image ratio q10 / q50 / "
            "q90", "not found"], rows)


if __name__ == "__main__":
    main()
