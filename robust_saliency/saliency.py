"""Aggregated saliency maps, their alignment with the image, and a parameter-randomisation check.

The paper's saliency map is the plain gradient g = grad_x Psi^c(x) of a logit, its alignment
alpha = |<x, g>| / ||g|| (eq. 3); its introduction contrasts robust models' plain gradients with
aggregation methods, two of which this module puts on the same alignment scale: SmoothGrad
(Smilkov et al., 2017) and Integrated Gradients (Sundararajan et al., 2017). `randomisation_check`
is Adebayo et al.'s (2018) cascading sanity check of the plain gradient. Kernels are compiled once
per network and reused, as in `metrics`.
"""


from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from robust_saliency import image_seeds, input_checks, logit_gradients, stats
from robust_saliency.compiled import image_spec, per_network
from robust_saliency.logits import logits_network

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def _smoothgrad_batch(model, x, classes, seeds, sigma, samples):
    shape = tf.shape(x)
    # One noise stream per image, keyed by (seed, its pixels): a map depends on its image alone,
    # and compiled and eager runs draw the same noise.
    noise = tf.map_fn(
        lambda s: tf.random.stateless_normal(tf.concat([[samples], shape[1:]], 0), s,
                                             dtype=x.dtype),
        seeds, fn_output_signature=x.dtype)
    # No clipping to the bounds: SmoothGrad as published adds unclipped noise, and clipping would
    # bias the average near the bounds (a pixel at 0 could only be moved up).
    noisy = x[:, None] + sigma * noise
    _, grads = logit_gradients.grad_at(model,
                                       tf.reshape(noisy, tf.concat([[-1], shape[1:]], 0)),
                                       tf.repeat(classes, samples))
    return tf.reduce_mean(tf.reshape(grads, tf.shape(noisy)), axis=1)


def _ig_batch(model, x, x0, classes, steps):
    alphas = (tf.cast(tf.range(steps), x.dtype) + 0.5) / tf.cast(steps, x.dtype)
    path = x0[None] + tf.reshape(alphas, [-1] + [1] * x.shape.rank) * (x - x0)[None]
    _, grads = logit_gradients.grad_at(model,
                                       tf.reshape(path, tf.concat([[-1], tf.shape(x)[1:]], 0)),
                                       tf.tile(classes, [steps]))
    return (x - x0) * tf.reduce_mean(tf.reshape(grads, tf.shape(path)), axis=0)


def _kernel(network, method, compiled):
    """The batch kernel of `method`; a compiled one is traced once per network for any batch
    size, samples or steps, and cached (by weak reference, never keeping a model alive)."""
    batch_fn = {"smoothgrad": _smoothgrad_batch, "ig": _ig_batch}[method]
    if not compiled:
        return lambda *args: batch_fn(network, *args)

    def build(ref):
        dtype = input_checks.input_dtype(network)
        image = image_spec(network, dtype)
        classes, count = tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)
        specs = {"smoothgrad": [image, classes, tf.TensorSpec([None, 2], tf.int64),
                                tf.TensorSpec([], dtype), count],
                 "ig": [image, image, classes, count]}[method]
        # autograph off: no tensor-dependent Python control flow to convert (metrics too).
        return tf.function(lambda *args: batch_fn(ref(), *args), input_signature=specs,
                           autograph=False)

    return per_network(network, ("saliency", method), build)


def _run(kernel, batch_size, *per_image, shared=()):
    """kernel over batches of the per-image arrays (plus `shared` tensors), concatenated."""
    parts = []
    for start in range(0, len(per_image[0]), batch_size):
        batch = [tf.convert_to_tensor(a[start:start + batch_size]) for a in per_image]
        parts.append(kernel(*batch, *shared).numpy())
    return np.concatenate(parts)


def target_classes(network, arr, classes, batch_size):
    """The explicit classes as int32 (N,), validated, or else the network's predictions."""
    if classes is None:
        return np.concatenate([
            np.argmax(network(arr[s:s + batch_size], training=False), axis=1)
            for s in range(0, len(arr), batch_size)]).astype(np.int32)
    return input_checks.check_labels(classes, len(arr), network.output_shape[-1], "classes")


def smoothgrad(model: keras.Model, images: ArrayLike, classes: ArrayLike | None = None, *,
               samples: int = 50, noise: float = 0.15, bounds: tuple[float, float] = (0, 1),
               batch_size: int = 100, seed: int = 0, compiled: bool = True) -> np.ndarray:
    """SmoothGrad: the mean of grad_x Psi^c(x + eps) over `samples` draws eps ~ N(0, sigma^2 I).

    Args:
      model: Keras model from images to logits, or a RobustModel wrapping one.
      images: array (N, *image_shape), finite and within `bounds`.
      classes: int (N,) logit per image; None takes the predicted class.
      samples: noisy copies per image, all in the batch's one call: memory grows with
        batch_size * samples passes (lower batch_size for large images).
      noise: sigma = noise * (high - low), Smilkov et al.'s relative level; 0: plain gradient.
      bounds: (low, high) pixel range.
      batch_size: images per call.
      seed: an image's noise comes from the stateless stream keyed by (seed, its pixels)
        (robust_saliency.image_seeds): deterministic given seed, and the same whatever images
        it is scored with, in any order or batch size.
      compiled: False runs the same code eagerly.

    Returns:
      float array shaped like `images`, in the model's input dtype.

    Raises:
      ValueError: NaN/Inf or out-of-bounds pixels, bad classes, samples < 1 or noise < 0.
    """
    if samples < 1 or noise < 0:
        raise ValueError(f"need samples >= 1 and noise >= 0; got {samples} and {noise}.")
    network = logits_network(model)
    arr = input_checks.check_images(images, network, bounds)
    classes = target_classes(network, arr, classes, batch_size)
    seeds = image_seeds.stateless(seed, arr)
    sigma = tf.constant(noise * (bounds[1] - bounds[0]), arr.dtype)
    return _run(_kernel(network, "smoothgrad", compiled), batch_size, arr, classes, seeds,
                shared=(sigma, tf.constant(samples, tf.int32)))


def integrated_gradients(model: keras.Model, images: ArrayLike,
                         classes: ArrayLike | None = None, *, baseline: ArrayLike | None = None,
                         steps: int = 50, bounds: tuple[float, float] = (0, 1),
                         batch_size: int = 100, compiled: bool = True) -> np.ndarray:
    """Integrated Gradients with the midpoint rule: (x - x0) * mean_k grad Psi^c(x0 + a_k (x - x0)),
    a_k = (k + 1/2) / steps.

    Completeness, sum(IG) = Psi^c(x) - Psi^c(x0), holds exactly for an affine Psi and up to the
    quadrature error (O(1/steps) at the kinks of a ReLU network) otherwise.

    Args:
      model: Keras model from images to logits, or a RobustModel wrapping one.
      images: array (N, *image_shape), finite and within `bounds`.
      classes: int (N,) logit per image; None takes the predicted class.
      baseline: x0, a scalar, one image or one per image; None is the black image, i.e. the
        low bound everywhere: all zeros for data in [0, 1], -1 for data in [-1, 1].
      steps: points on the path; memory grows with batch_size * steps passes.
      bounds: (low, high) pixel range.
      batch_size: images per call.
      compiled: False runs the same code eagerly.

    Returns:
      float array shaped like `images`, in the model's input dtype.

    Raises:
      ValueError: NaN/Inf or out-of-bounds pixels, bad classes or baseline, steps < 1.
    """
    if steps < 1:
        raise ValueError(f"need steps >= 1; got {steps}.")
    network = logits_network(model)
    arr = input_checks.check_images(images, network, bounds)
    classes = target_classes(network, arr, classes, batch_size)
    x0 = np.asarray(bounds[0] if baseline is None else baseline, dtype=arr.dtype)
    try:
        x0 = np.array(np.broadcast_to(x0, arr.shape))
    except ValueError:
        raise ValueError(f"baseline of shape {x0.shape} fits neither one image nor the batch "
                         f"{arr.shape}.") from None
    if not np.isfinite(x0).all():
        raise ValueError("baseline contains NaN/Inf pixels.")
    return _run(_kernel(network, "ig", compiled), batch_size, arr, x0, classes,
                shared=(tf.constant(steps, tf.int32),))


def _alignments(images, maps):
    """alpha = |<x, m>| / ||m|| per image (eq. 3), float64 (N,)."""
    flat = lambda a: tf.constant(np.reshape(a, (len(a), -1)), tf.float64)  # noqa: E731
    return logit_gradients.alignment(flat(images), flat(maps)).numpy()


def aggregated_alignments(model: keras.Model, images: ArrayLike, *,
                          classes: ArrayLike | None = None, bounds: tuple[float, float] = (0, 1),
                          smoothgrad_options: dict[str, Any] | None = None,
                          ig_options: dict[str, Any] | None = None, batch_size: int = 100,
                          return_maps: bool = False) -> dict[str, np.ndarray]:
    """Alignment (eq. 3) of the SmoothGrad and Integrated Gradients maps with their images.

    Args:
      model: Keras model from images to logits, or a RobustModel wrapping one.
      images: array (N, *image_shape), finite and within `bounds`.
      classes: int (N,) logit per image; None takes the predicted class, as the paper's alignment.
      bounds: (low, high) pixel range (SmoothGrad's sigma, the default IG baseline).
      smoothgrad_options: keyword arguments for `smoothgrad` (samples, noise, seed, compiled).
      ig_options: keyword arguments for `integrated_gradients` (baseline, steps, compiled).
      batch_size: images per call.
      return_maps: also return the maps.

    Returns:
      dict of float64 (N,) arrays `alignment_smoothgrad`, `alignment_ig`; with return_maps also
      `smoothgrad`, `ig`, shaped like the images (the model's dtype).

    Raises:
      ValueError: NaN/Inf or out-of-bounds pixels, a shape the model does not take, bad classes.
    """
    network = logits_network(model)
    arr = input_checks.check_images(images, network, bounds)
    classes = target_classes(network, arr, classes, batch_size)
    common: dict[str, Any] = dict(bounds=bounds, batch_size=batch_size)
    maps = {"smoothgrad": smoothgrad(network, arr, classes, **common, **(smoothgrad_options or {})),
            "ig": integrated_gradients(network, arr, classes, **common, **(ig_options or {}))}
    out = {f"alignment_{name}": _alignments(arr, m) for name, m in maps.items()}
    return {**out, **maps} if return_maps else out


def _cosines(a, b):
    """<a_bar, b_bar> per row, float64; 0 where either row is zero."""
    return logit_gradients.dot(logit_gradients.unit(tf.constant(a, tf.float64)),
                               logit_gradients.unit(tf.constant(b, tf.float64))).numpy()


def rank_correlations(a, b):
    """Spearman's rank correlation per row of (N, D): Pearson's of the ranks (0 for a constant
    row, which ranks nothing)."""
    ra, rb = stats.ranks(a), stats.ranks(b)
    return _cosines(ra - ra.mean(axis=1, keepdims=True), rb - rb.mean(axis=1, keepdims=True))


#: How `randomised_network` re-initialises biases: 'initializers' keeps the layers' own (zeros
#: for Keras's Dense and Conv layers, so a re-initialised ReLU net has dead units that give
#: exactly zero gradient pixels); 'fan_in_uniform' draws them from U(-1/sqrt(fan_in),
#: 1/sqrt(fan_in)), PyTorch's default for linear and convolutional layers.
BIAS_MODES = ("initializers", "fan_in_uniform")


def randomised_network(network, seed=0, biases="initializers"):
    """A fresh clone of `network` with every layer's weights drawn anew by its own initializers,
    each seeded from `seed` (the fully randomised end of Adebayo et al.'s cascade); `biases`
    (BIAS_MODES) says how the biases are drawn."""
    if biases not in BIAS_MODES:
        raise ValueError(f"biases must be one of {BIAS_MODES}, got {biases!r}")
    fresh = keras.models.clone_model(network, clone_function=_seeded_clone(seed))
    if biases == "fan_in_uniform":
        rng = np.random.default_rng([seed, 1])
        for layer in fresh.layers:
            kernel, bias = getattr(layer, "kernel", None), getattr(layer, "bias", None)
            if kernel is not None and bias is not None:
                bound = 1.0 / np.sqrt(np.prod(kernel.shape[:-1]))
                bias.assign(rng.uniform(-bound, bound, bias.shape).astype(bias.dtype))
    return fresh


def _seeded_clone(seed):
    """A clone_function giving every seedable initializer its own seed drawn from `seed`."""
    rng = np.random.default_rng(seed)

    def clone(layer):
        config = layer.get_config()
        for key, value in config.items():
            if (key.endswith("_initializer") and isinstance(value, dict)
                    and "seed" in (value.get("config") or {})):
                value["config"]["seed"] = int(rng.integers(2**31))
        return layer.__class__.from_config(config)

    return clone


def randomisation_check(model: keras.Model, images: ArrayLike, *,
                        classes: ArrayLike | None = None, seed: int = 0,
                        biases: str = "initializers",
                        batch_size: int = 100) -> list[dict[str, Any]]:
    """Cascading model-parameter randomisation (Adebayo et al., 2018) of the plain gradient.

    From the logits layer down, one more layer with trainable weights at a time gets all its
    weights re-initialised by its own initializers (a seeded fresh clone of the network), in a
    working copy that starts from the trained weights; the caller's model is never modified. The
    class c stays the trained model's prediction (or `classes`) at every stage.

    Args:
      model: functional or Sequential Keras model from images to logits, or a RobustModel.
      images: array (N, *image_shape), finite.
      classes: int (N,) logit per image; None takes the trained model's prediction.
      seed: seeds the re-initialisation.
      biases: how re-initialised layers get their biases (BIAS_MODES): their own initializers
        (zeros in Keras) or PyTorch's fan-in uniform draw.
      batch_size: images per gradient call.

    Returns:
      list of dict rows, one per stage ('none' first, then each layer top-down), with keys
        randomised (layer name or 'none'), layers_randomised (int, cumulative),
        median_alignment (median of alpha = |<x, g>| / ||g||, eq. 3),
        median_rank_correlation (median Spearman correlation of |g| with the trained |g|),
        median_cosine_similarity (median cosine of the signed g with the trained g).
    """
    network = logits_network(model)
    arr = input_checks.check_images(images, network)
    classes = target_classes(network, arr, classes, batch_size)
    working = keras.models.clone_model(network)
    working.set_weights(network.get_weights())
    # A fresh clone re-runs every layer's own initializers, for whatever weights the layer has
    # (kernels, biases, batch-norm statistics), without knowing their attribute names.
    fresh = randomised_network(network, seed, biases)
    spec = [tf.TensorSpec([None, *network.input_shape[1:]], arr.dtype),
            tf.TensorSpec([None], tf.int32)]
    # Traced once: set_weights assigns the same variables, which every later call reads.
    grad = tf.function(lambda x, c: logit_gradients.grad_at(working, x, c)[1], input_signature=spec,
                       autograph=False)
    names = [layer.name for layer in reversed(working.layers) if layer.trainable_weights]
    rows, trained = [], None
    for count, name in enumerate(["none"] + names):
        if count:
            working.get_layer(name).set_weights(fresh.get_layer(name).get_weights())
        maps = _run(grad, batch_size, arr, classes).reshape(len(arr), -1)
        trained = maps if trained is None else trained
        # Ranks of |g| as Adebayo et al. (the magnitude is what is shown); the cosine keeps signs.
        rows.append({
            "randomised": name, "layers_randomised": count,
            "median_alignment": float(np.median(_alignments(arr, maps))),
            "median_rank_correlation": float(np.median(rank_correlations(np.abs(trained),
                                                                 np.abs(maps)))),
            "median_cosine_similarity": float(np.median(_cosines(trained, maps))),
        })
    return rows
