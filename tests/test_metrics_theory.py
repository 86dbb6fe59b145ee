"""The paper's exact statements, checked on the kernels of robust_saliency.metrics.

The identities are exact in real arithmetic, so these tests use float64 models: any
disagreement at 1e-5 relative is then a bug, not round-off.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import exact_linear_distance, linear_weights, randomize_biases, sum_of_bias_terms

from robust_saliency import logit_gradients, metrics, models


@pytest.mark.parametrize("use_bias", [False, True])
def test_linear_multiclass_lin_robustness_is_exact_distance(images, rng, use_bias):
    model = models.linear_classifier(use_bias=use_bias, dtype="float64")
    randomize_biases(model, rng, scale=0.5)
    r = metrics.measure(model, images)
    exact = exact_linear_distance(images, *linear_weights(model))
    np.testing.assert_allclose(r["lin_robustness"], exact, rtol=1e-5)
    exact_linf = exact_linear_distance(images, *linear_weights(model), dual_ord=1)
    np.testing.assert_allclose(r["lin_robustness_linf"], exact_linf, rtol=1e-10)
    # The L-infinity minimiser is another class than j* for some images: a distinct column.
    assert np.any(np.abs(r["lin_robustness_linf"] * np.sqrt(28 * 28) / r["lin_robustness"] - 1)
                  > 1e-3)
    if not use_bias:
        np.testing.assert_allclose(r["alignment_bin"], exact, rtol=1e-5)
        np.testing.assert_allclose(r["b_terms"], 0.0, atol=1e-12)
    else:
        # Affine: the bias enters, so alpha_dagger alone is not the distance (eq. (4)).
        assert np.max(np.abs(r["alignment_bin"] - exact) / exact) > 1e-3


def test_binary_linear_alignment_equals_binarized_alignment(images, rng):
    z = rng.normal(size=(28 * 28, 1))
    model = models.linear_classifier(num_classes=2, use_bias=False, dtype="float64")
    model.get_layer("logits").kernel.assign(np.concatenate([z, -z], axis=1))
    r = metrics.measure(model, images)
    expected = np.abs(images.reshape(len(images), -1) @ z[:, 0]) / np.linalg.norm(z)
    np.testing.assert_allclose(r["alignment"], r["alignment_bin"], rtol=1e-10)
    np.testing.assert_allclose(r["alignment"], expected, rtol=1e-10)
    np.testing.assert_allclose(r["lin_robustness"], expected, rtol=1e-10)


def test_lemma2_bias_free_relu_net(images, rng):
    keras.utils.set_random_seed(3)
    model = models.small_net(use_bias=False, dtype="float64")
    r = metrics.measure(model, images)
    np.testing.assert_allclose(r["lin_robustness"], r["alignment_bin"], rtol=1e-5)
    scale = np.abs(r["logits"]).max()
    np.testing.assert_allclose(r["b_terms"], 0.0, atol=1e-12 * scale)


@pytest.mark.parametrize("builder", [models.small_net, models.small_bn_net])
def test_theorem1_homogeneous_decomposition(images, rng, builder):
    keras.utils.set_random_seed(5)
    model = randomize_biases(builder(dtype="float64"), rng)
    x = images[:4]
    r = metrics.measure(model, x)
    bias_sum = sum_of_bias_terms(model, tf.constant(x))
    assert np.abs(bias_sum).max() > 1e-3  # the biases really contribute
    np.testing.assert_allclose(r["x_terms"] + bias_sum, r["logits"], rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(r["b_terms"], bias_sum, rtol=1e-4, atol=1e-10)


def test_jvp_x_terms_equal_tape_inner_products(images, rng):
    keras.utils.set_random_seed(7)
    model = randomize_biases(models.small_net(dtype="float64"), rng)
    x = tf.constant(images[:5])
    _, xt = metrics.x_terms(model, x)
    for i in range(10):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = tf.reduce_sum(model(x, training=False)[:, i])
        grad = tape.gradient(score, x).numpy().reshape(5, -1)
        inner = np.sum(grad * images[:5].reshape(5, -1), axis=1)
        np.testing.assert_allclose(xt.numpy()[:, i], inner, rtol=1e-10)


def test_theorem2_and_3_bounds_hold_and_xi_identity(images, rng):
    keras.utils.set_random_seed(11)
    model = randomize_biases(models.small_net(dtype="float64"), rng)
    r = metrics.measure(model, images, return_maps=True)
    lin = r["lin_robustness"]
    tol = 1e-9 * np.maximum(1.0, lin)
    assert np.all(lin <= r["bound14"] + tol)
    assert np.all(r["bound14"] <= r["bound15"] + tol)
    assert np.all(lin <= r["bound16"] + tol)
    # rho_tilde = <xi, g_dagger_bar>: the identity behind Theorem 3.
    n = len(images)
    g_bin = r["grad_bin"].reshape(n, -1)
    xi = r["xi"].reshape(n, -1)
    along = np.sum(xi * g_bin, axis=1) / np.linalg.norm(g_bin, axis=1)
    np.testing.assert_allclose(along, lin, rtol=1e-8)
    # psi_bin splits into its linear and locally constant parts (Theorem 1 for Psi_dagger).
    np.testing.assert_allclose(r["x_term_bin"] + r["b_term_bin"], r["psi_bin"], rtol=1e-8)


def test_many_classes_chunked_path_is_exact(rng):
    """Past the unrolled limit, classes go through chunked Jacobians with a running minimum."""
    n = logit_gradients.UNROLL_MAX_CLASSES + 20
    model = randomize_biases(models.linear_classifier(num_classes=n, dtype="float64"), rng)
    x = rng.uniform(0.0, 1.0, (5, 28, 28, 1))
    exact = exact_linear_distance(x, *linear_weights(model))
    exact_linf = exact_linear_distance(x, *linear_weights(model), dual_ord=1)
    for chunk in (None, 50):
        r = metrics.measure(model, x, class_chunk=chunk)
        np.testing.assert_allclose(r["lin_robustness"], exact, rtol=1e-5)
        np.testing.assert_allclose(r["lin_robustness_linf"], exact_linf, rtol=1e-10)


def test_bound_summands_agree_with_the_jvp_decomposition(images, rng):
    keras.utils.set_random_seed(13)
    model = randomize_biases(models.small_net(dtype="float64"), rng)
    r = metrics.measure(model, images)
    rows = np.arange(len(images))
    jvp_bin = r["x_terms"][rows, r["pred"]] - r["x_terms"][rows, r["runner_up"]]
    np.testing.assert_allclose(r["x_term_bin"], jvp_bin, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(r["x_term_pred"], r["x_terms"][rows, r["pred"]], rtol=1e-9)
    np.testing.assert_allclose(r["b_term_pred"], r["b_terms"][rows, r["pred"]], rtol=1e-8,
                               atol=1e-12)
