"""A cohort's summary tables as Markdown: one row per model (lambda, seed, status, accuracy and
the key medians) and, for a cohort with several seeds, each lambda's medians over its seeds.

They are printed above the claims (experiments.claims); the claims themselves are in claims.py.
"""

from __future__ import annotations

import numpy as np

from robust_saliency import attacks, results, stats

COHORT_COLUMNS = (("accuracy", "accuracy"), ("median_alignment", "M[alpha]"),
                  ("median_alignment_bin", "M[alpha_dagger]"),
                  ("median_lin_robustness", "M[rho_tilde]"),
                  *((f"median_rho_{n}", f"M[rho] {'grad' if n == 'gradient' else a.label}")
                    for n, a in attacks.ATTACKS.items() if a.norm == 2),
                  ("median_rho_best", "M[rho_best]"),
                  ("median_lin_robustness_linf", "M[rho_tilde_inf]"),
                  ("median_rho_bim_linf", "M[rho_inf] BIM"),
                  ("median_rho_fmn_linf", "M[rho_inf] FMN"),
                  ("median_alignment_smoothgrad", "M[alpha] SmoothGrad"),
                  ("median_alignment_ig", "M[alpha] IG"))


def cohort_markdown(table):
    """The cohort's per-model summary (lambda, seed where there are several, status, accuracy,
    key medians) as Markdown."""
    columns = [(k, name) for k, name in COHORT_COLUMNS if k in table]
    degenerate = table.get("degenerate", np.zeros(len(table["lam"]), bool))
    several_seeds = "seed" in table and len(set(table["seed"])) > 1
    rows = [[f"{table['lam'][i]:g}", *([str(table["seed"][i])] if several_seeds else []),
             table["status"][i] + (" (degenerate)" if degenerate[i] else ""),
             *(f"{table[k][i]:.3f}" if np.isfinite(table[k][i]) else "-" for k, _ in columns)]
            for i in range(len(table["lam"]))]
    return results.markdown_table(
        ["lambda", *(["seed"] if several_seeds else []), "status", *(name for _, name in columns)],
        rows) + "\n"


def seed_spread_markdown(table):
    """Per lambda, each key median's median over the evaluated seeds and, in brackets, their
    range (min-max), as Markdown; '' for a one-seed cohort. A seed whose value is not finite (a
    collapsed classifier has no attack distance) is left out of that cell (stats.seed_range, as
    in the figures' seed bands); the 'seeds' column counts the evaluated and the degenerate
    ones."""
    if "seed" not in table or len(set(table["seed"])) < 2:
        return ""
    columns = [(k, name) for k, name in COHORT_COLUMNS if k in table]
    evaluated = np.asarray(table["status"]) == "evaluated"
    degenerate = np.asarray(table.get("degenerate", np.zeros(len(evaluated))), bool)
    lams = np.unique(table["lam"])
    cells = []
    for key, _ in columns:
        _, centre, low, high, count = stats.seed_range(
            table["lam"], np.where(evaluated, table[key], np.nan))
        cells.append(["-" if n == 0 else f"{c:.3f}" if n == 1 else f"{c:.3f} ({lo:.3f}-{hi:.3f})"
                      for c, lo, hi, n in zip(centre, low, high, count)])
    rows = []
    for i, lam in enumerate(lams):
        group = evaluated & (table["lam"] == lam)
        bad = int((group & degenerate).sum())
        rows.append([f"{lam:g}", f"{int(group.sum())}" + (f" ({bad} degenerate)" if bad else ""),
                     *(column[i] for column in cells)])
    return ("**Per lambda over seeds: median (min-max)**\n\n" + results.markdown_table(
        ["lambda", "seeds", *(name for _, name in columns)], rows) + "\n")
