"""Model-parameter randomisation check (Adebayo et al., 2018) of a cohort member's saliency maps:
does the alignment measure the model, or only the image?

    python -m experiments.sanity --results_dir=results/mnist_quick_mnist
    python -m experiments.sanity --results_dir=... --member=0 --num_images=200

Re-initialises the member's layers one at a time from the logits down (a working copy; the saved
model is untouched) and reports, per stage, the median alignment of the plain gradient map and
how much the maps still resemble the trained ones (median Spearman rank correlation of |g|,
median cosine). Writes randomisation.csv into the member's run folder and prints a Markdown
table. Needs the member's model.keras (trained models are not committed: rerun the cohort).
"""

import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("results_dir", None, "A cohort folder written by experiments.cohort.")
flags.DEFINE_integer("member", None, "Member index (default: the most robust evaluated one).")
flags.DEFINE_integer("num_images", 200, "The first N validation images of the cohort's dataset.")
flags.DEFINE_integer("seed", 0, "Seed of the re-initialisation.")
flags.mark_flag_as_required("results_dir")

COLUMNS = ("randomised", "layers_randomised", "median_alignment", "median_rank_correlation",
           "median_cosine_similarity")


def main(argv):
    del argv
    import numpy as np

    from robust_saliency import evaluation, figure_inputs, results, runs, saliency

    try:
        spec, members = figure_inputs.load(FLAGS.results_dir)
        at = figure_inputs.pick(members, FLAGS.member)
        run_dir = os.path.join(FLAGS.results_dir, str(members["run_dir"][at]))
        model = runs.load_model(run_dir)
        x, _ = evaluation.validation_arrays(spec["train"], FLAGS.num_images)
        rows = saliency.randomisation_check(model, x, seed=FLAGS.seed)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    path = os.path.join(run_dir, "randomisation.csv")
    results.write_table(path, {c: np.array([r[c] for r in rows]) for c in COLUMNS})
    print(f"member {members['member'][at]} (lambda {members['lam'][at]:g}) of "
          f"{FLAGS.results_dir}, {len(x)} images; wrote {path}\n")
    print(results.markdown_table(COLUMNS, [[f"{r[c]:.3f}" if isinstance(r[c], float) else r[c]
                                            for c in COLUMNS] for r in rows]))


if __name__ == "__main__":
    app.run(main)
