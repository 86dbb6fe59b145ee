"""All figures of one cohort folder, and the command-line glue every figure shares.

    python -m experiments.figures --results_dir=results/mnist_quick_mnist --out_dir=figures
    python -m experiments.figures --results_dir=... --figures=fig02,fig11
    python -m experiments.fig05_pointwise_attack --results_dir=... --member=2

The paper's ten: each experiments.figNN_* module has plot(results_dir, out_dir, **options) ->
written paths. Beyond the paper, figures 11 and 12 of the explanation-quality metrics
(robust_saliency.explanation_plots), drawn for cohorts measured with them. All read only the
files experiments.cohort wrote. This command draws every figure it can (or those --figures
names) and exits non-zero, naming what is missing, if any could not be drawn.
"""

import importlib
import os
import sys

from absl import app, flags

from robust_saliency import results

FLAGS = flags.FLAGS
MODULES = ("fig01_saliency", "fig02_alignment_robustness", "fig03_alignment_robustness",
           "fig04_pointwise_alignment", "fig05_pointwise_attack", "fig06_bound18",
           "fig07_bound19", "fig08_bound20", "fig09_linear_share", "fig10_gallery")
# Figures about one member; the others summarise the whole cohort.
MEMBER_MODULES = ("fig04_pointwise_alignment", "fig05_pointwise_attack")
EXPLANATION_FIGURES = ("fig11_explanation_metrics", "fig12_explanation_gallery")
NAMES = MODULES + EXPLANATION_FIGURES


def select(names):
    """The figure names of NAMES that `names` (full names or their figNN prefixes) pick, in
    NAMES's order; None or empty: all of them."""
    if not names:
        return NAMES
    chosen = set()
    for name in names:
        found = [n for n in NAMES if n == name or n.split("_")[0] == name]
        if not found:
            raise ValueError(f"unknown figure {name!r}; the figures are {', '.join(NAMES)} "
                             "(or their prefixes fig01 .. fig12)")
        chosen.update(found)
    return tuple(n for n in NAMES if n in chosen)


def _measures_explanations(results_dir):
    path = os.path.join(results_dir, results.COHORT_JSON)
    return os.path.exists(path) and bool(results.read_json(path).get("explanation_metrics"))


def define_flags(*, member=False):
    """The flags of a figure command; called only under __main__, so imports define none."""
    flags.DEFINE_string("results_dir", None, "A cohort folder written by experiments.cohort.")
    flags.DEFINE_string("out_dir", "figures", "Where figNN_<name>.png and .pdf are written.")
    if member:
        flags.DEFINE_integer("member", None, "Member index (cohort.csv column `member`) for "
                             "the pointwise figures 4 and 5; default: the most robust "
                             "evaluated member (largest median rho_best).")
    flags.mark_flag_as_required("results_dir")


def run_command(plot, argv, **options):
    """Body of a figure command's main: plot, print the paths, or exit with one error line."""
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {' '.join(argv[1:])}")
    try:
        paths = plot(FLAGS.results_dir, FLAGS.out_dir, **options)
    except (ValueError, FileNotFoundError) as e:  # plotting.MissingResults is a ValueError.
        sys.exit(f"error: {e}")
    for path in paths:
        print(f"wrote {path}")


def plot(results_dir, out_dir, *, member=None, names=None):
    """Draws every figure it can, of those `names` picks (select).

    Args:
      results_dir: the cohort folder.
      out_dir: where the figures go.
      member: member index for figures 4 and 5 (None: their default).
      names: figure names or figNN prefixes; None: all. Figures 11 and 12 are left out, not
        failed, for a cohort not measured with the explanation metrics, unless named.

    Returns:
      (paths, errors): the files written, and {name: message} for each figure not drawn.
    """
    chosen = select(names)
    if not names and not _measures_explanations(results_dir):
        chosen = tuple(n for n in chosen if n not in EXPLANATION_FIGURES)
    paths, errors = [], {}
    for name in chosen:
        options = {"member": member} if name in MEMBER_MODULES else {}
        if name in EXPLANATION_FIGURES:
            from robust_saliency import explanation_plots

            draw = explanation_plots.FIGURES[name]
        else:
            draw = importlib.import_module(f"experiments.{name}").plot
        try:
            paths += draw(results_dir, out_dir, **options)
        except (ValueError, FileNotFoundError) as e:
            errors[name] = str(e)
    return paths, errors


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {' '.join(argv[1:])}")
    try:
        chosen = select(FLAGS.figures)
    except ValueError as e:
        sys.exit(f"error: {e}")
    paths, errors = plot(FLAGS.results_dir, FLAGS.out_dir, member=FLAGS.member,
                         names=FLAGS.figures)
    for path in paths:
        print(f"wrote {path}")
    if errors:
        messages = sorted(set(errors.values()))
        sys.exit(f"error: {len(errors)} of {len(chosen)} figures not drawn "
                 f"({', '.join(errors)}): " + "; ".join(messages))


if __name__ == "__main__":
    define_flags(member=True)
    flags.DEFINE_list("figures", None, "Figures to draw, by name or prefix (fig02,fig11); "
                      "default: all (11 and 12 where the cohort measured the explanation "
                      "metrics).")
    app.run(main)
