"""The double-backprop step of small_net (batch 100, lambda 100, as benchmarks.train_step) timed
in many fresh processes, to see whether its time depends on the process and, if it does, on what.

    python -m benchmarks.step_modes [--processes=12] [--setting=NAME=VALUE ...]

Each process builds the model, warms up Keras' compiled train function (what `fit` calls per
batch, as benchmarks.resnet_step times it) and reports its median wall and CPU
milliseconds per step (train_step.step_seconds), and the float32 matmul rate measured just before
and after in the same process (common.matmul_gflops): a slow phase of a shared machine slows
both, a slow mode of the step only the step. `--setting` runs every process with one more
environment variable (repeatable: each setting is its own set of processes, interleaved with
the default's, so that a slow phase of the machine falls on all alike); `PYTHONHASHSEED=each`
gives process i the seed i, which makes a process's string hashing, and with it any iteration
over a set of names, repeatable.
"""

import argparse
import json
import os

import numpy as np

# Before TensorFlow, as in a job or a user's script: the library's choice of kernels.
import robust_saliency  # noqa: F401
from benchmarks.common import run_child

STEPS, REPEATS, WARMUP = 30, 3, 5


def child():
    """Times the step in this process and prints one JSON line, with the float32 matmul rate
    measured in the same process just before and after."""
    from benchmarks import train_step
    from benchmarks.common import matmul_gflops, mnist_like
    from benchmarks.resnet_step import timed

    x, y = mnist_like(train_step.BATCH)
    model = train_step.small_net_model(train_step.LAM)
    model.make_train_function()
    step = lambda data: model.train_function([data])  # noqa: E731 (what `fit` calls per batch)
    before = matmul_gflops()
    wall, cpu = timed(lambda n: train_step.step_seconds(step, x, y, steps=n, repeats=1, warmup=0),
                      steps=STEPS, repeats=REPEATS, warmup=WARMUP)
    print(json.dumps({"wall": float(np.median(wall)), "cpu": float(np.median(cpu)),
                      "gflops": [before, matmul_gflops()]}), flush=True)


def launch(env_setting, index):
    env = dict(os.environ)
    if env_setting:
        name, value = env_setting.split("=", 1)
        env[name] = str(index) if value == "each" else value
    return run_child("benchmarks.step_modes", "--child", env=env)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=12)
    parser.add_argument("--setting", action="append", default=[],
                        help="NAME=VALUE set in the environment of one more set of processes")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child()
    from benchmarks.common import record

    settings = [""] + args.setting
    results = {s: [] for s in settings}
    for i in range(args.processes):
        for setting in settings:
            result = launch(setting, i)
            results[setting].append(result)
            print(f"process {i + 1}/{args.processes}, {setting or 'default'}: "
                  f"{result['wall'] * 1e3:.1f} ms wall, {result['cpu'] * 1e3:.1f} ms CPU per step, "
                  f"matmul {result['gflops'][0]:.0f} / {result['gflops'][1]:.0f} GFLOP/s",
                  flush=True)
    rows = []
    for setting, rs in results.items():
        walls = [r["wall"] * 1e3 for r in rs]
        rows.append([setting or "default", ", ".join(f"{w:.0f}" for w in walls),
                     f"{np.median(walls):.1f}", f"{min(walls):.1f}-{max(walls):.1f}",
                     ", ".join(f"{r['cpu'] * 1e3:.0f}" for r in rs),
                     ", ".join(f"{min(r['gflops']):.0f}" for r in rs)])
    record(f"step_modes, small_net double backprop, batch 100, {args.processes} fresh processes "
           "per setting",
           ["setting", "per-process median ms", "median ms", "min-max ms",
            "per-process CPU ms per step", "per-process matmul GFLOP/s (the lower of before and "
            "after)"], rows)


if __name__ == "__main__":
    main()
