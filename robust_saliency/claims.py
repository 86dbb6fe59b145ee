"""The paper's checkable claims, judged on a cohort's results.

Each claim names what the paper says, the number these results give, the rule that turns the
number into a verdict, and the verdict. The rules are fixed here, before looking at any result,
and are printed with it.
"""

from __future__ import annotations

import os

import numpy as np

from robust_saliency import (
    attacks,
    cohort,
    explanation_claims,
    masking,
    results,
    stats,
    theorem_bounds,
    verdicts,
)

# The trend rule of every 'rises with' claim: its verdict lives in stats, its words in verdicts.
from robust_saliency.stats import INCONCLUSIVE, pearson, spearman, trend_verdict
from robust_saliency.verdicts import trend_rule

# Each robustness estimate's trend row, named by the attack classes' labels; rho_best (the
# per-image minimum over the L2 attacks run) is judged by the same rule.
ESTIMATES = (*((f"rho_{n}", a.label) for n, a in attacks.ATTACKS.items() if a.norm == 2),
             ("rho_best", "best estimate"), ("lin_robustness", "linearized"),
             *((f"rho_{n}", a.label) for n, a in attacks.ATTACKS.items() if a.norm != 2),
             ("lin_robustness_linf", "linearized L-inf"))


# The paper's ImageNet side is a deep batch-normalised network fine-tuned with its ImageNet
# protocol; such a network is judged by the ImageNet statements on any data (the Fashion-MNIST
# ResNet cohort), a shallow one by the MNIST statements. Fixed before those cohorts ran.
DEEP_MODELS = ("resnet50", "resnet_cifar")
CENTRED = 0.1  # |M[<x, g_bar>]| at most this fraction of M[|<x, g_bar>|]: 'approximately 0'


def deep_side(spec):
    """Whether a cohort (its cohort.json content) is judged by the paper's ImageNet statements:
    ImageNet itself, or a network of DEEP_MODELS."""
    train = spec["train"]
    return (train["data"]["dataset"] == "imagenet"
            or train["model"]["name"] in DEEP_MODELS)


# One claim, its verdict in the paper's words (verdicts.PAPER).
_row = verdicts.row


def _rise_row(name, robustness, alignment):
    rho = spearman(robustness, alignment)
    interval = stats.spearman_interval(robustness, alignment)
    n = int(np.sum(np.isfinite(robustness) & np.isfinite(alignment)))
    return _row(f"median alignment rises with median robustness ({name})",
                "Figs. 2-3: it rises (MNIST: saturating at the top)",
                f"Spearman {rho:.2f} [{interval[0]:.2f}, {interval[1]:.2f}] over {n} models",
                trend_rule(), trend_verdict(rho, interval))


def _with_interval(table, key, evaluated):
    """(values, low, high) of a cohort.csv median over the evaluated members; without recorded
    intervals (folders from before them) low = high = the value."""
    values = table[key][evaluated]
    low, high = (table[p + key][evaluated] if p + key in table else values
                 for p in (cohort.CI_LOW, cohort.CI_HIGH))
    return values, low, high


def check_claims(results_dir: str) -> list[dict[str, str]]:
    """The claims table of a cohort folder: a list of dicts (claim, paper, measured, rule,
    verdict)."""
    spec, table = cohort.read(results_dir)
    evaluated = table["status"] == "evaluated"
    if evaluated.sum() == 0:
        raise ValueError(f"{results_dir} has no evaluated member yet; run the cohort first.")
    imagenet = deep_side(spec)
    every = [results.read_table(os.path.join(results_dir, d, results.PER_IMAGE_CSV))
             for d in table["run_dir"][evaluated]]
    # Model-level claims judge the sound models only; the bounds hold on every image of every
    # model, degenerate or not, and are checked on all of them.
    rows = []
    if table["degenerate"].any():
        rows.append(_row("degenerate models left out of the model-level claims",
                         "the sweep stops 'before the models start to degenerate'",
                         cohort.degenerate_note(table),
                         f"fixed before the runs: accuracy below {cohort.DEGENERATE_SHARE:g} x "
                         "the least regularised lambda's", None))
        members = [t for t, bad in zip(every, table["degenerate"][evaluated]) if not bad]
        evaluated = evaluated & ~table["degenerate"]
    else:
        members = every
    med_align = table["median_alignment"][evaluated]
    med_lin = table["median_lin_robustness"][evaluated]
    for column, name in ESTIMATES:
        key = "median_" + column
        if key in table:
            rows.append(_rise_row(name, table[key][evaluated], med_align))
    if all(f"median_rho_{m}" in table for m in ("cw", "bim", "gradient")):
        rows += _attack_rows(*(_with_interval(table, f"median_rho_{m}", evaluated)
                               for m in ("cw", "bim", "gradient")))
    axis = "median_rho_cw" if "median_rho_cw" in table else "median_lin_robustness"
    rows.append((_superlinear_row if imagenet else _saturation_row)(
        table[axis][evaluated], med_align, axis))
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
    total = sum(len(m["lin_robustness"]) for m in every)
    for bound, label in (("bound14", "(14)"), ("bound15", "(15)"), ("bound16", "(16), valid form")):
        bad = sum(int(theorem_bounds.bound_violated(m, bound).sum()) for m in every)
        rows.append(_row(f"rho_tilde <= right-hand side of {label}", "Theorems 2-3: always",
                         f"{bad} violations in {total} images", "reproduced if 0 violations",
                         bad == 0))
    bad = sum(int(theorem_bounds.bound_violated(m, "bound16_printed").sum()) for m in every)
    rows.append(_row("rho_tilde <= (16) as printed (g_bar in place of gamma_bar)",
                     "Theorem 3 as printed", f"{bad} violations in {total} images",
                     "informational: only the valid form is a theorem", None))
    shares = {eq: [stats.median_share(m[term], m[rhs]) for m in members] for eq, term, rhs in
              (("(18)", "alignment_bin", "bound14"), ("(19)", "alignment", "bound15"),
               ("(20)", "alignment_xi", "bound16"))}
    linear_share = [stats.median_magnitude_ratio(m["x_term_bin"], m["psi_bin"])[0]
                    for m in members]
    if imagenet:
        rows.append(_trend_row(
            "share of alignment_bin in the right-hand side of (18) vs robustness",
            "Fig. 6: rises on ImageNet", "share", shares["(18)"], med_lin))
        rows.append(_trend_row(
            "share of alignment in the right-hand side of (19) vs robustness",
            "Fig. 7: rises roughly 7-fold on ImageNet", "share", shares["(19)"], med_lin))
        rows.append(_trend_row(
            "share of alignment_xi in the right-hand side of (20) vs robustness",
            "Fig. 8: rises on ImageNet", "share", shares["(20)"], med_lin))
        rows.append(_trend_row(
            "M|<x, g_dagger>| / M|Psi_dagger| vs robustness",
            "Fig. 9: rises on ImageNet", "ratio", linear_share, med_lin))
        rows.append(_centred_row(members))
    else:
        rows.append(_falling_share_row(shares["(18)"], med_lin))
        for eq, figure, term in (("(19)", "Fig. 7", "alignment"),
                                 ("(20)", "Fig. 8", "alignment_xi")):
            rows.append(_constant_share_row(eq, figure, term, shares[eq], shares["(18)"],
                                            med_lin))
        rows.append(_linear_share_row(linear_share, med_lin))
    rows.append(masking_row(results_dir, table["run_dir"][table["status"] == "evaluated"]))
    # Beyond the paper: the standard explanation metrics, where the cohort measured them.
    return rows + explanation_claims.rows(results_dir, table, evaluated)


check = check_claims  # the library's own name for it (robust_saliency.check_claims)


def masking_row(results_dir, run_dirs):
    """rho_best against a decision-based attack (masking.check_member) on the members of
    `run_dirs` that were checked, degenerate or not: n/a where none was."""
    found = masking.cohort_summary(results_dir, [str(d) for d in run_dirs])
    claim = "no gradient masking"
    paper = "assumed: the gradient-based attacks' distances measure robustness"
    rule = (f"fixed before the check: masking if HopSkipJump's distance is below "
            f"{masking.FLAG_RATIO:g} x rho_best on any checked image of any member "
            "(python -m experiments.masking)")
    if found is None:
        return _row(claim, paper, "no member checked", rule, None)
    counts = found["images"]
    images = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    measured = (f"{found['members']} members checked, {images} images each; smallest "
                f"rho_decision / rho_best {found['min_ratio']:.3f} ({found['min_member']}); "
                f"{found['below']} images below {masking.FLAG_RATIO:g}")
    return _row(claim, paper, measured, rule, not found["flagged"])


def _order(first, second):
    """Per model, +1 where `first`'s median interval lies wholly below `second`'s, -1 where
    wholly above, 0 where they overlap; each is (values, low, high)."""
    return np.where(first[2] < second[1], 1, np.where(first[1] > second[2], -1, 0))


def _attack_rows(cw, bim, gradient):
    """Figs. 2-3: the elaborate attacks (BIM, CW) below the gradient attack on every model,
    each (values, low, high) per model; CW against BIM, which the paper does not compare, only
    reported."""
    against = np.minimum(_order(cw, gradient), _order(bim, gradient))
    below, above = int(np.sum(against == 1)), int(np.sum(against == -1))
    n = len(against)
    ratio = bim[0] / gradient[0]
    cw_bim = _order(cw, bim)
    holds = True if below == n else (False if above else INCONCLUSIVE)
    return [
        _row("max(CW, BIM) <= gradient attack medians", "Figs. 2-3: the more elaborate attacks "
             "consistently find smaller adversarial perturbations than the simple gradient "
             "attack", f"below on {below} of {n} models, above on {above}, undecided on "
             f"{n - below - above}; BIM / gradient {np.min(ratio):.2f}..{np.max(ratio):.2f}",
             f"per model, below or above where the {stats.CONFIDENCE:.0%} bootstrap intervals "
             "of the medians do not overlap: reproduced if below on every model, not reproduced "
             "if above on any, else inconclusive", holds),
        _row("CW vs BIM attack medians", "Figs. 2-3: not compared",
             f"CW <= BIM on {int(np.sum(cw[0] <= bim[0]))} of {n} models (decided: CW below on "
             f"{int(np.sum(cw_bim == 1))}, above on {int(np.sum(cw_bim == -1))}); CW / BIM "
             f"{np.min(cw[0] / bim[0]):.3f}..{np.max(cw[0] / bim[0]):.3f}", "informational",
             None)]


def _saturation_row(robustness, alignment, axis):
    """Fig. 3 (MNIST): alignment rises with robustness and saturates at the top. Judged on the
    thirds of the robustness range: the least-squares slope of median alignment against median
    robustness over the models in the top third against the one over the bottom third."""
    slopes, measured = _thirds_slopes(robustness, alignment, axis)
    return _row("median alignment saturates for the most robust models",
                "Fig. 3: rises, then saturates for the most robust MNIST models", measured,
                "reproduced if the top third's slope is below half the bottom third's (thirds of "
                f"the {axis} range, >= 2 models in each)",
                None if slopes is None else bool(slopes[0] > 0 and slopes[1] < 0.5 * slopes[0]))


def _thirds_slopes(robustness, alignment, axis):
    """Least-squares slopes of median alignment against median robustness (`axis`) over the
    models in the bottom and the top third of the robustness range: ([bottom, top], what was
    measured), or (None, why not) where a third holds fewer than 2 models."""
    keep = np.isfinite(robustness) & np.isfinite(alignment)
    robustness, alignment = robustness[keep], alignment[keep]
    if len(robustness) < 4:
        return None, f"{len(robustness)} models"
    low, high = robustness.min(), robustness.max()
    third = (high - low) / 3
    bottom, top = robustness <= low + third, robustness >= high - third
    if bottom.sum() < 2 or top.sum() < 2:
        return None, (f"{bottom.sum()} and {top.sum()} models in the bottom and top thirds of "
                      f"{low:.2f}..{high:.2f}")
    slopes = [float(np.polyfit(robustness[m], alignment[m], 1)[0]) for m in (bottom, top)]
    return slopes, (f"slope {slopes[1]:.2f} over the top third ({top.sum()} models) vs "
                    f"{slopes[0]:.2f} over the bottom third ({bottom.sum()}) of {axis} "
                    f"{low:.2f}..{high:.2f}")


def _superlinear_row(robustness, alignment, axis):
    """Fig. 2 (ImageNet): median alignment grows 'seemingly superlinearly' with robustness:
    steeper over the top third of the robustness range than over the bottom third."""
    slopes, measured = _thirds_slopes(robustness, alignment, axis)
    return _row("median alignment grows faster than linearly with median robustness",
                "Fig. 2 (ImageNet): 'the seemingly superlinear growth of the median alignment'",
                measured, "reproduced if the top third's slope exceeds the bottom "
                f"third's and both are positive (thirds of the {axis} range, >= 2 models in "
                "each)", None if slopes is None else bool(0 < slopes[0] < slopes[1]))


def _centred_row(members):
    """Sec. 4.1 (ImageNet): M[<x, g_bar>] is about 0, so M[alpha] = M|<x, g_bar>| is the
    dispersion of <x, g_bar>. Per model, |median of the signed <x, g_bar>| against the median
    of its magnitude."""
    ratios = []
    for m in members:
        signed = m["x_term_pred"] / m["grad_pred_norm"]
        signed = signed[np.isfinite(signed)]
        ratios.append(abs(np.median(signed)) / np.median(np.abs(signed)))
    ratios = np.asarray(ratios)
    return _row("M[<x, g_bar>] near 0, so M[alpha] is a dispersion",
                "Sec. 4.1 (ImageNet): M[<x, g_bar>] = 0 approximately true",
                f"|M[<x, g_bar>]| / M[alpha] {np.min(ratios):.3f}..{np.max(ratios):.3f} over "
                f"{len(ratios)} models", f"reproduced if at most {CENTRED:g} on every model",
                bool(np.all(ratios <= CENTRED)))


def _ends(values, med_lin):
    """(value of the least robust model, value of the most robust), by median rho_tilde."""
    values = np.asarray(values, np.float64)
    return values[int(np.nanargmin(med_lin))], values[int(np.nanargmax(med_lin))]


def _falling_share_row(share, med_lin):
    first, last = _ends(share, med_lin)
    rho = spearman(med_lin, share)
    return _row("share of alignment_bin in the right-hand side of (18)",
                "Fig. 6 (MNIST): alpha_dagger starts out vastly dominating, and its share "
                "strongly decreases with robustness",
                f"share {first:.2f} (least robust) -> {last:.2f} (most robust); Spearman "
                f"{rho:.2f}", "reproduced if the least robust share > 0.5 and the most robust "
                "share <= 2/3 of it", bool(first > 0.5 and last <= 2 / 3 * first))


def _constant_share_row(eq, figure, term, share, share18, med_lin):
    spread, spread18 = np.ptp(share), np.ptp(share18)
    first, last = _ends(share, med_lin)
    return _row(f"share of {term} in the right-hand side of {eq}",
                f"{figure} (MNIST): stays roughly constant, compared to the variation of Fig. 6",
                f"share {first:.2f} (least robust) -> {last:.2f} (most robust); spread over "
                f"models {spread:.2f} vs {spread18:.2f} for (18)",
                "reproduced if its spread (max - min over models) is at most half that of (18)",
                bool(spread <= 0.5 * spread18))


LINEAR_SHARE_KNEE = 2.4  # Fig. 9: M[rho_tilde] where the MNIST ratio falls


def _linear_share_row(ratio, med_lin):
    ratio, med_lin = np.asarray(ratio, np.float64), np.asarray(med_lin, np.float64)
    below = med_lin < LINEAR_SHARE_KNEE
    claim = "M|<x, g_dagger>| / M|Psi_dagger| near 1, then falling below 0.5"
    paper = (f"Fig. 9 (MNIST): close to 1 until M[rho_tilde] ~ {LINEAR_SHARE_KNEE}, then "
             "sharply below 0.5")
    rule = (f"reproduced if within 0.8..1.2 for every model with M[rho_tilde] < "
            f"{LINEAR_SHARE_KNEE} and below 0.5 for the most robust model beyond it")
    near_one = ", ".join(f"{r:.2f}" for r in ratio[below][np.argsort(med_lin[below])])
    flat = bool(np.all((ratio[below] >= 0.8) & (ratio[below] <= 1.2)))
    if below.all():
        return _row(claim, paper, f"no model reaches M[rho_tilde] {LINEAR_SHARE_KNEE} (max "
                    f"{med_lin.max():.2f}); ratio {near_one} by robustness", rule, None)
    last = ratio[int(np.argmax(med_lin))]
    return _row(claim, paper, f"ratio {near_one or '-'} below M[rho_tilde] {LINEAR_SHARE_KNEE}; "
                f"{last:.2f} at the most robust model (M[rho_tilde] {med_lin.max():.2f})", rule,
                flat and bool(last < 0.5))


def _trend_row(claim, paper, name, values, med_lin):
    """ImageNet: `values` (one per model) rise with robustness, judged by their Spearman
    correlation with median rho_tilde and its interval (trend_verdict at threshold 0)."""
    rho = spearman(med_lin, values)
    interval = stats.spearman_interval(med_lin, values)
    measured = (f"Spearman {rho:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]; {name} "
                f"{values[int(np.argmin(med_lin))]:.2f} (least robust) -> "
                f"{values[int(np.argmax(med_lin))]:.2f} (most robust)")
    return _row(claim, paper, measured, trend_rule(threshold=0),
                trend_verdict(rho, interval, threshold=0))


def to_markdown(rows, title=None):
    """The claims as a Markdown table (pipes inside cells escaped)."""
    table = results.markdown_table(verdicts.COLUMNS,
                                   [[r[k] for k in verdicts.COLUMNS] for r in rows])
    return (f"**{title}**\n\n" if title else "") + table + "\n"
