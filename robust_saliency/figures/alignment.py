"""Figures 2 and 3 of the paper: median alignment against median robustness, one point per model.

The paper draws it for ImageNet (Fig. 2) and MNIST (Fig. 3) with its three estimates of the
robustness: the minimal L2 distances of its gradient, BIM and CW attacks (attacks.PAPER) and the
linearized robustness rho_tilde (eq. 9). Here also the best estimate rho_best (the smallest
distance any L2 attack found, strong attacks included); the strong attacks one by one are
figure 13's (figures.strong_attacks), so that this figure keeps the paper's five curves however
many attacks a cohort runs. Points are joined in lambda order; a degenerate model is hollow and
not joined; lambda labels sit beside the rho_best points where they fit.

    python -m experiments.figures --results_dir=DIR --out_dir=figures --figures=fig03
"""

import matplotlib.pyplot as plt

from robust_saliency import figure_inputs, plotting
from robust_saliency.figures import labels


def estimates(members):
    """The per-image columns drawn, in legend order: lin_robustness, the paper's attacks that
    the cohort ran (a `median_<column>` in cohort.csv), and rho_best where recorded."""
    paper, _ = plotting.attack_columns(members, prefix="median_rho_")
    return (["lin_robustness"] + [c[len("median_"):] for c in paper]
            + (["rho_best"] if "median_rho_best" in members else []))


@plotting.styled
def alignment_vs_robustness(results_dir, out_dir, stem):
    """Figures 2 (ImageNet) and 3 (MNIST): writes <out_dir>/<stem>.png and .pdf.

    Returns:
      The PNG and PDF paths written.
    """
    spec, members = figure_inputs.load(results_dir,
                                  columns=("median_alignment", "median_lin_robustness"))
    keys = estimates(members)
    bad = plotting.lambda_degenerate(members)
    lams, *alignment, band = plotting.by_lambda(members, "median_alignment")
    fig, ax = plt.subplots(figsize=(5.4, 3.9))
    for key in keys:
        label, colour, marker = plotting.estimate_look(key)
        _, *x, _ = plotting.by_lambda(members, f"median_{key}")
        plotting.errorbars(ax, x, alignment, label=label, degenerate=bad, marker=marker,
                           color=colour)
    plotting.degenerate_legend(ax, members)
    ax.set_xlabel(r"median robustness: $M[\rho(x)]$ per attack, $M[\tilde\rho(x)]$")
    ax.set_ylabel(r"median $\alpha(x)$")
    named = keys[-1]  # rho_best, else the paper's last attack, else rho_tilde
    where = plotting.ESTIMATES.get(named, (named,))[0].split(" (")[0]
    # Below the axes: the curves and their bars leave no reliably empty corner.
    ax.legend(*plotting.legend_entries(ax),
              title=rf"estimate ($\lambda$ beside the {where} points)"
              + (f"\nbars: {band}" if band else ""), loc="upper center",
              bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax.set_title(plotting.title(spec, "Median alignment against median robustness", members))
    labels.annotate_lambdas(ax, plotting.by_lambda(members, f"median_{named}")[1], alignment[0],
                            lams, degenerate=bad)
    return plotting.save(fig, out_dir, stem)
