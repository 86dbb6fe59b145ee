"""The paper's L2 basic iterative attack (BIM): a compiled fixed-epsilon loop, step for step
Foolbox 3's, inside a per-image search over epsilon.

Kurakin, Goodfellow & Bengio, "Adversarial examples in the physical world" (ICLR 2017
workshop), in L2 as Foolbox 3.3.4's L2BasicIterativeAttack implements it (the paper's protocol
was measured with that): from x0 with no random start, `steps` times: the gradient of the summed
cross-entropy of the logits at the labels, divided by its L2 norm (at least 1e-12), a step of
`rel_stepsize` times epsilon along it, the perturbation clipped to L2 norm epsilon, the point
clipped into the box. Epsilon is one per image, found by `epsilon_search` (shared with the
L-inf BIM of attacks.bim_linf).
"""

import numpy as np

from robust_saliency import compiled
from robust_saliency.attacks.base import Attack, tf


class BIM(Attack):
    """The paper's BIM: the L2 basic iterative attack (`steps` steps of `rel_stepsize` times
    epsilon, no random start), compiled, step for step Foolbox 3.3.4's
    L2BasicIterativeAttack, with which the paper's protocol was first measured; with a
    per-image epsilon: doubling from `initial_epsilon` until it succeeds, then `search_steps`
    bisection steps (relative precision about 2^-8 of the bracket), keeping the smallest
    verified perturbation; only the images still searching are run."""

    name, label = "bim", "BIM"
    defaults = {"steps": 20, "rel_stepsize": 0.1, "initial_epsilon": 0.5, "search_steps": 8}

    def run(self, attacker, x, labels):
        def fixed(x, labels, eps):
            self.image_steps += len(x) * self.options["steps"]
            return fixed_epsilon(attacker.network, x, labels, eps, attacker.bounds,
                                 steps=self.options["steps"],
                                 rel_stepsize=self.options["rel_stepsize"])

        return epsilon_search(attacker, fixed, 2, x, labels, self.options["initial_epsilon"],
                              self.options["search_steps"], compact=True)


def _clip_l2(v, norm):
    from robust_saliency.attacks.minimal_norm import per_image

    # Foolbox's clip_lp_norms: factor min(1, norm / max(||v||, 1e-12)) per image.
    norms = tf.maximum(tf.norm(tf.reshape(v, [tf.shape(v)[0], -1]), axis=1), 1e-12)
    return v * per_image(tf.minimum(tf.ones_like(norms), norm / norms), v)


def _build(ref):
    from robust_saliency import input_checks, penalties
    from robust_saliency.attacks.minimal_norm import per_image

    dtype = input_checks.input_dtype(ref())
    signature = [compiled.image_spec(ref(), dtype), tf.TensorSpec([None], tf.int32),
                 tf.TensorSpec([None], dtype), tf.TensorSpec([], tf.int32),
                 tf.TensorSpec([], dtype), tf.TensorSpec([], dtype), tf.TensorSpec([], dtype)]

    def loop(x0, labels, epsilon, steps, rel_stepsize, low, high):
        stepsize = per_image(rel_stepsize * epsilon, x0)

        def body(k, x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(penalties.nll(labels, ref()(x, training=False)))
            grad = tape.gradient(loss, x)
            norms = tf.maximum(tf.norm(tf.reshape(grad, [tf.shape(grad)[0], -1]), axis=1),
                               1e-12)
            x = x + stepsize * (grad * per_image(1 / norms, grad))
            x = x0 + _clip_l2(x - x0, epsilon)
            return k + 1, tf.clip_by_value(x, low, high)

        return tf.while_loop(lambda k, x: k < steps, body, (tf.constant(0), x0))[1]

    return tf.function(loop, input_signature=signature, autograph=False)


def compiled_loop(network):
    """The fixed-epsilon step loop on `network`, traced once and cached with it."""
    return compiled.per_network(network, ("attack", "bim"), _build)


def fixed_epsilon(network, x, labels, epsilon, bounds, *, steps=20, rel_stepsize=0.1,
                  eager=False):
    """L2 BIM's end points for a batch, one epsilon (N,) per image; `eager` runs the same code
    without tf.function (the tests' check of the compiled loop)."""
    loop = compiled_loop(network)
    call = loop.python_function if eager else loop
    dtype = x.dtype
    return call(tf.constant(x), tf.constant(labels, tf.int32), tf.constant(epsilon, dtype),
                tf.constant(steps, tf.int32), *(tf.constant(v, dtype) for v in (
                    rel_stepsize, *bounds))).numpy()


def epsilon_search(attacker, fixed, norm, x, labels, initial_epsilon, search_steps, *,
                   compact=False):
    """Smallest verified output of a fixed-epsilon attack over a per-image epsilon: doubling
    from `initial_epsilon` until it succeeds, then `search_steps` bisection steps.

    Args:
      attacker: the attacks.verify.Attacker that judges every output.
      fixed: callable(x, labels, epsilon (N,)) -> candidate points of the attack.
      norm: 2 or np.inf, the norm of epsilon and of the reported distances.
      compact: run only the images whose search goes on (those still doubling, then those
        with a bracket). Each image's run depends on that image alone, so the search is
        the same; Foolbox's attacks run the whole batch every time, as the committed
        results were measured, and the last bits of a batch's logits depend on its size.
    """
    best = x.copy()
    best_dist = np.full(len(x), np.inf)
    everyone = np.arange(len(x))
    # The largest perturbation inside the box: its diagonal in L2, its width in L-inf.
    low, high = attacker.bounds
    max_eps = np.linalg.norm(np.full(x[0].size, high - low), ord=norm)

    def run(eps, active):
        rows = np.flatnonzero(active) if compact else everyone
        ok = np.zeros(len(x), bool)
        if not len(rows):
            return ok
        candidate = fixed(x[rows], labels[rows], eps[rows])
        ok[rows], dist, candidate = attacker.verify(x[rows], candidate, labels[rows], norm)
        better = ok[rows] & (dist < best_dist[rows])
        best[rows[better]], best_dist[rows[better]] = candidate[better], dist[better]
        return ok

    eps = np.full(len(x), initial_epsilon)
    lo, hi = np.zeros(len(x)), np.full(len(x), np.inf)
    while True:  # doubling until every image has succeeded or passed the largest epsilon
        searching = np.isinf(hi) & (lo < max_eps)
        if not searching.any():
            break
        ok = run(np.where(searching, eps, np.where(np.isinf(hi), lo, hi)), searching)
        hi = np.where(searching & ok, eps, hi)
        lo = np.where(searching & ~ok, eps, lo)
        eps = np.where(searching & ~ok, eps * 2, eps)
    found = np.isfinite(hi)
    for _ in range(search_steps):
        mid = np.where(found, 0.5 * (lo + hi), 0.0)
        ok = run(mid, found)
        hi = np.where(found & ok, mid, hi)
        lo = np.where(found & ~ok, mid, lo)
    return best
