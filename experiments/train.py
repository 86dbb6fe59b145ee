"""Train one model of a preset, resumably.

    python -m experiments.train --preset=mnist_quick --dataset=fashion_mnist --lam=100 \
        --run_dir=/tmp/r
    python -m experiments.train --preset=mnist_paper --print_preset

Rerunning the same command after an interruption resumes from the last completed epoch. A
diverged run exits non-zero with a one-line explanation; run.json records it.
"""

import dataclasses
import os
import sys

from absl import app, flags

import experiments
from experiments import presets, train_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "mnist_quick", "Preset name: " + ", ".join(presets.PRESETS))
flags.DEFINE_bool("print_preset", False, "Print the resolved preset and exit.")
train_flags.define()  # --train.<dotted name> per setting; the lambda defaults to the preset's first
flags.DEFINE_string("run_dir", None, "Output folder (default runs/<preset>_<dataset>_lam<lam>).")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy; --batch_size is the global batch over replicas.")


def config_from_flags():
    """(the preset's CohortSpec, its training config with the given flags applied);
    ValueError if invalid."""
    spec = presets.get(FLAGS.preset)
    changes = train_flags.overrides()
    changes.setdefault("penalty.lam", spec.lambdas[0])
    return spec, spec.train.replace(**changes)


def main(argv):
    del argv
    from robust_saliency import runs

    try:
        spec, config = config_from_flags()
    except ValueError as e:
        sys.exit(f"error: {e}")
    if FLAGS.print_preset:
        print(presets.describe(dataclasses.replace(spec, train=config)))
        return
    run_dir = FLAGS.run_dir or os.path.join(
        "runs", f"{spec.name}_{config.data.dataset}_lam{config.penalty.lam:g}")
    try:
        config = presets.with_data(spec, config, os.path.join(run_dir, "data"))
        print(experiments.banner(config.data.dataset, config.data.data_dir), flush=True)
        record = runs.train(config, run_dir, strategy=FLAGS.strategy)
    except runs.TrainingDiverged as e:
        sys.exit(f"error: {e}")
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    print(f"{record['status']}: {run_dir} ({record['epochs_completed']} epochs)")


if __name__ == "__main__":
    app.run(main, flags_parser=train_flags.parse_flags)
