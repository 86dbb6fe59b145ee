"""robust_saliency.cohort_tables: the per-model and per-lambda Markdown tables of a cohort."""

import numpy as np
from helpers import cohort_member, write_hand_cohort

from robust_saliency import cohort, cohort_tables


def test_cohort_markdown_lists_every_member(tmp_path):
    rng = np.random.default_rng(3)
    write_hand_cohort(tmp_path,
                      [cohort_member(rng, 10, scale=s, correlated=True) for s in (1.0, 2.0)])
    _, table = cohort.read(str(tmp_path))
    md = cohort_tables.cohort_markdown(table)
    assert md.splitlines()[0].startswith("| lambda | status | accuracy | M[alpha]")
    assert "| 1 | evaluated | 0.900 |" in md and "| 10 | evaluated |" in md


def test_cohort_markdown_names_the_seed_where_there_are_several():
    table = {"lam": np.array([10.0, 10.0]), "seed": np.array([0, 1]),
             "status": np.array(["evaluated", "evaluated"]), "accuracy": np.array([0.9, 0.8])}
    md = cohort_tables.cohort_markdown(table).splitlines()
    assert md[0] == "| lambda | seed | status | accuracy |"
    assert md[2:] == ["| 10 | 0 | evaluated | 0.900 |", "| 10 | 1 | evaluated | 0.800 |"]
    table["seed"] = np.array([0, 0])
    assert cohort_tables.cohort_markdown(table).splitlines()[0] == "| lambda | status | accuracy |"


def test_seed_spread_gives_each_lambdas_median_and_range_over_its_evaluated_seeds():
    table = {"lam": np.repeat([10.0, 100.0], 3), "seed": np.tile([0, 1, 2], 2),
             "status": np.array(["evaluated"] * 5 + ["trained"]),
             "degenerate": np.array([0, 0, 0, 0, 1, 0], bool),
             "accuracy": np.array([0.9, 0.8, 0.85, 0.9, 0.1, np.nan]),
             "median_rho_bim": np.array([1.0, 3.0, 2.0, 2.5, np.nan, 9.0])}
    md = cohort_tables.seed_spread_markdown(table).splitlines()
    assert md[2] == "| lambda | seeds | accuracy | M[rho] BIM |"
    assert md[4] == "| 10 | 3 | 0.850 (0.800-0.900) | 2.000 (1.000-3.000) |"
    # The trained seed is not counted; the collapsed seed's undefined distance is left out.
    assert md[5] == "| 100 | 2 (1 degenerate) | 0.500 (0.100-0.900) | 2.500 |"
    table["seed"] = np.zeros(6, int)
    assert cohort_tables.seed_spread_markdown(table) == ""
