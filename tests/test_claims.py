"""The claims module's verdicts on hand-made results with known answers."""

import os

import numpy as np
import pytest
from helpers import cohort_member, write_hand_cohort

from robust_saliency import claims, cohort, cohort_tables, results


def _verdicts(folder):
    return {r["claim"]: r["verdict"] for r in claims.check(str(folder))}


def test_known_answers(tmp_path):
    rng = np.random.default_rng(0)
    # The linear share is 1 below M[rho_tilde] = 2.4 and 0.3 beyond it: the MNIST Fig. 9.
    members = [cohort_member(rng, 50, scale=s, correlated=True,
                             linear_share=1.0 if s < 2.4 else 0.3)
               for s in (1.0, 2.0, 3.0, 4.0)]
    write_hand_cohort(tmp_path, members)
    v = _verdicts(tmp_path)
    assert v["median alignment rises with median robustness (CW)"] == "reproduced"
    assert v["max(CW, BIM) <= gradient attack medians"] == "reproduced"
    assert v["CW vs BIM attack medians"] == "n/a"
    assert v["pointwise lin_robustness vs rho_cw correlation"] == "reproduced"
    assert v["pointwise lin_robustness vs alignment correlation"] == "reproduced"
    assert v["rho_tilde <= right-hand side of (14)"] == "reproduced"
    assert v["share of alignment_bin in the right-hand side of (18)"] == "reproduced"
    assert v["share of alignment in the right-hand side of (19)"] == "reproduced"
    assert v["share of alignment_xi in the right-hand side of (20)"] == "reproduced"
    assert v["M|<x, g_dagger>| / M|Psi_dagger| near 1, then falling below 0.5"] == "reproduced"
    rows = {r["claim"]: r for r in claims.check(str(tmp_path))}
    assert rows["rho_tilde <= (16) as printed (g_bar in place of gamma_bar)"]["measured"] \
        .startswith("200 violations")
    assert rows["CW vs BIM attack medians"]["measured"].startswith("CW <= BIM on 4 of 4")


def test_saturation_is_judged_on_the_thirds_of_the_robustness_range(tmp_path):
    rng = np.random.default_rng(4)
    scales = (1.0, 1.5, 2.0, 3.0, 3.5, 4.0)
    members = [cohort_member(rng, 40, scale=s, correlated=True) for s in scales]
    robustness = [np.median(m["rho_cw"]) for m in members]
    # Concave, but the top third's slope is 0.65 of the bottom's: not flat enough to count.
    write_hand_cohort(tmp_path, members, alignment=np.sqrt(robustness))
    v = _verdicts(tmp_path)
    assert v["median alignment saturates for the most robust models"] == "not reproduced"
    write_hand_cohort(tmp_path, members, alignment=np.minimum(robustness, 3.0))  # flat at the top
    row = {r["claim"]: r for r in claims.check(str(tmp_path))}[
        "median alignment saturates for the most robust models"]
    assert row["verdict"] == "reproduced" and "over the top third (3 models)" in row["measured"]
    write_hand_cohort(tmp_path, members[:3], alignment=robustness[:3])  # too few to judge
    assert _verdicts(tmp_path)["median alignment saturates for the most robust models"] == "n/a"


def test_fig9_knee_is_not_judged_when_no_model_reaches_it(tmp_path):
    rng = np.random.default_rng(5)
    write_hand_cohort(tmp_path, [cohort_member(rng, 30, scale=s, correlated=True,
                                               linear_share=1.0)
                                 for s in (1.0, 1.5, 2.0)])
    row = {r["claim"]: r for r in claims.check(str(tmp_path))}[
        "M|<x, g_dagger>| / M|Psi_dagger| near 1, then falling below 0.5"]
    assert row["verdict"] == "n/a" and "no model reaches M[rho_tilde] 2.4" in row["measured"]


def test_known_failures(tmp_path):
    rng = np.random.default_rng(1)
    members = [cohort_member(rng, 50, scale=s, correlated=False) for s in (1.0, 2.0, 3.0)]
    members[1]["rho_cw"] = members[1]["rho_gradient"] * 2  # CW worse than gradient
    members[2]["bound14"] = members[2]["lin_robustness"] * 0.5  # a violated theorem
    members[0]["rho_cw"] = rng.permutation(members[0]["rho_cw"])
    for m in members:
        m["rho_cw"] = rng.permutation(m["rho_cw"])
    write_hand_cohort(tmp_path, members)
    v = _verdicts(tmp_path)
    assert v["max(CW, BIM) <= gradient attack medians"] == "not reproduced"
    # The most robust model's (18) share is 0.9 / 0.5 = 1.8: it rises instead of falling.
    assert v["share of alignment_bin in the right-hand side of (18)"] == "not reproduced"
    assert v["pointwise lin_robustness vs rho_cw correlation"] == "not reproduced"
    assert v["pointwise lin_robustness vs alignment correlation"] == "not reproduced"
    assert v["rho_tilde <= right-hand side of (14)"] == "not reproduced"


def test_imagenet_expectations_flip(tmp_path):
    rng = np.random.default_rng(2)
    # Six models, so that a trend's bootstrap interval is defined (three give 'inconclusive').
    members = [cohort_member(rng, 50, scale=s, correlated=False) for s in (1.0, 2, 3, 4, 5, 6)]
    write_hand_cohort(tmp_path, members, dataset="imagenet")
    v = _verdicts(tmp_path)
    assert v["pointwise lin_robustness vs alignment correlation"] == "reproduced"
    assert v["M|<x, g_dagger>| / M|Psi_dagger| vs robustness"] == "not reproduced"
    assert "median alignment saturates for the most robust models" not in v
    write_hand_cohort(tmp_path, members[:3], dataset="imagenet")
    assert _verdicts(tmp_path)["M|<x, g_dagger>| / M|Psi_dagger| vs robustness"] == \
        "inconclusive"


def test_a_deep_network_is_judged_by_the_imagenet_statements_on_any_data(tmp_path):
    rng = np.random.default_rng(7)
    scales = (1.0, 1.3, 1.6, 3.4, 3.7, 4.0)  # two thirds of the range, 3 models in each
    members = [cohort_member(rng, 60, scale=s, correlated=False) for s in scales]
    for m, s in zip(members, scales):  # the shares in (19) and (20) rise with robustness
        m["bound15"], m["bound16"] = m["alignment"] * (5 / s), m["alignment_xi"] * (4 / s)
    robustness = np.array([np.median(m["rho_cw"]) for m in members])
    write_hand_cohort(tmp_path, members, alignment=robustness ** 2, model="resnet_cifar")
    v = _verdicts(tmp_path)
    assert "median alignment saturates for the most robust models" not in v
    assert v["median alignment grows faster than linearly with median robustness"] == \
        "reproduced"
    assert v["pointwise lin_robustness vs alignment correlation"] == "reproduced"  # none
    assert v["share of alignment in the right-hand side of (19) vs robustness"] == "reproduced"
    assert v["share of alignment_xi in the right-hand side of (20) vs robustness"] == \
        "reproduced"
    assert v["M[<x, g_bar>] near 0, so M[alpha] is a dispersion"] == "reproduced"
    for m in members:  # <x, g_bar> all positive: M[alpha] is its median, not a dispersion
        m["x_term_pred"] = np.abs(m["x_term_pred"])
    write_hand_cohort(tmp_path, members, alignment=np.sqrt(robustness), model="resnet_cifar")
    v = _verdicts(tmp_path)
    assert v["median alignment grows faster than linearly with median robustness"] == \
        "not reproduced"
    assert v["M[<x, g_bar>] near 0, so M[alpha] is a dispersion"] == "not reproduced"
    # The same results from the shallow network: the MNIST statements.
    write_hand_cohort(tmp_path, members, alignment=np.sqrt(robustness), model="small_net")
    v = _verdicts(tmp_path)
    assert "median alignment saturates for the most robust models" in v
    assert "median alignment grows faster than linearly with median robustness" not in v
    assert "M[<x, g_bar>] near 0, so M[alpha] is a dispersion" not in v


def test_trend_verdicts_follow_the_interval():
    assert claims.trend_verdict(0.9, (0.4, 1.0)) is True
    assert claims.trend_verdict(0.9, (-0.1, 1.0)) == "inconclusive"  # no evidence of a rise
    assert claims.trend_verdict(0.5, (0.1, 0.8)) == "inconclusive"  # below the threshold
    assert claims.trend_verdict(0.3, (0.1, 0.55)) is False  # the interval excludes 0.6
    assert claims.trend_verdict(float("nan"), (0.0, 1.0)) is None


def test_attack_order_is_decided_only_where_intervals_separate(tmp_path):
    rng = np.random.default_rng(6)
    members = [cohort_member(rng, 50, scale=s, correlated=True) for s in (1.0, 2.0, 3.0)]
    write_hand_cohort(tmp_path, members)
    table = results.read_table(os.path.join(tmp_path, results.COHORT_CSV))
    for m in ("cw", "bim", "gradient"):  # intervals of +-5%: separated (1.1, 1.2 vs 1.5)
        table[f"{cohort.CI_LOW}median_rho_{m}"] = table[f"median_rho_{m}"] * 0.95
        table[f"{cohort.CI_HIGH}median_rho_{m}"] = table[f"median_rho_{m}"] * 1.05
    results.write_table(os.path.join(tmp_path, results.COHORT_CSV), table)
    assert _verdicts(tmp_path)["max(CW, BIM) <= gradient attack medians"] == "reproduced"
    table[f"{cohort.CI_HIGH}median_rho_bim"] = table["median_rho_gradient"] * 1.2  # overlap
    results.write_table(os.path.join(tmp_path, results.COHORT_CSV), table)
    row = {r["claim"]: r for r in claims.check(str(tmp_path))}[
        "max(CW, BIM) <= gradient attack medians"]
    assert row["verdict"] == "inconclusive"
    assert row["measured"].startswith("below on 0 of 3 models, above on 0, undecided on 3")


def test_markdown_escapes_pipes():
    md = claims.to_markdown([{"claim": "M|x|", "paper": "p", "measured": "m", "rule": "r",
                              "verdict": "n/a"}], "t")
    assert "M\\|x\\|" in md and md.count("\n| ") == 2


def test_missing_results_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="cohort.json not found"):
        claims.check(str(tmp_path))


def test_degenerate_rule_against_the_least_regularised_median():
    # Reference: the median accuracy of lambda 10's two seeds, 0.97; the line is 0.9 x 0.97.
    table = {"status": np.array(["evaluated"] * 5 + ["trained"]),
             "lam": np.array([10.0, 10.0, 100.0, 1e3, 1e4, 1e5]),
             "accuracy": np.array([0.98, 0.96, 0.874, 0.872, 0.2, np.nan])}
    np.testing.assert_array_equal(cohort.degenerate(table),
                                  [False, False, False, True, True, False])
    # Without an evaluated member at the smallest lambda there is no reference: none flagged.
    table["status"][:2] = "trained"
    assert not cohort.degenerate(table).any()


def test_degenerate_members_are_named_and_left_out_of_model_level_claims(tmp_path):
    rng = np.random.default_rng(0)
    members = [cohort_member(rng, 50, scale=s, correlated=True) for s in (1.0, 2.0, 3.0, 4.0, 5.0)]
    # The collapsed top model has the lowest alignment: counted in, the trend would fail.
    alignment = [1.0, 2.0, 3.0, 4.0, 0.5]
    write_hand_cohort(tmp_path, members, alignment=alignment,
                      accuracy=[0.98, 0.97, 0.97, 0.96, 0.5])
    rows = {r["claim"]: r for r in claims.check(str(tmp_path))}
    note = rows["degenerate models left out of the model-level claims"]
    assert note["verdict"] == "n/a" and "lambda=10000 (accuracy 0.500)" in note["measured"]
    trend = rows["median alignment rises with median robustness (CW)"]
    assert trend["verdict"] == "reproduced" and "over 4 models" in trend["measured"]
    # The theorems' bounds still cover every image of every model.
    assert rows["rho_tilde <= right-hand side of (14)"]["measured"].endswith("in 250 images")
    _, table = cohort.read(str(tmp_path))
    np.testing.assert_array_equal(table["degenerate"], [False] * 4 + [True])
    assert "evaluated (degenerate)" in cohort_tables.cohort_markdown(table)
    # Without the rule the same cohort fails the trend claim (the test can tell the difference).
    write_hand_cohort(tmp_path, members, alignment=alignment, accuracy=[0.98] * 5)
    assert _verdicts(tmp_path)["median alignment rises with median robustness (CW)"] != \
        "reproduced"


def test_least_and_most_robust_picks_skip_degenerate_models(tmp_path, monkeypatch):
    from robust_saliency import figure_inputs, plotting

    rng = np.random.default_rng(1)
    members = [cohort_member(rng, 20, scale=s, correlated=True) for s in (2.0, 1.0, 3.0, 0.5)]
    write_hand_cohort(tmp_path, members, accuracy=[0.98, 0.97, 0.96, 0.3])
    _, loaded = figure_inputs.load(str(tmp_path))
    least, most = cohort.extremes(loaded)
    assert loaded["lam"][least] == 10.0 and loaded["lam"][most] == 100.0  # not 1000 (collapsed)
    figures = []
    monkeypatch.setattr(plotting, "save", lambda fig, out_dir, stem: figures.append(fig) or [])
    plotting.alignment_vs_robustness(str(tmp_path), str(tmp_path), "fig03")
    _, labels = figures[0].axes[0].get_legend_handles_labels()
    assert any(label.startswith("degenerate") for label in labels)


def test_explanation_metric_claims_follow_their_direction(tmp_path):
    rng = np.random.default_rng(4)
    members = [cohort_member(rng, 40, scale=s, correlated=True) for s in (1.0, 1.5, 2.0, 2.5, 3.0)]
    for m in members:
        # Per image: sparseness tracks alignment; complexity (lower is better) too, inverted.
        m["sparseness"] = 0.1 * m["alignment"] + rng.normal(0, 0.01, 40)
        m["complexity"] = 5.0 - 0.1 * m["alignment"]
    write_hand_cohort(tmp_path, members)
    path = os.path.join(tmp_path, results.COHORT_CSV)
    table = results.read_table(path)
    align = table["median_alignment"]
    table["median_sparseness"] = 0.1 * align           # better along with alignment
    table["median_complexity"] = 5.0 - 0.1 * align      # lower is better: better too
    table["median_deletion"] = 10.0 - align             # higher is better: worse
    table["median_relevance_mass"] = np.array([0.5, 0.7, 0.4, 0.6, 0.5])  # no trend
    results.write_table(path, table)
    v = _verdicts(tmp_path)
    assert v["sparseness (gradient maps) improves with median alignment"] == "agrees"
    assert v["complexity (gradient maps) improves with median alignment"] == "agrees"
    assert v["deletion (gradient maps) improves with median alignment"] == "disagrees"
    assert v["relevance_mass (gradient maps) improves with median alignment"] in (
        "inconclusive", "disagrees")
    rows = {r["claim"]: r for r in claims.check(str(tmp_path))}
    pointwise = rows["pointwise complexity vs alignment correlation (gradient maps)"]
    assert "least robust (lambda=1) 1.00" in pointwise["measured"]  # signed: better = higher
    assert "pointwise deletion vs alignment correlation (gradient maps)" not in rows  # no column
    # Without explanation columns a cohort's claims are the paper's alone.
    write_hand_cohort(tmp_path / "plain", members)
    assert not any("improves with" in c for c in _verdicts(tmp_path / "plain"))
