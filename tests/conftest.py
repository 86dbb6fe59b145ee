import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices, so MirroredStrategy tests run real replicas on this machine; this must
# happen before TensorFlow initialises its runtime, hence at import.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])


def randomize_biases(model, rng, scale=0.1):
    """Give every bias, BN beta/gamma and BN moving statistic a random value.

    Keras initialises biases and BN statistics to 0/1, which would make the bias terms of
    Theorem 1 vanish trivially; the theory tests need them non-zero.
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, scale, n))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n))
            layer.beta.assign(rng.normal(0, scale, n))
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
        elif getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, scale, layer.bias.shape))
    return model


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def images(rng):
    return rng.uniform(0.0, 1.0, (12, 28, 28, 1))


@pytest.fixture(scope="session")
def synthetic_arrays():
    from robust_saliency import data

    return data.load_arrays("synthetic", "train"), data.load_arrays("synthetic", "validation")


@pytest.fixture(scope="session")
def trained_small_net(synthetic_arrays):
    """small_net fitted briefly on the synthetic set: a non-random, non-trivial float32 net."""
    from robust_saliency import models

    (x, y), _ = synthetic_arrays
    keras.utils.set_random_seed(0)
    model = models.small_net()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=50, epochs=2, verbose=0)
    return model


@pytest.fixture(scope="session")
def mirrored():
    """One MirroredStrategy over the two logical CPUs for the whole session: separate instances
    over the same devices in one process reuse collective instance keys and then abort each
    other's all-reduces ("Shape mismatch in the collective instance")."""
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    assert len(devices) == 2, "two logical CPUs are configured above"
    return tf.distribute.MirroredStrategy(devices)
