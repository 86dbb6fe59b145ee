"""Across robustification methods: each cohort's alignment-robustness curve, and the claims
that compare them (issue 8: does the link depend on the method, the norm, direct alignment
training?).

A method is a cohort folder; its label comes from the penalty in its cohort.json. Every cohort
is compared on the same robustness column (default: median L2 BIM distance, run with the same
settings in every preset), so the curves share one axis.
"""

import numpy as np

from robust_saliency import plotting, stats

METHOD_LABELS = {
    "gradient_norm": "double backprop (L2 gradient norm)",
    "alignment": "alignment penalty (Outlook)",
    "pgd_l2": "PGD adversarial training (L2)",
    "gradient_l1": "double backprop (L1 gradient norm, L-inf)",
}
# Robustness columns a comparison may use, with their axis label.
ROBUSTNESS = {
    "median_rho_bim": "median L2 BIM distance",
    "median_lin_robustness": r"median linearized robustness $\tilde\rho$ (L2)",
    "median_rho_bim_linf": r"median $L_\infty$ BIM distance",
    "median_lin_robustness_linf": r"median linearized $L_\infty$ robustness",
}
# The fewest models a method needs for a trend to be judged.
MIN_MODELS = 3


def label(spec):
    """A cohort's method label, from its penalty and sensitivity mode."""
    train = spec["train"]
    name = METHOD_LABELS.get(train.get("penalty", "gradient_norm"), train.get("penalty"))
    return name if train.get("sensitivity_mode", "nll") == "nll" else f"{name}, logit"


def curves(results_dirs, axes=("median_rho_bim",)):
    """One curve per cohort folder, each folder read once: label, dataset, strengths, accuracy
    and alignment medians of its evaluated members, ordered by strength (lambda, or epsilon for
    PGD), and their medians of every robustness column in `axes` (ROBUSTNESS keys), under the
    column's name.

    Raises plotting.MissingResults naming a folder that lacks a column.
    """
    unknown = [a for a in axes if a not in ROBUSTNESS]
    if unknown:
        raise ValueError(f"unknown robustness column {unknown[0]!r}; valid: {sorted(ROBUSTNESS)}")
    out = []
    for results_dir in results_dirs:
        spec, members = plotting.load(results_dir, columns=(*axes, "median_alignment"))
        out.append({"label": label(spec), "results_dir": results_dir,
                    "dataset": spec["train"]["dataset"], "lam": members["lam"],
                    "accuracy": members["accuracy"], "alignment": members["median_alignment"],
                    **{a: members[a] for a in axes}})
    return out


def matched_alignment(curve_list, axis="median_rho_bim", points=5):
    """Alignment of each method interpolated at common robustness values.

    Robustness (column `axis` of every curve) values are log-spaced over the range every method
    covers (the overlap of their robustness ranges); each curve is interpolated linearly in log
    robustness after sorting by robustness. Returns (grid, {label: alignments}) or (None, {})
    without an overlap.
    """
    usable = [c for c in curve_list if np.isfinite(c[axis]).sum() >= 2]
    if len(usable) < 2:
        return None, {}
    low = max(np.nanmin(c[axis]) for c in usable)
    high = min(np.nanmax(c[axis]) for c in usable)
    if not 0 < low < high:
        return None, {}
    grid = np.geomspace(low, high, points)
    values = {}
    for c in usable:
        keep = np.isfinite(c[axis]) & np.isfinite(c["alignment"])
        order = np.argsort(c[axis][keep])
        values[c["label"]] = np.interp(np.log(grid), np.log(c[axis][keep][order]),
                                       c["alignment"][keep][order])
    return grid, values


def _verdict_row(claim, measured, rule, holds):
    verdict = "n/a" if holds is None else ("yes" if holds else "no")
    return {"claim": claim, "paper": "open question (Conclusion)", "measured": measured,
            "rule": rule, "verdict": verdict}


def check(curve_list, axis="median_rho_bim"):
    """The cross-method rows: per method, does median alignment rise with median robustness;
    at matched robustness, which method's models are the most aligned."""
    rows = []
    for c in curve_list:
        n = int(np.sum(np.isfinite(c[axis]) & np.isfinite(c["alignment"])))
        rho = stats.spearman(c[axis], c["alignment"])
        judged = n >= MIN_MODELS and np.isfinite(rho)
        rows.append(_verdict_row(
            f"alignment rises with robustness under {c['label']}",
            f"Spearman {rho:.2f} over {n} models (robustness {axis}), "
            f"alignment {np.nanmin(c['alignment']):.2f}..{np.nanmax(c['alignment']):.2f}",
            f"yes if Spearman >= 0.6 over >= {MIN_MODELS} models", rho >= 0.6 if judged else None))
    grid, values = matched_alignment(curve_list, axis)
    if grid is None:
        rows.append(_verdict_row("most aligned method at matched robustness",
                                 "fewer than two methods, or their robustness ranges do "
                                 "not overlap",
                                 "mean interpolated alignment over the common range", None))
        return rows
    means = sorted(((float(np.mean(v)), name) for name, v in values.items()), reverse=True)
    ranking = " > ".join(f"{name} ({m:.2f})" for m, name in means)
    rows.append({"claim": "most aligned method at matched robustness",
                 "paper": "open question (Conclusion)",
                 "measured": f"{ranking}, over {axis} {grid[0]:.3g}..{grid[-1]:.3g}",
                 "rule": "mean alignment interpolated at 5 log-spaced robustness values in "
                         "the range every method covers", "verdict": means[0][1]})
    return rows
