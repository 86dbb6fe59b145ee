"""Drop measured columns from a cohort's members, so that the cohort measures them again.

    python -m experiments.forget --results_dir=results/mnist_quick_mnist --columns=rho_bim
    python -m experiments.cohort --preset=mnist_quick --results_dir=results/mnist_quick_mnist

For a stage whose implementation or settings changed (e.g. an attack): every other column of
every member stays. Run it once; the cohort command then resumes like any other (an interrupted
re-measurement continues where it stopped; running this again would drop finished work).
"""

import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("results_dir", None, "A cohort folder written by experiments.cohort.")
flags.DEFINE_list("columns", None, "per_image.csv columns to drop, e.g. rho_bim,rho_cw.")
flags.DEFINE_list("members", None, "Only these member indices (cohort.csv's `member`).")
flags.mark_flags_as_required(["results_dir", "columns"])


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {' '.join(argv[1:])}")
    from robust_saliency import cohort, evaluation

    try:
        _, table = cohort.read(FLAGS.results_dir)
        chosen = set(int(m) for m in FLAGS.members) if FLAGS.members else None
        for member, run_dir in zip(table["member"], table["run_dir"]):
            if chosen is not None and int(member) not in chosen:
                continue
            dropped = evaluation.forget(os.path.join(FLAGS.results_dir, str(run_dir)),
                                        FLAGS.columns)
            print(f"{run_dir}: " + (f"dropped {', '.join(dropped)}" if dropped else "nothing"))
        cohort.gather(FLAGS.results_dir)  # the members dropped from count as not evaluated
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    print(f"measure them again with python -m experiments.cohort --results_dir="
          f"{FLAGS.results_dir} --preset=<its preset> (resumable)")


if __name__ == "__main__":
    app.run(main)
