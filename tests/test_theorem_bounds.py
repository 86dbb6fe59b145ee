"""The bounds of Theorems 2-3 checked on saved tables: a violation counts only beyond round-off.
(That the bounds hold on real networks: test_metrics_theory.py and test_models_resnet_cifar.py.)"""

import numpy as np

from robust_saliency import theorem_bounds


def _table(lin_robustness, bound, x_term, grad_norm):
    n = len(lin_robustness)
    return {"lin_robustness": np.array(lin_robustness), "bound14": np.array(bound),
            "x_term_bin": np.array(x_term, float), "b_term_bin": np.full(n, 0.5),
            "grad_bin_norm": np.array(grad_norm, float)}


def test_the_slack_is_the_numerators_float32_precision_over_the_gradient_norm():
    r = _table([1, 1, 1], [1, 1, 1], x_term=[1.5, -3.5, 0.0], grad_norm=[2.0, 1.0, 0.0])
    slack = theorem_bounds.roundoff_slack(r)
    np.testing.assert_allclose(slack[:2], [1e-5 * 2.0 / 2.0, 1e-5 * 4.0])
    assert slack[2] == np.inf  # a zero gradient: rho_tilde is infinite, no bound can hold it
    r["b_term_bin"][2] = 0.0
    assert theorem_bounds.roundoff_slack(r)[2] == 0.0  # 0 / 0: no slack, not NaN


def test_a_violation_counts_only_beyond_the_round_off():
    r = _table([1.0 + 5e-6, 1.0 + 2e-5, 0.9], [1.0, 1.0, 1.0], x_term=[0.5, 0.5, 0.5],
               grad_norm=[1.0, 1.0, 1.0])  # slack 1e-5 each
    assert theorem_bounds.bound_violated(r, "bound14").tolist() == [False, True, False]
