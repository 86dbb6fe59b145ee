"""The linearity conjecture's figure, across cohorts trained on the same data with different
networks (robust_saliency.linearity).

Left: per model, Fig. 4's pointwise correlation of rho_tilde(x) and alpha(x) against the
model's median non-linearity |ln(rho_best / rho_tilde)|, one colour per cohort: the conjecture
predicts the correlation to fall as non-linearity grows. Right: the mechanism the paper
proposes, each model's non-linearity against its median rho_tilde: the penalty should make the
models more linear as it makes them more robust. Degenerate models are hollow and not joined.

    python -m experiments.conjecture --results_dirs=A,B --out_dir=DIR [--figure_dirs=FA,FB]

With --figure_dirs, the paper's figures of the cohorts (drawn by experiments.figures) are also
set side by side, one image per figure (side_by_side).
"""

import os

import matplotlib.pyplot as plt
from matplotlib import image

from robust_saliency import linearity, plotting, results
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


# The paper's figures drawn per cohort (robust_saliency.figures.FIGURES), set side by side.
PAPER_FIGURES = ("fig01_saliency", "fig02_alignment_robustness", "fig04_pointwise_alignment",
                 "fig05_pointwise_attack", "fig06_bound18", "fig07_bound19", "fig08_bound20",
                 "fig09_linear_share", "fig10_gallery")


def side_by_side(figure_dirs, names, out_dir, stems=PAPER_FIGURES):
    """Each paper figure of several cohorts (their figure folders, as experiments.figures wrote
    them) in one image, the cohorts left to right under their `names`, as the paper sets its
    ImageNet and MNIST panels; a figure missing from any folder is skipped. Returns the paths
    written (<out_dir>/<stem>_side_by_side.png)."""
    written = []
    for stem in stems:
        paths = [os.path.join(d, f"{stem}.png") for d in figure_dirs]
        if not all(os.path.exists(p) for p in paths):
            continue
        panels = [image.imread(p) for p in paths]
        height = max(p.shape[0] for p in panels) / 200  # the figures' savefig dpi
        fig, axes = plt.subplots(1, len(panels), figsize=(
            sum(p.shape[1] / 200 for p in panels), height + 0.3), squeeze=False)
        for ax, panel, name in zip(axes[0], panels, names):
            ax.imshow(panel)
            ax.set_title(name, fontsize=10)
            ax.axis("off")
        fig.tight_layout()
        path = os.path.join(out_dir, f"{stem}_side_by_side.png")
        os.makedirs(out_dir, exist_ok=True)
        with results.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=200)
        plt.close(fig)
        written.append(path)
    return written
