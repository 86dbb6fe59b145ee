"""FAB-L2, the fast adaptive boundary attack, as one compiled loop: the attack and its algorithm.

Croce & Hein, "Minimally distorted Adversarial Examples with a Fast Adaptive Boundary Attack",
ICML 2020, untargeted, L2. At each step, at the current point x_i, every candidate class j's
decision boundary f_j - f_y = 0 is linearised, the one nearest to x_i (|f_j - f_y| over
||grad (f_j - f_y)||) is kept, and both x_i and the original x are projected onto that
hyperplane inside the pixel box (d_1 from x_i, d_2 from x; Sec. 3's box-constrained projection).
The next point is the biased step

    x_{i+1} = clip((1 - alpha)(x_i + eta d_1) + alpha (x + eta d_2)),
    alpha = min(||d_1|| / (||d_1|| + ||d_2||), alpha_max),

and where x_{i+1} is adversarial it is kept if it is the smallest so far and then pulled back
towards x, x_{i+1} <- x + beta (x_{i+1} - x). Random restarts start from x plus noise. A
final search ends it: the paper's regula falsi on each best point's segment from x, after one
step added here, x projected inside the box onto the boundary linearised at the best point
(the paper's adversarial points sit past the boundary, and shrinking them towards x moves the
pixels held at the box's bounds off them; with this step the distance of an affine model is
exact).

The whole step loop is one `tf.function` (a `tf.while_loop`), traced once per network for any
batch size, in the network's input dtype; every quantity is per image. The driver `run` chains
restarts, optional early-exit chunks and the final search, and returns candidate points, which
the caller verifies (attacks.verify).
"""

import typing

import numpy as np

from robust_saliency.attacks.base import Attack, chunks, tf
from robust_saliency.attacks.box_projection import project

# The final search aims this fraction of the remaining way past the linearised crossing, towards
# the adversarial end of the segment: on an affine model the crossing itself is a tie, which
# rounding may judge either way; aiming a little past it makes every step's gap a tenth of the
# last one's instead of leaving the search stuck beside the boundary.
_AIM = 0.1
# How far past the linearised boundary the final search's projection of x aims (relative).
_OVERSHOOT = 1e-3


class FAB(Attack):
    """FAB-L2 (Croce & Hein, "Minimally distorted Adversarial Examples with a Fast Adaptive
    Boundary Attack", ICML 2020), untargeted: at each step the nearest linearised decision
    boundary, the box-constrained projections onto it from the current point and from the
    original image, and the biased step between them; the smallest adversarial point found is
    kept, and a final search brings it to the boundary: x projected onto the boundary
    linearised at that point (an addition, which makes the distance of affine models exact
    with the box active), then the paper's regula falsi on the segment from x. A compiled loop
    (attacks.fab, whose docstring gives the equations).

    Options:
      steps: FAB steps per restart; each step computes `candidates` class gradients and one
        forward pass.
      candidates: the boundaries linearised: the classes with the largest logits at the clean
        image besides its label (all of a 10-class model by default; on 1,000 classes this
        bounds the cost per step).
      alpha_max: the largest weight of the projection from the original image (the paper's
        alpha_max).
      eta: the overshoot of both projections (eta).
      beta: the backward step towards x after an adversarial point (beta).
      final_search: regula falsi steps of the final search (a forward pass each; the
        projection before them costs a gradient pass); 0 skips the final search.
      restarts: runs of `steps` steps; after the first, each starts from x plus a random
        perturbation of norm min(restart_radius, best distance) / 2, seeded per image by the
        image itself and `seed`, so that no image's result depends on the batch it is in.
      restart_radius: the paper's epsilon for restarts, in units of the box width.
      seed: the restarts' seed.
      check_every, tol: per-image early exit: between chunks of `check_every` steps, an image
        whose best distance improved by at most `tol` (relative) over the chunk stops (None:
        every image runs every step).
    """

    name, label = "fab", "FAB"
    defaults = {"steps": 100, "candidates": 9, "alpha_max": 0.1, "eta": 1.05, "beta": 0.9,
                "final_search": 5, "restarts": 1, "restart_radius": 1.0, "seed": 0,
                "check_every": None, "tol": 0.0}

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        checks = {"steps": o["steps"] >= 1, "candidates": o["candidates"] >= 1,
                  "alpha_max": 0 <= o["alpha_max"] <= 1, "eta": o["eta"] >= 1,
                  "beta": 0 < o["beta"] <= 1, "final_search": o["final_search"] >= 0,
                  "restarts": o["restarts"] >= 1, "restart_radius": o["restart_radius"] > 0,
                  "check_every": o["check_every"] is None or o["check_every"] >= 1,
                  "tol": o["tol"] >= 0}
        bad = [f"{key}={o[key]!r}" for key, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"bad option(s) {', '.join(bad)} for attack 'fab': steps, "
                             "candidates, restarts, check_every >= 1; 0 <= alpha_max <= 1; "
                             "eta >= 1; 0 < beta <= 1; final_search, tol >= 0; "
                             "restart_radius > 0")

    def run(self, attacker, x, labels):
        # The restarts' radius is in units of the box width, as the paper's is for [0, 1]
        # images; alpha_max, eta and beta are ratios.
        options = dict(self.options)
        options["restart_radius"] *= attacker.bounds[1] - attacker.bounds[0]
        points, _, steps = run(attacker.network, x, labels, attacker.bounds, **options)
        self.image_steps += steps
        return points


class _Problem(typing.NamedTuple):
    """What every stage of one FAB call reads: the network, the images, their labels, the
    candidate classes (the k highest other logits at x) and the box."""

    network: typing.Callable
    x: typing.Any  # tensors, all of them
    labels: typing.Any
    classes: typing.Any  # (N, k)
    k: typing.Any
    low: typing.Any
    high: typing.Any


def _flat(v):
    return tf.reshape(v, [tf.shape(v)[0], -1])


def _predicted(network, z):
    logits = network(z, training=False)
    return logits, tf.argmax(logits, axis=1, output_type=tf.int32)


def _class_gradient(network, point, classes, labels):
    """(f_j - f_y, its gradient) at `point`, j = `classes`, per image: one gradient pass."""
    with tf.GradientTape() as tape:
        tape.watch(point)
        logits = network(point, training=False)
        diff = (tf.gather(logits, classes[:, None], batch_dims=1)[:, 0]
                - tf.gather(logits, labels[:, None], batch_dims=1)[:, 0])
    return diff, tape.gradient(diff, point)


def _nearest_boundary(p, point, inf):
    """(f_j - f_y, grad (f_j - f_y)) at `point` of the candidate j whose linearised boundary is
    nearest; one class's gradient per pass, so memory stays O(batch)."""
    from robust_saliency.attacks.minimal_norm import per_image

    def body(c, best, df, dg):
        diff, grad = _class_gradient(p.network, point, p.classes[:, c], p.labels)
        norm = tf.norm(_flat(grad), axis=1)
        distance = tf.where(norm > 0, tf.abs(diff) / norm, inf)
        nearer = distance < best
        return (c + 1, tf.where(nearer, distance, best), tf.where(nearer, diff, df),
                tf.where(per_image(nearer, p.x), grad, dg))

    return tf.while_loop(lambda c, *_: c < p.k, body,
                         (0, inf, tf.zeros_like(inf), tf.zeros_like(p.x)))[2:]


def _step(p, inf, alpha_max, eta, beta, i, point, best_delta, best_norm):
    """One FAB iteration (the paper's Algorithm 1): project the point and x onto the nearest
    linearised boundary, step to their alpha-mix with overshoot eta, keep the best adversarial
    point, and pull an adversarial point back towards x by beta."""
    from robust_saliency.attacks.minimal_norm import per_image

    x, low, high = p.x, p.low, p.high
    df, dg = _nearest_boundary(p, point, inf)
    w = _flat(dg)
    b = tf.reduce_sum(w * _flat(point), axis=1) - df  # the plane dg . z = b
    d = project(tf.concat([_flat(point), _flat(x)], 0), tf.concat([w, w], 0),
                tf.concat([b, b], 0), low, high)
    d1, d2 = tf.split(d, 2)
    n1, n2 = tf.norm(d1, axis=1), tf.norm(d2, axis=1)
    alpha = per_image(tf.minimum(tf.math.divide_no_nan(n1, n1 + n2), alpha_max), x)
    d1, d2 = tf.reshape(d1, tf.shape(x)), tf.reshape(d2, tf.shape(x))
    point = tf.clip_by_value((1 - alpha) * (point + eta * d1) + alpha * (x + eta * d2),
                             low, high)
    _, label = _predicted(p.network, point)
    adversarial = label != p.labels
    norm = tf.norm(_flat(point - x), axis=1)
    better = adversarial & (norm < best_norm)
    best_norm = tf.where(better, norm, best_norm)
    best_delta = tf.where(per_image(better, x), point - x, best_delta)
    point = tf.where(per_image(adversarial, x), x + beta * (point - x), point)
    return i + 1, point, best_delta, best_norm


def _final_search(p, logits0, best_delta, best_norm, found, final_steps):
    """The best points after the final search (an addition, then the paper's):

    1. x projected inside the box onto the boundary of f_c - f_y linearised at the best point a2
       (c its class), _OVERSHOOT past it; kept if adversarial and nearer. On an affine model
       this is the exact box distance: FAB's own adversarial points sit past the boundary
       (about 0.5% at eta 1.05 and beta 0.9), and shrinking them towards x (step 2) moves the
       coordinates held at the box's bounds off them, which leaves a gap of the order of the
       overshoot squared.
    2. regula falsi on the segment from x (a1, not adversarial) to a2, on f_y - f_c with c the
       class at a2, each step aimed _AIM of the rest of the way past the linearised crossing;
       a2 is replaced by adversarial points only.
    """
    from robust_saliency.attacks.minimal_norm import logit_margin, per_image

    x, labels, low, high = p.x, p.labels, p.low, p.high
    a2 = x + best_delta
    l2, c = _predicted(p.network, a2)
    df, dg = _class_gradient(p.network, a2, c, labels)
    w = _flat(dg)
    d = project(_flat(x), w, tf.reduce_sum(w * _flat(a2), axis=1) - df, low, high)
    q = tf.clip_by_value(x + (1 + _OVERSHOOT) * tf.reshape(d, tf.shape(x)), low, high)
    lq, label = _predicted(p.network, q)
    nearer = (found & (label != labels)
              & (tf.norm(_flat(q - x), axis=1) < tf.norm(_flat(a2 - x), axis=1)))
    a2 = tf.where(per_image(nearer, x), q, a2)
    l2 = tf.where(nearer[:, None], lq, l2)

    def search(i, a1, l1, a2, l2):
        c = tf.argmax(l2, axis=1, output_type=tf.int32)
        f1 = (tf.gather(l1, labels[:, None], batch_dims=1)[:, 0]
              - tf.gather(l1, c[:, None], batch_dims=1)[:, 0])
        f2 = -logit_margin(l2, labels)
        t = tf.clip_by_value(tf.math.divide_no_nan(f1, f1 + f2), 0, 1)
        t = per_image(t + _AIM * (1 - t), x)
        a3 = tf.clip_by_value(a1 + t * (a2 - a1), low, high)
        l3, label = _predicted(p.network, a3)
        hit = (label != labels) & found
        miss = (label == labels) & found
        return (i + 1, tf.where(per_image(miss, x), a3, a1), tf.where(miss[:, None], l3, l1),
                tf.where(per_image(hit, x), a3, a2), tf.where(hit[:, None], l3, l2))

    a2 = tf.while_loop(lambda i, *_: i < final_steps, search, (0, x, logits0, a2, l2))[3]
    return (tf.where(per_image(found, x), a2 - x, best_delta),
            tf.where(found, tf.norm(_flat(a2 - x), axis=1), best_norm))


def _build(ref):
    from robust_saliency import compiled, input_checks

    network = ref()
    dtype = input_checks.input_dtype(network)
    image = compiled.image_spec(network, dtype)
    integer, scalar = tf.TensorSpec([], tf.int32), tf.TensorSpec([], dtype)
    signature = [image, tf.TensorSpec([None], tf.int32), image, image,
                 tf.TensorSpec([None], dtype), integer, integer, integer, *[scalar] * 5]
    del network

    def fab(x, labels, start, best_delta, best_norm, steps, final_steps, candidates, alpha_max,
            eta, beta, low, high):
        network = ref()
        logits0 = network(x, training=False)
        own = tf.one_hot(labels, tf.shape(logits0)[1]) > 0
        others = tf.where(own, tf.cast(-np.inf, logits0.dtype), logits0)
        k = tf.minimum(candidates, tf.shape(logits0)[1] - 1)
        p = _Problem(network, x, labels, tf.math.top_k(others, k).indices, k, low, high)
        inf = tf.fill(tf.shape(labels), tf.cast(np.inf, dtype))
        _, point, best_delta, best_norm = tf.while_loop(
            lambda i, *_: i < steps,
            lambda *state: _step(p, inf, alpha_max, eta, beta, *state),
            (0, start, best_delta, best_norm))
        found = tf.math.is_finite(best_norm)
        best_delta, best_norm = tf.cond(
            final_steps > 0,
            lambda: _final_search(p, logits0, best_delta, best_norm, found, final_steps),
            lambda: (best_delta, best_norm))
        return point, best_delta, best_norm

    return tf.function(fab, input_signature=signature, autograph=False)


def compiled_attack(network):
    """FAB's compiled step loop on `network`, traced once and cached with it."""
    from robust_saliency import compiled

    return compiled.per_network(network, ("attack", "fab"), _build)


def _random_starts(x, best_norm, radius, seed, restart, bounds):
    """x plus Gaussian noise of norm min(radius, best distance) / 2 (the paper's restarts),
    clipped to the box; each image's noise is its own (image_seeds: `seed`, `restart` and the
    image's pixels)."""
    from robust_saliency import image_seeds

    starts = np.empty_like(x)
    rngs = image_seeds.generators(seed, x, stream=(restart,), digest="blake2b")
    for i, (image, rng) in enumerate(zip(x, rngs)):
        noise = rng.standard_normal(image.shape)
        scale = min(radius, float(best_norm[i])) / 2 / np.linalg.norm(noise)
        starts[i] = np.clip(image + scale * noise, *bounds)
    return starts


def run(network, x, labels, bounds, *, steps, candidates=9, alpha_max=0.1, eta=1.05, beta=0.9,
        final_search=5, restarts=1, restart_radius=1.0, seed=0, check_every=None, tol=0.0,
        eager=False):
    """Runs FAB-L2 on every image; returns (best points, best distances, image-steps).

    Args:
      network: Keras model from images to logits.
      x: (N, ...) images in the network's input dtype, inside `bounds`.
      labels: (N,) int labels to move away from.
      bounds: (low, high) pixel box.
      steps, candidates, alpha_max, eta, beta, final_search, restarts, seed, check_every, tol:
        as attacks.fab.FAB's options.
      restart_radius: the restarts' epsilon, in pixel units.
      eager: run the loop's Python function eagerly (tests compare it with the compiled one).

    Returns:
      (points (N, ...) = x + best e, distances (N,) float64 = ||best e||_2, np.inf where no
      adversarial point was found, the points are x there; image_steps: the number of
      (image, forward and backward pass) pairs computed, counted as below).
    """
    attack = compiled_attack(network)
    call = attack.python_function if eager else attack
    dtype = x.dtype
    n = len(x)
    labels = np.asarray(labels, np.int32)
    best_delta = np.zeros_like(x)
    best_norm = np.full(n, np.inf, dtype)
    consts = [tf.constant(v, dtype) for v in (alpha_max, eta, beta, *bounds)]

    def call_on(rows, start, count, final):
        out = call(tf.constant(x[rows]), tf.constant(labels[rows]), tf.constant(start),
                   tf.constant(best_delta[rows]), tf.constant(best_norm[rows]),
                   tf.constant(count, tf.int32), tf.constant(final, tf.int32),
                   tf.constant(candidates, tf.int32), *consts)
        return (t.numpy() for t in out)

    # Cost per image: one step is k gradient passes (a forward and a backward pass each, one
    # per candidate class; k = candidates, or every other class if fewer) and one forward pass
    # (is the new point adversarial?), counted as k + 1; each call adds a forward pass at x
    # (the candidate classes), counted as 1; the final search is final_search + 2 more forward
    # passes and one gradient pass, so its call counts final_search + 4.
    k = min(candidates, network.output_shape[-1] - 1)
    image_steps = 0
    for restart in range(restarts):
        point = x.copy() if restart == 0 else _random_starts(x, best_norm, restart_radius, seed,
                                                             restart, bounds)
        for active, k0, k1 in chunks(best_norm, steps, check_every, tol):
            image_steps += len(active) * ((k1 - k0) * (k + 1) + 1)
            point[active], best_delta[active], best_norm[active] = call_on(
                active, point[active], k1 - k0, 0)
    found = np.flatnonzero(np.isfinite(best_norm))
    if final_search and len(found):
        image_steps += len(found) * (final_search + 4)
        _, best_delta[found], best_norm[found] = call_on(found, x[found], 0, final_search)
    return x + best_delta, best_norm.astype(np.float64), image_steps
