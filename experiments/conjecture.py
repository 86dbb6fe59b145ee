"""The linearity conjecture's test across cohorts trained on the same data with different
networks (robust_saliency.linearity): its claims table, a per-model table and its figure.

    python -m experiments.conjecture \
        --results_dirs=results/fashion_resnet_fashion_mnist,results/fashion_small_fashion_mnist \
        --out_dir=results/fashion_conjecture

Writes <out_dir>/conjecture.md and <out_dir>/linearity_conjecture.png and .pdf; with
--figure_dirs also <out_dir>/<paper figure>_side_by_side.png.
"""

import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("results_dirs", None, "Cohort folders written by experiments.cohort, on the "
                  "same data.")
flags.DEFINE_list("names", None, "A short name per cohort (default: the folder names).")
flags.DEFINE_string("out_dir", None, "Where the table and figure go.")
flags.DEFINE_list("figure_dirs", None, "The cohorts' figure folders (experiments.figures "
                  "--out_dir), in the order of --results_dirs: their paper figures are also set "
                  "side by side.")
flags.mark_flags_as_required(["results_dirs", "out_dir"])


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {' '.join(argv[1:])}")
    from robust_saliency import claims, linearity, results
    from robust_saliency.figures import linearity as figure

    if FLAGS.names and len(FLAGS.names) != len(FLAGS.results_dirs):
        sys.exit(f"error: {len(FLAGS.names)} names for {len(FLAGS.results_dirs)} cohorts")
    try:
        rows, found = linearity.check(FLAGS.results_dirs, FLAGS.names)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    table = [[name, f"{lam:g}", "yes" if bad else "", f"{rt:.3f}", f"{n:.3f}", f"{r:.2f}"]
             for name, m in found.items()
             for lam, bad, rt, n, r in zip(m["lam"], m["degenerate"], m["median_lin_robustness"],
                                           m["nonlinearity"], m["pointwise_r"])]
    markdown = (results.markdown_table(["cohort", "lambda", "degenerate", "M[rho_tilde]",
                                        "median non-linearity", "Fig. 4 r"], table) + "\n\n"
                + claims.to_markdown(rows, "The linearity conjecture, the data held fixed"))
    results.write_text(os.path.join(FLAGS.out_dir, "conjecture.md"), markdown)
    print(markdown)
    paths = figure.conjecture(FLAGS.results_dirs, FLAGS.out_dir, found=found)
    if FLAGS.figure_dirs:
        if len(FLAGS.figure_dirs) != len(FLAGS.results_dirs):
            sys.exit(f"error: {len(FLAGS.figure_dirs)} figure folders for "
                     f"{len(FLAGS.results_dirs)} cohorts")
        paths += figure.side_by_side(FLAGS.figure_dirs, list(found), FLAGS.out_dir)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    app.run(main)
