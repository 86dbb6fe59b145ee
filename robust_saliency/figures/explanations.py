"""Figures 11-12: the explanation-quality metrics along a cohort, beside alignment.

    python -m experiments.figures --results_dir=DIR --out_dir=figures --figures=fig11,fig12

Figure 11: per metric, the median over images against the median rho_best, one point per
lambda (seed range, or the bootstrap interval over images, as bars: plotting.by_lambda), joined
in lambda order except to a degenerate model (hollow), with alignment as the first panel for
reference; each panel names the better direction and Spearman's correlation over the sound
members of the metric signed so that better is higher (the statistic of the claims' rows,
explanation_claims).
Figure 12: the gradient maps of the least and most robust sound models (cohort.extremes) with
each image's metric values beneath.
"""

import matplotlib.pyplot as plt
import numpy as np

from robust_saliency import cohort, explanations, figure_inputs, plotting, stats
from robust_saliency.explanation_claims import VARIANTS

_VARIANT_LOOKS = {"": (plotting.PALETTE[0], "o"), "_smoothgrad": (plotting.PALETTE[2], "^"),
                  "_ig": (plotting.PALETTE[3], "s")}
_X = "median_rho_best"


def _measured(members):
    """The metric names of explanations.METRICS with a median column in `members`."""
    return [name for name in explanations.METRICS if f"median_{name}" in members]


def _require_metrics(results_dir, members):
    found = _measured(members)
    if not found:
        raise figure_inputs.MissingResults(
            f"no explanation-metric column in {results_dir}'s cohort.csv; they are measured by "
            f"python -m experiments.cohort --results_dir={results_dir} --preset=<its preset> "
            "--explanation_metrics")
    return found


def _panel(ax, members, column_of, sound, *, title, sign=1.0):
    _, *x, _ = plotting.by_lambda(members, _X)
    bad = plotting.lambda_degenerate(members)
    drawn, band = [], ""
    for suffix, maps in VARIANTS:
        column = column_of(suffix)
        if column not in members:
            continue
        colour, marker = _VARIANT_LOOKS[suffix]
        _, *y, band = plotting.by_lambda(members, column)
        plotting.errorbars(ax, x, y, label=f"{maps} maps", degenerate=bad, marker=marker,
                           color=colour)
        drawn.append(f"{stats.spearman(members[_X][sound], sign * members[column][sound]):+.2f}")
    ax.set_title(f"{title}\nSpearman with " + r"$M[\rho_{best}]$: " + " / ".join(drawn),
                 fontsize=7)
    return band


@plotting.styled
def metrics_vs_robustness(results_dir, out_dir, stem="fig11_explanation_metrics"):
    """Figure 11: each explanation metric's median against the median rho_best, per model.

    Returns:
      The PNG and PDF paths written.
    """
    spec, members = figure_inputs.load(results_dir, columns=(_X, "median_alignment"))
    names = _require_metrics(results_dir, members)
    sound = ~np.asarray(members["degenerate"], bool)
    panels = 1 + len(names)
    cols = 4
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(10.0, 2.5 * rows + 0.6), squeeze=False,
                             layout="constrained")
    flat = axes.ravel()
    band = _panel(flat[0], members, lambda suffix: f"median_alignment{suffix}", sound,
                  title=r"alignment $\alpha(x)$ (the paper's measure)")
    plotting.degenerate_legend(flat[0], members)
    for ax, name in zip(flat[1:], names):
        metric = explanations.METRICS[name]
        better = "higher" if metric.higher_is_better else "lower"
        _panel(ax, members, lambda suffix, n=name: f"median_{n}{suffix}", sound,
               title=f"{metric.label} ({better} is better)",
               sign=1.0 if metric.higher_is_better else -1.0)
    for ax in flat[panels:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(r"median $\rho_{best}(x)$")
    handles, labels = plotting.legend_entries(flat[0])
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels),
               title="median over images per lambda" + (f"; bars: {band}" if band else "")
               + "\nSpearman: over the sound models, of the metric signed so that better is "
               "higher (as in the claims), per kind of map")
    fig.suptitle(plotting.title(spec, "Explanation-quality metrics against robustness",
                                members), fontsize=9)
    return plotting.save(fig, out_dir, stem)


@plotting.styled
def gallery(results_dir, out_dir, stem="fig12_explanation_gallery", *, num_images=5,
            display=None):
    """Figure 12: input and gradient map of the first `num_images` images of the least and the
    most robust sound models, each map with its alignment and metric values beneath.

    Returns:
      The PNG and PDF paths written.
    """
    spec, members = figure_inputs.load(results_dir, columns=(_X,))
    names = _require_metrics(results_dir, members)
    display = display or plotting.default_display(spec)
    least, most = cohort.extremes(members)
    fig, axes = plt.subplots(4, num_images, figsize=(1.9 * num_images, 9.6), squeeze=False,
                             layout="constrained")
    for half, (at, which) in enumerate(((least, "least"), (most, "most"))):
        arrays = figure_inputs.maps(results_dir, members, at)
        table = figure_inputs.per_image(results_dir, members, at, ("alignment", *names))
        count = min(num_images, len(arrays["x"]))
        for image in range(num_images):
            top, bottom = axes[2 * half, image], axes[2 * half + 1, image]
            if image >= count:
                top.set_visible(False)
                bottom.set_visible(False)
                continue
            plotting.show_image(top, arrays["x"][image], display)
            plotting.show_map(bottom, arrays["grad_pred"][image])
            lines = [rf"$\alpha$ {table['alignment'][image]:.3g}"] + [
                f"{explanations.METRICS[n].label.split(' (')[0]} {table[n][image]:.3g}"
                for n in names]
            bottom.set_xlabel("\n".join(lines), fontsize=5.5, loc="left")
        axes[2 * half, 0].set_ylabel(f"{which} robust\n{plotting.lam_text(members['lam'][at])}"
                                     "\ninput", fontsize=7)
        axes[2 * half + 1, 0].set_ylabel("gradient map", fontsize=7)
    fig.suptitle(plotting.title(spec, "Gradient maps and their explanation metrics (red > 0 > "
                                "blue, each scaled to its own max)"), fontsize=8)
    return plotting.save(fig, out_dir, stem)
