"""Rewrite result folders written by an older robust_saliency into the current layout, once.

    python -m experiments.upgrade_results results/            # every folder under results/
    python -m experiments.upgrade_results runs/r --dry_run     # only list what would change
    python -m experiments.upgrade_results runs/r --replicas=2  # where run.json lacks it

What changes, and why, is robust_saliency.upgrade's docstring. Each file is rewritten
atomically and only when it is in an older layout, so a second run rewrites nothing.
"""

import sys

from absl import app, flags

from robust_saliency import upgrade

FLAGS = flags.FLAGS
flags.DEFINE_bool("dry_run", False, "Only list the files that would be rewritten.")
flags.DEFINE_integer("replicas", None, "The replicas a run trained with, where its files do "
                     "not record it (a 'batch_mean' penalty's B is batch_size / replicas).")
flags.DEFINE_integer("batch_size", None, "The B of a 'batch_mean' penalty in a model.keras "
                     "without a run.json beside it.")


def main(argv):
    folders = argv[1:]
    if not folders:
        raise app.UsageError("give the folders to upgrade, e.g. "
                             "python -m experiments.upgrade_results results/")
    try:
        for folder in folders:
            changed = upgrade.upgrade_tree(folder, dry_run=FLAGS.dry_run,
                                           replicas=FLAGS.replicas, batch_size=FLAGS.batch_size)
            verb = "would rewrite" if FLAGS.dry_run else "rewrote"
            for path in changed:
                print(f"{verb} {path}")
            print(f"{folder}: {verb} {len(changed)} file(s)")
    except (FileNotFoundError, upgrade.UpgradeError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    app.run(main)
