"""Claims about the explanation-quality metrics along a cohort, with rules fixed before any
cohort was measured with them (docs/explanations.md).

The paper's thesis is that robust models look more interpretable, measured by alignment alone;
its Section 3.3 warns that alignment and interpretability "should not be conflated completely".
For every metric of explanations.METRICS in a cohort's table (its plain-gradient column
`median_<metric>`, and `_smoothgrad` / `_ig` where measured), signed so that higher is better:
  * across the sound members, Spearman's correlation of its median with the median alignment
    and with the median rho_best, judged by the trend rule of the paper's claims
    (stats.trend_verdict): "agrees" (it improves along with them), "disagrees" (its interval
    lies below the threshold), else "inconclusive";
  * within a model, Pearson's correlation over the images of the metric with the alignment, on
    the least and the most robust sound members (cohort.extremes), reported, not judged.
A table without these columns gives no rows.
"""

import os

import numpy as np

from robust_saliency import cohort, explanations, results, stats, verdicts

VARIANTS = (("", "gradient"), ("_smoothgrad", "SmoothGrad"), ("_ig", "IG"))
_PAPER = "not in the paper (Section 3.3: alignment and interpretability not to be conflated)"
RULE = (verdicts.trend_rule(words=verdicts.EXPLANATIONS)
        + " (the metric signed so that better is higher)")


def _row(claim, measured, rule, holds):
    return verdicts.row(claim, _PAPER, measured, rule, holds, verdicts.EXPLANATIONS)


def rows(results_dir, table, sound):
    """The explanation claims of a cohort folder's `table` (cohort.read), over the members where
    `sound` (evaluated and not degenerate) is set; [] without explanation columns."""
    found = []
    axes = [("alignment", "median_alignment"), ("rho_best", "median_rho_best")]
    members = {k: np.asarray(v)[sound] for k, v in table.items()}
    for name, metric in explanations.METRICS.items():
        sign = 1.0 if metric.higher_is_better else -1.0
        better = "higher" if metric.higher_is_better else "lower"
        for suffix, maps in VARIANTS:
            column = f"median_{name}{suffix}"
            if column not in table:
                continue
            values = sign * members[column]
            for label, axis in axes:
                if axis not in table:
                    continue
                rho = stats.spearman(members[axis], values)
                low, high = stats.spearman_interval(members[axis], values)
                n = int(np.sum(np.isfinite(members[axis]) & np.isfinite(values)))
                found.append(_row(
                    f"{name} ({maps} maps) improves with median {label}",
                    f"Spearman {rho:.2f} [{low:.2f}, {high:.2f}] over {n} models ({better} "
                    "is better)",
                    RULE,
                    stats.trend_verdict(rho, (low, high))))
            found.append(_pointwise_row(results_dir, members, f"{name}{suffix}", maps, sign))
    return [r for r in found if r is not None]


def _pointwise_row(results_dir, members, column, maps, sign):
    if not len(members["member"]):
        return None
    least, most = cohort.extremes(members)
    parts = []
    for label, position in (("least robust", least), ("most robust", most)):
        path = os.path.join(results_dir, str(members["run_dir"][position]),
                            results.PER_IMAGE_CSV)
        image = results.read_table(path)
        if column not in image:
            return None
        r = stats.pearson(sign * image[column], image["alignment"])
        parts.append(f"{label} (lambda={members['lam'][position]:g}) {r:.2f}")
    return _row(f"pointwise {column} vs alignment correlation ({maps} maps)",
                "Pearson r over the images, metric signed so that better is higher: "
                + ", ".join(parts), "reported, not judged", None)
