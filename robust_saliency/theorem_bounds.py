"""The bounds of Theorems 2-3 checked on measured tables, within float round-off.

NumPy only (no TensorFlow), so the claims and the figures check them on saved per-image tables.
"""

import numpy as np


def bound_violated(r, bound):
    """Per image, whether rho_tilde exceeds column `bound` by more than round-off.

    Args:
      r: dict or table with lin_robustness, `bound` and roundoff_slack's columns.
      bound: 'bound14', 'bound15', 'bound16' or 'bound16_printed'.
    """
    return r["lin_robustness"] > r[bound] + roundoff_slack(r)


def roundoff_slack(r, rtol=1e-5):
    """Per image, the round-off scale within which rho_tilde may exceed a bound.

    rho_tilde and the bounds are quotients of Psi_dagger = <x, g_dagger> + beta_dagger by
    ||g_dagger||; in float32 the numerator carries an error of order rtol times the size of its
    parts, so a "violation" smaller than this is arithmetic, not mathematics.

    Args:
      r: dict or table with x_term_bin, b_term_bin and grad_bin_norm columns.
      rtol: relative precision of the numerator (1e-5 suits float32).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        slack = rtol * (np.abs(r["x_term_bin"]) + np.abs(r["b_term_bin"])) / r["grad_bin_norm"]
    return np.where(np.isnan(slack), 0.0, slack)
