"""ResNet50 and 1000-class measurements: Theorem 1 with batch-norm moving means as biases, the
chunked linearized robustness against brute force, and the weights options."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import randomize_biases, sum_of_bias_terms

from robust_saliency import metrics, models


@pytest.fixture(scope="session")
def small_resnet():
    keras.utils.set_random_seed(2)
    return randomize_biases(models.resnet50(input_shape=(32, 32, 3)),
                            np.random.default_rng(2), scale=0.05)


@pytest.mark.slow
def test_theorem1_holds_for_resnet50_in_inference_mode(small_resnet):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-100, 100, (2, 32, 32, 3)).astype("float32"))
    logits, x_terms = metrics.x_terms(small_resnet, x)
    logits, x_terms = logits.numpy(), x_terms.numpy()
    classes = [int(np.argmax(logits[0])), 0, 999]
    bias_sum = sum_of_bias_terms(small_resnet, x, classes)  # 1000 classes would take too long
    for k, c in enumerate(classes):
        total = x_terms[:, c] + bias_sum[:, k]
        scale = np.abs(x_terms[:, c]) + np.abs(bias_sum[:, k])
        assert np.all(np.abs(total - logits[:, c]) <= 1e-3 * scale), (c, total, logits[:, c])
    assert np.abs(bias_sum).max() > 1e-2 * np.abs(logits).max()  # the biases matter here


def test_1000_classes_chunked_equals_brute_force():
    keras.utils.set_random_seed(4)
    inputs = keras.Input((6, 6, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    h = keras.layers.Flatten()(h)
    model = keras.Model(inputs, keras.layers.Dense(1000)(h))
    randomize_biases(model, np.random.default_rng(4))
    x = np.random.default_rng(5).uniform(0, 1, (3, 6, 6, 3)).astype("float32")
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        logits = model(xt, training=False)
    jac = tape.batch_jacobian(logits, xt).numpy().reshape(3, 1000, -1)
    logits = logits.numpy()
    pred = logits.argmax(1)
    rows = np.arange(3)
    margin = logits[rows, pred][:, None] - logits
    dist = np.linalg.norm(jac[rows, pred][:, None] - jac, axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.arange(1000)[None] == pred[:, None], np.inf, margin / dist)
    for chunk, compiled in ((None, True), (64, True), (64, False)):
        r = metrics.measure(model, x, class_chunk=chunk, compiled=compiled)
        np.testing.assert_allclose(r["lin_robustness"], ratio.min(1), rtol=1e-5)
        np.testing.assert_array_equal(r["runner_up"], ratio.argmin(1))


def test_weights_from_a_file_and_offline_imagenet_error(tmp_path, monkeypatch):
    keras.utils.set_random_seed(6)
    a = models.resnet50(input_shape=(32, 32, 3), num_classes=10)
    path = str(tmp_path / "r.weights.h5")
    a.save_weights(path)
    b = models.resnet50(input_shape=(32, 32, 3), num_classes=10, weights=path)
    x = np.random.default_rng(0).uniform(-100, 100, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(a(x, training=False).numpy(), b(x, training=False).numpy())
    assert all(layer.momentum == 0.999 for layer in b.layers
               if isinstance(layer, keras.layers.BatchNormalization))
    real = keras.applications.ResNet50

    def offline(*args, weights=None, **kwargs):
        if weights == "imagenet":
            raise OSError("URL fetch failure: no network")
        return real(*args, weights=weights, **kwargs)

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    with pytest.raises(models.WeightsUnavailableError, match="weights=PATH"):
        models.resnet50(input_shape=(32, 32, 3), weights="imagenet")
