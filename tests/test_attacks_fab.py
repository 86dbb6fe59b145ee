"""FAB-L2 (attacks.fab): exact distances of affine models with the box active, compiled against
eager, one trace for any batch size, per-image results, bad input (its box-constrained
projection: test_attacks_box_projection.py)."""

import numpy as np
import pytest
from helpers import assert_exact_inside_box, box_case, random_float64_net

import robust_saliency.attacks.fab  # noqa: F401 - registers "fab"
from robust_saliency import attacks
from robust_saliency.attacks import fab


@pytest.fixture(scope="module", params=[2, 10], ids=["2 classes", "10 classes"])
def affine_box(request):
    return box_case(request.param)


def test_fab_reaches_the_exact_distance_of_affine_models_inside_the_box(affine_box):
    model, x, exact, _ = affine_box
    found, adversarials = attacks.find_adversarials(model, x, "fab", (0.0, 1.0))
    assert_exact_inside_box(found, adversarials, exact)


def test_without_the_final_search_fab_stops_past_the_boundary(affine_box):
    # eta's overshoot and beta's backward step balance where the adversarial points are about
    # 0.5% past the boundary: what the final search is for.
    model, x, exact, _ = affine_box
    ratio = attacks.minimal_l2(model, x, "fab", (0.0, 1.0), final_search=0) / exact
    assert np.all(ratio >= 1 + 1e-3) and np.all(ratio <= 1 + 1e-2)


def test_compiled_equals_eager_and_one_trace_serves_every_batch_size():
    net, x, labels = random_float64_net()
    options = dict(steps=5, candidates=3, final_search=2)
    compiled = fab.run(net, x[:4], labels[:4], (0.0, 1.0), **options)
    eager = fab.run(net, x[:4], labels[:4], (0.0, 1.0), eager=True, **options)
    assert np.all(np.isfinite(compiled[1]))
    np.testing.assert_allclose(compiled[1], eager[1], rtol=1e-9)
    np.testing.assert_allclose(compiled[0], eager[0], atol=1e-9)
    assert compiled[2] == eager[2] == 4 * (5 * 4 + 1 + 2 + 4)
    for n in (3, 5, 7):
        fab.run(net, x[:n], labels[:n], (0.0, 1.0), check_every=2, tol=1e-2, **options)
    assert fab.compiled_attack(net).experimental_get_tracing_count() == 1


def test_each_image_result_is_its_own_whatever_the_batch():
    # Restarts draw their noise from each image's own bytes, not from its place in the batch.
    net, x, labels = random_float64_net()
    options = dict(steps=3, candidates=2, restarts=2, final_search=1)
    together = fab.run(net, x, labels, (0.0, 1.0), **options)[1]
    alone = [fab.run(net, x[i:i + 1], labels[i:i + 1], (0.0, 1.0), **options)[1][0]
             for i in (0, 3, 6)]
    reversed_ = fab.run(net, x[::-1], labels[::-1], (0.0, 1.0), **options)[1][::-1]
    np.testing.assert_allclose(alone, together[[0, 3, 6]], rtol=1e-7)
    np.testing.assert_allclose(reversed_, together, rtol=1e-7)


def test_restarts_only_improve_and_early_exit_saves_steps():
    model, x, exact, _ = box_case(10, n=8)
    labels = np.argmax(model(x), axis=1).astype(np.int32)
    _, once, once_steps = fab.run(model, x, labels, (0.0, 1.0), steps=20, final_search=0)
    _, twice, twice_steps = fab.run(model, x, labels, (0.0, 1.0), steps=20, final_search=0,
                                    restarts=2, restart_radius=0.5)
    assert np.all(twice <= once) and twice_steps == 2 * once_steps
    _, early, early_steps = fab.run(model, x, labels, (0.0, 1.0), steps=40, final_search=0,
                                    check_every=5, tol=1e-3)
    assert early_steps < once_steps and np.all(early >= exact)


def test_candidates_are_capped_by_the_classes_and_bound_the_cost():
    model, x, _, _ = box_case(2, n=4)
    labels = np.argmax(model(x), axis=1).astype(np.int32)
    # Two classes: one candidate whatever the option, so a step is 1 gradient pass + 1 forward.
    _, found, cost = fab.run(model, x, labels, (0.0, 1.0), steps=3, final_search=1)
    assert np.all(np.isfinite(found)) and cost == 4 * (3 * 2 + 1) + 4 * (1 + 4)
    model, x, exact, _ = box_case(10, n=4)
    labels = np.argmax(model(x), axis=1).astype(np.int32)
    _, found, cost = fab.run(model, x, labels, (0.0, 1.0), steps=3, candidates=2,
                             final_search=1)
    assert np.all(found >= exact * (1 - 1e-9)) and cost == 4 * (3 * 3 + 1) + 4 * (1 + 4)


@pytest.mark.parametrize("mutate, message", [
    (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), "NaN/Inf"),
    (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5, np.inf, x), "NaN/Inf"),
    (lambda x: x + 1.5, "outside the bounds")])
def test_bad_pixels_fail_before_any_step(mutate, message):
    model, x, _, _ = box_case(2, n=3)
    with pytest.raises(ValueError, match=message):
        attacks.minimal_l2(model, mutate(x), "fab", (0.0, 1.0))


def test_bad_options_are_named():
    model, x, _, _ = box_case(2, n=2)
    with pytest.raises(ValueError, match=r"unknown option.*'stpes'.*valid: .*'steps'"):
        attacks.minimal_l2(model, x, "fab", (0.0, 1.0), stpes=10)
    with pytest.raises(ValueError, match=r"bad option\(s\) candidates=0, beta=1.5 for"):
        attacks.get("fab", beta=1.5, candidates=0)


def test_images_already_misclassified_are_at_distance_zero():
    model, x, _, _ = box_case(10, n=6)
    wrong = (np.argmax(model(x), axis=1) + 1) % 10
    found = attacks.minimal_l2(model, x, "fab", (0.0, 1.0), labels=wrong)
    np.testing.assert_array_equal(found, 0.0)
