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
train_flags.define()
flags.DEFINE_float("lam", None, "Penalty weight lambda (default: the preset's first).")
flags.DEFINE_string("penalty_convention", None, "batch_mean (authors) or per_example (eq. 17).")
flags.DEFINE_string("sensitivity_mode", None, "nll or logits (default: the preset's, else the "
                    "penalty's own form: logits for alignment, nll for the others).")
flags.DEFINE_string("run_dir", None, "Output folder (default runs/<preset>_<dataset>_lam<lam>).")
flags.DEFINE_integer("seed", None, "Random seed.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy; --batch_size is the global batch over replicas.")

# Flags of this command alone whose names are TrainConfig fields and override it when given.
OVERRIDES = ("lam", "penalty_convention", "sensitivity_mode", "seed")


def config_from_flags():
    """The preset's training config with the given flags applied (ValueError if invalid)."""
    preset = presets.get(FLAGS.preset)
    changes = train_flags.overrides(train_flags.NAMES + OVERRIDES)
    changes.setdefault("lam", preset.lambdas[0])
    return preset, dataclasses.replace(preset.train, **changes)


def main(argv):
    del argv
    from robust_saliency import runs

    try:
        preset, config = config_from_flags()
    except ValueError as e:
        sys.exit(f"error: {e}")
    if FLAGS.print_preset:
        print(preset.describe())
        return
    run_dir = FLAGS.run_dir or os.path.join(
        "runs", f"{preset.name}_{config.dataset}_lam{config.lam:g}")
    try:
        config = presets.with_data(preset, config, os.path.join(run_dir, "data"))
        print(experiments.banner(config.dataset, config.data_dir), flush=True)
        record = runs.train(config, run_dir, strategy=FLAGS.strategy)
    except runs.TrainingDiverged as e:
        sys.exit(f"error: {e}")
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    print(f"{record['status']}: {run_dir} ({record['epochs_completed']} epochs)")


if __name__ == "__main__":
    app.run(main)
