"""Check the paper's claims on a cohort's results; print the cohort table (with several seeds
also each lambda's median and range over its seeds) and the claims table, and write them as
Markdown to claims.md.

    python -m experiments.claims --results_dir=results/mnist_quick_mnist
"""

import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("results_dir", None, "A cohort folder written by experiments.cohort.")
flags.DEFINE_string("out", None, "Markdown output (default <results_dir>/claims.md).")
flags.mark_flag_as_required("results_dir")


def main(argv):
    del argv
    from robust_saliency import claims, cohort, cohort_tables, results

    try:
        rows = claims.check(FLAGS.results_dir)
        spec, table = cohort.read(FLAGS.results_dir)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    dataset = spec["train"]["data"]["dataset"]
    title = (f"Claims on {dataset}, preset {spec['name']} "
             f"({int((table['status'] == 'evaluated').sum())} models)")
    spread = cohort_tables.seed_spread_markdown(table)
    markdown = (cohort_tables.cohort_markdown(table) + "\n" + (spread + "\n" if spread else "")
                + claims.to_markdown(rows, title))
    results.write_text(FLAGS.out or os.path.join(FLAGS.results_dir, "claims.md"), markdown)
    print(markdown)


if __name__ == "__main__":
    app.run(main)
