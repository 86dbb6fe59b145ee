"""Across robustification methods: each cohort's alignment-robustness curve, and the claims
that compare them: does the link between robustness and alignment depend on the method, on the
norm, or on training alignment directly? (Etmann et al. (2019), Section 5, leave it open.)

A method is a cohort folder; its label comes from the penalty in its cohort.json. Every cohort
is compared on the same robustness column (default: median L2 BIM distance, run with the same
settings in every preset), so the curves share one axis.
"""

import numpy as np

from robust_saliency import figure_inputs, plotting, stats, verdicts

METHOD_LABELS = {
    "gradient_norm": "double backprop (L2 gradient norm)",
    "alignment": "alignment penalty (Outlook)",
    "pgd_l2": "PGD adversarial training (L2)",
    "gradient_l1": "double backprop (L1 gradient norm, L-inf)",
}
# Robustness columns a comparison may use, with their axis label.
ROBUSTNESS = {
    "median_rho_bim": "median L2 BIM distance",
    "median_rho_best": r"median best L2 estimate $\rho_{best}$",
    "median_lin_robustness": r"median linearized robustness $\tilde\rho$ (L2)",
    "median_rho_bim_linf": r"median $L_\infty$ BIM distance",
    "median_lin_robustness_linf": r"median linearized $L_\infty$ robustness",
}
# The fewest models a method needs for a trend to be judged.
MIN_MODELS = 3


def label(spec):
    """A cohort's method label, from its penalty and sensitivity mode."""
    penalty = spec["train"]["penalty"]["name"]
    name = METHOD_LABELS.get(penalty, penalty)
    mode = spec["train"]["penalty"]["sensitivity_mode"]
    return name if mode == "nll" else f"{name}, logit"


def curves(results_dirs, axes=("median_rho_bim",)):
    """One curve per cohort folder, each folder read once: label, dataset and, per strength
    (lambda, or epsilon for PGD; plotting.by_lambda), the median over seeds of the accuracy,
    the alignment and every robustness column in `axes` (ROBUSTNESS keys, under the column's
    name), each with its band under '<name>_band' ((low, high): the seed range, or the
    single model's bootstrap interval); 'band' names it. 'members' holds the evaluated
    members' own columns (one per lambda and seed). Degenerate members (cohort.degenerate)
    are left out of all of it; 'degenerate' lists their strengths.

    Raises figure_inputs.MissingResults naming a folder that lacks a column.
    """
    unknown = [a for a in axes if a not in ROBUSTNESS]
    if unknown:
        raise ValueError(f"unknown robustness column {unknown[0]!r}; valid: {sorted(ROBUSTNESS)}")
    out = []
    for results_dir in results_dirs:
        spec, members = figure_inputs.load(results_dir, columns=(*axes, "median_alignment"))
        bad = members["degenerate"]
        curve = {"label": label(spec), "results_dir": results_dir,
                 "dataset": spec["train"]["data"]["dataset"],
                 "degenerate": members["lam"][bad]}
        if bad.any() and not bad.all():
            members = {k: v[~bad] for k, v in members.items()}
        curve["members"] = members
        for name, column in (("accuracy", "accuracy"), ("alignment", "median_alignment"),
                             *((a, a) for a in axes)):
            lams, centre, low, high, band = plotting.by_lambda(members, column)
            curve.update({"lam": lams, name: centre, f"{name}_band": (low, high)})
            if name == "alignment":
                curve["band"] = band
        out.append(curve)
    return out


def _interpolate(grid, robustness, alignment):
    """alignment at `grid`, linear in log robustness, after sorting by robustness."""
    keep = np.isfinite(robustness) & np.isfinite(alignment)
    order = np.argsort(robustness[keep])
    return np.interp(np.log(grid), np.log(robustness[keep][order]), alignment[keep][order])


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
    return grid, {c["label"]: _interpolate(grid, c[axis], c["alignment"]) for c in usable}


def matched_interval(curve, grid, axis="median_rho_bim"):
    """The uncertainty of a curve's mean matched alignment over `grid`: with several seeds, the
    range of the means of each seed's own curve; with one, the means of its bootstrap
    interval's ends interpolated at the median robustness; (nan, nan) with neither."""
    members = curve.get("members")
    if members is not None and len(np.unique(members["seed"])) > 1:
        means = []
        for seed in np.unique(members["seed"]):
            mine = members["seed"] == seed
            if np.isfinite(members[axis][mine]).sum() >= 2:
                means.append(np.mean(_interpolate(grid, members[axis][mine],
                                                  members["median_alignment"][mine])))
        return (float(min(means)), float(max(means))) if means else (np.nan, np.nan)
    low, high = curve.get("alignment_band", (curve["alignment"], curve["alignment"]))
    if "bootstrap" not in curve.get("band", ""):
        return np.nan, np.nan
    return (float(np.mean(_interpolate(grid, curve[axis], low))),
            float(np.mean(_interpolate(grid, curve[axis], high))))


def _verdict_row(claim, measured, rule, holds):
    """A row of an open question; `holds` in verdicts.METHODS, or the leading method's label."""
    return verdicts.row(claim, "open question (Conclusion)", measured, rule, holds,
                        verdicts.METHODS)


def check(curve_list, axis="median_rho_bim"):
    """The cross-method rows: per method, does median alignment rise with median robustness
    (over every lambda and seed, with its interval); at matched robustness, which method's
    models are the most aligned, decided only where the leader's interval clears the next."""
    rows = []
    for c in curve_list:
        members = c.get("members", {axis: c[axis], "median_alignment": c["alignment"]})
        x, y = members[axis], members["median_alignment"]
        n = int(np.sum(np.isfinite(x) & np.isfinite(y)))
        rho, interval = stats.spearman(x, y), stats.spearman_interval(x, y)
        holds = stats.trend_verdict(rho, interval) if n >= MIN_MODELS else None
        left_out = c.get("degenerate", ())
        rows.append(_verdict_row(
            f"alignment rises with robustness under {c['label']}",
            f"Spearman {rho:.2f} [{interval[0]:.2f}, {interval[1]:.2f}] over {n} models "
            f"(robustness {axis}), alignment {np.nanmin(y):.2f}..{np.nanmax(y):.2f}"
            + (f"; degenerate, left out: strength {', '.join(f'{v:g}' for v in left_out)}"
               if len(left_out) else ""),
            verdicts.trend_rule(words=verdicts.METHODS) + f"; >= {MIN_MODELS} models",
            holds))
    grid, values = matched_alignment(curve_list, axis)
    if grid is None:
        rows.append(_verdict_row("most aligned method at matched robustness",
                                 "fewer than two methods, or their robustness ranges do "
                                 "not overlap",
                                 "mean interpolated alignment over the common range", None))
        return rows
    by_label = {c["label"]: c for c in curve_list}
    means = sorted(((float(np.mean(v)), name, matched_interval(by_label[name], grid, axis))
                    for name, v in values.items()), key=lambda t: t[0], reverse=True)
    ranking = " > ".join(f"{name} ({m:.2f} [{i[0]:.2f}, {i[1]:.2f}])" for m, name, i in means)
    decided = not stats.overlap(means[0][2], means[1][2])
    rows.append(_verdict_row(
        "most aligned method at matched robustness",
        f"{ranking}, over {axis} {grid[0]:.3g}..{grid[-1]:.3g}",
        f"mean alignment interpolated at 5 log-spaced robustness values in the range every "
        f"method covers; decided where the leader's interval (seed range, or "
        f"{stats.CONFIDENCE:.0%} bootstrap over images) lies above the next method's, else "
        "inconclusive", means[0][1] if decided else stats.INCONCLUSIVE))
    return rows
