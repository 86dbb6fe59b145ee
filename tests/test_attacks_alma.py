"""ALMA-L2, the compiled augmented-Lagrangian attack: exact distances of affine models with the
box active (also in the ImageNet box), compiled against eager, one trace for any batch size,
chunks that change nothing, no network kept alive, bad input."""

import gc
import weakref

import keras
import numpy as np
import pytest
from helpers import (
    assert_exact_inside_box,
    box_case,
    exact_box_distance,
    exact_linear_distance,
    linear_weights,
    random_float64_net,
)

import robust_saliency.attacks.alma  # noqa: F401 - registers "alma"
from robust_saliency import attacks, models
from robust_saliency.attacks import alma

# Settings at which ALMA resolves the exact boundary: the last steps' learning rate (the
# resolution), no logit tolerance (it keeps every point 1e-4 logits past the boundary; the
# verifier handles the boundary's last bits instead), and the running averages of weight 0.5
# (the paper's 100-step value: at 0.9 large early excursions leave some ten-class images on
# another class's boundary).
EXACT = {"steps": 500, "alpha": 0.5, "lr_reduction": 1e-5, "logit_tolerance": 0.0}


@pytest.fixture(scope="module", params=[2, 10], ids=["2 classes", "10 classes"])
def affine_box(request):
    return box_case(request.param)


def test_alma_is_registered_with_the_papers_settings():
    attack = attacks.get("alma")
    assert isinstance(attack, alma.ALMA) and attacks.NORMS["alma"] == 2
    assert attacks.label("rho_alma") == "ALMA"
    assert attack.options["steps"] == 1000 and attack.options["alpha"] == 0.9


def test_alma_reaches_the_exact_distance_of_affine_models_inside_the_box(affine_box):
    model, x, exact, _ = affine_box
    found, adversarials = attacks.find_adversarials(model, x, "alma", (0.0, 1.0), **EXACT)
    assert_exact_inside_box(found, adversarials, exact)


def test_published_settings_stop_short_of_the_boundary_by_their_resolution(affine_box):
    # The final learning rate is 1% of the first and every point 1e-4 logits past the boundary:
    # the typical image is within 1e-3 of the exact distance, none below it.
    model, x, exact, _ = affine_box
    ratio = attacks.minimal_l2(model, x, "alma", (0.0, 1.0)) / exact
    assert np.all(ratio >= 1 - 1e-9)
    assert np.median(ratio) - 1 <= 1e-3


def _in_box(model, low, high):
    """The affine `model` on images scaled from [0, 1] to [low, high]: Psi'(low + w x) =
    Psi(x), so every distance is w = high - low times the original one."""
    w, b = linear_weights(model)
    width = high - low
    scaled = models.linear_classifier(num_classes=w.shape[1], dtype="float64")
    scaled.get_layer("logits").set_weights([w / width, b - low / width * w.sum(axis=0)])
    return scaled


def test_alma_steps_are_in_units_of_the_box_width():
    # The tests' ten-class case (the first 12 images of another draw include one on which FMN,
    # DDN and ALMA all end on the boundary of a class other than the nearest).
    model, x, exact, _ = box_case(10)
    low, high = -130.0, 155.0  # the ImageNet box
    scaled = _in_box(model, low, high)
    w, b = linear_weights(scaled)
    x_scaled = low + (high - low) * x
    exact_scaled = exact_box_distance(x_scaled, w, b, low, high)
    np.testing.assert_allclose(exact_scaled, (high - low) * exact, rtol=1e-9)
    found, adversarials = attacks.find_adversarials(scaled, x_scaled, "alma", (low, high),
                                                    **EXACT)
    ratio = found / exact_scaled
    assert np.all(ratio >= 1 - 1e-9) and np.all(ratio - 1 <= 1e-4)
    assert adversarials.min() >= low and adversarials.max() <= high


@pytest.mark.parametrize("classes", [2, 10])
def test_compiled_loop_equals_eager_and_one_trace_serves_every_batch_size(classes):
    if classes == 10:
        net, x, labels = random_float64_net()
    else:  # the two-class constraint is another branch of the trace
        net, x, _, _ = box_case(2, n=7)
        labels = np.argmax(net(x), axis=1).astype(np.int32)
    options = {"steps": 20, "check_steps": 5}
    compiled = alma.run(net, x[:4], labels[:4], (0.0, 1.0), **options)
    eager = alma.run(net, x[:4], labels[:4], (0.0, 1.0), eager=True, **options)
    assert np.all(np.isfinite(compiled[1]))
    np.testing.assert_allclose(compiled[1], eager[1], rtol=1e-9)
    np.testing.assert_allclose(compiled[0], eager[0], atol=1e-9)
    assert compiled[2] == eager[2] == 4 * 21
    for n in (3, 5, 7):
        alma.run(net, x[:n], labels[:n], (0.0, 1.0), check_every=5, tol=1e-2, **options)
    assert alma.compiled_loop(net).experimental_get_tracing_count() == 1


def test_each_image_result_is_its_own_whatever_the_batch():
    # Every quantity of the loop is per image (the first direction for a zero gradient is one
    # fixed seeded vector, not drawn per batch), so batch size and company change nothing.
    net, x, labels = random_float64_net()
    options = {"steps": 20, "check_steps": 5}
    together = alma.run(net, x, labels, (0.0, 1.0), **options)[1]
    assert np.all(np.isfinite(together[[0, 3, 6]])), "nothing found: the comparison is empty"
    alone = [alma.run(net, x[i:i + 1], labels[i:i + 1], (0.0, 1.0), **options)[1][0]
             for i in (0, 3, 6)]
    reversed_ = alma.run(net, x[::-1], labels[::-1], (0.0, 1.0), **options)[1][::-1]
    np.testing.assert_allclose(alone, together[[0, 3, 6]], rtol=1e-7)
    np.testing.assert_allclose(reversed_, together, rtol=1e-7)


def test_chunks_carry_the_whole_state_and_early_exit_saves_steps():
    model, x, exact, _ = box_case(10, n=12)
    labels = np.argmax(model(x), axis=1).astype(np.int32)
    options = dict(EXACT, steps=200)
    points, full, full_steps = alma.run(model, x, labels, (0.0, 1.0), **options)
    # Nobody leaves (tol = -inf): four chunks must be the one run, bit for bit.
    chunked = alma.run(model, x, labels, (0.0, 1.0), check_every=50, tol=-np.inf, **options)
    np.testing.assert_array_equal(chunked[1], full)
    np.testing.assert_array_equal(chunked[0], points)
    _, early, early_steps = alma.run(model, x, labels, (0.0, 1.0), check_every=20, tol=1e-2,
                                     **options)
    assert early_steps < full_steps / 2
    assert np.all(np.isfinite(early)) and np.all(early >= full * (1 - 1e-12))
    assert np.median(early / exact) - 1 <= 1e-2


def test_the_cache_does_not_keep_the_network_alive():
    model, x, _, _ = box_case(10, n=3)
    # Outside the assert, whose rewriting would keep `model` in a local of its own.
    found = attacks.minimal_l2(model, x, "alma", (0.0, 1.0), steps=50)
    assert np.all(np.isfinite(found))
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None


def test_alma_runs_on_a_thousand_classes():
    keras.utils.set_random_seed(0)
    model = models.linear_classifier(input_shape=(8, 8, 3), num_classes=1000, dtype="float64")
    x = np.random.default_rng(0).uniform(0, 1, (5, 8, 8, 3))
    found = attacks.minimal_l2(model, x, "alma", (0.0, 1.0), steps=50)
    # The distance without the box is a lower bound of the one inside it.
    free = exact_linear_distance(x, *linear_weights(model))
    assert np.all(np.isfinite(found)) and np.all(found >= free * (1 - 1e-9))


@pytest.mark.parametrize("mutate, message", [
    (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), "NaN/Inf"),
    (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5, np.inf, x), "NaN/Inf"),
    (lambda x: x + 1.5, "outside the bounds")])
def test_bad_pixels_fail_before_any_step(mutate, message):
    model, x, _, _ = box_case(2, n=3)
    with pytest.raises(ValueError, match=message):
        attacks.minimal_l2(model, mutate(x), "alma", (0.0, 1.0))


@pytest.mark.parametrize("options, message", [
    ({"stpes": 10}, r"unknown option.*'stpes'.*valid: .*'steps'"),
    ({"steps": 0}, "steps must be a positive integer"),
    ({"check_steps": 2.5}, "check_steps must be a positive integer"),
    ({"alpha": 1.0}, r"alpha must be in \[0, 1\)")])
def test_bad_options_name_the_problem(options, message):
    with pytest.raises(ValueError, match=message):
        attacks.get("alma", **options)


def test_images_already_misclassified_are_at_zero():
    model, x, _, _ = box_case(10, n=6)
    wrong = (np.argmax(model(x), axis=1) + 1) % 10  # every label disagrees with the model
    found, adversarials = attacks.find_adversarials(model, x, "alma", (0.0, 1.0), labels=wrong)
    np.testing.assert_array_equal(found, 0.0)
    np.testing.assert_array_equal(adversarials, x)
