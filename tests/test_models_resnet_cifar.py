"""The CIFAR ResNet of He et al. (models.resnet_cifar): its architecture, and the paper's exact
statements on it in float64 with batch norm in inference mode: Theorem 1 with every additive
parameter (batch-norm betas and moving means, the Dense bias) as the bias term, and the bounds
(14)-(16) of Theorems 2-3 on every image."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import randomize_biases, sum_of_bias_terms

from robust_saliency import metrics, models, theorem_bounds


@pytest.fixture(scope="module")
def resnet20():
    """A float64 ResNet-20 with random BN moving statistics, gammas, betas and Dense bias."""
    keras.utils.set_random_seed(8)
    return randomize_biases(models.resnet_cifar(dtype="float64"), np.random.default_rng(8),
                            scale=0.1)


@pytest.fixture(scope="module")
def measured(resnet20):
    x = np.random.default_rng(9).uniform(0.0, 1.0, (6, 28, 28, 1))
    return x, metrics.measure(resnet20, x, return_maps=True)


def test_architecture_is_he_et_al_cifar_resnet():
    net = models.resnet_cifar(depth=20)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert net.name == "resnet20" and net.output_shape == (None, 10)
    assert kinds.count("Conv2D") == 19 and kinds.count("Dense") == 1  # 6n + 2 = 20 weighted
    assert kinds.count("BatchNormalization") == 19 and kinds.count("Add") == 9
    assert kinds.count("ZeroPadShortcut") == 2 and "MaxPooling2D" not in kinds
    assert all(not layer.use_bias for layer in net.layers if isinstance(layer,
                                                                          keras.layers.Conv2D))
    assert all(layer.momentum == 0.999 for layer in net.layers
               if isinstance(layer, keras.layers.BatchNormalization))
    widths = [layer.output.shape[1:] for layer in net.layers if isinstance(layer,
                                                                          keras.layers.Add)]
    assert widths[0] == (28, 28, 16) and widths[3] == (14, 14, 32) and widths[6] == (7, 7, 64)
    assert net.count_params() == 270_810  # He et al.'s 0.27M, with BN statistics
    assert models.resnet_cifar(depth=8).name == "resnet8"
    assert models.build("resnet_cifar", (28, 28, 1), 10).name == "resnet20"
    with pytest.raises(ValueError, match="6n \\+ 2"):
        models.resnet_cifar(depth=21)


def test_option_a_shortcut_subsamples_and_pads_with_zeros():
    x = np.arange(2 * 5 * 5 * 3, dtype="float32").reshape(2, 5, 5, 3)
    y = np.asarray(models.ZeroPadShortcut(8)(x))
    assert y.shape == (2, 3, 3, 8)
    np.testing.assert_array_equal(y[..., :3], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 3:], 0.0)


def test_theorem1_bias_term_is_the_sum_over_every_bias(resnet20, measured):
    """beta^i = Psi^i - <x, grad Psi^i> equals sum_k <b_k, dPsi^i/db_k> over every additive
    parameter, each computed on its own, to 1e-10 relative, for every logit and image."""
    x, r = measured
    bias_sum = sum_of_bias_terms(resnet20, tf.constant(x))
    psi_minus_x = r["logits"] - r["x_terms"]
    scale = np.maximum.reduce([np.abs(r["logits"]), np.abs(r["x_terms"]), np.abs(bias_sum)])
    assert np.all(np.abs(bias_sum - psi_minus_x) <= 1e-10 * scale), np.max(
        np.abs(bias_sum - psi_minus_x) / scale)
    np.testing.assert_allclose(r["b_terms"], bias_sum, rtol=1e-10, atol=1e-12 * scale.max())
    assert np.abs(bias_sum).max() > 1e-2 * np.abs(r["logits"]).max()  # the biases matter


def test_theorem1_needs_the_moving_means(resnet20, measured):
    """The moving means' own share of beta, sum over them of <mu, dPsi^i/dmu>, is far above
    round-off: leaving them out of the bias sum would break Theorem 1."""
    x, r = measured
    means = [layer.moving_mean.value for layer in resnet20.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    with tf.GradientTape(persistent=True) as tape:
        for v in means:
            tape.watch(v)
        logits = resnet20(x[:2], training=False)
        scores = [tf.reduce_sum(logits[:, i]) for i in range(3)]
    share = [sum(float(tf.reduce_sum(v * g)) for v, g in zip(means, tape.gradient(s, means)))
             for s in scores]
    assert max(abs(v) for v in share) > 1e-2 * np.abs(r["logits"]).max()


def test_bounds_14_to_16_hold_on_every_image(measured):
    _, r = measured
    lin = r["lin_robustness"]
    assert np.all(np.isfinite(lin)) and np.all(lin > 0)
    tol = 1e-9 * np.maximum(1.0, lin)
    assert np.all(lin <= r["bound14"] + tol)
    assert np.all(r["bound14"] <= r["bound15"] + tol)
    assert np.all(lin <= r["bound16"] + tol)
    for bound in ("bound14", "bound15", "bound16"):
        assert not theorem_bounds.bound_violated(r, bound).any(), bound
    np.testing.assert_allclose(r["x_term_bin"] + r["b_term_bin"], r["psi_bin"], rtol=1e-10)
