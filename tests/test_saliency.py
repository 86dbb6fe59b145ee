"""SmoothGrad, Integrated Gradients, their alignments and the parameter-randomisation check:
exact on a linear classifier, measured properties on the trained ReLU net, bad input."""

import keras
import numpy as np
import pytest
from helpers import randomize_biases

from robust_saliency import metrics, models, saliency, stats, training


@pytest.fixture
def linear(rng):
    # Non-zero biases, so that IG's completeness gap Psi(x) - Psi(x0) is not just <x - x0, w>
    # by construction of a bias-free model.
    return randomize_biases(models.linear_classifier(), rng, scale=0.5)


def _weight_maps(model, classes):
    w = np.asarray(model.get_layer("logits").kernel)  # (D, n)
    return w[:, classes].T.reshape(len(classes), 28, 28, 1)


@pytest.fixture(scope="session")
def val_images(synthetic_arrays):
    return synthetic_arrays[1][0][:16]


@pytest.mark.parametrize("compiled", [True, False])
def test_linear_maps_are_exact(linear, images, rng, compiled):
    classes = rng.integers(0, 10, len(images))  # any class, not only the predicted one
    w = _weight_maps(linear, classes)
    sg = saliency.smoothgrad(linear, images, classes, samples=8, compiled=compiled)
    np.testing.assert_allclose(sg, w, rtol=1e-5, atol=1e-7)
    rows = np.arange(len(images))
    for baseline, x0 in ((None, np.zeros_like(images)), (0.5, np.full_like(images, 0.5))):
        ig = saliency.integrated_gradients(linear, images, classes, baseline=baseline, steps=4,
                                           compiled=compiled)
        np.testing.assert_allclose(ig, (images - x0) * w, rtol=1e-5, atol=1e-7)
        gap = (np.asarray(linear(images))[rows, classes] - np.asarray(linear(x0))[rows, classes])
        np.testing.assert_allclose(ig.reshape(len(images), -1).sum(1), gap, rtol=1e-4,
                                   atol=1e-5)


def test_linear_smoothgrad_alignment_is_the_papers_alignment(linear, images):
    # For Psi = W x + b every map of the predicted class is w_{i*}, the paper's g: alpha in
    # float64 from the weights is exact. (Not the float32 kernel's alpha: an image with a small
    # |<x, g>| carries that kernel's round-off relative to the size of the summands, 2e-5 of
    # alpha on one of these images when another process loads the machine and the reduction
    # is split differently.)
    pred = metrics.measure(linear, images)["pred"]
    w = _weight_maps(linear, pred).astype(np.float64).reshape(len(images), -1)
    xf = images.astype(np.float64).reshape(len(images), -1)
    expected = np.abs(np.sum(xf * w, 1)) / np.linalg.norm(w, axis=1)
    wrapped = training.RobustModel(linear)  # a training wrapper is measured through .network
    r = saliency.aggregated_alignments(wrapped, images, smoothgrad_options={"samples": 4},
                                       ig_options={"steps": 4}, return_maps=True)
    assert r["alignment_smoothgrad"].dtype == r["alignment_ig"].dtype == np.float64
    np.testing.assert_allclose(r["alignment_smoothgrad"], expected, rtol=1e-5)
    assert r["smoothgrad"].shape == r["ig"].shape == images.shape
    xf, ig = images.reshape(len(images), -1), r["ig"].reshape(len(images), -1)
    np.testing.assert_allclose(r["alignment_ig"],
                               np.abs(np.sum(xf * ig, 1)) / np.linalg.norm(ig, axis=1),
                               rtol=1e-5)


def test_ig_completeness_on_relu_net(trained_small_net, val_images):
    """Psi^c is piecewise linear along the path (ReLU, max-pooling), so the midpoint rule is
    exact on each linear piece and errs only in the steps that contain a kink: the error falls
    like 1/steps. Measured on these 16 images (logit gaps 9-16): relative error max 2.7% / mean
    1.1% at 8 steps, max 0.29% / mean 0.11% at 64; 1% at 64 steps leaves a 3x margin."""
    x = val_images
    pred = np.argmax(trained_small_net(x), 1)
    rows = np.arange(len(x))
    gap = (np.asarray(trained_small_net(x))[rows, pred]
           - np.asarray(trained_small_net(np.zeros_like(x)))[rows, pred])
    errors = {}
    for steps in (8, 64):
        ig = saliency.integrated_gradients(trained_small_net, x, pred, steps=steps)
        errors[steps] = np.abs(ig.reshape(len(x), -1).sum(1) - gap) / np.abs(gap)
    assert errors[64].max() < 0.01, errors[64]
    assert errors[64].mean() < errors[8].mean() / 3, errors


def test_ig_midpoint_rule_is_exact_for_a_quadratic_score(images, rng):
    """Psi^c = <w_c, x>^2 has a gradient linear along the path from x0 = 0, which the midpoint
    rule integrates exactly with any number of steps (left or right sums would be off by
    1/(2 steps))."""
    # float64: where <w_c, x> is near 0 the score is a small difference of 784 large terms, and
    # float32 rounding of their sum alone exceeds rtol 1e-5 of it (seen for unseeded weights).
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1), dtype="float64")
    flat = keras.layers.Flatten(dtype="float64")(inputs)
    z = keras.layers.Dense(2, use_bias=False, dtype="float64")(flat)
    model = keras.Model(inputs, keras.layers.Multiply(dtype="float64")([z, z]))
    classes = rng.integers(0, 2, len(images))
    ig = saliency.integrated_gradients(model, images, classes, steps=3)
    score = np.asarray(model(images))[np.arange(len(images)), classes]
    np.testing.assert_allclose(ig.reshape(len(images), -1).sum(1), score, rtol=1e-9)


def test_smoothgrad_without_noise_is_the_plain_gradient(trained_small_net, val_images):
    r = metrics.measure(trained_small_net, val_images, return_maps=True)
    sg = saliency.smoothgrad(trained_small_net, val_images, r["pred"], samples=5, noise=0.0)
    scale = np.abs(r["grad_pred"]).max()
    np.testing.assert_allclose(sg, r["grad_pred"], rtol=1e-5, atol=1e-6 * scale)


def test_smoothgrad_is_deterministic_and_independent_of_batching(trained_small_net, val_images):
    run = lambda **kw: saliency.smoothgrad(trained_small_net, val_images, samples=6, **kw)  # noqa: E731
    first = run(seed=3)
    np.testing.assert_array_equal(first, run(seed=3))
    scale = np.abs(first).max()
    # Each image's noise comes from (seed, image index): same maps batched differently or eagerly.
    np.testing.assert_allclose(run(seed=3, batch_size=5), first, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(run(seed=3, compiled=False), first, rtol=1e-5, atol=1e-6 * scale)
    assert np.abs(run(seed=4) - first).max() > 1e-3 * scale


def test_smoothgrad_averaging_reduces_variance(trained_small_net, val_images):
    """Over seeds, the mean of n independent draws has 1/n of one draw's variance (measured:
    ratio 16.8 for n = 16); noise shared across the samples would give ratio 1."""
    x = val_images[:8]
    variance = {n: np.stack([saliency.smoothgrad(trained_small_net, x, samples=n, seed=s)
                             for s in range(6)]).var(axis=0).mean() for n in (1, 16)}
    assert variance[1] > 8 * variance[16], variance


def test_spearman_ranks_ties_and_monotone_maps(rng):
    np.testing.assert_array_equal(stats.ranks(np.array([[3.0, 1.0, 2.0, 2.0]])),
                                  [[4.0, 1.0, 2.5, 2.5]])
    a = rng.normal(size=(3, 50))
    np.testing.assert_allclose(saliency.rank_correlations(a, np.exp(a)), 1.0)
    np.testing.assert_allclose(saliency.rank_correlations(a, -a), -1.0)
    assert saliency.rank_correlations(a, np.zeros_like(a)).tolist() == [0.0] * 3  # a constant map


def test_randomisation_check_on_trained_net(trained_small_net, val_images):
    before = [w.copy() for w in trained_small_net.get_weights()]
    rows = saliency.randomisation_check(trained_small_net, val_images, seed=0)
    after = trained_small_net.get_weights()
    assert all(np.array_equal(b, a) for b, a in zip(before, after)), "caller's model modified"
    top_down = [layer.name for layer in reversed(trained_small_net.layers)
                if layer.trainable_weights]
    assert [r["randomised"] for r in rows] == ["none"] + top_down
    assert [r["layers_randomised"] for r in rows] == list(range(len(top_down) + 1))
    trained = rows[0]
    assert trained["median_rank_correlation"] == pytest.approx(1.0)
    assert trained["median_cosine_similarity"] == pytest.approx(1.0)
    plain = np.median(metrics.measure(trained_small_net, val_images)["alignment"])
    assert trained["median_alignment"] == pytest.approx(plain, rel=1e-5)
    # Measured on these images over seeds 0-2: rank correlation 0.41-0.43 after the logits layer,
    # 0.16-0.18 with every layer random; alignment 3.1 trained, 0.2-0.6 fully random.
    final = rows[-1]
    assert final["median_rank_correlation"] < 0.4, rows
    assert final["median_alignment"] < 0.5 * trained["median_alignment"], rows
    assert saliency.randomisation_check(trained_small_net, val_images, seed=0) == rows


@pytest.mark.parametrize("method", [saliency.aggregated_alignments, saliency.smoothgrad,
                                    saliency.integrated_gradients, saliency.randomisation_check])
def test_bad_pixels_raise(linear, images, method):
    bad = images.copy()
    bad[2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN/Inf pixels .*image 2"):
        method(linear, bad)
    if method is not saliency.randomisation_check:  # takes no bounds: its maps need none
        with pytest.raises(ValueError, match="outside the bounds"):
            method(linear, images + 0.5)


def test_bad_classes_and_baseline_raise(linear, images):
    with pytest.raises(ValueError, match=r"classes must be integer class indices in \[0, 10\)"):
        saliency.smoothgrad(linear, images, np.full(12, 10))
    with pytest.raises(ValueError, match="baseline of shape"):
        saliency.integrated_gradients(linear, images, baseline=np.zeros((3, 28, 28, 1)))


def test_smoothgrad_of_an_image_is_its_own(trained_small_net, val_images):
    x = val_images[:5]
    together = saliency.smoothgrad(trained_small_net, x, samples=8)
    alone = saliency.smoothgrad(trained_small_net, x[3:4], samples=8)
    np.testing.assert_allclose(alone[0], together[3], rtol=1e-5, atol=1e-6)
    reordered = saliency.smoothgrad(trained_small_net, x[::-1], samples=8)
    np.testing.assert_allclose(reordered[::-1], together, rtol=1e-5, atol=1e-6)


def test_randomised_biases_are_an_option(trained_small_net):
    zeros = saliency.randomised_network(trained_small_net, 0)
    drawn = saliency.randomised_network(trained_small_net, 0, biases="fan_in_uniform")
    dense = [layer.name for layer in trained_small_net.layers if getattr(layer, "bias", None)
             is not None]
    for name in dense:
        bias = np.asarray(drawn.get_layer(name).bias)
        fan_in = np.prod(drawn.get_layer(name).kernel.shape[:-1])
        assert np.all(np.asarray(zeros.get_layer(name).bias) == 0)
        assert np.all(np.abs(bias) <= 1 / np.sqrt(fan_in)) and np.any(bias != 0)
        np.testing.assert_array_equal(np.asarray(zeros.get_layer(name).kernel),
                                      np.asarray(drawn.get_layer(name).kernel))
    with pytest.raises(ValueError, match="biases must be one of"):
        saliency.randomised_network(trained_small_net, 0, biases="random")
