"""Median alignment against median robustness for every robustification method, on one axis,
and the cross-method claims.

    python -m experiments.fig_methods --dataset=mnist
    python -m experiments.fig_methods --results_dirs=results/a,results/b --out_dir=figures/x

Each method is one cohort folder (default: results/<preset>_<dataset> for the mnist_quick
presets of every method). Left: against the median L2 BIM distance, the one attack every preset
runs with the same settings; right: against the median linearized robustness rho_tilde. Points
are labelled with their strength (lambda, or epsilon for PGD). Writes fig_methods.png/.pdf to
--out_dir and the claims table, as Markdown, to --claims_out.
"""

import os
import sys

from absl import app, flags

from robust_saliency.figures import methods

PRESETS = ("mnist_quick", "mnist_quick_alignment", "mnist_quick_pgd", "mnist_quick_linf")


def main(argv):
    from robust_saliency import claims, results

    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {' '.join(argv[1:])}")
    results_dirs = FLAGS.results_dirs or [f"results/{p}_{FLAGS.dataset}" for p in PRESETS]
    out_dir = FLAGS.out_dir or f"figures/methods_{FLAGS.dataset}"
    try:
        paths, rows = methods.plot(results_dirs, out_dir)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    markdown = claims.to_markdown(rows, "Across robustification methods")
    claims_out = FLAGS.claims_out or os.path.join(out_dir, "claims_methods.md")
    results.write_text(claims_out, markdown)
    for path in (*paths, claims_out):
        print(f"wrote {path}")
    print(markdown)


FLAGS = flags.FLAGS

if __name__ == "__main__":
    flags.DEFINE_list("results_dirs", None, "Cohort folders, one per method (default: "
                      "results/<preset>_<dataset> for " + ", ".join(PRESETS) + ").")
    flags.DEFINE_string("dataset", "mnist", "Dataset part of the default folders.")
    flags.DEFINE_string("out_dir", None, "Figure folder (default figures/methods_<dataset>).")
    flags.DEFINE_string("claims_out", None, "Markdown output (default "
                        "<out_dir>/claims_methods.md).")
    app.run(main)
