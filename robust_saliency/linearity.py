"""The paper's linearity conjecture put to a test: "the more linear the model is, the stronger
the connection between robustness and alignment" (Etmann et al. 2019, Secs. 4.2 and 5).

Non-linearity of a model at an image x is |ln(rho_best(x) / rho_tilde(x))|: how far the
linearized robustness rho_tilde (eq. 9, the distance to the decision boundary of the logits
linearised at x) misses the smallest verified adversarial distance rho_best. For an affine
classifier whose minimal adversarial point lies inside the pixel box the two are equal and it
is 0; it grows as the logits bend between x and the boundary. A model's non-linearity is its
median over the images where both distances are finite and positive. The pointwise link is
Fig. 4's: the Pearson correlation of rho_tilde(x) and alignment alpha(x) over a model's images.

The conjecture's test (rules fixed before the Fashion-MNIST cohorts ran), over cohorts trained
on the same data with different networks:
  1. per cohort, non-linearity falls as robustness grows (the paper: the penalty 'increasingly
     restricts the models to be more linear');
  2. over the sound members of all cohorts, the pointwise link weakens as non-linearity grows;
  3. with two cohorts: the one that is more non-linear (in its members' median) has the weaker
     pointwise link, and both differences are significant (one-sided Mann-Whitney, 5%).
Degenerate members (cohort.degenerate) are left out of all three, as from the claims.
"""

import os

import numpy as np

from robust_saliency import cohort, results, stats, verdicts

SIGNIFICANCE = 0.05


def nonlinearity(table):
    """Per image, |ln(rho_best / lin_robustness)| of a per-image table (dict of columns); NaN
    where either distance is not finite and positive."""
    best = np.asarray(table["rho_best"], np.float64)
    linear = np.asarray(table["lin_robustness"], np.float64)
    ok = np.isfinite(best) & np.isfinite(linear) & (best > 0) & (linear > 0)
    out = np.full(len(best), np.nan)
    out[ok] = np.abs(np.log(best[ok] / linear[ok]))
    return out


def members(results_dir):
    """One row per evaluated member of a cohort: {'lam', 'seed', 'degenerate',
    'median_lin_robustness', 'nonlinearity' (median over images), 'pointwise_r' (Pearson of
    rho_tilde and alignment)} as arrays, ordered by lambda."""
    _, table = cohort.read(results_dir)
    keep = np.flatnonzero(table["status"] == "evaluated")
    keep = keep[np.argsort(table["lam"][keep], kind="stable")]
    rows = {"lam": table["lam"][keep], "seed": table["seed"][keep],
            "degenerate": table["degenerate"][keep],
            "median_lin_robustness": table["median_lin_robustness"][keep],
            "nonlinearity": [], "pointwise_r": []}
    for run_dir in table["run_dir"][keep]:
        per_image = results.read_table(os.path.join(results_dir, run_dir, results.PER_IMAGE_CSV))
        if "rho_best" not in per_image:
            raise ValueError(f"{os.path.join(results_dir, run_dir)} has no rho_best: measure it "
                             "with at least one L2 attack (experiments.cohort --attacks=...)")
        rows["nonlinearity"].append(np.nanmedian(nonlinearity(per_image)))
        rows["pointwise_r"].append(stats.pearson(per_image["lin_robustness"],
                                                 per_image["alignment"]))
    rows["nonlinearity"] = np.asarray(rows["nonlinearity"], np.float64)
    rows["pointwise_r"] = np.asarray(rows["pointwise_r"], np.float64)
    return rows


# One claim, its verdict in the paper's words (verdicts.PAPER).
_row = verdicts.row


def _falls(claim, paper, x, y, name_x, name_y):
    """A 'y falls as x grows' claim by the trend rule on (x, -y)."""
    rho = stats.spearman(x, -np.asarray(y))
    interval = stats.spearman_interval(x, -np.asarray(y))
    n = int(np.sum(np.isfinite(x) & np.isfinite(y)))
    return _row(claim, paper, f"Spearman of {name_x} and -{name_y} {rho:.2f} [{interval[0]:.2f}, "
                f"{interval[1]:.2f}] over {n} models", verdicts.trend_rule(),
                stats.trend_verdict(rho, interval))


def _one_sided(larger, smaller):
    """p of a one-sided Mann-Whitney test that `larger` tends to exceed `smaller`."""
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(larger, smaller, alternative="greater").pvalue)


def check(results_dirs, names=None):
    """The conjecture's claims over cohort folders trained on the same data: a list of claim
    dicts (claim, paper, measured, rule, verdict), and the members of each cohort (members())."""
    names = names or [os.path.basename(os.path.normpath(d)) for d in results_dirs]
    found = [members(d) for d in results_dirs]
    paper = "Secs. 4.2, 5: 'the more linear the model is, the stronger the connection'"
    rows = []
    for name, m in zip(names, found):
        sound = ~m["degenerate"]
        rows.append(_falls(f"{name}: non-linearity falls as robustness grows",
                           "Sec. 5: the penalty 'increasingly restricts the models to be more "
                           "linear'", m["median_lin_robustness"][sound],
                           m["nonlinearity"][sound], "M[rho_tilde]", "non-linearity"))
    pooled = {k: np.concatenate([m[k][~m["degenerate"]] for m in found])
              for k in ("nonlinearity", "pointwise_r")}
    rows.append(_falls("the pointwise link (Fig. 4's r) weakens as non-linearity grows, the data "
                       "held fixed", paper, pooled["nonlinearity"], pooled["pointwise_r"],
                       "non-linearity", "r"))
    if len(found) == 2:
        sound = [(m["nonlinearity"][~m["degenerate"]], m["pointwise_r"][~m["degenerate"]])
                 for m in found]
        medians = [(np.nanmedian(n), np.nanmedian(r)) for n, r in sound]
        more, less = (0, 1) if medians[0][0] >= medians[1][0] else (1, 0)
        p_n = _one_sided(sound[more][0], sound[less][0])
        p_r = _one_sided(sound[less][1], sound[more][1])
        rows.append(_row(
            "the more non-linear network has the weaker pointwise link", paper + "; Fig. 4: "
            "none on ImageNet (deep), high on MNIST (shallow)",
            f"{names[more]}: non-linearity {medians[more][0]:.3f}, r {medians[more][1]:.2f}; "
            f"{names[less]}: {medians[less][0]:.3f}, r {medians[less][1]:.2f} (medians over "
            f"members; one-sided Mann-Whitney p {p_n:.2g} and {p_r:.2g})",
            f"reproduced if the cohort with the larger median non-linearity has the smaller "
            f"median r and both differences have p < {SIGNIFICANCE:g}; not reproduced if its r "
            "is the larger; else inconclusive",
            True if medians[more][1] < medians[less][1] and max(p_n, p_r) < SIGNIFICANCE
            else (False if medians[more][1] > medians[less][1] else stats.INCONCLUSIVE)))
    return rows, dict(zip(names, found))
