"""Each preflight check fires on a model built to trip it and stays silent on small_net."""

import keras
import numpy as np
import pytest

from robust_saliency import metrics, model_checks


@pytest.fixture(scope="module")
def val(synthetic_arrays):
    _, (x, y) = synthetic_arrays
    return x[:40], y[:40]


def verdicts(found):
    return {c.name: c.verdict for c in found}


def small_cnn(*middle, output_activation=None, seed=0):
    """A small conv net with `middle` layers (callables on tensors) after its first conv."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    for layer in middle:
        h = layer(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(inputs, keras.layers.Dense(10, activation=output_activation)(h))


def test_silent_on_small_net(trained_small_net, val):
    x, y = val
    found = model_checks.preflight(trained_small_net, x, bounds=(0, 1), labels=y)
    assert [c.name for c in found] == ["images", "outputs", "bounds", "batch", "determinism",
                                       "gradients", "flat_logits", "accuracy"]
    assert set(verdicts(found).values()) == {"pass"}, str(found)
    assert found.raise_if_refused() is found
    assert "accuracy" in str(found)


def test_without_labels_accuracy_is_skipped_not_passed(trained_small_net, val):
    found = model_checks.preflight(trained_small_net, val[0])
    assert verdicts(found)["accuracy"] == "skipped"


def test_final_softmax_is_removed_and_said(val):
    found = model_checks.preflight(small_cnn(output_activation="softmax"), val[0])
    check = found[1]
    assert check.verdict == "pass" and "softmax is removed" in check.finding


class _SoftmaxNet(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(10)

    def call(self, x):
        return keras.ops.softmax(self.dense(keras.ops.reshape(x, (-1, 784))))


def test_subclassed_softmax_outputs_are_refused(val):
    found = model_checks.preflight(_SoftmaxNet(), val[0])
    assert verdicts(found)["outputs"] == "refused"
    assert "probabilities" in found[1].finding
    assert verdicts(found)["batch"] == "skipped"
    with pytest.raises(model_checks.PreflightError, match="outputs: .*probabilities"):
        found.raise_if_refused()


def test_images_on_the_wrong_scale_for_the_bounds_are_refused(trained_small_net, val):
    x = val[0]
    eight_bit = model_checks.preflight(trained_small_net, x * 255, bounds=(0, 1))
    assert verdicts(eight_bit)["bounds"] == "refused"
    assert "divide by 255" in eight_bit[2].finding
    unit = model_checks.preflight(trained_small_net, x, bounds=(0, 255))
    assert verdicts(unit)["bounds"] == "refused"
    assert "0.39% of the box" in unit[2].finding
    reversed_ = model_checks.preflight(trained_small_net, x, bounds=(1, 0))
    assert verdicts(reversed_)["bounds"] == "refused" and "reversed" in reversed_[2].finding


class BatchStatistics(keras.layers.Layer):
    """Normalises by its batch's own statistics in every mode, inference included."""

    def call(self, x):
        mean = keras.ops.mean(x, axis=(0, 1, 2))
        return (x - mean) / keras.ops.sqrt(keras.ops.var(x, axis=(0, 1, 2)) + 1e-3)


def test_batch_statistics_at_inference_are_refused(val):
    model = small_cnn(BatchStatistics())
    found = model_checks.preflight(model, val[0])
    assert verdicts(found)["batch"] == "refused", str(found)
    assert verdicts(found)["determinism"] == "pass"


@keras.saving.register_keras_serializable(package="tests")
class NoiseAtInference(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.generator = keras.random.SeedGenerator(0)

    def call(self, x):
        return x + 0.1 * keras.random.normal(keras.ops.shape(x), seed=self.generator)


def test_noise_at_inference_is_a_warning_naming_the_layer(val):
    model = small_cnn(NoiseAtInference(name="jitter"))
    found = model_checks.preflight(model, val[0])
    check = found[4]
    assert (check.name, check.verdict) == ("determinism", "warning")
    assert "jitter" in check.finding


class _StopGradient(keras.layers.Layer):
    def call(self, x):
        return keras.ops.stop_gradient(x)


def test_zero_gradients_are_refused_and_measure_says_why(val):
    model = small_cnn(_StopGradient())
    found = model_checks.preflight(model, val[0])
    assert verdicts(found)["gradients"] == "refused", str(found)
    assert "zero everywhere" in found[5].finding
    with pytest.raises(ValueError, match="do not depend on its input images"):
        metrics.measure(model, val[0])


def test_non_finite_weights_are_refused(trained_small_net, val):
    model = keras.models.clone_model(trained_small_net)
    model.set_weights(trained_small_net.get_weights())
    kernel = model.layers[-1].kernel
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    found = model_checks.preflight(model, val[0])
    assert verdicts(found)["outputs"] == "refused"
    assert "weight variables hold NaN/Inf" in found[1].finding


def test_nearly_flat_logits_are_a_warning(val):
    model = small_cnn()
    dense = model.layers[-1]
    dense.kernel.assign(dense.kernel * 1e-6)
    dense.bias.assign(np.arange(10, dtype="float32"))
    found = model_checks.preflight(model, val[0])
    assert verdicts(found)["flat_logits"] == "warning", str(found)


def test_bad_and_chance_labels(trained_small_net, val):
    x, y = val
    found = model_checks.preflight(trained_small_net, x, labels=y + 1)
    assert verdicts(found)["accuracy"] in ("refused", "warning")
    out_of_range = model_checks.preflight(trained_small_net, x, labels=np.full(len(x), 10))
    assert verdicts(out_of_range)["accuracy"] == "refused"
    assert "One-based labels" in out_of_range[-1].finding
    wrong = (trained_small_net.predict(x, verbose=0).argmax(1) + 1) % 10
    chance = model_checks.preflight(trained_small_net, x, labels=wrong)
    assert verdicts(chance)["accuracy"] == "warning"


def test_nan_images_are_refused_and_the_rest_skipped(trained_small_net, val):
    x = val[0].copy()
    x[3, 0, 0, 0] = np.nan
    found = model_checks.preflight(trained_small_net, x)
    assert verdicts(found)["images"] == "refused"
    assert {c.verdict for c in found[1:]} == {"skipped"}


def test_measure_warns_where_a_saliency_map_is_exactly_zero(val):
    model = small_cnn()
    for weights in model.weights:
        weights.assign(np.zeros(weights.shape, weights.dtype))
    with pytest.warns(UserWarning, match="40 of 40 images have an exactly zero input gradient"):
        metrics.measure(model, val[0])
    assert verdicts(model_checks.preflight(model, val[0]))["gradients"] == "refused"
