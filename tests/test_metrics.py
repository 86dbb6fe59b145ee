"""Behaviour of metrics.measure beyond the exact theory: agreement with brute force, compiled vs
eager, class chunking and degenerate points (bad input: test_input_checks.py)."""

import numpy as np
import pytest
import tensorflow as tf

from robust_saliency import metrics, models


def _brute_force_lin_robustness(model, x):
    """Eq. (9) by one eager tape call per class: the naive reference."""
    xt = tf.constant(x)
    grads = []
    for i in range(model.output_shape[-1]):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            score = tf.reduce_sum(model(xt, training=False)[:, i])
        grads.append(tape.gradient(score, xt).numpy().reshape(len(x), -1))
    grads = np.stack(grads, axis=1)
    logits = model(xt, training=False).numpy()
    pred = logits.argmax(1)
    rows = np.arange(len(x))
    margin = logits[rows, pred][:, None] - logits
    dist = np.linalg.norm(grads[rows, pred][:, None, :] - grads, axis=2)
    ratio = np.where(np.arange(logits.shape[1])[None] == pred[:, None], np.inf, margin / dist)
    return ratio.min(1), ratio.argmin(1)


@pytest.fixture(scope="session")
def trained_result(trained_small_net, synthetic_arrays):
    _, (x_val, _) = synthetic_arrays
    return x_val[:64], metrics.measure(trained_small_net, x_val[:64], batch_size=30,
                                       return_maps=True)


def test_lin_robustness_equals_brute_force(trained_small_net, trained_result):
    x, r = trained_result
    lin, arg = _brute_force_lin_robustness(trained_small_net, x)
    np.testing.assert_allclose(r["lin_robustness"], lin, rtol=1e-5)
    np.testing.assert_array_equal(r["runner_up"], arg)


def test_bounds_hold_on_trained_net(trained_result):
    _, r = trained_result
    # float32 round-off of Psi_dagger / ||g_dagger||: the only slack the bounds are given.
    slack = metrics.roundoff_slack(r)
    assert np.all(slack < 1e-3 * r["lin_robustness"])
    lin = r["lin_robustness"]
    assert np.all(np.isfinite(lin))
    for key in ("bound14", "bound15", "bound16"):
        violations = np.sum(lin > r[key] + slack)
        assert violations == 0, f"{key} violated for {violations} images"
    assert np.all(r["bound14"] <= r["bound15"] + slack)


def test_accuracy_on_synthetic_is_learned(trained_result, synthetic_arrays):
    _, (x_val, y_val) = synthetic_arrays
    _, r = trained_result
    assert np.mean(r["pred"] == y_val[:64]) > 0.5


def test_compiled_equals_eager_and_chunked_equals_whole(trained_small_net, trained_result):
    x, r = trained_result
    eager = metrics.measure(trained_small_net, x[:16], compiled=False)
    chunked = metrics.measure(trained_small_net, x[:16], class_chunk=3)
    for key in metrics.PER_IMAGE_KEYS:
        np.testing.assert_allclose(eager[key], r[key][:16], rtol=1e-5, atol=1e-6, err_msg=key)
        np.testing.assert_allclose(chunked[key], r[key][:16], rtol=1e-5, atol=1e-6, err_msg=key)


def test_maps_have_image_shape(trained_result):
    x, r = trained_result
    for key in metrics.MAP_KEYS:
        assert r[key].shape == x.shape
    for key in metrics.PER_IMAGE_KEYS:
        assert r[key].shape == (len(x),)


def test_partial_last_batch_and_batch_size_do_not_matter(trained_small_net, trained_result):
    x, r = trained_result
    other = metrics.measure(trained_small_net, x[:7], batch_size=3)
    np.testing.assert_allclose(other["lin_robustness"], r["lin_robustness"][:7], rtol=1e-5)


def _dead_relu_net(final_bias):
    model = models.small_net()
    model.layers[-3].bias.assign(np.full(128, -1e3, "float32"))  # Dense 128: every unit dead
    model.get_layer("logits").bias.assign(np.asarray(final_bias, "float32"))
    return model


def test_zero_gradient_gives_defined_values_not_nan(images):
    model = _dead_relu_net([0.0, 3.0, 1.0, 2.0, 0.5, 0, 0, 0, 0, 0])
    r = metrics.measure(model, images.astype("float32"), return_maps=True)
    for key in metrics.PER_IMAGE_KEYS + metrics.MAP_KEYS:
        assert not np.isnan(r[key]).any(), key
    assert np.all(r["grad_pred_norm"] == 0)
    assert np.all(r["alignment"] == 0) and np.all(r["alignment_bin"] == 0)
    assert np.all(np.isinf(r["lin_robustness"]))
    assert np.all(r["pred"] == 1) and np.all(r["runner_up"] == 3)  # second-largest logit
    assert np.all(np.isinf(r["bound14"]))
    np.testing.assert_array_equal(r["xi"], images.astype("float32"))


def test_tied_logits_with_equal_gradients_are_at_distance_zero(images):
    model = _dead_relu_net([0.0, 2.0, 2.0, 0, 0, 0, 0, 0, 0, 0])
    r = metrics.measure(model, images.astype("float32"))
    assert np.all(r["lin_robustness"] == 0)
    assert not np.isnan(r["bound15"]).any()


def test_docstring_documents_every_key(trained_result):
    _, r = trained_result
    doc = metrics.measure.__doc__
    for key in r:
        assert f"{key}" in doc, f"measure's docstring does not document '{key}'"


def test_measure_takes_the_bounds_and_refuses_images_outside_or_reversed_bounds():
    from robust_saliency import attacks

    model = models.linear_classifier()
    x = np.random.default_rng(0).uniform(0, 1, (3, 28, 28, 1)).astype("float32")
    with pytest.raises(ValueError, match="divide\\s+uint8 pixels by 255"):
        metrics.measure(model, x * 255)  # the default box is (0, 1)
    metrics.measure(model, x * 255, bounds=(0, 255))
    for call in (lambda: metrics.measure(model, x, bounds=(1, 0)),
                 lambda: attacks.minimal_distance(model, x, "ddn", (1, 0))):
        with pytest.raises(ValueError, match=r"bounds \(1, 0\) are reversed"):
            call()
