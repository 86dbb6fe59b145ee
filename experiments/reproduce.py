"""Compare a rerun of a cohort with a reference folder, member by member, and say whether it
reproduces it: bit-identical per-image tables, or each key median inside the reference's 95%
interval (robust_saliency.reproduce). `make demo` ends with this against the committed cohort.

    python -m experiments.reproduce --results_dir=runs/mnist_quick_mnist \
        --reference=results/mnist_quick_mnist

Exits 0 whatever the verdict (a difference is a finding, not an error); 1 on unreadable input.
"""

import sys

from absl import app, flags

import experiments

FLAGS = flags.FLAGS
flags.DEFINE_string("results_dir", None, "The rerun's cohort folder.")
flags.DEFINE_string("reference", None, "The cohort folder to compare with (e.g. the committed "
                    "results/mnist_quick_mnist).")
flags.mark_flags_as_required(["results_dir", "reference"])


def main(argv):
    del argv
    experiments.quiet_logs()
    from robust_saliency import reproduce

    try:
        comparison = reproduce.compare(FLAGS.results_dir, FLAGS.reference)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    print(f"reproduction of {FLAGS.reference} by {FLAGS.results_dir}:")
    print("\n".join(reproduce.report(comparison)))


if __name__ == "__main__":
    app.run(main)
