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

from experiments import presets

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "mnist_quick", "Preset name: " + ", ".join(presets.PRESETS))
flags.DEFINE_bool("print_preset", False, "Print the resolved preset and exit.")
flags.DEFINE_string("dataset", None, "Override the preset's dataset (mnist, fashion_mnist, "
                    "synthetic).")
flags.DEFINE_string("data_dir", None, "Folder of IDX files or a TFDS data dir.")
flags.DEFINE_float("lam", None, "Penalty weight lambda (default: the preset's first).")
flags.DEFINE_integer("epochs", None, "Override the number of epochs.")
flags.DEFINE_integer("batch_size", None, "Override the batch size.")
flags.DEFINE_integer("train_subset", None, "Train on the first N training images.")
flags.DEFINE_float("learning_rate", None, "Override the initial learning rate.")
flags.DEFINE_enum("lr_schedule", None, ["step", "plateau", "constant"], "Override the learning-"
                  "rate schedule: step (x lr_decay_factor every lr_decay_epochs), plateau "
                  "(/10 when val_loss stalls) or constant.")
flags.DEFINE_integer("lr_decay_epochs", None, "Override the step schedule's decay interval.")
flags.DEFINE_float("lr_decay_factor", None, "Override the step schedule's decay factor.")
flags.DEFINE_integer("probe_size", None, "Override the number of validation images measured "
                     "after every epoch for TensorBoard.")
flags.DEFINE_string("penalty_convention", None, "batch_mean (authors) or per_example (eq. 17).")
flags.DEFINE_string("sensitivity_mode", None, "nll or logits (default: the preset's, else the "
                    "penalty's own form: logits for alignment, nll for the others).")
flags.DEFINE_string("run_dir", None, "Output folder (default runs/<preset>_<dataset>_lam<lam>).")
flags.DEFINE_integer("seed", None, "Random seed.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy; --batch_size is the global batch over replicas.")
flags.DEFINE_string("weights", None, "resnet50 only: 'imagenet' or a weights file.")
flags.DEFINE_integer("image_size", None, "ImageNet crop size (default 256).")
flags.DEFINE_enum("data_source", None, ["tfrecord", "tfds"], "ImageNet only: TFRecord shards in "
                  "--data_dir, or TFDS imagenet2012 with --data_dir as its manual-download dir.")

# Flags whose names are TrainConfig fields and override it when given.
OVERRIDES = ("dataset", "data_dir", "lam", "epochs", "batch_size", "train_subset",
             "learning_rate", "lr_schedule", "lr_decay_epochs", "lr_decay_factor",
             "probe_size", "penalty_convention", "sensitivity_mode", "seed", "weights",
             "image_size", "data_source")


def config_from_flags():
    """The preset's training config with the given flags applied (ValueError if invalid)."""
    preset = presets.get(FLAGS.preset)
    changes = {name: FLAGS[name].value for name in OVERRIDES if FLAGS[name].value is not None}
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
        record = runs.train(config, run_dir, strategy=FLAGS.strategy)
    except runs.TrainingDiverged as e:
        sys.exit(f"error: {e}")
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    print(f"{record['status']}: {run_dir} ({record['epochs_completed']} epochs)")


if __name__ == "__main__":
    app.run(main)
