"""Preflight: whether a model and its images give per-image numbers that mean what they seem to.

`preflight(model, images, bounds=...)` runs every check below on a sample of the images and
returns one verdict per check: 'pass', 'warning' (the numbers are computed, read them with the
finding in mind), 'refused' (the per-image quantities would be wrong or meaningless) or
'skipped' (nothing to check, e.g. accuracy without labels). Each finding says what was seen and,
unless it passed, the fix.

  images         a non-empty batch of finite pixels.
  outputs        one tensor of logits (a final softmax is removed; probabilities are refused),
                 finite on the images (non-finite weights are counted).
  bounds         the bounds are a box, the images inside it and plausibly scaled for it
                 (images in [0, 1] with bounds (0, 255), or the reverse, are refused).
  batch          an image's logits do not depend on the batch it is in (inference mode): a
                 model that normalises by its batch's statistics at inference is refused.
  determinism    two calls agree (dropout or noise active at inference: a warning naming the
                 layer).
  gradients      input gradients finite and not all zero (refused otherwise); the share of
                 exactly-zero gradient pixels is reported, a warning above one half.
  flat_logits    the linearized distance to the decision boundary, rho_tilde, within the box's
                 diagonal on most images (otherwise the logits are nearly flat: a warning).
  accuracy       on the given labels (validated): a warning near chance.

The checks cost a few forward and backward passes of `sample` images; the measurement entry
points run the cheap input checks (robust_saliency.input_checks) on every call.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras
    from numpy.typing import ArrayLike

VERDICTS = ("pass", "warning", "refused", "skipped")
# An image's logits computed alone and in a batch differ by the round-off of another kernel
# order, a few ulps of the logits' scale per layer; this many ulps of the largest logit is far
# above that and far below what batch statistics at inference change (order one).
_ULPS = 1024
_MOSTLY_ZERO = 0.5  # share of exactly-zero gradient pixels above which maps are mostly empty
_PLAUSIBLE_SPAN = 1 / 50  # pixel span over bounds width below which the scales disagree


@dataclasses.dataclass(frozen=True)
class Check:
    """One preflight check: its name, verdict (VERDICTS), what it found, and the fix."""

    name: str
    verdict: str
    finding: str
    fix: str = ""


class PreflightError(ValueError):
    """Raised by `Preflight.raise_if_refused`; `checks` holds every verdict."""

    def __init__(self, checks):
        self.checks = checks
        lines = [f"{c.name}: {c.finding} Fix: {c.fix}" for c in checks if c.verdict == "refused"]
        super().__init__("the preflight refused this model or these images:\n  "
                         + "\n  ".join(lines))


class Preflight(tuple):
    """The checks' verdicts, in order (a tuple of Check)."""

    @property
    def refused(self):
        return [c for c in self if c.verdict == "refused"]

    @property
    def warnings(self):
        return [c for c in self if c.verdict == "warning"]

    def raise_if_refused(self):
        """Raises PreflightError listing every refusal, if any."""
        if self.refused:
            raise PreflightError(self)
        return self

    def as_rows(self):
        """[{name, verdict, finding, fix}] for a table or JSON."""
        return [dataclasses.asdict(c) for c in self]

    def __str__(self):
        width = max(len(c.name) for c in self)
        return "\n".join(f"{c.name:<{width}}  {c.verdict:<8} {c.finding}"
                         + (f" Fix: {c.fix}" if c.fix and c.verdict != "pass" else "")
                         for c in self)


def preflight(model: keras.Model, images: ArrayLike, *, bounds: tuple[float, float] = (0.0, 1.0),
              labels: ArrayLike | None = None, sample: int = 16) -> Preflight:
    """Every preflight check of `model` on (the first `sample` of) `images`.

    Args:
      model: a Keras classifier (or a RobustModel), as the measurement entry points take it.
      images: array (N, *image_shape).
      bounds: (low, high) the pixels should lie in.
      labels: optional true labels (N,), to check them and the accuracy.
      sample: images the model-level checks run on (the bounds check reads all of them).

    Returns:
      A Preflight (tuple of Check); `.raise_if_refused()` turns refusals into a PreflightError.
    """
    from robust_saliency import input_checks, logits

    found = []
    network = arr = None
    try:
        arr = input_checks.check_images(images)
        found.append(Check("images", "pass", f"{len(arr)} finite images of shape "
                           f"{arr.shape[1:]}."))
    except ValueError as e:
        found.append(Check("images", "refused", str(e), "see the finding."))
    try:
        network = logits.logits_network(model)
        if arr is None:
            found.append(_not_run("outputs"))
        else:
            arr = input_checks.check_images(arr, network)
            found.append(_outputs(model, network, arr[:sample]))
    except ValueError as e:
        found.append(Check("outputs", "refused", str(e),
                           "give a model from images to one (N, classes) tensor of logits."))
        arr = None
    found.append(_bounds(arr, bounds) if arr is not None else _not_run("bounds"))
    usable = arr is not None and all(c.verdict != "refused" for c in found[:2])
    x = arr[:sample] if usable and arr is not None else None
    for name, check in (("batch", _batch), ("determinism", _determinism)):
        found.append(check(network, x) if usable else _not_run(name))
    found.append(_gradients(network, x) if usable else _not_run("gradients"))
    if usable and found[-1].verdict != "refused" and found[2].verdict != "refused":
        found.append(_flat_logits(network, bounds, x))
    else:
        found.append(Check("flat_logits", "skipped", "not run: needs the gradients and a box."))
    found.append(_accuracy(network, arr, labels) if usable else _not_run("accuracy"))
    return Preflight(found)


def _not_run(name):
    return Check(name, "skipped", "not run: the images or the model's outputs were refused.")


def _outputs(model, network, x):
    import keras

    from robust_saliency import logits

    removed = logits.squashing(getattr(model, "network", model))
    values = keras.ops.convert_to_numpy(network(x, training=False))
    if not np.isfinite(values).all():
        bad = [v.path for v in network.weights
               if not np.isfinite(keras.ops.convert_to_numpy(v)).all()]
        where = (f"{len(bad)} weight variables hold NaN/Inf (first: {bad[0]})" if bad
                 else "the weights are finite: an operation of the model overflows")
        return Check("outputs", "refused",
                     f"the logits are NaN/Inf on {int((~np.isfinite(values)).any(1).sum())} of "
                     f"{len(x)} images; {where}.",
                     "load weights from before training diverged (fit stops on a non-finite "
                     "loss with keras.callbacks.TerminateOnNaN).")
    note = (f"the final {removed} is removed: every quantity is measured on the logits before "
            "it." if removed else "the model returns logits.")
    return Check("outputs", "pass", f"one tensor of {values.shape[1]} classes; {note}")


def _bounds(images, bounds):
    from robust_saliency import input_checks

    try:
        low, high = input_checks.check_bounds(bounds)
    except ValueError as e:
        return Check("bounds", "refused", str(e), "pass bounds=(low, high) with low < high.")
    arr = np.asarray(images, dtype=np.float64)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    seen = f"pixels lie in [{lo:.4g}, {hi:.4g}], bounds ({low:g}, {high:g})"
    if lo < low or hi > high:
        scale = ("; they look like 8-bit pixels: divide by 255" if hi > 1.5 and high <= 1.0
                 else "")
        return Check("bounds", "refused", f"{seen}: outside the box{scale}.",
                     "preprocess the images as the model expects, or pass the bounds they lie "
                     "in.")
    if 0 < hi - lo < _PLAUSIBLE_SPAN * (high - low):
        return Check("bounds", "refused",
                     f"{seen}: the images span {(hi - lo) / (high - low):.2%} of the box, as "
                     "images in [0, 1] with bounds for [0, 255] do; distances and the box's "
                     "clipping would be on the wrong scale.",
                     f"pass the bounds of the images' own scale, e.g. (0, {hi:.3g}) -> (0, 1).")
    return Check("bounds", "pass", f"{seen}.")


def _logits(network, x):
    import keras

    return keras.ops.convert_to_numpy(network(x, training=False)).astype(np.float64)


def _tolerance(network, values):
    eps = np.finfo(np.dtype(str(network.compute_dtype))).eps
    return _ULPS * eps * max(1.0, float(np.abs(values).max()))


def _batch(network, x):
    together = _logits(network, x)
    alone = np.concatenate([_logits(network, x[i:i + 1]) for i in range(len(x))])
    gap = float(np.abs(together - alone).max())
    if gap > _tolerance(network, together):
        return Check("batch", "refused",
                     f"an image's logits change with the batch it is in (by up to {gap:.3g} "
                     f"between a batch of {len(x)} and one image at a time, in inference "
                     "mode): per-image numbers would depend on their neighbours.",
                     "make inference use fixed statistics (e.g. call batch norm with "
                     "training=False / moving statistics), or measure one image at a time.")
    return Check("batch", "pass", f"logits of {len(x)} images alone and together agree to "
                 f"{gap:.2g}.")


def _determinism(network, x):
    first, second = _logits(network, x), _logits(network, x)
    if np.array_equal(first, second):
        return Check("determinism", "pass", "two inference calls agree exactly.")
    gap = float(np.abs(first - second).max())
    if gap <= _tolerance(network, first):
        return Check("determinism", "pass", f"two inference calls agree to {gap:.2g} "
                     "(round-off).")
    layers = _random_layers(network, x)
    where = (f"layer(s) {', '.join(layers)} give different outputs on the same input"
             if layers else "the layer responsible could not be isolated")
    return Check("determinism", "warning",
                 f"two inference calls differ by up to {gap:.3g}: {where}; attacks and maps "
                 "then see a moving target.",
                 "turn off noise and dropout at inference (pass training to the layer, or "
                 "remove it for measuring).")


def _random_layers(network, x):
    """The first layer(s) of a functional network whose outputs differ between two calls."""
    import keras

    layers = [layer for layer in getattr(network, "layers", [])
              if not isinstance(layer, keras.layers.InputLayer)]
    try:
        inputs = network.inputs[0] if len(network.inputs) == 1 else network.inputs
        probe = keras.Model(inputs, [layer.output for layer in layers])
    except (AttributeError, ValueError, TypeError):
        return []
    first = [keras.ops.convert_to_numpy(v) for v in probe(x, training=False)]
    second = [keras.ops.convert_to_numpy(v) for v in probe(x, training=False)]
    for layer, a, b in zip(layers, first, second):
        if not np.array_equal(a, b):
            return [layer.name]
    return []


def _gradients(network, x):
    import tensorflow as tf

    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        logits = network(xt, training=False)
        top = tf.reduce_max(logits, axis=1)
    g = tape.gradient(top, xt, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    g = g.numpy().reshape(len(x), -1)
    if not np.isfinite(g).all():
        return Check("gradients", "refused", "input gradients are NaN/Inf.",
                     "check the model for operations with undefined gradients.")
    zero = float(np.mean(g == 0))
    if zero == 1.0:
        return Check("gradients", "refused",
                     "the input gradient of the predicted logit is zero everywhere: alignment "
                     "and rho_tilde would be 0/0.",
                     "the model's output does not depend on its input at these images (e.g. a "
                     "stop_gradient, a rounding layer or dead ReLUs); measure a model that does.")
    finding = f"input gradients finite; {zero:.1%} of gradient pixels are exactly zero"
    if zero > _MOSTLY_ZERO:
        return Check("gradients", "warning", finding + ": saliency maps are mostly empty.",
                     "expected for some ReLU networks on constant backgrounds; read alignment "
                     "as the alignment of the non-zero part.")
    return Check("gradients", "pass", finding + ".")


def _flat_logits(network, bounds, x):
    from robust_saliency import metrics

    low, high = (float(b) for b in bounds)
    diagonal = (high - low) * np.sqrt(np.prod(x.shape[1:]))
    rho = metrics.measure(network, x, bounds=None, return_maps=True)["lin_robustness"]
    beyond = float(np.mean(rho > diagonal))
    finding = (f"median rho_tilde {np.median(rho):.3g} against the box diagonal "
               f"{diagonal:.3g}; {beyond:.0%} of images beyond it")
    if beyond > 0.5:
        return Check("flat_logits", "warning",
                     finding + ": the logits are nearly flat (no boundary within the box), so "
                     "attacks find no adversarial (inf) and rho_tilde is not a distance.",
                     "check that the model is trained and that its input scale matches the "
                     "bounds.")
    return Check("flat_logits", "pass", finding + ".")


def _accuracy(network, arr, labels):
    from robust_saliency import input_checks

    if labels is None:
        return Check("accuracy", "skipped", "no labels given: robustness is measured away from "
                     "the model's own predictions.")
    classes = network.output_shape[-1]
    try:
        labels = input_checks.check_labels(labels, len(arr), classes)
    except ValueError as e:
        return Check("accuracy", "refused", str(e), "pass labels as class indices.")
    pred = np.concatenate([np.argmax(_logits(network, arr[s:s + 256]), axis=1)
                           for s in range(0, len(arr), 256)])
    accuracy = float(np.mean(pred == labels))
    finding = f"accuracy {accuracy:.1%} on {len(arr)} labelled images"
    if accuracy <= 1.5 / classes:
        return Check("accuracy", "warning", finding + f", near chance ({1 / classes:.0%}).",
                     "check the labels' order and offset and the images' preprocessing.")
    return Check("accuracy", "pass", finding + ".")
