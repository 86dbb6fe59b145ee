"""Figures of one cohort folder: all of them, or those named.

    python -m experiments.figures --results_dir=results/mnist_quick_mnist --out_dir=figures/x
    python -m experiments.figures --results_dir=DIR --out_dir=DIR/figures --figures=fig02,fig11
    python -m experiments.figures --results_dir=DIR --figures=fig05 --member=2

The table of figures, what each shows and its options: robust_saliency.figures (FIGURES). With
no --figures it draws every figure it can (11 and 12 where the cohort measured the explanation
metrics, 13 where it ran attacks beyond the paper's three) and exits non-zero, naming what is
missing, if any could not be drawn.
"""

import sys

from absl import app, flags

from robust_saliency import figures

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {' '.join(argv[1:])}")
    try:
        chosen = figures.select(FLAGS.figures)
    except ValueError as e:
        sys.exit(f"error: {e}")
    paths, errors = figures.draw_all(FLAGS.results_dir, FLAGS.out_dir, member=FLAGS.member,
                                     names=FLAGS.figures)
    for path in paths:
        print(f"wrote {path}")
    if errors:
        messages = sorted(set(errors.values()))
        sys.exit(f"error: {len(errors)} of {len(chosen)} figures not drawn "
                 f"({', '.join(errors)}): " + "; ".join(messages))


if __name__ == "__main__":
    flags.DEFINE_string("results_dir", None, "A cohort folder written by experiments.cohort.")
    flags.DEFINE_string("out_dir", "figures", "Where <figure name>.png and .pdf are written.")
    flags.DEFINE_list("figures", None, "Figures to draw, by name or prefix (fig02,fig11); "
                      "default: all (11 and 12 where the cohort measured the explanation "
                      "metrics, 13 where it ran attacks beyond the paper's three). Names: "
                      + ", ".join(figures.NAMES) + ".")
    flags.DEFINE_integer("member", None, "Member index (cohort.csv column `member`) for the "
                         "pointwise figures 4 and 5; default: the most robust evaluated "
                         "member (largest median rho_best).")
    flags.mark_flag_as_required("results_dir")
    app.run(main)
