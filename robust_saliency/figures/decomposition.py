"""Figure 9 of the paper: how much of the binarized score the linear term carries, per model.

By Theorem 1, Psi_dagger(x) = <x, g_dagger> + beta_dagger. Left: the medians over images of
|<x, g_dagger>| (column x_term_bin) and |Psi_dagger(x)| (column psi_bin) against median rho_tilde;
right: their ratio M[|<x, g_dagger>|] / M[|Psi_dagger(x)|], the ratio of medians as the paper
quotes it (about 0.4 rising to 1 on ImageNet; near 1 then falling below 0.5 on MNIST).

    python -m experiments.figures --results_dir=DIR --out_dir=figures --figures=fig09
"""

import matplotlib.pyplot as plt
import numpy as np

from robust_saliency import plotting, stats


@plotting.styled
def linear_share(results_dir, out_dir, stem="fig09_linear_share"):
    """Figure 9: writes <out_dir>/<stem>.png and .pdf; returns their paths."""
    spec, members = plotting.load(results_dir)
    count = len(members["lam"])
    tables = [plotting.per_image(results_dir, members, i, ("x_term_bin", "psi_bin"))
              for i in range(count)]
    ratio, linear, score = np.array(
        [stats.median_magnitude_ratio(t["x_term_bin"], t["psi_bin"]) for t in tables]).T
    x = members["median_lin_robustness"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    left.plot(x, linear, marker="o", color=plotting.PALETTE[1],
              label=r"$M[|\langle x, g^\dagger\rangle|]$")
    left.plot(x, score, marker="s", color=plotting.PALETTE[0],
              label=r"$M[|\Psi^\dagger(x)|]$")
    left.set_xlabel(r"median $\tilde\rho(x)$")
    left.set_ylabel(r"median of $|\langle x, g^\dagger\rangle|$, $|\Psi^\dagger(x)|$")
    left.legend(loc="best")
    right.plot(x, ratio, marker="o", color=plotting.PALETTE[5])
    right.axhline(1.0, color="0.6", lw=0.8, ls="--")
    plotting.annotate_lambdas(right, x, ratio, members["lam"])
    if plotting.mark_degenerate(right, x, ratio, members["degenerate"]):
        right.legend(loc="best")
    right.set_xlabel(r"median $\tilde\rho(x)$")
    right.set_ylabel(r"$M[|\langle x, g^\dagger\rangle|]\;/\;M[|\Psi^\dagger(x)|]$")
    fig.suptitle(plotting.title(spec, r"Linear term $\langle x, g^\dagger\rangle$ of the "
                                r"binarized score $\Psi^\dagger(x)$", members), fontsize=9)
    return plotting.save(fig, out_dir, stem)
