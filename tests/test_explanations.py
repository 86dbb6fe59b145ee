"""Explanation-quality metrics: known answers, compiled against eager, batch-size invariance,
bad input."""

import numpy as np
import pytest
from helpers import randomize_biases

from robust_saliency import explanation_inputs, explanations, metrics, models


def _linear(rng):
    return randomize_biases(models.linear_classifier(dtype="float64"), rng, scale=0.5)


def _images(rng, n=6):
    x = rng.uniform(0, 1, (n, 28, 28, 1))
    x[rng.uniform(size=x.shape) < 0.5] = 0.0
    return x


def test_sparseness_of_one_hot_and_constant_maps(rng):
    x = _images(rng, 2)
    one_hot = np.zeros_like(x)
    one_hot[:, 3, 4, 0] = 2.5
    n = 28 * 28
    r = explanations.measure(None, x, one_hot, metrics=["sparseness", "complexity"])
    np.testing.assert_allclose(r["sparseness"], (n - 1) / n, rtol=1e-12)
    np.testing.assert_allclose(r["complexity"], 0.0, atol=1e-12)
    r = explanations.measure(None, x, np.full_like(x, -0.3), metrics=["sparseness", "complexity"])
    np.testing.assert_allclose(r["sparseness"], 0.0, atol=1e-12)
    np.testing.assert_allclose(r["complexity"], np.log(n), rtol=1e-12)


def test_relevance_mass_and_rank_on_and_off_the_mask(rng):
    x = _images(rng, 3)
    mask = (x > 0.5).astype(np.float64)
    on = explanations.measure(None, x, mask * rng.uniform(0.1, 1, x.shape),
                              metrics=["relevance_mass", "relevance_rank"])
    np.testing.assert_allclose(on["relevance_mass"], 1.0)
    np.testing.assert_allclose(on["relevance_rank"], 1.0)
    off = explanations.measure(None, x, 1.0 - mask, metrics=["relevance_mass", "relevance_rank"])
    np.testing.assert_allclose(off["relevance_mass"], 0.0)
    np.testing.assert_allclose(off["relevance_rank"], 0.0)


def test_an_empty_mask_and_a_zero_map_are_undefined_not_zero(rng):
    x = _images(rng, 3)
    x[1] = 0.2  # no pixel above mid-range: no object
    maps = rng.normal(size=x.shape)
    maps[2] = 0.0
    r = explanations.measure(None, x, maps, metrics=["relevance_mass", "relevance_rank",
                                                "sparseness", "complexity"])
    assert np.isnan(r["relevance_mass"][1]) and np.isnan(r["relevance_rank"][1])
    assert np.isnan(r["relevance_mass"][2]) and np.isnan(r["sparseness"][2])
    assert np.isnan(r["complexity"][2])
    assert np.isfinite(r["relevance_mass"][0])
    assert explanations.undefined(r["relevance_mass"]) == 2


def test_deletion_on_a_linear_model_follows_the_analytic_curve(rng):
    model = _linear(rng)
    x = _images(rng)
    logits = np.asarray(model(x))
    pred = logits.argmax(axis=1)
    w = np.asarray(model.get_layer("logits").kernel)[:, pred].T  # (N, D): the gradient maps
    maps = w.reshape(x.shape)
    steps = explanations.Deletion.steps
    got = explanations.measure(model, x, maps, metrics=["deletion", "insertion"])
    order = np.argsort(-w, axis=1, kind="stable")
    flat = x.reshape(len(x), -1)
    counts = np.round(np.linspace(0, flat.shape[1], steps + 1)).astype(int)
    # Setting pixel i to 0 lowers Psi^c by w_i x_i: the curve is the running sum in that order.
    contrib = np.take_along_axis(w * flat, order, axis=1)
    drops = np.stack([contrib[:, :c].sum(axis=1) for c in counts], axis=1)
    np.testing.assert_allclose(got["deletion"], drops.mean(axis=1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got["insertion"], drops.mean(axis=1), rtol=1e-10, atol=1e-12)


def test_map_compared_with_itself_and_an_independent_class(rng):
    model = _linear(rng)
    x = _images(rng)
    g = metrics.measure(model, x, return_maps=True)["grad_pred"]
    r = explanations.measure(model, x, metrics=["random_logit", "max_sensitivity",
                                                "faithfulness_correlation"])
    # A linear model's gradient does not move: zero sensitivity.
    np.testing.assert_allclose(r["max_sensitivity"], 0.0, atol=1e-12)
    # Deleting a subset lowers Psi^c by exactly sum_S w_i x_i, not sum_S w_i: correlated, < 1.
    assert np.all(r["faithfulness_correlation"] > 0)
    assert np.all(np.abs(r["random_logit"]) < 1)
    same = explanation_inputs.rank_correlations(np.abs(g.reshape(len(g), -1)),
                                                np.abs(g.reshape(len(g), -1)))
    np.testing.assert_allclose(same, 1.0)


@pytest.mark.slow
def test_compiled_equals_eager_and_batch_size_changes_nothing(rng, trained_small_net):
    x = _images(rng, 7).astype("float32")
    g = metrics.measure(trained_small_net, x, return_maps=True)["grad_pred"]
    names = sorted(explanations.METRICS)
    compiled = explanations.measure(trained_small_net, x, batch_size=3)
    eager = explanations.measure(trained_small_net, x, batch_size=3, compiled=False)
    whole = explanations.measure(trained_small_net, x, batch_size=100)
    given = explanations.measure(trained_small_net, x, g, batch_size=3)
    assert sorted(given) == sorted(explanations.MAP_METRICS)
    for name in given:  # the gradient passed as maps scores as the gradient computed
        np.testing.assert_allclose(given[name], compiled[name], rtol=1e-5, atol=1e-6)
    assert sorted(compiled) == names
    for name in names:
        np.testing.assert_allclose(eager[name], compiled[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)
        np.testing.assert_allclose(whole[name], compiled[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    # The trained net's gradient depends on its weights: randomising them decorrelates it.
    assert np.median(compiled["randomisation"]) < 0.9


def test_bad_input_names_the_problem(rng):
    x = _images(rng, 2)
    maps = rng.normal(size=x.shape)
    with pytest.raises(ValueError, match="unknown explanation metrics"):
        explanations.measure(None, x, maps, metrics=["sparsity"])
    with pytest.raises(ValueError, match="call the model: pass it as the first argument"):
        explanations.measure(None, x, maps, metrics=["deletion"])
    with pytest.raises(ValueError, match=r"score the model's plain gradient .* not the maps"):
        explanations.measure(_linear(rng), x, maps, metrics=["max_sensitivity"])
    bad = maps.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN/Inf"):
        explanations.measure(None, x, bad, metrics=["sparseness"])
    with pytest.raises(ValueError, match="shaped like it"):
        explanations.measure(None, x, maps[:, :-1], metrics=["sparseness"])
    with pytest.raises(ValueError, match="outside the bounds"):
        explanations.measure(None, x + 2, maps, metrics=["sparseness"])


@pytest.mark.slow
def test_an_evaluated_folder_gains_the_metric_columns_alone(trained_small_net, tmp_path):
    from robust_saliency import evaluation, results

    x = _images(np.random.default_rng(5), 6).astype("float32")
    labels = np.argmax(trained_small_net(x), axis=1)
    first = evaluation.evaluate(trained_small_net, x, labels, str(tmp_path), bounds=(0.0, 1.0),
                                attack_methods=("gradient",))
    assert "explanations" not in first["stages_run"]
    before = results.read_table(str(tmp_path / results.PER_IMAGE_CSV))
    again = evaluation.evaluate(trained_small_net, x, labels, str(tmp_path), bounds=(0.0, 1.0),
                                attack_methods=("gradient",), explanation_metrics=True)
    assert again["stages_run"] == ["explanations"]
    table = results.read_table(str(tmp_path / results.PER_IMAGE_CSV))
    for name in explanations.METRICS:
        assert name in table and name in again["medians"], name
    for key in before:  # nothing measured before changes
        np.testing.assert_array_equal(table[key], before[key])
    # The stage scores the plain gradient of the predicted class, as rs.explanation_metrics does.
    direct = explanations.measure(trained_small_net, x, metrics=["sparseness"])
    np.testing.assert_allclose(table["sparseness"], direct["sparseness"], rtol=1e-12)


@pytest.mark.slow
def test_aggregated_maps_get_their_map_metrics_in_one_call_or_resumed(trained_small_net,
                                                                       tmp_path):
    from robust_saliency import evaluation, results, saliency

    x = _images(np.random.default_rng(6), 5).astype("float32")
    labels = np.argmax(trained_small_net(x), axis=1)
    common = dict(bounds=(0.0, 1.0), attack_methods=("gradient",), aggregated_saliency=True)
    at_once = evaluation.evaluate(trained_small_net, x, labels, str(tmp_path / "once"),
                                  explanation_metrics=True, **common)
    assert at_once["stages_run"][:4] == ["metrics", "saliency", "explanations",
                                         "explanations_aggregated"]
    # Resumed: the saliency stage ran in an earlier call, so the maps are recomputed and
    # checked against the alignments recorded then.
    evaluation.evaluate(trained_small_net, x, labels, str(tmp_path / "later"), **common)
    later = evaluation.evaluate(trained_small_net, x, labels, str(tmp_path / "later"),
                                explanation_metrics=True, **common)
    assert later["stages_run"] == ["explanations", "explanations_aggregated"]
    once = results.read_table(str(tmp_path / "once" / results.PER_IMAGE_CSV))
    resumed = results.read_table(str(tmp_path / "later" / results.PER_IMAGE_CSV))
    columns = evaluation.explanation_columns(True)
    assert "sparseness_ig" in columns and "max_sensitivity_ig" not in columns
    assert "random_logit_smoothgrad" not in columns and "randomisation_ig" not in columns
    for column in columns:
        np.testing.assert_allclose(resumed[column], once[column], rtol=1e-6, err_msg=column)
        assert column in later["medians"], column
    # The columns score the very maps whose alignment the table holds.
    maps = saliency.aggregated_alignments(trained_small_net, x, return_maps=True)
    direct = explanations.measure(None, x, maps["ig"], metrics=["sparseness"])
    np.testing.assert_allclose(once["sparseness_ig"], direct["sparseness"], rtol=1e-6)
    assert not np.allclose(once["sparseness_ig"], once["sparseness"])
    # Maps that are not the measured ones (here: a recorded alignment tampered with) are refused.
    path = str(tmp_path / "later" / results.PER_IMAGE_CSV)
    table = results.read_table(path)
    table["alignment_ig"] = table["alignment_ig"] * 1.01
    for column in columns[len(explanations.METRICS):]:
        del table[column]
    results.write_table(path, table)
    with pytest.raises(ValueError, match="recomputed alignment_ig differs from per_image.csv's "
                                         "on 5 of 5 images.*delete the column"):
        evaluation.evaluate(trained_small_net, x, labels, str(tmp_path / "later"),
                            explanation_metrics=True, **common)


def test_recomputed_maps_pass_with_one_kernel_tie_in_twenty_not_with_more(monkeypatch):
    # One image in twenty off (a max-pooling tie broken otherwise by other CPU kernels) is
    # still the same maps; two in twenty is another model or other settings.
    from robust_saliency import evaluation, saliency

    recorded = {c: np.linspace(1.0, 2.0, 20) for c in evaluation.SALIENCY_COLUMNS}
    recomputed = {c: v.copy() for c, v in recorded.items()}
    monkeypatch.setattr(saliency, "aggregated_alignments", lambda *a, **k: recomputed)
    recomputed["alignment_smoothgrad"][3] *= 1.001
    assert evaluation._same_aggregated_maps(None, None, recorded, (0, 1), 10) is recomputed
    recomputed["alignment_smoothgrad"][7] *= 1.001
    with pytest.raises(ValueError, match="on 2 of 20 images"):
        evaluation._same_aggregated_maps(None, None, recorded, (0, 1), 10)


@pytest.mark.slow
def test_an_images_scores_do_not_depend_on_the_images_beside_it(rng, trained_small_net):
    x = _images(rng, 6).astype("float32")
    together = explanations.measure(trained_small_net, x, batch_size=4)
    backwards = explanations.measure(trained_small_net, x[::-1], batch_size=100)
    for i in (0, 4):
        alone = explanations.measure(trained_small_net, x[i:i + 1])
        for name in explanations.METRICS:
            np.testing.assert_allclose(alone[name][0], together[name][i], rtol=1e-5,
                                       atol=1e-6, err_msg=name)
    for name in explanations.METRICS:
        np.testing.assert_allclose(backwards[name][::-1], together[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_max_sensitivity_radius_is_a_share_of_the_pixel_range_per_pixel():
    metric = explanations.MaxSensitivity()
    assert metric.sphere_radius(np.zeros((1, 28, 28, 1)), (0.0, 1.0)) == pytest.approx(0.1)
    assert metric.sphere_radius(np.zeros((1, 56, 56, 1)), (0.0, 1.0)) == pytest.approx(0.2)
    assert metric.sphere_radius(np.zeros((1, 28, 28, 1)), (0.0, 255.0)) == pytest.approx(25.5)
