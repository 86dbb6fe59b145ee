"""Figure 2 of the paper (its ImageNet cohort): median alignment against median robustness.

    python -m experiments.fig02_alignment_robustness --results_dir=DIR --out_dir=figures

One point per evaluated model: median alpha(x) (eq. 7) against the median of each robustness
estimate (every attack's minimal L2 distance and the linearized rho_tilde, eq. 9). Figures 2
and 3 are the same plot for two cohorts, drawn by plotting.alignment_vs_robustness.
"""

from absl import app

from experiments import figures
from robust_saliency import plotting

STEM = "fig02_alignment_robustness"


def plot(results_dir, out_dir):
    """Writes <out_dir>/fig02_alignment_robustness.png and .pdf; returns their paths."""
    return plotting.alignment_vs_robustness(results_dir, out_dir, STEM)


def main(argv):
    figures.run_command(plot, argv)


if __name__ == "__main__":
    figures.define_flags()
    app.run(main)
