"""The summary of a per-image table: medians without the excluded distances, and the exact
robust-accuracy curve."""

import numpy as np

from robust_saliency import table_summary


def test_robust_accuracy_is_the_exact_step_function():
    table = {"label": np.zeros(4), "correct": np.array([1, 1, 0, 1]),
             "rho_cw": np.array([0.5, 2.0, 1.0, np.inf])}
    curve = table_summary.robust_accuracy(table)
    np.testing.assert_array_equal(curve["epsilon"], [0.0, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(curve["robust_accuracy_cw"], [0.75, 0.5, 0.5, 0.25])


def test_summary_excludes_zero_and_inf_distances():
    table = {"label": np.zeros(5), "correct": np.ones(5),
             "rho_bim": np.array([0.0, 1.0, 2.0, 3.0, np.inf])}
    summary = table_summary.summarize(table)
    assert summary["medians"]["rho_bim"] == 2.0
    assert summary["excluded"]["rho_bim"] == {"already_adversarial": 1, "not_found": 1}
