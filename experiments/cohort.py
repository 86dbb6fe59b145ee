"""Train and evaluate a whole lambda sweep, resumably; then write cohort.csv.

    python -m experiments.cohort --preset=mnist_quick --train.data.dataset=fashion_mnist
    python -m experiments.cohort --preset=mnist_paper --shard=0/4   # one of 4 parallel jobs
    python -m experiments.cohort --preset=mnist_quick --seeds=0,1,2  # three seeds per lambda
    python -m experiments.cohort --preset=fashion_resnet --strategy=mirrored --cpu_replicas=2

Rerunning finishes whatever an interruption left; a finished cohort reruns in seconds.
"""

import dataclasses
import os
import sys

from absl import app, flags

import experiments
from experiments import presets, train_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "mnist_quick", "Preset name: " + ", ".join(presets.PRESETS))
# Every training setting but the ones each member sets (--lambdas and --seeds below).
train_flags.define(exclude=("penalty.lam", "seed"))
flags.DEFINE_bool("print_preset", False, "Print the resolved cohort specification and exit.")
flags.DEFINE_string("results_dir", None, "Cohort folder (default results/<preset>_<dataset>).")
flags.DEFINE_integer("num_images", None, "Validation images measured per model.")
flags.DEFINE_list("attacks", None, "Attack methods (default: the preset's).")
flags.DEFINE_list("attack_options", None, "method.option=value pairs (default: the preset's).")
flags.DEFINE_list("lambdas", None, "Override the preset's lambda sweep.")
flags.DEFINE_list("seeds", None, "Replicate training seeds per lambda, e.g. 0,1,2 (default: the "
                  "preset's; a finished cohort can be given more).")
flags.DEFINE_list("members", None, "Run only these member indices, e.g. 0,3.")
flags.DEFINE_string("shard", None, "Run only shard i/n of the members (every n-th from i).")
flags.DEFINE_bool("explanation_metrics", None, "Also the explanation-quality metrics (default: "
                  "the preset's); switched on for a measured cohort, only their columns run.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy for training each member.")
flags.DEFINE_integer("cpu_replicas", None, "With --strategy=mirrored on a machine without GPUs: "
                     "train each member on this many logical CPU devices, in a child process with "
                     "one thread per kernel (default: one CPU device).", lower_bound=1)


def spec_from_flags():
    from robust_saliency import attacks

    overrides = train_flags.overrides()
    options = (None if FLAGS.attack_options is None
               else attacks.parse_options(FLAGS.attack_options))
    lambdas = [float(v) for v in FLAGS.lambdas] if FLAGS.lambdas else None
    seeds = [int(v) for v in FLAGS.seeds] if FLAGS.seeds else None
    return presets.override(presets.get(FLAGS.preset), lambdas=lambdas,
                            num_images=FLAGS.num_images, seeds=seeds, attacks=FLAGS.attacks,
                            attack_options=options,
                            explanation_metrics=FLAGS.explanation_metrics, **overrides)


def results_dir_of(spec):
    return FLAGS.results_dir or f"results/{spec.name}_{spec.train.data.dataset}"


def _say(message, end="\n"):
    print(f"\r{message}\033[K", end=end, flush=True)


def main(argv):
    del argv
    from robust_saliency import attacks, cohort

    try:
        spec = spec_from_flags()
        if FLAGS.print_preset:
            print(presets.describe(spec))
            return
        results_dir = results_dir_of(spec)
        spec = dataclasses.replace(spec, train=presets.with_data(
            spec, spec.train, os.path.join(results_dir, "data")))
        attacks.check_methods(spec.attacks, spec.attack_options)
        print(experiments.banner(spec.train.data.dataset, spec.train.data.data_dir), flush=True)
        members = [int(m) for m in FLAGS.members] if FLAGS.members else None
        ran = cohort.run(results_dir, spec, members=members, shard=FLAGS.shard, progress=_say,
                         strategy=FLAGS.strategy, cpu_replicas=FLAGS.cpu_replicas)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    _, table = cohort.read(results_dir)
    counts = {s: int((table["status"] == s).sum()) for s in cohort.STATUSES}
    print(f"cohort {results_dir}: {len(ran)} stages run; "
          + ", ".join(f"{n} {s}" for s, n in counts.items() if n))


if __name__ == "__main__":
    app.run(main, flags_parser=train_flags.parse_flags)
