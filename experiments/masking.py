"""Check a cohort's rho_best for gradient masking with a decision-based attack (HopSkipJump).

    python -m experiments.masking --results_dir=results/mnist_converged_mnist --images=20
    python -m experiments.masking --results_dir=results/mnist_quick_mnist --members=0,9

Writes masking.csv and masking.json into each evaluated member's folder (robust_saliency.
masking.check_member) and prints one line per member; a member already checked with the same
settings is skipped, so a rerun resumes. `python -m experiments.claims` then reports the
"no gradient masking" row. Runtime and expected results: benchmarks/RESULTS.md.
"""

import os
import sys

from absl import app, flags

import experiments

FLAGS = flags.FLAGS
flags.DEFINE_string("results_dir", None, "A cohort folder written by experiments.cohort.")
flags.DEFINE_integer("images", 20, "The first N measured images of each member.", lower_bound=1)
flags.DEFINE_integer("steps", None, "HopSkipJump iterations (default: the library's).",
                     lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of HopSkipJump's random search directions.")
flags.DEFINE_integer("batch_size", 100, "Images per attack batch.", lower_bound=1)
flags.DEFINE_list("members", None, "Only these member indices (cohort.csv's `member`).")
flags.mark_flag_as_required("results_dir")


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {' '.join(argv[1:])}")
    from robust_saliency import cohort, masking

    options = {"seed": FLAGS.seed, **({"steps": FLAGS.steps} if FLAGS.steps else {})}
    try:
        _, table = cohort.read(FLAGS.results_dir)
        print(experiments.banner(), flush=True)
        chosen = {int(m) for m in FLAGS.members} if FLAGS.members else None
        evaluated = table["status"] == "evaluated"
        run_dirs = [str(d) for m, d, ok in zip(table["member"], table["run_dir"], evaluated)
                    if ok and (chosen is None or int(m) in chosen)]
        for run_dir in run_dirs:
            s = masking.check_member(os.path.join(FLAGS.results_dir, run_dir), FLAGS.images,
                                     batch_size=FLAGS.batch_size, **options)
            print(f"{run_dir}: {'done before, ' if s['skipped'] else ''}checked in "
                  f"{float(s['seconds']):.0f} s, {s['images']} images, median ratio "
                  f"{float(s['median_ratio']):.3f}, min {float(s['min_ratio']):.3f}, "
                  f"{s['below']} below {s['flag_ratio']:g}, flagged "
                  f"{'yes' if s['flagged'] else 'no'}", flush=True)
        found = masking.cohort_summary(FLAGS.results_dir, [str(d) for d in table["run_dir"]])
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    if found:
        print(f"cohort: {found['members']} members checked, smallest ratio "
              f"{found['min_ratio']:.3f} ({found['min_member']}), {found['below']} images below "
              f"{masking.FLAG_RATIO:g}, flagged: {', '.join(found['flagged']) or 'none'}")


if __name__ == "__main__":
    app.run(main)
