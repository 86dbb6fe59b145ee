"""Median alignment against median robustness for every robustification method, on one axis,
and the cross-method claims.

Each method is one cohort folder. Left: against the median L2 BIM distance, the one attack
every preset runs with the same settings; right: against the median linearized robustness
rho_tilde. Points are labelled with their strength (lambda, or epsilon for PGD).

    python -m experiments.fig_methods --dataset=mnist
    python -m experiments.fig_methods --results_dirs=results/a,results/b --out_dir=figures/x
"""

import matplotlib.pyplot as plt
import numpy as np

from robust_saliency import method_comparison, plotting
from robust_saliency.figures import labels

STEM = "fig_methods"
MARKERS = ("o", "s", "^", "D", "v", "P")


@plotting.styled
def plot(results_dirs, out_dir, stem=STEM):
    """Writes <out_dir>/fig_methods.png and .pdf; returns (paths, the claims rows)."""
    columns = ("median_rho_bim", "median_lin_robustness")
    curve_list = method_comparison.curves(results_dirs, columns)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, column in zip(axes, columns):
        for k, c in enumerate(curve_list):
            plotting.errorbars(ax, (c[column], *c[f"{column}_band"]),
                               (c["alignment"], *c["alignment_band"]),
                               label=_legend_label(c),
                               marker=MARKERS[k % len(MARKERS)],
                               color=plotting.PALETTE[k % len(plotting.PALETTE)])
        ax.set_xlabel(method_comparison.ROBUSTNESS[column])
        ax.set_ylabel(r"median alignment $\alpha(x)$")
        for c in curve_list:
            labels.annotate_lambdas(ax, c[column], c["alignment"], c["lam"])
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=1, bbox_to_anchor=(0.5, -0.22))
    datasets = sorted({c["dataset"] for c in curve_list})
    fig.suptitle("Alignment vs robustness by robustification method "
                 f"({', '.join(datasets)}; labels: lambda, or epsilon for PGD)", fontsize=9)
    return plotting.save(fig, out_dir, stem), method_comparison.check(curve_list, columns[0])


def _legend_label(curve):
    """The method, its bars, and the degenerate members its curve leaves out, so a missing
    strength or a point without bars is not taken for a plotting error."""
    notes = [f"bars: {curve['band']}"] if curve["band"] else []
    strengths, counts = np.unique(curve.get("degenerate", ()), return_counts=True)
    if len(strengths):
        notes.append("left out as degenerate: " + ", ".join(
            f"{v:g}" + (f" ({n} seeds)" if n > 1 else "") for v, n in zip(strengths, counts)))
    return curve["label"] + (f" ({'; '.join(notes)})" if notes else "")
