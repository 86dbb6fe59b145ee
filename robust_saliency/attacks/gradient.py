"""The paper's gradient attack: a line search along the loss gradient's direction."""

import math

import numpy as np

from robust_saliency.attacks.base import Attack, tf


class Gradient(Attack):
    """The paper's gradient attack: the loss-gradient direction d = grad / ||grad|| at x
    (Foolbox's L2 fast gradient direction), evaluated on a geometric grid of `grid_size` step
    lengths from 1e-3 to the box diagonal, then bisected `refine_steps` times per image between
    the last failing and the first succeeding step; the point is clip(x + t d, bounds)."""

    name, label = "gradient", "gradient"
    defaults = {"grid_size": 100, "refine_steps": 20}

    def run(self, attacker, x, labels):
        from robust_saliency import penalties

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(penalties.nll(labels, attacker.logits(xt)))
        grad = tape.gradient(loss, xt).numpy().reshape(len(x), -1)
        norms = np.linalg.norm(grad, axis=1, keepdims=True)
        direction = np.divide(grad, norms, out=np.zeros_like(grad), where=norms > 0)
        direction = direction.reshape(x.shape)
        low, high = attacker.bounds
        steps = np.geomspace(1e-3, math.sqrt(x[0].size) * (high - low),
                             self.options["grid_size"])

        def point(t):
            return x + t.reshape(-1, *[1] * (x.ndim - 1)).astype(x.dtype) * direction

        first = np.full(len(x), -1)
        for k, t in enumerate(steps):
            ok, _, _ = attacker.verify(x, point(np.full(len(x), t)), labels)
            first = np.where((first < 0) & ok, k, first)
        found = first >= 0
        hi = np.where(found, steps[np.maximum(first, 0)], np.inf)
        lo = np.where(found & (first > 0), steps[np.maximum(first - 1, 0)], 0.0)
        for _ in range(self.options["refine_steps"]):
            mid = np.where(found, 0.5 * (lo + hi), 0.0)
            ok, _, _ = attacker.verify(x, point(mid), labels)
            hi = np.where(found & ok, mid, hi)
            lo = np.where(found & ~ok, mid, lo)
        return point(np.where(found, hi, 0.0))
