"""Figure 9 of the paper: how much of the binarized score the linear term carries, per model.

By Theorem 1, Psi_dagger(x) = <x, g_dagger> + beta_dagger. Left: the medians over images of
|<x, g_dagger>| (column x_term_bin) and |Psi_dagger(x)| (column psi_bin) against median rho_tilde;
right: their ratio M[|<x, g_dagger>|] / M[|Psi_dagger(x)|], the ratio of medians as the paper
quotes it (about 0.4 rising to 1 on ImageNet; near 1 then falling below 0.5 on MNIST). One
point per lambda (the median over its seeds, their range as bars), joined in lambda order; a
degenerate model is hollow and not joined.

    python -m experiments.figures --results_dir=DIR --out_dir=figures --figures=fig09
"""

import functools

import matplotlib.pyplot as plt
import numpy as np

from robust_saliency import figure_inputs, plotting, stats
from robust_saliency.figures import labels


@plotting.styled
def linear_share(results_dir, out_dir, stem="fig09_linear_share"):
    """Figure 9: writes <out_dir>/<stem>.png and .pdf; returns their paths."""
    spec, members = figure_inputs.load(results_dir)
    tables = [figure_inputs.per_image(results_dir, members, i, ("x_term_bin", "psi_bin"))
              for i in range(len(members["lam"]))]
    ratio, linear, score = np.array(
        [stats.median_magnitude_ratio(t["x_term_bin"], t["psi_bin"]) for t in tables]).T
    lams, *x, band = plotting.per_lambda(members, members["median_lin_robustness"])
    bad = plotting.lambda_degenerate(members)

    curve = functools.partial(plotting.lambda_curve, members=members, x=x, degenerate=bad)

    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    curve(left, linear, marker="o", color=plotting.PALETTE[1],
          label=r"$M[|\langle x, g^\dagger\rangle|]$")
    curve(left, score, marker="s", color=plotting.PALETTE[0], label=r"$M[|\Psi^\dagger(x)|]$")
    plotting.degenerate_legend(left, members)
    left.set_xlabel(r"median $\tilde\rho(x)$")
    left.set_ylabel(r"median of $|\langle x, g^\dagger\rangle|$, $|\Psi^\dagger(x)|$")
    # Below the axes, as in figures 6-8: the two curves cross the whole panel.
    left.legend(*plotting.legend_entries(left), loc="upper center", bbox_to_anchor=(0.5, -0.16),
                ncol=2, fontsize=7, title=f"bars: {band}" if band else None, title_fontsize=7)
    ratio = curve(right, ratio, marker="o", color=plotting.PALETTE[5], label=None)
    right.axhline(1.0, color="0.6", lw=0.8, ls="--")
    right.set_xlabel(r"median $\tilde\rho(x)$")
    right.set_ylabel(r"$M[|\langle x, g^\dagger\rangle|]\;/\;M[|\Psi^\dagger(x)|]$")
    fig.suptitle(plotting.title(spec, r"Linear term $\langle x, g^\dagger\rangle$ of the "
                                r"binarized score $\Psi^\dagger(x)$", members), fontsize=9)
    labels.annotate_lambdas(right, x[0], ratio, lams, degenerate=bad)
    return plotting.save(fig, out_dir, stem)
