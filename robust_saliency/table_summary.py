"""From a per-image table to its summary: the medians of every column with their bootstrap
intervals (summary.json) and the exact robust-accuracy curves (robust_accuracy.csv)."""

from __future__ import annotations

from typing import Any

import numpy as np

from robust_saliency import results, stats

# Class indices and flags: their medians mean nothing.
CATEGORICAL = ("index", "label", "correct", "pred", "runner_up", "pred_xi")


def _rho_columns(table):
    return [k for k in table if k.startswith("rho_")]


def summarize(table: dict[str, np.ndarray], *,
              meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Medians of every numeric column with their bootstrap intervals over the images
    (stats.median_interval), accuracy, and what each robustness median excluded.

    As in the paper, an attack distance of 0 (the image is already misclassified w.r.t. the
    attacked label) and +inf (no adversarial found) are dropped from that column's median and
    counted under `excluded`.
    """
    medians, excluded, intervals = {}, {}, {}
    for key, column in table.items():
        if key in CATEGORICAL or column.dtype.kind not in "iuf":
            continue
        values = column.astype(np.float64)
        if key.startswith("rho_"):
            zero, missing = values == 0, ~np.isfinite(values)
            excluded[key] = {"already_adversarial": int(zero.sum()),
                             "not_found": int(missing.sum())}
            values = values[~zero & ~missing]
        medians[key] = float(np.median(values)) if len(values) else float("nan")
        intervals[key] = list(stats.median_interval(values))
    return {**(meta or {}), "num_images": int(len(table["label"])),
            "accuracy": float(np.mean(table["correct"])), "medians": medians,
            "median_intervals": intervals, "confidence": stats.CONFIDENCE, "excluded": excluded}


def robust_accuracy(table: dict[str, np.ndarray], norm: float = 2) -> dict[str, np.ndarray]:
    """Accuracy under a budget eps in `norm` (2 or np.inf), exactly, at every eps where it
    changes, for each of the table's rho columns in that norm.

    An image counts at budget eps when it is classified correctly and its minimal perturbation
    is larger than eps; between breakpoints the curve is constant.
    """
    columns = [c for c in _rho_columns(table) if results.is_linf(c) == (norm == np.inf)]
    correct = table["correct"].astype(bool)
    finite = np.concatenate([table[c][np.isfinite(table[c])] for c in columns] or [[]])
    eps = np.unique(np.concatenate([[0.0], finite]))
    out = {"epsilon": eps}
    for c in columns:
        robust = stats.robust_at(correct, table[c], eps)
        out["robust_accuracy_" + c[len("rho_"):]] = robust.mean(axis=0)
    return out
