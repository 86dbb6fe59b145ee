"""Explanation-quality metrics of saliency maps, per image, beside the paper's alignment.

The paper measures interpretability by alignment alone and warns (Section 3.3) that the two
should not be conflated. These are the field's standard measures, in the groups of Hedstroem et
al. (2023, Quantus), each written here from its paper, one class each, registered in METRICS:

  faithfulness   deletion, insertion (pixel flipping, Samek et al., 2017), faithfulness
                 correlation (Bhatt et al., 2020)
  robustness     max_sensitivity (Yeh et al., 2019)
  randomisation  random_logit (Sixt et al., 2020), randomisation (Adebayo et al., 2018)
  complexity     sparseness (the Gini index, Chalasani et al., 2020), complexity (entropy,
                 Bhatt et al., 2020)
  localisation   relevance_mass, relevance_rank (Arras et al., 2022), with the digit's strokes
                 (pixels above half the pixel range) as the object

A map's relevance per pixel is its value summed over channels; the metrics that need the model
read the logit Psi^c of the class c the map explains (the logits, as every quantity here;
logits.logits_network). Values are float64 per image; a metric undefined on an image (a zero
map, an empty object mask, a constant sample) is NaN there, never a silent 0, and
`undefined(values)` counts those images.

TensorFlow is imported only where a model is called, so the registry (names, directions) reads
without it, as the TensorFlow-free claims do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from robust_saliency import image_seeds, stats
from robust_saliency.explanation_inputs import Inputs, Metric, rank_correlations, ratio

if TYPE_CHECKING:
    from collections.abc import Sequence

    import keras
    from numpy.typing import ArrayLike


class Sparseness(Metric):
    """The Gini index of |relevance| (Chalasani et al., 2020): sorted ascending a_1..a_n,
    sum_i (2i - n - 1) a_i / (n sum_i a_i); 0 for a constant map, (n - 1)/n for a one-hot one."""

    name = "sparseness"
    label = "sparseness (Gini)"

    def __call__(self, inputs):
        a = np.sort(np.abs(inputs.relevance), axis=1)
        n = a.shape[1]
        weights = 2 * np.arange(1, n + 1) - n - 1
        return ratio((a * weights).sum(axis=1), n * a.sum(axis=1))


class Complexity(Metric):
    """Entropy of the share of |relevance| each pixel holds (Bhatt et al., 2020), in nats: 0 for
    a one-hot map, log(n) for a constant one; lower is simpler."""

    name = "complexity"
    label = "complexity (entropy)"
    higher_is_better = False

    def __call__(self, inputs):
        a = np.abs(inputs.relevance)
        p = a / np.where(a.sum(axis=1, keepdims=True) > 0, a.sum(axis=1, keepdims=True), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)
        return np.where(a.sum(axis=1) > 0, h, np.nan)


class RelevanceMass(Metric):
    """The share of sum |relevance| on the object mask (Arras et al., 2022): 1 when all of it
    lies on the digit's strokes, 0 when none does; NaN for an empty mask or a zero map."""

    name = "relevance_mass"
    label = "relevance mass"

    def __call__(self, inputs):
        a = np.abs(inputs.relevance)
        on = (a * inputs.mask).sum(axis=1)
        return np.where(inputs.mask.any(axis=1), ratio(on, a.sum(axis=1)), np.nan)


class RelevanceRank(Metric):
    """Of the K pixels of highest |relevance|, K the mask's size, the share on the mask (Arras
    et al., 2022; ties broken by pixel order); NaN for an empty mask."""

    name = "relevance_rank"
    label = "relevance rank accuracy"

    def __call__(self, inputs):
        order = np.argsort(-np.abs(inputs.relevance), axis=1, kind="stable")
        k = inputs.mask.sum(axis=1)
        top = np.arange(order.shape[1])[None, :] < k[:, None]
        hits = np.take_along_axis(inputs.mask, order, axis=1) & top
        return ratio(hits.sum(axis=1).astype(np.float64), k.astype(np.float64))


def _flipping_curve(inputs, steps, insertion):
    """(N, steps + 1) Psi^c along pixel flipping: most relevant (largest signed relevance)
    first, a share k / steps of the pixels replaced by the low bound (deletion) or, from an
    all-low-bound image, restored (insertion)."""
    order = np.argsort(-inputs.relevance, axis=1, kind="stable")
    pixels = order.shape[1]
    counts = np.round(np.linspace(0, pixels, steps + 1)).astype(int)
    return np.stack([inputs.score(inputs.replaced(order, c, insert=insertion))
                     for c in counts], axis=1)


class Deletion(Metric):
    """Pixel flipping (Samek et al., 2017): the area over the curve of the explained logit as
    the most relevant pixels are set to the low bound in `steps` equal shares,
    mean_k (Psi^c(x) - Psi^c(x_k)); higher: the map found what the logit rests on."""

    name = "deletion"
    label = "deletion (area over curve)"
    needs_model = True
    steps = 20

    def __call__(self, inputs):
        curve = _flipping_curve(inputs, self.steps, insertion=False)
        return (curve[:, :1] - curve).mean(axis=1)


class Insertion(Metric):
    """Insertion (the reverse of pixel flipping): from an all-low-bound image, the most relevant
    pixels restored first in `steps` shares; mean_k (Psi^c(x_k) - Psi^c(x_0)), higher better."""

    name = "insertion"
    label = "insertion (area under curve)"
    needs_model = True
    steps = 20

    def __call__(self, inputs):
        curve = _flipping_curve(inputs, self.steps, insertion=True)
        return (curve - curve[:, :1]).mean(axis=1)


class FaithfulnessCorrelation(Metric):
    """Faithfulness correlation (Bhatt et al., 2020): over `samples` random pixel subsets S of
    `subset_share` of the pixels, Pearson's correlation between the relevance in S and the drop
    Psi^c(x) - Psi^c(x with S at the low bound); NaN where either is constant."""

    name = "faithfulness_correlation"
    label = "faithfulness correlation"
    needs_model = True
    samples, subset_share, seed = 50, 0.1, 0

    def __call__(self, inputs):
        n, pixels = inputs.relevance.shape
        size = max(1, int(round(self.subset_share * pixels)))
        # Each image's subsets from its own stream (image_seeds): its score is its own.
        subsets = np.stack([np.argsort(rng.random((self.samples, pixels)), axis=1)[:, :size]
                            for rng in image_seeds.generators(self.seed, inputs.images)])
        base = inputs.score(inputs.images)
        sums, drops = [], []
        for sample in range(self.samples):
            subset = subsets[:, sample]
            sums.append(np.take_along_axis(inputs.relevance, subset, axis=1).sum(axis=1))
            drops.append(base - inputs.score(inputs.replaced(subset, size)))
        return np.array([stats.pearson(s, d) for s, d in zip(np.stack(sums, 1),
                                                             np.stack(drops, 1))])


class MaxSensitivity(Metric):
    """Max-sensitivity (Yeh et al., 2019) of the plain gradient map: the largest relative change
    ||g(x + d) - g(x)|| / ||g(x)|| over `samples` perturbations d drawn on the L2 sphere of
    radius `radius` * (high - low) * sqrt(pixels) / 28 (0.1 on MNIST: the same share of the
    pixel range per pixel on any image size) and clipped into the box; lower is more robust.
    Scores the gradient, so it refuses other maps (see `measure`)."""

    name = "max_sensitivity"
    label = "max-sensitivity"
    higher_is_better = False
    needs_model = True
    gradient_only = True
    samples, radius, seed = 10, 0.1, 0

    def sphere_radius(self, images, bounds):
        """The L2 radius of the perturbations for `images` (N, ...) in the box `bounds`."""
        pixels = int(np.prod(np.shape(images)[1:]))
        return self.radius * (bounds[1] - bounds[0]) * np.sqrt(pixels) / 28.0

    def __call__(self, inputs):
        x = inputs.images.astype(np.float64)
        g = inputs.gradient(x).reshape(len(x), -1)
        norm = np.linalg.norm(g, axis=1)
        radius = self.sphere_radius(x, inputs.bounds)
        draws = np.stack([rng.normal(size=(self.samples, *x.shape[1:]))
                          for rng in image_seeds.generators(self.seed, inputs.images)])
        worst = np.zeros(len(x))
        for sample in range(self.samples):
            d = draws[:, sample]
            d *= radius / np.linalg.norm(d.reshape(len(x), -1), axis=1).reshape(
                (-1,) + (1,) * (x.ndim - 1))
            moved = np.clip(x + d, *inputs.bounds)
            change = np.linalg.norm(inputs.gradient(moved).reshape(len(x), -1) - g, axis=1)
            worst = np.maximum(worst, change)
        return ratio(worst, norm)


class RandomLogit(Metric):
    """Random-logit test (Sixt et al., 2020) of the plain gradient: Spearman's correlation of
    |grad Psi^c| with |grad Psi^j| for a random other class j (seeded); an explanation that does
    not depend on the class explained scores 1; lower is better."""

    name = "random_logit"
    label = "random-logit similarity"
    higher_is_better = False
    needs_model = True
    gradient_only = True
    seed = 0

    def __call__(self, inputs):
        n = inputs.logits(inputs.images[:1]).shape[1]
        shift = [rng.integers(1, n) for rng in image_seeds.generators(self.seed, inputs.images)]
        other = (inputs.classes + np.array(shift, dtype=inputs.classes.dtype)) % n
        a = np.abs(inputs.gradient(inputs.images).reshape(len(other), -1))
        b = np.abs(inputs.gradient(inputs.images, other).reshape(len(other), -1))
        return rank_correlations(a, b)


class Randomisation(Metric):
    """Model-parameter randomisation (Adebayo et al., 2018) per image: Spearman's correlation of
    |map| with |grad Psi^c| of the network with every layer re-initialised (seeded; the
    cascade's last stage, saliency.randomisation_check); lower: the map depends on what was
    learnt."""

    name = "randomisation"
    label = "randomisation similarity"
    higher_is_better = False
    needs_model = True
    gradient_only = True
    seed = 0
    biases = "initializers"  # saliency.BIAS_MODES: Keras's zero biases, as the cohorts measured

    def __call__(self, inputs):
        from robust_saliency import saliency

        random = saliency.randomised_network(inputs.network, self.seed, self.biases)
        g = inputs.batched(lambda x, c: inputs.grad_of(random, x, c), inputs.images,
                            inputs.classes)
        flat = lambda a: np.abs(a.reshape(len(a), -1))  # noqa: E731
        return rank_correlations(flat(inputs.maps), flat(g.astype(np.float64)))


METRICS: dict[str, type[Metric]] = {
    m.name: m for m in (Deletion, Insertion, FaithfulnessCorrelation, MaxSensitivity, RandomLogit,
                        Randomisation, Sparseness, Complexity, RelevanceMass, RelevanceRank)}
EXPLANATION_METRICS = METRICS  # robust_saliency.EXPLANATION_METRICS


# The metrics that score the map they are given: measured for SmoothGrad and IG maps too.
MAP_METRICS = tuple(name for name, m in METRICS.items() if not m.gradient_only)


def undefined(values):
    """How many images a metric is undefined on (NaN), for the exclusion counts."""
    return int(np.isnan(np.asarray(values, np.float64)).sum())


def explanation_metrics(model: keras.Model | None, images: ArrayLike,
                        maps: ArrayLike | None = None, *, metrics: Sequence[str] | None = None,
                        classes: ArrayLike | None = None,
                        bounds: tuple[float, float] = (0.0, 1.0), batch_size: int = 100,
                        compiled: bool = True) -> dict[str, np.ndarray]:
    """Every chosen metric of `maps` (one per image), per image.

    Args:
      model: the Keras classifier the maps explain; None scores the maps alone (only the
        metrics without needs_model).
      images: array (N, ...) inside `bounds`, finite.
      maps: array shaped like `images`, finite: the saliency maps scored; None: the model's
        plain gradient grad_x Psi^c (the paper's saliency map).
      metrics: names in METRICS; None: all that apply (with maps given, MAP_METRICS; without a
        model, the map-only ones).
      classes: int (N,) the class each map explains; None: the model's prediction.
      bounds: the pixel box (low bound: the deleted pixels' value; object mask at mid-range).
      batch_size: images per model call (the values do not depend on it).
      compiled: run the model calls as tf.functions; False runs them eagerly (same values).

    Returns:
      dict name -> float64 (N,), NaN where the metric is undefined (see each class).

    Raises:
      ValueError: unknown metric, a model-based metric without a model, a gradient-only metric
        (max_sensitivity, random_logit, randomisation) with maps given (it scores the model's
        gradient, not a map), maps or images that are not finite or not shaped alike, pixels
        outside the bounds.
    """
    if metrics is None:
        names = [n for n, m in METRICS.items() if (model is not None or not m.needs_model)
                 and (maps is None or not m.gradient_only)]
    else:
        names = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown explanation metrics {unknown}; known: {sorted(METRICS)}")
    need = [n for n in names if METRICS[n].needs_model]
    if need and model is None:
        raise ValueError(f"metrics {need} call the model: pass it as the first argument.")
    gradient_only = [n for n in names if METRICS[n].gradient_only]
    if gradient_only and maps is not None:
        raise ValueError(f"metrics {gradient_only} score the model's plain gradient (they "
                         "recompute it at other inputs, classes or weights), not the maps "
                         "given: pass maps=None for them, or choose among "
                         f"{list(MAP_METRICS)} for these maps.")
    inputs = Inputs(model, images, maps, classes, bounds, batch_size, compiled)
    return {name: np.asarray(METRICS[name]()(inputs), np.float64) for name in names}


measure = explanation_metrics  # the library's own name for it (robust_saliency.explanation_metrics)
