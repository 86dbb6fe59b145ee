"""Input checks every entry point shares: images, pixel bounds and labels.

Each raises a ValueError that names the problem and the fix. They are the cheap half of the
preflight (robust_saliency.model_checks), run by every function that takes a model and images.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from robust_saliency.logits import check_logits

if TYPE_CHECKING:
    import keras
    from numpy.typing import ArrayLike

_LOGITS_CHECK_IMAGES = 8  # rows that, all summing to 1, mark probabilities (logits never do)


def input_dtype(model):
    """The dtype images must have for `model` (its input layer's, else its compute dtype)."""
    inputs = getattr(model, "inputs", None)
    return inputs[0].dtype if inputs else model.compute_dtype


def check_bounds(bounds):
    """`bounds` as a (low, high) pair of floats with low < high, both finite.

    Raises:
      ValueError: not a pair, not finite, or reversed / empty.
    """
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (low, high) of numbers, e.g. (0, 1); got "
                         f"{bounds!r}.") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"bounds must be finite, got ({low}, {high}).")
    if low >= high:
        raise ValueError(f"bounds ({low:g}, {high:g}) are reversed or empty: pass (low, high) "
                         f"with low < high, e.g. ({min(low, high):g}, {max(low, high):g}).")
    return low, high


def check_images(images: ArrayLike, model: keras.Model | None = None,
                 bounds: tuple[float, float] | None = None) -> np.ndarray:
    """Validate an image batch: numeric, finite, non-empty, of the model's shape and in bounds.

    Args:
      images: array-like (N, *image_shape).
      model: if given, the images must match its input shape and it must output 2-D logits,
        not probabilities (checked on the first few images; pass it through logits_network).
      bounds: optional (low, high) every pixel must lie in.

    Returns:
      The images as a numpy array of the model's dtype (float32 without a model).

    Raises:
      ValueError: naming the problem and the fix.
    """
    dtype = input_dtype(model) if model is not None else "float32"
    arr = np.asarray(images, dtype=dtype)
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise ValueError(f"images must be a non-empty batch (N, H, W, C); got shape {arr.shape}.")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.argwhere(bad.reshape(len(arr), -1).any(axis=1))[0, 0])
        raise ValueError(
            f"images contain {int(bad.sum())} NaN/Inf pixels (first in image {first}); "
            "clean or drop those images before measuring.")
    if model is not None:
        if not getattr(model, "inputs", None):
            check_logits(model, arr[:_LOGITS_CHECK_IMAGES])
            raise ValueError(
                f"model '{model.name}' has no functional graph (a subclassed Keras model), so "
                "its input and output shapes, which the compiled kernels are traced for, are "
                "unknown; wrap it: inputs = keras.Input(image_shape); "
                "keras.Model(inputs, model(inputs)).")
        expected = tuple(model.input_shape[1:])
        if len(expected) != arr.ndim - 1 or any(
                e is not None and e != a for e, a in zip(expected, arr.shape[1:])):
            raise ValueError(
                f"images have shape {arr.shape[1:]} per image but model '{model.name}' expects "
                f"{expected}; reshape (e.g. add the channel axis) to match.")
        if len(model.output_shape) != 2 or (model.output_shape[-1] or 0) < 2:
            raise ValueError(
                f"model '{model.name}' must map images to 2-D logits (batch, classes>=2); "
                f"its output shape is {model.output_shape}.")
        check_logits(model, arr[:_LOGITS_CHECK_IMAGES])
    if bounds is not None:
        low, high = check_bounds(bounds)
        if arr.min() < low or arr.max() > high:
            raise ValueError(
                f"pixels lie in [{arr.min():.4g}, {arr.max():.4g}], outside the bounds "
                f"({low:g}, {high:g}); preprocess the images as the dataset does (e.g. divide "
                "uint8 pixels by 255 for bounds (0, 1)) or pass the bounds they lie in.")
    return arr


def check_labels(labels: ArrayLike, count: int, classes: int,
                 name: str = "labels") -> np.ndarray:
    """`labels` as int32 (count,), each a class index of a network with `classes` logits.

    A label the network cannot predict would make every image count as misclassified (an
    adversarial distance of 0), so it is refused, as are one-hot rows and float labels.

    Raises:
      ValueError: wrong shape (one-hot included), non-integer values, or a class outside
        [0, classes), with the fix.
    """
    arr = np.asarray(labels)
    if arr.ndim == 2 and arr.shape == (count, classes):
        raise ValueError(f"{name} look one-hot (shape {arr.shape}); pass class indices: "
                         f"np.argmax({name}, axis=1).")
    if arr.shape != (count,):
        raise ValueError(f"{name} must have shape ({count},), one class index per image; got "
                         f"{arr.shape}.")
    if count and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0
                  or arr.max() >= classes):
        raise ValueError(f"{name} must be integer class indices in [0, {classes}) of the "
                         f"network's {classes} logits; got dtype {arr.dtype}, range "
                         f"{arr.min()}..{arr.max()}. One-based labels: pass {name} - 1.")
    return arr.astype(np.int32)
