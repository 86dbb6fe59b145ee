"""Bad input is refused with an error that names the problem and the fix: images (NaN, shape,
bounds, a model without logits), labels and the pixel box."""

import keras
import numpy as np
import pytest

from robust_saliency import input_checks, metrics, models


def test_nan_and_inf_pixels_raise(images):
    model = models.linear_classifier()
    for bad in (np.nan, np.inf):
        x = images.copy()
        x[3, 5, 5, 0] = bad
        with pytest.raises(ValueError, match="NaN/Inf pixels .*image 3"):
            metrics.measure(model, x)


def test_wrong_shape_and_non_logit_models_raise(images):
    with pytest.raises(ValueError, match="expects"):
        metrics.measure(models.linear_classifier(), images[..., 0])
    inputs = keras.Input((28, 28, 1))
    not_logits = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ValueError, match="2-D logits"):
        metrics.measure(not_logits, images)
    with pytest.raises(ValueError, match="non-empty"):
        metrics.measure(models.linear_classifier(), images[:0])


def test_out_of_bounds_pixels_are_named():
    x = np.full((2, 28, 28, 1), 0.5, "float32")
    x[1, 0, 0, 0] = 1.5
    with pytest.raises(ValueError, match="outside the bounds"):
        input_checks.check_images(x, bounds=(0.0, 1.0))


@pytest.mark.parametrize("labels, message", [
    (np.eye(10)[[1, 2, 3]], "look one-hot.*np.argmax"),
    (np.array([1, 2]), r"shape \(3,\)"),
    (np.array([0.0, 1.0, 2.0]), "integer class indices"),
    (np.array([1, 2, 10]), r"in \[0, 10\).*pass labels - 1"),
    (np.array([-1, 0, 1]), "integer class indices"),
])
def test_labels_the_network_cannot_predict_are_refused(labels, message):
    with pytest.raises(ValueError, match=message):
        input_checks.check_labels(labels, 3, 10)


def test_good_labels_come_back_as_int32():
    out = input_checks.check_labels(np.array([0, 9, 4], np.int64), 3, 10)
    assert out.dtype == np.int32 and out.tolist() == [0, 9, 4]


@pytest.mark.parametrize("bounds, message", [
    ((1, 0), r"reversed or empty: pass \(low, high\) with low < high, e.g. \(0, 1\)"),
    ((0, 0), "reversed or empty"),
    ((0, np.inf), "finite"),
    ("ab", "a pair"),
    (0.5, "a pair"),
    ((0, 1, 2), "a pair"),
])
def test_a_bad_pixel_box_is_refused(bounds, message):
    with pytest.raises(ValueError, match=message):
        input_checks.check_bounds(bounds)
