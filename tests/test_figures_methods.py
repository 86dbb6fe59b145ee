"""robust_saliency.figures.methods: the legend of the cross-method figure (the figure drawn
from real method cohorts: test_methods.py)."""

import numpy as np

from robust_saliency.figures import methods


def test_methods_legend_names_the_members_a_curve_leaves_out():
    curve = {"label": "PGD", "band": "seed range (3 seeds per lambda)",
             "degenerate": np.array([2.0, 2.0, 0.5])}
    assert methods._legend_label(curve) == (
        "PGD (bars: seed range (3 seeds per lambda); left out as degenerate: 0.5, 2 (2 seeds))")
    assert methods._legend_label({"label": "L1", "band": "", "degenerate": np.array([])}) \
        == "L1"
