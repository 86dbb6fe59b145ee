"""The linearity conjecture's measure and verdicts (robust_saliency.linearity)."""

import os

import numpy as np
import pytest
from helpers import write_cohort_json

from robust_saliency import attacks, linearity, metrics, models, results


def test_an_affine_classifier_measures_as_linear_and_a_bent_one_does_not():
    import keras

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (12, 6, 6, 1)).astype(np.float32)
    bounds = (-3.0, 4.0)  # the minimal adversarial stays inside the box
    affine = models.linear_classifier((6, 6, 1), 3)
    table = metrics.measure(affine, x)
    # FAB over all classes is exact on affine classifiers (tests/test_attacks_fab.py).
    table["rho_best"] = attacks.minimal_distance(affine, x, "fab", bounds)
    assert np.nanmax(linearity.nonlinearity(table)) < 1e-4
    # The same logits squared: rho_tilde (from the gradient at x) now misses the boundary.
    inputs = keras.Input((6, 6, 1))
    bent = keras.Model(inputs, keras.ops.square(affine(inputs)) + affine(inputs))
    table = metrics.measure(bent, x)
    table["rho_best"] = attacks.minimal_distance(bent, x, "fab", bounds)
    assert np.nanmedian(linearity.nonlinearity(table)) > 0.01  # 500x the affine one


def test_nonlinearity_leaves_out_distances_that_are_not_finite_and_positive():
    table = {"rho_best": np.array([1.0, np.inf, 0.0, 2.0]),
             "lin_robustness": np.array([np.e, 1.0, 1.0, np.nan])}
    out = linearity.nonlinearity(table)
    np.testing.assert_allclose(out[0], np.log(np.e), rtol=1e-12)
    assert np.isnan(out[1:]).all()


def _cohort(folder, scales, *, bend, correlated, rng, accuracy=None):
    """A hand-made cohort: member i has median rho_tilde scales[i], rho_best = rho_tilde *
    exp(bend[i]) per image, and alignment following rho_tilde (correlated) or not."""
    rows = {k: [] for k in ("member", "lam", "seed", "status", "run_dir", "accuracy",
                            "num_images", "median_lin_robustness")}
    for i, (scale, b) in enumerate(zip(scales, bend)):
        lin = rng.uniform(0.5, 1.5, 80) * scale
        alignment = lin + rng.normal(0, 0.05, 80) if correlated else rng.uniform(0, 2, 80)
        run_dir = f"m{i:02d}"
        results.write_table(os.path.join(folder, run_dir, results.PER_IMAGE_CSV),
                            {"index": np.arange(80), "lin_robustness": lin,
                             "alignment": alignment, "rho_best": lin * np.exp(b)})
        for key, value in (("member", i), ("lam", 10.0 ** i), ("seed", 0),
                           ("status", "evaluated"), ("run_dir", run_dir),
                           ("accuracy", 0.9 if accuracy is None else accuracy[i]),
                           ("num_images", 80), ("median_lin_robustness", np.median(lin))):
            rows[key].append(value)
    results.write_table(os.path.join(folder, results.COHORT_CSV), rows)
    write_cohort_json(folder, os.path.basename(folder), rows["lam"], dataset="fashion_mnist")
    return str(folder)


def _verdicts(rows):
    return {r["claim"]: r["verdict"] for r in rows}


def test_the_conjecture_reproduces_where_the_bent_network_loses_the_pointwise_link(tmp_path):
    rng = np.random.default_rng(1)
    scales = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5)
    deep = _cohort(tmp_path / "deep", scales, bend=np.linspace(0.5, 0.3, 6), correlated=False,
                   rng=rng)
    small = _cohort(tmp_path / "small", scales, bend=np.linspace(0.1, 0.02, 6),
                    correlated=True, rng=rng)
    rows, found = linearity.check([deep, small], ["deep", "small"])
    v = _verdicts(rows)
    assert v["deep: non-linearity falls as robustness grows"] == "reproduced"
    assert v["small: non-linearity falls as robustness grows"] == "reproduced"
    assert v["the pointwise link (Fig. 4's r) weakens as non-linearity grows, the data held "
             "fixed"] == "reproduced"
    assert v["the more non-linear network has the weaker pointwise link"] == "reproduced"
    np.testing.assert_allclose(found["deep"]["nonlinearity"], np.linspace(0.5, 0.3, 6))
    # The link reversed: the more non-linear cohort is the correlated one.
    small = _cohort(tmp_path / "small", scales, bend=np.linspace(0.1, 0.3, 6),
                    correlated=False, rng=rng)
    deep = _cohort(tmp_path / "deep", scales, bend=np.linspace(0.5, 0.7, 6), correlated=True,
                   rng=rng)
    v = _verdicts(linearity.check([deep, small], ["deep", "small"])[0])
    assert v["deep: non-linearity falls as robustness grows"] == "not reproduced"
    assert v["the more non-linear network has the weaker pointwise link"] == "not reproduced"
    assert v["the pointwise link (Fig. 4's r) weakens as non-linearity grows, the data held "
             "fixed"] == "not reproduced"


def test_degenerate_members_are_left_out_and_drawn(tmp_path):
    from robust_saliency.figures import linearity as figure

    rng = np.random.default_rng(2)
    scales = (1.0, 1.5, 2.0, 2.5)
    # The last member is degenerate (accuracy below half the least regularised one's) and
    # would break the trend; it must not count.
    deep = _cohort(tmp_path / "deep", scales, bend=[0.5, 0.4, 0.3, 2.0], correlated=False,
                   rng=rng, accuracy=[0.9, 0.9, 0.9, 0.2])
    rows, found = linearity.check([deep])
    assert found["deep"]["degenerate"].tolist() == [False, False, False, True]
    assert "over 3 models" in rows[0]["measured"]
    paths = figure.conjecture([deep], str(tmp_path / "fig"), found=found)
    assert all(os.path.getsize(p) > 0 for p in paths)


def test_a_cohort_without_rho_best_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(3)
    folder = _cohort(tmp_path / "c", (1.0, 2.0), bend=[0.1, 0.1], correlated=True, rng=rng)
    table = results.read_table(os.path.join(folder, "m00", results.PER_IMAGE_CSV))
    del table["rho_best"]
    results.write_table(os.path.join(folder, "m00", results.PER_IMAGE_CSV), table)
    with pytest.raises(ValueError, match="has no rho_best: measure it with at least one L2"):
        linearity.check([folder])


def test_side_by_side_sets_each_paper_figure_of_every_cohort_in_one_image(tmp_path):
    import matplotlib.pyplot as plt

    from robust_saliency.figures import linearity as figure

    for name, stems in (("a", ("fig02_alignment_robustness", "fig04_pointwise_alignment")),
                        ("b", ("fig02_alignment_robustness",))):
        os.makedirs(tmp_path / name)
        for stem in stems:
            plt.imsave(tmp_path / name / f"{stem}.png", np.zeros((400, 600, 3)))
    written = figure.side_by_side([str(tmp_path / "a"), str(tmp_path / "b")], ["A", "B"],
                                  str(tmp_path / "out"))
    # fig04 is missing from b: skipped, not drawn half.
    assert [os.path.basename(p) for p in written] == ["fig02_alignment_robustness_side_by_side.png"]
    height, width = plt.imread(written[0]).shape[:2]
    assert width > 2 * height  # two 600 x 400 panels side by side (one alone is 1.5 : 1)
