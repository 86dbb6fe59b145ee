"""Figure 8 of the paper: the summands of inequality (20), one point per model.

    python -m experiments.fig08_bound20 --results_dir=DIR --out_dir=figures

(20) = (16): rho_tilde(x) <= |<xi, gamma>| / ||gamma|| + ||xi|| ||g_dagger_bar - gamma_bar||
(column bound16), the form that always holds. The paper prints the angle term with g_bar, the
saliency at x, in place of gamma_bar (columns angle_term_xi_printed, bound16_printed); that form
needs gamma parallel to g and can fail, so it is drawn dashed beside the valid one.
"""

from absl import app

from experiments import figures
from robust_saliency import plotting

STEM = "fig08_bound20"


def plot(results_dir, out_dir):
    """Writes <out_dir>/fig08_bound20.png and .pdf; returns their paths."""
    return plotting.bound_summands(
        results_dir, out_dir, STEM, equation="(20)", terms=("alignment_xi", "angle_term_xi"),
        rhs="bound16", printed=("angle_term_xi_printed", "bound16_printed"))


def main(argv):
    figures.run_command(plot, argv)


if __name__ == "__main__":
    figures.define_flags()
    app.run(main)
