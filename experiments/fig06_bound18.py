"""Figure 6 of the paper: the summands of inequality (18), one point per model.

    python -m experiments.fig06_bound18 --results_dir=DIR --out_dir=figures

(18) = (14): rho_tilde(x) <= alpha_dagger(x) + |beta_dagger| / ||g_dagger||, right-hand side
the per-image column bound14. Left: median of each summand against median rho_tilde; right:
alpha_dagger's share of the right-hand side, per image, then the median. The paper sees that
share fall with robustness on MNIST and rise on ImageNet.
"""

from absl import app

from experiments import figures
from robust_saliency import plotting

STEM = "fig06_bound18"


def plot(results_dir, out_dir):
    """Writes <out_dir>/fig06_bound18.png and .pdf; returns their paths."""
    return plotting.bound_summands(results_dir, out_dir, STEM, equation="(18)",
                                   terms=("alignment_bin", "bias_term"), rhs="bound14")


def main(argv):
    figures.run_command(plot, argv)


if __name__ == "__main__":
    figures.define_flags()
    app.run(main)
