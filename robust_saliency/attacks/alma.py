"""ALMA-L2 as a compiled loop: the augmented-Lagrangian minimal-L2 attack.

Rony, Granger, Pedersoli and Ben Ayed, "Augmented Lagrangian Adversarial Attacks", ICCV 2021.
For an image x of label y it solves

    min_delta ||delta||_2   s.t.   c(x + delta) < 0,   x + delta in the box,            (1)

where c is the difference of logits ratio (DLR, Croce and Hein 2020) as the authors' code
modifies it, positive exactly while the label still wins:

    c(z) = (z_y - max_{j != y} z_j + kappa) / (z_pi1 - z_pi3 + 1e-8),                     (2)

z_pi1 >= z_pi2 >= z_pi3 the three largest logits and kappa the logit tolerance. (Two classes
have no third logit: the denominator is then the clean image's |z_y - z_j|, not in the paper.)
Every step descends the augmented Lagrangian

    L(delta) = ||delta||_2 + P2(c(x + delta), rho, mu),                                    (3)
    P2(t, rho, mu) = mu t + mu rho t^2 + rho^2 t^3 / 6   (t >= 0),
                     mu t / (1 - rho t)                   (t < 0),

by an RMSProp step with momentum (both of weight alpha, the squared average starting at 1),
then projects onto the box. Per image: the multiplier follows mu <- alpha mu +
(1 - alpha) dP2/dt (clipped to [1e-6, 1e12]); every `check_steps` steps the penalty rho is
multiplied by gamma unless the image was already adversarial or c fell below tau times its
value at the previous check; the first step's learning rate is the one that moves
`init_lr_distance` (doubling and 20 bisections), and once the image is first adversarial
at step s it decays exponentially to `lr_reduction` times that by the last step. The smallest
adversarial iterate is kept.

The whole loop over a range of steps is one `tf.function` (a `tf.while_loop`), traced once per
network for any batch size, in the network's input dtype. It runs in units of the box width:
distances, gradients and steps are those of the same network on images scaled to [0, 1], the
papers' setting, so the published constants hold for any box. Between chunks of `check_every`
steps the driver can drop the images whose best distance improved by less than `tol`
(relative), as attacks.minimal_norm does. This module imports TensorFlow on first use only.
"""

import numpy as np

from robust_saliency.attacks.base import Attack, chunks, tf

# RMSProp's denominator guard, mu's range and the learning-rate search, as published.
_RMS_EPS, _MU_RANGE, _BISECTIONS, _DOUBLINGS = 1e-8, (1e-6, 1e12), 20, 64


class ALMA(Attack):
    """ALMA-L2 (Rony et al., "Augmented Lagrangian Adversarial Attacks", ICCV 2021): minimises
    ||e||_2 plus the P2 penalty-Lagrangian of the misclassification constraint (the logit
    difference over the spread of the three top logits, the authors' DLR constraint) by
    RMSProp steps with momentum, the multiplier mu and the penalty rho updated per image and
    the learning rate decaying once the image is adversarial; a compiled loop
    (attacks.alma, whose docstring gives the equations).

    Options (the paper's values for L2 at 1,000 steps; lengths are in units of the box width,
    the paper's for images in [0, 1]):
      steps: forward and backward passes per image.
      init_lr_distance: the distance the first step moves (the paper's epsilon, 0.1).
      lr_reduction: the final learning rate over the first (0.01). The last steps' length is
        the attack's resolution: smaller values end closer to the boundary.
      mu_init, rho_init: the first multiplier and penalty (1, 1).
      check_steps, tau, gamma: every check_steps steps (M = 10) rho is multiplied by gamma
        (1.2) unless the constraint fell below tau (0.95) times its last checked value.
      alpha: the weight of the running averages of mu and of RMSProp (0.9; the paper takes
        0.5 for its 100-step runs). 0.9 moves further early on, which finds smaller
        perturbations of trained networks but can end on the boundary of a class other than
        the nearest one.
      logit_tolerance: kappa of the constraint, how far past the boundary (in logits) a point
        must be to count (1e-4, against GPUs' argmax ties); the verifier already settles the
        boundary's last bits, so 0 takes the exact boundary.
      check_every, tol: per-image early exit, as for DDN and FMN (off by default).

    The tests reach the exact distances of affine models inside the box with alpha=0.5,
    lr_reduction=1e-5 and logit_tolerance=0 (tests/test_attacks_alma.py).
    """

    name, label = "alma", "ALMA"
    defaults = {"steps": 1000, "init_lr_distance": 0.1, "lr_reduction": 0.01, "mu_init": 1.0,
                "rho_init": 1.0, "check_steps": 10, "tau": 0.95, "gamma": 1.2, "alpha": 0.9,
                "logit_tolerance": 1e-4, "check_every": None, "tol": 0.0}

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        for key in ("steps", "check_steps"):
            if not isinstance(o[key], (int, np.integer)) or o[key] < 1:
                raise ValueError(f"ALMA's {key} must be a positive integer, got {o[key]!r}")
        if not 0 <= o["alpha"] < 1:
            raise ValueError(f"ALMA's alpha must be in [0, 1), got {o['alpha']!r}")

    def run(self, attacker, x, labels):
        points, _, steps = run(attacker.network, x, labels, attacker.bounds, **self.options)
        self.image_steps += steps
        return points


def _flat_norm(v):
    return tf.norm(tf.reshape(v, [tf.shape(v)[0], -1]), axis=1)


def _p2_slope(t, rho, mu):
    """dP2/dt of equation (3): what mu moves towards and what scales the constraint's
    gradient."""
    return tf.where(t >= 0, mu + 2 * mu * rho * t + rho ** 2 * t ** 2 / 2,
                    mu / (1 - rho * tf.minimum(t, 0)) ** 2)


def _constraint(logits, labels, kappa, spread=None):
    """c of equation (2) per image; `spread`, given for two classes, replaces its denominator."""
    from robust_saliency.attacks.minimal_norm import logit_margin

    if spread is None:
        top = tf.math.top_k(logits, k=3).values
        spread = top[:, 0] - top[:, 2]
    return (logit_margin(logits, labels) + kappa) / (spread + 1e-8)


def _first_lr(x, direction, width, low, high, target):
    """Per image, the eta with ||clip(x - eta width direction) - x|| / width = target: doubling
    from 1, then bisections (the authors' search). Where the box stops the direction short of
    the target, eta = target / ||direction||, the step's length without the box (the authors'
    search would not end)."""
    from robust_saliency.attacks.minimal_norm import per_image

    def moved(eta):
        step = tf.clip_by_value(x - per_image(eta * width, x) * direction, low, high) - x
        return _flat_norm(step) / width > target

    eta, lower = tf.ones_like(target), tf.zeros_like(target)

    def double(i, eta, lower, above):
        return (i + 1, tf.where(above, eta, 2 * eta), tf.where(above, lower, eta),
                above | moved(tf.where(above, eta, 2 * eta)))

    _, eta, lower, reached = tf.while_loop(
        lambda i, eta, lower, above: (i < _DOUBLINGS) & ~tf.reduce_all(above), double,
        (0, eta, lower, moved(eta)))
    for _ in range(_BISECTIONS):
        middle = (lower + eta) / 2
        above = moved(middle)
        lower, eta = tf.where(above, lower, middle), tf.where(above, middle, eta)
    return tf.where(reached, (lower + eta) / 2, target / _flat_norm(direction))


def _build(ref):
    from robust_saliency import compiled, input_checks
    from robust_saliency.attacks.minimal_norm import per_image

    dtype = input_checks.input_dtype(ref())
    image = compiled.image_spec(ref(), dtype)
    two_classes = ref().output_shape[-1] < 3
    vector, scalar = tf.TensorSpec([None], dtype), tf.TensorSpec([], dtype)
    count, integer = tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)
    # delta, RMSProp's squared average and momentum, lr, mu, rho, c at the last check, the best
    # delta and its norm, found, the step of the first adversarial iterate.
    state = (image, image, image, vector, vector, vector, vector, image, vector,
             tf.TensorSpec([None], tf.bool), count)
    settings = (integer, integer, integer, integer, *[scalar] * 8)

    def judge(x, labels, delta, kappa, spread):
        with tf.GradientTape() as tape:
            tape.watch(delta)
            c = _constraint(ref()(x + delta, training=False), labels, kappa, spread)
        return c, tape.gradient(c, delta)

    def loop(x, labels, state, settings):
        k0, k1, total, check_steps, low, high, target, lr_reduction, tau, gamma, alpha, kappa = (
            settings)
        width = high - low
        # A fixed direction for images whose first gradient vanishes (the authors draw one at
        # random); the same for every image, so no image's path depends on the batch.
        fallback = tf.random.stateless_normal(tf.shape(x)[1:], [0, 0], dtype=dtype)
        fallback = fallback / tf.norm(fallback)
        spread = None
        if two_classes:
            # Two classes have no third logit: the denominator of (2) is the clean image's
            # |margin|, which keeps c free of the logits' scale as the DLR is (mu and rho move
            # by amounts proportional to c; the bare margin of a small-margin image stalled).
            from robust_saliency.attacks.minimal_norm import logit_margin

            spread = tf.abs(logit_margin(ref()(x, training=False), labels))

        def body(k, delta, square, momentum, lr, mu, rho, checked, best_delta, best_norm,
                 found, first):
            c, grad_c = judge(x, labels, delta, kappa, spread)
            start = tf.equal(k, 0)
            check = ~start & tf.equal((k + 1) % check_steps, 0)
            rho = tf.where(check & ~found & ~(c < tau * checked), gamma * rho, rho)
            checked = tf.where(start | check, c, checked)
            mu = tf.where(start, mu, tf.clip_by_value(
                alpha * mu + (1 - alpha) * _p2_slope(c, rho, mu), *_MU_RANGE))
            norm = _flat_norm(delta)
            adv = c < 0
            better = adv & (norm < best_norm)
            best_norm = tf.where(better, norm, best_norm)
            best_delta = tf.where(per_image(better, x), delta, best_delta)
            first = tf.where(~found & adv, k, first)
            found = found | adv
            # The gradient of (3) in units of the box width: the distance's is delta / ||delta||
            # (left out at the first step, where delta = 0), the constraint's scales with width.
            grad = per_image(_p2_slope(c, rho, mu), x) * grad_c * width
            if_moved = tf.math.divide_no_nan(delta, per_image(norm, x))
            grad = tf.where(start, grad, grad + if_moved)
            grad = tf.where(start & per_image(_flat_norm(grad) <= 1e-6, x), fallback, grad)
            lr = tf.cond(start, lambda: _first_lr(x, grad, width, low, high,
                                                  target * tf.ones_like(lr)), lambda: lr)
            since = tf.cast(tf.maximum(k - first, 0), dtype)
            decay = lr_reduction ** (since / tf.cast(total - first, dtype))
            square = alpha * square + (1 - alpha) * grad ** 2
            momentum = alpha * momentum + grad / (tf.sqrt(square) + _RMS_EPS)
            delta = delta - per_image(lr * decay * width, x) * momentum
            delta = tf.clip_by_value(x + delta, low, high) - x
            return (k + 1, delta, square, momentum, lr, mu, rho, checked, best_delta,
                    best_norm, found, first)

        out = tf.while_loop(lambda k, *_: k < k1, body, (k0, *state))[1:]
        delta, best_delta, best_norm, found = out[0], out[7], out[8], out[9]
        # The last step's point, judged as every earlier one was.
        c = _constraint(ref()(x + delta, training=False), labels, kappa, spread)
        better = (c < 0) & (_flat_norm(delta) < best_norm)
        return (*out[:7], tf.where(per_image(better, x), delta, best_delta),
                tf.where(better, _flat_norm(delta), best_norm), found | (c < 0), out[10])

    return tf.function(loop, input_signature=[image, count, state, settings], autograph=False)


def compiled_loop(network):
    """The compiled step loop of ALMA on `network`, traced once and cached with it."""
    from robust_saliency import compiled

    return compiled.per_network(network, ("attack", "alma"), _build)


def run(network, x, labels, bounds, *, steps, init_lr_distance=0.1, lr_reduction=0.01,
        mu_init=1.0, rho_init=1.0, check_steps=10, tau=0.95, gamma=1.2, alpha=0.9,
        logit_tolerance=1e-4, check_every=None, tol=0.0, eager=False):
    """Runs ALMA-L2 for `steps` steps on every image; returns its best points and distances.

    Args:
      network: Keras model from images to logits.
      x: (N, ...) images in the network's input dtype, inside `bounds`.
      labels: (N,) int labels to move away from.
      bounds: (low, high) pixel box; lengths below are in units of its width.
      steps: total steps K (the learning rate's decay ends at step K).
      init_lr_distance, lr_reduction, mu_init, rho_init, check_steps, tau, gamma, alpha,
        logit_tolerance: the constants of the algorithm (ALMA's docstring).
      check_every: steps per chunk between early-exit checks (None: one chunk).
      tol: an image leaves when its best distance improved by at most `tol` (relative) over a
        chunk, after a first adversarial was found; 0 keeps every image for all steps.
      eager: run the loop's Python function eagerly (tests compare it with the compiled one).

    Returns:
      (points (N, ...) = x + best e, distances (N,) float64 = ||best e||_2, np.inf where no
      adversarial iterate was found, the points are x there; image_steps: the number of
      (image, step) pairs computed, each one forward and one backward pass).
    """
    loop = compiled_loop(network)
    call = loop.python_function if eager else loop
    n, dtype = len(x), x.dtype
    state = [np.zeros_like(x), np.ones_like(x), np.zeros_like(x), np.ones(n, dtype),
             np.full(n, mu_init, dtype), np.full(n, rho_init, dtype), np.zeros(n, dtype),
             np.zeros_like(x), np.full(n, np.inf, dtype), np.zeros(n, bool),
             np.full(n, steps + 1, np.int32)]
    constants = [tf.constant(v, dtype) for v in (*bounds, init_lr_distance, lr_reduction, tau,
                                                 gamma, alpha, logit_tolerance)]
    integers = [tf.constant(v, tf.int32) for v in (steps, check_steps)]
    image_steps = 0
    for active, k0, k1 in chunks(state[8], steps, check_every, tol):
        image_steps += len(active) * (k1 - k0 + 1)
        settings = (tf.constant(k0, tf.int32), tf.constant(k1, tf.int32), *integers, *constants)
        out = call(tf.constant(x[active]), tf.constant(labels[active], tf.int32),
                   tuple(tf.constant(s[active]) for s in state), settings)
        for s, t in zip(state, out):
            s[active] = t.numpy()
    return x + state[7], state[8].astype(np.float64), image_steps
