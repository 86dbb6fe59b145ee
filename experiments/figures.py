"""All ten paper figures from one cohort folder, and the command-line glue every figure shares.

    python -m experiments.figures --results_dir=results/mnist_quick_mnist --out_dir=figures
    python -m experiments.fig05_pointwise_attack --results_dir=... --member=2

Each experiments.figNN_* module has plot(results_dir, out_dir, **options) -> written paths and
reads only the files experiments.cohort wrote. This command draws every figure it can and exits
non-zero, naming what is missing, if any could not be drawn.
"""

import importlib
import sys

from absl import app, flags

FLAGS = flags.FLAGS
MODULES = ("fig01_saliency", "fig02_alignment_robustness", "fig03_alignment_robustness",
           "fig04_pointwise_alignment", "fig05_pointwise_attack", "fig06_bound18",
           "fig07_bound19", "fig08_bound20", "fig09_linear_share", "fig10_gallery")
# Figures about one member; the others summarise the whole cohort.
MEMBER_MODULES = ("fig04_pointwise_alignment", "fig05_pointwise_attack")


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


def plot(results_dir, out_dir, *, member=None):
    """Draws every figure it can.

    Args:
      results_dir: the cohort folder.
      out_dir: where the figures go.
      member: member index for figures 4 and 5 (None: their default).

    Returns:
      (paths, errors): the files written, and {module: message} for each figure not drawn.
    """
    paths, errors = [], {}
    for name in MODULES:
        module = importlib.import_module(f"experiments.{name}")
        options = {"member": member} if name in MEMBER_MODULES else {}
        try:
            paths += module.plot(results_dir, out_dir, **options)
        except (ValueError, FileNotFoundError) as e:
            errors[name] = str(e)
    return paths, errors


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {' '.join(argv[1:])}")
    paths, errors = plot(FLAGS.results_dir, FLAGS.out_dir, member=FLAGS.member)
    for path in paths:
        print(f"wrote {path}")
    if errors:
        messages = sorted(set(errors.values()))
        sys.exit(f"error: {len(errors)} of {len(MODULES)} figures not drawn "
                 f"({', '.join(errors)}): " + "; ".join(messages))


if __name__ == "__main__":
    define_flags(member=True)
    app.run(main)
