"""Figure 7 of the paper: the summands of inequality (19), one point per model.

    python -m experiments.fig07_bound19 --results_dir=DIR --out_dir=figures

(19) = (15): rho_tilde(x) <= alpha(x) + ||x|| ||g_dagger_bar - g_bar|| + |beta_dagger| /
||g_dagger||, right-hand side the per-image column bound15. Left: median of each summand against
median rho_tilde; right: alpha's share of the right-hand side, per image, then the median.
"""

from absl import app

from experiments import figures
from robust_saliency import plotting

STEM = "fig07_bound19"


def plot(results_dir, out_dir):
    """Writes <out_dir>/fig07_bound19.png and .pdf; returns their paths."""
    return plotting.bound_summands(results_dir, out_dir, STEM, equation="(19)",
                                   terms=("alignment", "angle_term", "bias_term"),
                                   rhs="bound15")


def main(argv):
    figures.run_command(plot, argv)


if __name__ == "__main__":
    figures.define_flags()
    app.run(main)
