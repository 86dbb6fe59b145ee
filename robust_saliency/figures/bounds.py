"""Figures 6-8 of the paper: the summands of the upper bounds (18)-(20) on rho_tilde, per model.

Left: the median over images of each summand, of the right-hand side and of rho_tilde against
median rho_tilde. Right: the alignment term's share of the right-hand side, computed per image
and then the median. One point per lambda (the median over its seeds, their range as bars),
joined in lambda order; a degenerate model is hollow and not joined.

    python -m experiments.figures --results_dir=DIR --out_dir=figures --figures=fig06,fig07,fig08
"""

import functools

import matplotlib.pyplot as plt
import numpy as np

from robust_saliency import figure_inputs, plotting, stats, theorem_bounds
from robust_saliency.figures import labels


def _violations(tables, rhs):
    over = [theorem_bounds.bound_violated(t, rhs) for t in tables]
    return int(sum(o.sum() for o in over)), int(sum(len(o) for o in over))


@plotting.styled
def bound_summands(results_dir, out_dir, stem, *, equation, terms, rhs, printed=None):
    """Figures 6-8: writes <out_dir>/<stem>.png and .pdf.

    Args:
      equation: the inequality's number in the paper, e.g. "(18)".
      terms: per-image columns that sum to `rhs`; the first is the alignment term.
      rhs: the right-hand-side column.
      printed: optional (term, rhs) columns of the form as the paper prints it, drawn dashed.

    Returns:
      The PNG and PDF paths written.
    """
    spec, members = figure_inputs.load(results_dir)
    need = (*terms, rhs, "lin_robustness", *(printed or ()))
    tables = [figure_inputs.per_image(results_dir, members, i, need)
              for i in range(len(members["lam"]))]
    lams, *x, band = plotting.per_lambda(members, members["median_lin_robustness"])
    bad = plotting.lambda_degenerate(members)

    curve = functools.partial(plotting.lambda_curve, members=members, x=x, degenerate=bad)

    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    for k, term in enumerate(terms):
        curve(left, [np.median(t[term]) for t in tables], marker="o", color=plotting.PALETTE[k + 1],
              label=plotting.LABELS[term])
    curve(left, [np.median(t[rhs]) for t in tables], marker="s", color=plotting.PALETTE[0],
          label=f"right-hand side of {equation}")
    if printed:
        curve(left, [np.median(t[printed[0]]) for t in tables], marker="o", ls="--",
              color=plotting.PALETTE[len(terms)], label=plotting.LABELS[printed[0]])
        curve(left, [np.median(t[printed[1]]) for t in tables], marker="s", ls="--",
              color=plotting.PALETTE[0], label=f"right-hand side of {equation} as printed")
    curve(left, members["median_lin_robustness"], marker=".", color="0.6",
          label=plotting.LABELS["lin_robustness"] + " (left side)")
    plotting.degenerate_legend(left, members)
    bad_images, total = _violations(tables, rhs)
    note = f"{equation} violated in {bad_images} of {total} images"
    if printed:
        note += f"; as printed: {_violations(tables, printed[1])[0]}"
    if band:
        note += f"\nbars: {band}"
    # Below the axes: summands of very different sizes leave no reliably empty corner.
    left.legend(*plotting.legend_entries(left), loc="upper center", bbox_to_anchor=(0.5, -0.16),
                ncol=2, fontsize=7, title=note, title_fontsize=7)
    left.set_xlabel(r"median $\tilde\rho(x)$")
    left.set_ylabel("median over images")
    share = curve(right, [stats.median_share(t[terms[0]], t[rhs]) for t in tables], marker="o",
                  color=plotting.PALETTE[1], label=f"{equation}")
    if printed:
        curve(right, [stats.median_share(t[terms[0]], t[printed[1]]) for t in tables],
              marker="o", ls="--", color=plotting.PALETTE[1], label=f"{equation} as printed")
        right.legend(loc="best")
    right.set_xlabel(r"median $\tilde\rho(x)$")
    right.set_ylabel(f"{plotting.LABELS[terms[0]]} / right-hand side,\nper image, then median")
    fig.suptitle(plotting.title(spec, f"Summands of inequality {equation}", members), fontsize=9)
    labels.annotate_lambdas(right, x[0], share, lams, degenerate=bad)
    return plotting.save(fig, out_dir, stem)
