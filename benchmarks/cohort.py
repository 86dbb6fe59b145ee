"""Wall time of a cohort by stage (train, metrics, each attack, figures), so the slowest stage
is visible.

    python -m benchmarks.cohort [--results_dir=results/mnist_quick_mnist]

The training and evaluation seconds are the ones the cohort recorded while it ran (run.json's
train_seconds, timings.json); the figures are drawn and timed now, into a temporary folder.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.common import record  # noqa: E402
from experiments import figures  # noqa: E402
from robust_saliency import cohort, results  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results_dir", default="results/mnist_quick_mnist")
    args = parser.parse_args()
    spec, table = cohort.read(args.results_dir)
    totals = {}
    for run_dir in table["run_dir"]:
        folder = os.path.join(args.results_dir, run_dir)
        run = results.read_json(os.path.join(folder, results.RUN_JSON))
        totals["train"] = totals.get("train", 0.0) + run.get("train_seconds", 0.0)
        timings_path = os.path.join(folder, "timings.json")
        if os.path.exists(timings_path):
            for stage, seconds in results.read_json(timings_path).items():
                totals[stage] = totals.get(stage, 0.0) + seconds
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        figures.plot(args.results_dir, out)
        totals["figures (now)"] = time.perf_counter() - start
    whole = sum(totals.values())
    rows = [[stage, f"{seconds:.1f}", f"{100 * seconds / whole:.0f}%"]
            for stage, seconds in sorted(totals.items(), key=lambda kv: -kv[1])]
    record(f"cohort stages, {spec['name']} on {spec['train']['dataset']} "
           f"({len(table['run_dir'])} models, {spec['num_images']} images each)",
           ["stage", "seconds (all models)", "share"], rows,
           notes="Stage times as recorded by the cohort run that wrote these results.")


if __name__ == "__main__":
    main()
