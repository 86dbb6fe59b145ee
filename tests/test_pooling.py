"""The fast-second-derivative max-pool: the same values, gradients, second derivatives and
forward-mode derivatives as keras.layers.MaxPooling2D, exactly, and it saves and loads."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import randomize_biases

from robust_saliency import models, pooling


def _with_keras_pools(network):
    """A copy of `network` with every pooling.MaxPooling2D replaced by Keras' own."""
    def swap(layer):
        cls = (keras.layers.MaxPooling2D if isinstance(layer, pooling.MaxPooling2D)
               else layer.__class__)
        return cls.from_config(layer.get_config())

    twin = keras.models.clone_model(network, clone_function=swap)
    twin.set_weights(network.get_weights())
    return twin


@pytest.mark.parametrize("shape", [(3, 8, 8, 4), (2, 7, 7, 3)])  # even, and cropped odd sizes
def test_second_derivative_is_tensorflows_maxpoolgradgrad(rng, shape):
    x = tf.constant(rng.normal(size=shape))
    dy = tf.constant(rng.normal(size=(shape[0], shape[1] // 2, shape[2] // 2, shape[3])))
    ddx = tf.constant(rng.normal(size=shape))
    with tf.GradientTape() as outer:
        outer.watch(dy)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = pooling._max_pool(x, (2, 2), (2, 2), "VALID")
        dx = inner.gradient(y, x, output_gradients=dy)
    np.testing.assert_array_equal(dx, tf.raw_ops.MaxPoolGrad(
        orig_input=x, orig_output=y, grad=dy, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
        padding="VALID"))
    second = outer.gradient(dx, dy, output_gradients=ddx)
    expected = tf.raw_ops.MaxPoolGradGrad(orig_input=x, orig_output=y, grad=ddx,
                                          ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
                                          padding="VALID")
    np.testing.assert_allclose(second, expected, rtol=1e-15, atol=1e-15)


def test_double_backprop_of_small_net_equals_keras_pooling(images, rng):
    """The penalty's weight gradient, the whole double-backprop path, in float64."""
    keras.utils.set_random_seed(4)
    net = randomize_biases(models.small_net(dtype="float64", dropout=0.0), rng)
    twin = _with_keras_pools(net)
    assert sum(isinstance(layer, pooling.MaxPooling2D) for layer in net.layers) == 3
    assert not any(isinstance(layer, pooling.MaxPooling2D) for layer in twin.layers)
    x = tf.constant(images)
    results = []
    for model in (net, twin):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                score = tf.reduce_sum(model(x)[:, 3])
            grad = inner.gradient(score, x)
            penalty = tf.reduce_sum(grad ** 2)
        results.append([grad, *outer.gradient(penalty, model.trainable_variables)])
        with tf.autodiff.ForwardAccumulator(primals=x, tangents=x) as acc:
            logits = model(x)
        results[-1].append(acc.jvp(logits))
    compared = 0
    for ours, theirs in zip(*results):
        assert (ours is None) == (theirs is None)  # e.g. the logits bias: no input gradient
        if ours is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
            compared += 1
    assert compared >= 10


@pytest.mark.parametrize("options", [dict(pool_size=3, strides=2), dict(pool_size=2,
                                                                         padding="same")])
def test_overlapping_or_padded_windows_fall_back_to_keras(rng, options):
    x = tf.constant(rng.normal(size=(2, 9, 9, 3)))
    ours, theirs = pooling.MaxPooling2D(**options), keras.layers.MaxPooling2D(**options)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        a, b = ours(x), theirs(x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(tape.gradient(a, x), tape.gradient(b, x))


def test_small_net_saves_and_loads_with_its_pooling(tmp_path, rng):
    net = models.small_net()
    x = rng.uniform(0, 1, (4, 28, 28, 1)).astype("float32")
    net.save(str(tmp_path / "n.keras"))
    loaded = keras.models.load_model(str(tmp_path / "n.keras"))
    assert sum(isinstance(layer, pooling.MaxPooling2D) for layer in loaded.layers) == 3
    np.testing.assert_array_equal(loaded(x), net(x))
