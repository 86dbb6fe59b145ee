"""The linearity conjecture's figure, across cohorts trained on the same data with different
networks (robust_saliency.linearity).

Left: per model, Fig. 4's pointwise correlation of rho_tilde(x) and alpha(x) against the
model's median non-linearity |ln(rho_best / rho_tilde)|, one colour per cohort: the conjecture
predicts the correlation to fall as non-linearity grows. Right: the mechanism the paper
proposes, each model's non-linearity against its median rho_tilde: the penalty should make the
models more linear as it makes them more robust. Degenerate models are hollow and not joined.

    python -m experiments.conjecture --results_dirs=A,B --out_dir=DIR
"""

import matplotlib.pyplot as plt

from robust_saliency import linearity, plotting
from robust_saliency.figures import labels


@plotting.styled
def conjecture(results_dirs, out_dir, stem="linearity_conjecture", *, names=None, found=None):
    """Writes <out_dir>/<stem>.png and .pdf; returns their paths. `found`: the members of each
    cohort as linearity.check returned them (read from the folders when None)."""
    if found is None:
        _, found = linearity.check(results_dirs, names)
    fig, axes = plt.subplots(1, 2, figsize=(9.2, 4.0))
    panels = (("nonlinearity", "pointwise_r", r"median $|\ln(\rho_{best}/\tilde\rho)|$",
               r"Pearson $r$ of $\tilde\rho(x)$ and $\alpha(x)$"),
              ("median_lin_robustness", "nonlinearity", r"$M[\tilde\rho]$",
               r"median $|\ln(\rho_{best}/\tilde\rho)|$"))
    for ax, (kx, ky, label_x, label_y) in zip(axes, panels):
        for i, (name, m) in enumerate(found.items()):
            color = plotting.PALETTE[(i + 1) % len(plotting.PALETTE)]
            # Joined in lambda order; no bands: one number per model.
            plotting.errorbars(ax, (m[kx],) * 3, (m[ky],) * 3, label=name,
                               degenerate=m["degenerate"], color=color, marker="o")
        ax.set_xlabel(label_x)
        ax.set_ylabel(label_y)
    axes[1].set_xscale("log")
    axes[0].legend(loc="best")
    axes[0].set_title("Pointwise link against non-linearity (one point per model)")
    axes[1].set_title("Non-linearity against robustness")
    for ax, (kx, ky, _, _) in zip(axes, panels):
        for i, m in enumerate(found.values()):
            labels.annotate_lambdas(ax, m[kx], m[ky], m["lam"], degenerate=m["degenerate"],
                                    color=plotting.PALETTE[(i + 1) % len(plotting.PALETTE)])
    fig.tight_layout()
    return plotting.save(fig, out_dir, stem)
