"""Train and evaluate a whole lambda sweep, resumably; then write cohort.csv.

    python -m experiments.cohort --preset=mnist_quick --dataset=fashion_mnist
    python -m experiments.cohort --preset=mnist_paper --shard=0/4   # one of 4 parallel jobs

Rerunning finishes whatever an interruption left; a finished cohort reruns in seconds.
"""

import dataclasses
import os
import sys

from absl import app, flags

from experiments import presets

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "mnist_quick", "Preset name: " + ", ".join(presets.PRESETS))
flags.DEFINE_string("dataset", None, "Override the preset's dataset.")
flags.DEFINE_string("data_dir", None, "Folder of IDX files or a TFDS data dir.")
flags.DEFINE_string("results_dir", None, "Cohort folder (default results/<preset>_<dataset>).")
flags.DEFINE_integer("num_images", None, "Validation images measured per model.")
flags.DEFINE_list("attacks", None, "Attack methods (default: the preset's).")
flags.DEFINE_list("attack_options", None, "method.option=value pairs (default: the preset's).")
flags.DEFINE_list("lambdas", None, "Override the preset's lambda sweep.")
flags.DEFINE_integer("epochs", None, "Override the number of training epochs.")
flags.DEFINE_integer("train_subset", None, "Train on the first N training images.")
flags.DEFINE_integer("batch_size", None, "Override the training batch size.")
flags.DEFINE_float("learning_rate", None, "Override the initial learning rate.")
flags.DEFINE_enum("lr_schedule", None, ["step", "plateau", "constant"], "Override the learning-"
                  "rate schedule: step (x lr_decay_factor every lr_decay_epochs), plateau "
                  "(/10 when val_loss stalls) or constant.")
flags.DEFINE_integer("lr_decay_epochs", None, "Override the step schedule's decay interval.")
flags.DEFINE_float("lr_decay_factor", None, "Override the step schedule's decay factor.")
flags.DEFINE_integer("probe_size", None, "Override the number of validation images measured "
                     "after every epoch for TensorBoard.")
flags.DEFINE_enum("data_source", None, ["tfrecord", "tfds"], "ImageNet only: TFRecord shards in "
                  "--data_dir, or TFDS imagenet2012 with --data_dir as its manual-download dir.")
flags.DEFINE_string("weights", None, "resnet50 only: 'imagenet' or a weights file.")
flags.DEFINE_integer("image_size", None, "ImageNet crop size (default 256).")
flags.DEFINE_list("members", None, "Run only these member indices, e.g. 0,3.")
flags.DEFINE_string("shard", None, "Run only shard i/n of the members (every n-th from i).")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy for training each member.")

# Flags whose names are TrainConfig fields and override the preset's when given.
TRAIN_OVERRIDES = ("dataset", "data_dir", "epochs", "train_subset", "batch_size", "learning_rate",
                   "lr_schedule", "lr_decay_epochs", "lr_decay_factor", "probe_size",
                   "data_source", "weights", "image_size")


def spec_from_flags():
    from robust_saliency import attacks

    preset = presets.get(FLAGS.preset)
    overrides = {k: FLAGS[k].value for k in TRAIN_OVERRIDES if FLAGS[k].value is not None}
    options = (None if FLAGS.attack_options is None
               else attacks.parse_options(FLAGS.attack_options))
    lambdas = [float(v) for v in FLAGS.lambdas] if FLAGS.lambdas else None
    spec = preset.cohort_spec(lambdas=lambdas, num_images=FLAGS.num_images,
                              attacks=FLAGS.attacks, attack_options=options, **overrides)
    return preset, spec


def results_dir_of(spec):
    return FLAGS.results_dir or f"results/{spec.name}_{spec.train.dataset}"


def _say(message, end="\n"):
    print(f"\r{message}\033[K", end=end, flush=True)


def main(argv):
    del argv
    from robust_saliency import attacks, cohort

    try:
        preset, spec = spec_from_flags()
        results_dir = results_dir_of(spec)
        spec = dataclasses.replace(spec, train=presets.with_data(
            preset, spec.train, os.path.join(results_dir, "data")))
        attacks.check_methods(spec.attacks, spec.attack_options)
        members = [int(m) for m in FLAGS.members] if FLAGS.members else None
        ran = cohort.run(results_dir, spec, members=members, shard=FLAGS.shard, progress=_say,
                         strategy=FLAGS.strategy)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    _, table = cohort.read(results_dir)
    counts = {s: int((table["status"] == s).sum()) for s in cohort.STATUSES}
    print(f"cohort {results_dir}: {len(ran)} stages run; "
          + ", ".join(f"{n} {s}" for s, n in counts.items() if n))


if __name__ == "__main__":
    app.run(main)
