"""Wall time of a cohort by stage (train, metrics, each attack, figures), so the slowest stage
is visible, with the FLOP rate each stage reached against this machine's matmul rate.

    python -m benchmarks.cohort [--results_dir=results/mnist_quick_mnist]

The training and evaluation seconds are the ones the cohort recorded while it ran (run.json's
train_seconds, timings.json); the figures are drawn and timed now, into a temporary folder.
FLOPs: training counts every step's linear layers (profile_train_step.step_flops, exact for the
steps run; validation and the probe left out, so the rate is a lower bound); an attack counts
two forward passes of the network per image and gradient step at the steps its settings allow
(CW: binary_search_steps x steps; DDN, FMN, ALMA: steps; FMN from DDN: DDN's steps and
then FMN's; FAB: restarts x steps x candidates, a gradient per candidate class, its forward
passes and final search left out; BIM: steps per fixed-epsilon run x search_steps + 3 runs,
three being the doublings its search needs from 0.5 to these models' distances; the gradient
attack: its grid and refinement forward passes), an upper bound where the attack stops early
(DDN, FMN, ALMA, FAB's early exit, CW's abort), so that rate is one too. Training steps are the
epochs completed times the training images over the batch (run.json's data record), so a run
interrupted and resumed counts its steps once but its seconds only from the sessions that
finished an epoch: the rate is then an upper bound. The matmul rate is
measured in the same run; the cohort's own stage times were measured when it ran.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.common import forward_flops, matmul_gflops, record  # noqa: E402
from benchmarks.profile_train_step import conv_macs, step_flops  # noqa: E402
from robust_saliency import attacks, cohort, figures, results, run_folders, runs  # noqa: E402

_BIM_DOUBLINGS = 3


def attack_image_steps(name, options):
    """Gradient steps per image the attack's settings allow (module docstring); None if unknown."""
    o = attacks.get(name, **options).options
    if name == "cw":
        return o["binary_search_steps"] * o["steps"]
    if name in ("ddn", "fmn", "fmn_linf", "alma"):
        return o["steps"]
    if name == "ddn_fmn":
        return o["ddn_steps"] + o["steps"]
    if name == "fab":
        return o["restarts"] * o["steps"] * o["candidates"]
    if name in ("bim", "bim_linf"):
        return o["steps"] * (o["search_steps"] + _BIM_DOUBLINGS)
    if name == "gradient":
        return (o["grid_size"] + o["refine_steps"]) / 2  # forward passes: half a step each
    return None


def stage_flops(folder, spec, run):
    """{stage: FLOPs} for one member (training, and each attack on the cohort's images)."""
    config = run_folders.saved_config(run["config"])
    network = runs.build_model(config, steps_per_epoch=1).network
    images = config.data.train_subset or run["data"]["train_images"]
    steps = run.get("epochs_completed", 0) * (images // config.batch_size)
    flops = {"train": steps * step_flops(conv_macs(network, config.batch_size),
                                         config.penalty.lam > 0)}
    per_step = 2 * forward_flops(network)
    for name in spec["attacks"]:
        image_steps = attack_image_steps(name, spec.get("attack_options", {}).get(name, {}))
        if image_steps is not None:
            flops[f"rho_{name}"] = image_steps * per_step * spec["num_images"]
    return flops


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results_dir", default="results/mnist_quick_mnist")
    args = parser.parse_args()
    spec, table = cohort.read(args.results_dir)
    totals, flops = {}, {}
    for run_dir in table["run_dir"]:
        folder = os.path.join(args.results_dir, run_dir)
        run = results.read_json(os.path.join(folder, results.RUN_JSON))
        totals["train"] = totals.get("train", 0.0) + run.get("train_seconds", 0.0)
        for stage, value in stage_flops(folder, spec, run).items():
            flops[stage] = flops.get(stage, 0.0) + value
        timings_path = os.path.join(folder, "timings.json")
        if os.path.exists(timings_path):
            for stage, seconds in results.read_json(timings_path).items():
                totals[stage] = totals.get(stage, 0.0) + seconds
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        figures.draw_all(args.results_dir, out)
        totals["figures (now)"] = time.perf_counter() - start
    whole = sum(totals.values())
    peak = matmul_gflops()

    def rate(stage, seconds):
        if stage not in flops or not seconds:
            return "-", "-"
        bound = "" if stage == "train" else "<= "
        gflops = flops[stage] / seconds / 1e9
        return f"{flops[stage] / 1e12:.1f}", f"{bound}{gflops:.0f} ({bound}{gflops / peak:.0%})"

    rows = [[stage, f"{seconds:.1f}", f"{100 * seconds / whole:.0f}%", *rate(stage, seconds)]
            for stage, seconds in sorted(totals.items(), key=lambda kv: -kv[1])]
    dataset = spec["train"]["data"]["dataset"]
    record(f"cohort stages, {spec['name']} on {dataset} "
           f"({len(table['run_dir'])} models, {spec['num_images']} images each)",
           ["stage", "seconds (all models)", "share", "TFLOP", "GFLOP/s (of matmul)"], rows,
           notes=f"Stage times as recorded by the cohort run that wrote these results; FLOPs and "
                 f"bounds as in the module docstring; float32 matmul {peak:.0f} GFLOP/s in this "
                 "run. Training's rate is a lower bound (validation and probe time included).")


if __name__ == "__main__":
    main()
