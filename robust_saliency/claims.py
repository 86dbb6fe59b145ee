"""The paper's checkable claims, judged on a cohort's results.

Each claim names what the paper says, the number these results give, the rule that turns the
number into a verdict, and the verdict. The rules are fixed here, before looking at any result,
and are printed with it.
"""

import os

import numpy as np

from robust_saliency import cohort, metrics, results
from robust_saliency.stats import pearson, spearman

ESTIMATES = (("rho_gradient", "gradient"), ("rho_bim", "BIM"), ("rho_cw", "CW"),
             ("rho_ddn", "DDN"), ("lin_robustness", "linearized"),
             ("rho_bim_linf", "L-inf BIM"), ("rho_fmn_linf", "L-inf FMN"),
             ("lin_robustness_linf", "linearized L-inf"))


def _row(claim, paper, measured, rule, holds):
    verdict = "n/a" if holds is None else ("reproduced" if holds else "not reproduced")
    return {"claim": claim, "paper": paper, "measured": measured, "rule": rule,
            "verdict": verdict}


def _share(numerator, denominator):
    with np.errstate(divide="ignore", invalid="ignore"):
        share = numerator / denominator
    return float(np.median(share[np.isfinite(share)]))


def check(results_dir):
    """The claims table of a cohort folder: a list of dicts (claim, paper, measured, rule,
    verdict)."""
    spec, table = cohort.read(results_dir)
    evaluated = table["status"] == "evaluated"
    if evaluated.sum() == 0:
        raise ValueError(f"{results_dir} has no evaluated member yet; run the cohort first.")
    imagenet = spec["train"]["dataset"] == "imagenet"
    members = [results.read_table(os.path.join(results_dir, d, results.PER_IMAGE_CSV))
               for d in table["run_dir"][evaluated]]
    med_align = table["median_alignment"][evaluated]
    med_lin = table["median_lin_robustness"][evaluated]
    rows = []
    for column, name in ESTIMATES:
        key = "median_" + column
        if key not in table:
            continue
        rho = spearman(table[key][evaluated], med_align)
        rows.append(_row(f"median alignment rises with median robustness ({name})",
                         "Figs. 2-3: it rises (MNIST: saturating at the top)",
                         f"Spearman {rho:.2f} over {evaluated.sum()} models",
                         "reproduced if Spearman >= 0.6", None if np.isnan(rho) else rho >= 0.6))
    if all(f"median_rho_{m}" in table for m in ("cw", "bim", "gradient")):
        cw, bim, grad = (table[f"median_rho_{m}"][evaluated] for m in ("cw", "bim", "gradient"))
        ordered = int(np.sum((cw <= bim) & (bim <= grad)))
        rows.append(_row("CW <= BIM <= gradient attack medians", "Figs. 2-3: the elaborate "
                         "attacks find smaller perturbations", f"{ordered} of {len(cw)} models",
                         "reproduced if every model", ordered == len(cw)))
    if all("rho_cw" in m for m in members):
        r = [pearson(m["lin_robustness"], m["rho_cw"]) for m in members]
        rows.append(_row("pointwise lin_robustness vs rho_cw correlation", "Fig. 5: tight",
                         f"Pearson r median {np.nanmedian(r):.2f} (range {np.nanmin(r):.2f}.."
                         f"{np.nanmax(r):.2f})", "reproduced if median r >= 0.8",
                         np.nanmedian(r) >= 0.8))
    r = [pearson(m["lin_robustness"], m["alignment"]) for m in members]
    expectation = ("Fig. 4: no visible correlation on ImageNet" if imagenet
                   else "Fig. 4: highly correlated on MNIST")
    rows.append(_row("pointwise lin_robustness vs alignment correlation", expectation,
                     f"Pearson r median {np.nanmedian(r):.2f} (range {np.nanmin(r):.2f}.."
                     f"{np.nanmax(r):.2f})",
                     "reproduced if median r < 0.3" if imagenet else
                     "reproduced if median r >= 0.5",
                     np.nanmedian(r) < 0.3 if imagenet else np.nanmedian(r) >= 0.5))
    total = sum(len(m["lin_robustness"]) for m in members)
    for bound, label in (("bound14", "(14)"), ("bound15", "(15)"), ("bound16", "(16), valid form")):
        bad = sum(int(metrics.bound_violated(m, bound).sum()) for m in members)
        rows.append(_row(f"rho_tilde <= right-hand side of {label}", "Theorems 2-3: always",
                         f"{bad} violations in {total} images", "reproduced if 0 violations",
                         bad == 0))
    bad = sum(int(metrics.bound_violated(m, "bound16_printed").sum()) for m in members)
    rows.append(_row("rho_tilde <= (16) as printed (g_bar in place of gamma_bar)",
                     "Theorem 3 as printed", f"{bad} violations in {total} images",
                     "informational: only the valid form is a theorem", None))
    rows.append(_trend_row(
        "share of alignment_bin in the right-hand side of (18) vs robustness",
        "Fig. 6: rises on ImageNet, falls on MNIST", "share",
        [_share(m["alignment_bin"], m["bound14"]) for m in members], med_lin, imagenet))
    rows.append(_trend_row(
        "M|<x, g_dagger>| / M|Psi_dagger| vs robustness",
        "Fig. 9: rises on ImageNet; on MNIST near 1, then falls", "ratio",
        [np.median(np.abs(m["x_term_bin"])) / np.median(np.abs(m["psi_bin"])) for m in members],
        med_lin, imagenet))
    return rows


def _trend_row(claim, paper, name, values, med_lin, imagenet):
    """A claim that `values` (one per model) rise with robustness on ImageNet and fall on MNIST:
    judged by their Spearman correlation with median rho_tilde."""
    rho = spearman(med_lin, values)
    measured = (f"Spearman {rho:.2f}; {name} {values[int(np.argmin(med_lin))]:.2f} (least "
                f"robust) -> {values[int(np.argmax(med_lin))]:.2f} (most robust)")
    return _row(claim, paper, measured, "reproduced if Spearman " + ("> 0" if imagenet else "< 0"),
                None if np.isnan(rho) else (rho > 0 if imagenet else rho < 0))


def to_markdown(rows, title=None):
    """The claims as a Markdown table (pipes inside cells escaped)."""
    keys = ("claim", "paper", "measured", "rule", "verdict")
    table = results.markdown_table(keys, [[r[k] for k in keys] for r in rows])
    return (f"**{title}**\n\n" if title else "") + table + "\n"


COHORT_COLUMNS = (("accuracy", "accuracy"), ("median_alignment", "M[alpha]"),
                  ("median_alignment_bin", "M[alpha_dagger]"),
                  ("median_lin_robustness", "M[rho_tilde]"), ("median_rho_gradient", "M[rho] grad"),
                  ("median_rho_bim", "M[rho] BIM"), ("median_rho_cw", "M[rho] CW"),
                  ("median_rho_ddn", "M[rho] DDN"),
                  ("median_lin_robustness_linf", "M[rho_tilde_inf]"),
                  ("median_rho_bim_linf", "M[rho_inf] BIM"),
                  ("median_rho_fmn_linf", "M[rho_inf] FMN"),
                  ("median_alignment_smoothgrad", "M[alpha] SmoothGrad"),
                  ("median_alignment_ig", "M[alpha] IG"))


def cohort_markdown(table):
    """The cohort's per-model summary (lambda, status, accuracy, key medians) as Markdown."""
    columns = [(k, name) for k, name in COHORT_COLUMNS if k in table]
    rows = [[f"{table['lam'][i]:g}", table["status"][i],
             *(f"{table[k][i]:.3f}" if np.isfinite(table[k][i]) else "-" for k, _ in columns)]
            for i in range(len(table["lam"]))]
    return results.markdown_table(
        ["lambda", "status", *(name for _, name in columns)], rows) + "\n"
