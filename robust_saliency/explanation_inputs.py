"""What the explanation metrics (robust_saliency.explanations) read, and the base class they
share: Inputs holds the images, the maps and their per-pixel relevances, the classes explained,
the pixel box, and the model's logit and input-gradient functions, called in batches whose size
changes no value.

TensorFlow is imported only where a model is called.
"""

from __future__ import annotations

import numpy as np


class Metric:
    """One explanation-quality metric. `higher_is_better` says which direction is better;
    `needs_model` whether it calls the model (else it reads images and maps only)."""

    name: str = ""
    label: str = ""  # how figures and tables name it
    higher_is_better = True
    needs_model = False
    # Scores the model's plain gradient whatever map it is given: for SmoothGrad or IG maps it
    # would score the gradient again (or, randomisation, compare two methods), so it has no
    # `_smoothgrad` / `_ig` column.
    gradient_only = False

    def __call__(self, inputs):
        raise NotImplementedError


class Inputs:
    """What the metrics read: images, maps and their flat pixel relevances, the classes the maps
    explain, the bounds, and the model's compiled logits and input-gradient functions."""

    def __init__(self, model, images, maps, classes, bounds, batch_size, compiled):
        import tensorflow as tf

        from robust_saliency import input_checks, logit_gradients
        from robust_saliency.logits import logits_network

        self._constant = tf.constant
        self.network = logits_network(model) if model is not None else None
        self.images = input_checks.check_images(images, self.network, bounds)
        self.bounds, self.batch_size = bounds, batch_size
        if self.network is not None:
            from robust_saliency import saliency

            self.grad_of = lambda net, x, c: logit_gradients.grad_at(net, x, c)[1]  # noqa: E731
            call = lambda x: self.network(x, training=False)  # noqa: E731
            grad = lambda x, c: self.grad_of(self.network, x, c)  # noqa: E731
            self._logits = tf.function(call, autograph=False) if compiled else call
            self._grad = tf.function(grad, autograph=False) if compiled else grad
            # The classes validated (or predicted) as for every other saliency method.
            self.classes = saliency.target_classes(self.network, self.images, classes, batch_size)
        if maps is None:
            if self.network is None:
                raise ValueError("maps=None scores the model's plain gradients: pass the model.")
            maps = self.gradient(self.images)
        maps = np.asarray(maps, np.float64)
        if maps.shape != self.images.shape:
            raise ValueError(f"maps have shape {maps.shape}, the images {self.images.shape}: "
                             "pass one map per image, shaped like it.")
        if not np.all(np.isfinite(maps)):
            raise ValueError(f"maps contain {int((~np.isfinite(maps)).sum())} NaN/Inf values; "
                             "a map must be finite to be scored.")
        self.maps = maps
        n = len(maps)
        self.relevance = maps.reshape(n, -1, maps.shape[-1]).sum(axis=-1)  # (N, pixels)
        pixels = self.images.reshape(n, -1, self.images.shape[-1]).mean(axis=-1)
        self.mask = pixels > bounds[0] + 0.5 * (bounds[1] - bounds[0])

    def batched(self, fn, x, *more):
        """fn over x (and `more` arrays alongside) in batches of batch_size, concatenated."""
        return np.concatenate([np.asarray(fn(*(self._constant(a[s:s + self.batch_size])
                                                for a in (x, *more))))
                               for s in range(0, len(x), self.batch_size)])

    def logits(self, x):
        return self.batched(self._logits, np.asarray(x, self.images.dtype)).astype(np.float64)

    def score(self, x, classes=None):
        """Psi^c(x) per image, c the explained class."""
        c = self.classes if classes is None else classes
        return self.logits(x)[np.arange(len(x)), c]

    def gradient(self, x, classes=None):
        c = self.classes if classes is None else classes
        return self.batched(self._grad, np.asarray(x, self.images.dtype),
                             np.asarray(c, np.int32)).astype(np.float64)

    def replaced(self, order, count, insert=False):
        """The images with pixels order[:, :count] (every channel) set to the low bound, or with
        `insert` an all-low-bound image with just those pixels set to the image's values."""
        x = self.images.reshape(len(self.images), -1, self.images.shape[-1]).astype(np.float64)
        out = np.full_like(x, self.bounds[0]) if insert else x.copy()
        rows, cols = np.arange(len(x))[:, None], order[:, :count]
        out[rows, cols] = x[rows, cols] if insert else self.bounds[0]
        return out.reshape(self.images.shape)


def rank_correlations(a, b):
    """Spearman per row, NaN where either row is constant (it ranks nothing)."""
    from robust_saliency import saliency

    r = saliency.rank_correlations(a, b)
    return np.where((np.ptp(a, axis=1) > 0) & (np.ptp(b, axis=1) > 0), r, np.nan)


def ratio(num, den):
    """num / den per element, NaN where den is not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
