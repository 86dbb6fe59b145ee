"""robust_saliency.method_comparison on hand-made curves: matched alignment over the common
robustness range, seed ranges deciding a lead, methods without a common range, bad input (the
comparison of real method cohorts end to end: test_methods.py)."""

import numpy as np
import pytest

from robust_saliency import method_comparison


def _curve(label, robustness, alignment, shift=0.0):
    """A method's curve as method_comparison.curves gives it, from two seeds per lambda: seed 1's
    alignment is seed 0's plus `shift`, so the seed range is `shift` wide."""
    robustness, alignment = np.array(robustness, float), np.array(alignment, float)
    lam = np.arange(len(robustness), dtype=float)
    members = {"lam": np.repeat(lam, 2), "seed": np.tile([0, 1], len(lam)),
               "median_rho_bim": np.repeat(robustness, 2),
               "median_alignment": np.ravel(np.c_[alignment, alignment + shift])}
    return {"label": label, "lam": lam, "median_rho_bim": robustness,
            "alignment": alignment + shift / 2, "members": members,
            "band": "seed range (2 seeds per lambda)"}


def test_matched_alignment_interpolates_over_the_common_range():
    a = _curve("a", [1.0, 2.0, 4.0], [1.0, 2.0, 3.0])
    b = _curve("b", [4.0, 0.5, 2.0], [5.0, 1.0, 4.0])  # unsorted on purpose
    grid, values = method_comparison.matched_alignment([a, b], points=3)
    np.testing.assert_allclose(grid, [1.0, 2.0, 4.0])
    np.testing.assert_allclose(values["a"], [1.0, 2.0, 3.0])
    # b at 1.0: halfway between (0.5, 1) and (2, 4) in log robustness.
    np.testing.assert_allclose(values["b"], [2.5, 4.0, 5.0])
    # Each seed's own curve: a's mean matched alignment is 2.0, b's 3.83.
    np.testing.assert_allclose(method_comparison.matched_interval(a, grid), (2.0, 2.0))
    rows = method_comparison.check([a, b])
    # Seed ranges of zero width do not overlap: b leads decidedly.
    assert rows[-1]["verdict"] == "b"
    falling = method_comparison.check([_curve("c", [1, 2, 3, 4], [4, 3, 2, 1])])
    assert falling[0]["verdict"] == "no"
    rising = method_comparison.check([_curve("c", [1, 2, 3, 4, 5], [1, 2, 3, 4, 5])])
    assert rising[0]["verdict"] == "yes"


def test_a_lead_inside_the_seed_range_is_inconclusive():
    a = _curve("a", [1.0, 2.0, 4.0], [1.0, 2.0, 3.0], shift=1.0)  # seed range a..a+1
    b = _curve("b", [1.0, 2.0, 4.0], [1.3, 2.3, 3.3])
    rows = method_comparison.check([a, b])
    assert rows[-1]["verdict"] == "inconclusive"
    assert rows[-1]["measured"].startswith("a (2.50 [2.00, 3.00]) > b (2.30 [2.30, 2.30])")


def test_methods_without_a_common_robustness_range_are_not_ranked():
    rows = method_comparison.check([_curve("a", [1, 2, 3], [1, 2, 3]),
                                    _curve("b", [5, 6, 7], [1, 2, 3])])
    assert rows[-1]["verdict"] == "n/a"
    assert "do not overlap" in rows[-1]["measured"]


def test_unknown_robustness_column_is_refused():
    with pytest.raises(ValueError, match="unknown robustness column"):
        method_comparison.curves([], ("median_rho_bim", "median_rho_pgd"))
