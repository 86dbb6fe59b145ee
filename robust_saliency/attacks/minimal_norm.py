"""The minimal-L2 attacks DDN, FMN and FMN restarted from DDN: one compiled loop, three attacks.

Both search for the smallest perturbation e with argmax Psi(x + e) != y inside the pixel box by
moving a perturbation along normalised gradients while a per-image radius epsilon shrinks when
the current point is adversarial and grows when it is not; the smallest adversarial iterate is
kept. They differ in what they differentiate and how epsilon moves:

  DDN (Rony et al., "Decoupling Direction and Norm for Efficient Gradient-Based L2 Adversarial
  Attacks and Defenses", CVPR 2019, Algorithm 1): ascends the cross-entropy, epsilon is
  multiplied by 1 -/+ gamma (gamma fixed, 0.05), the perturbation is rescaled to norm epsilon
  exactly, and the step alpha is cosine-annealed from 1 to 0.01. `ddn_margin` is the same loop
  ascending the negative logit margin (not in the paper; attacks.DDN says why).

  FMN (Pintor et al., "Fast Minimum-norm Adversarial Attacks through Adaptive Norm
  Constraints", NeurIPS 2021, Algorithm 1, L2): descends the logit margin
  Psi^y - max_{j != y} Psi^j; until a first adversarial is found epsilon jumps to the
  linearised distance ||e|| + |margin| / ||grad margin||, afterwards it is multiplied by
  1 -/+ gamma_k, never above the best distance; the perturbation is projected onto the epsilon
  ball; alpha_k and gamma_k are cosine-annealed (alpha from alpha0 to `final_alpha`, alpha0 /
  100 in the paper, gamma from gamma0 to `final_gamma`).

`ddn_fmn` runs DDN, then FMN from DDN's adversarial points. The three share one loop (one code
path, two update rules), so their classes live here with it.

The whole loop over a range of steps is one `tf.function` (a `tf.while_loop`), traced once per
network for any batch size, in the model's input dtype. Between chunks of `check_every` steps
the driver drops images whose best distance improved by less than `tol` (relative) over the
chunk, so converged images stop costing work; the schedules keep running on the global step
index. The driver returns candidate points; the caller verifies them
(attacks.verify).
"""

import math

import numpy as np

from robust_saliency import compiled
from robust_saliency.attacks.base import Attack, chunks, tf

ALGORITHMS = ("ddn", "ddn_margin", "fmn")


def _flat_norm(v):
    return tf.norm(tf.reshape(v, [tf.shape(v)[0], -1]), axis=1)


def per_image(v, like):
    """A per-image vector reshaped to broadcast over images shaped like `like`."""
    return tf.reshape(v, [-1] + [1] * (like.shape.rank - 1))


def logit_margin(logits, labels):
    """Psi^y - max_{j != y} Psi^j per image: FMN's loss and CW's (without its confidence)."""
    own = tf.gather(logits, labels[:, None], batch_dims=1)[:, 0]
    others = tf.where(tf.one_hot(labels, tf.shape(logits)[1]) > 0,
                      tf.cast(-np.inf, logits.dtype), logits)
    return own - tf.reduce_max(others, axis=1)


def _cosine(k, total, start, end):
    """Cosine annealing from `start` at step 0 to `end` at step `total` (both algorithms)."""
    return end + (start - end) * (1 + tf.cos(math.pi * k / total)) / 2


def _loss_and_gradient(network, algorithm, x, labels):
    """(logits, loss, d loss / d x) per image: cross-entropy for DDN and the negative logit
    margin for ddn_margin (both ascended), the logit margin for FMN (descended)."""
    from robust_saliency import penalties

    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = network(x, training=False)
        if algorithm == "ddn":
            loss = penalties.nll(labels, logits)
        elif algorithm == "ddn_margin":
            loss = -logit_margin(logits, labels)
        else:
            loss = logit_margin(logits, labels)
    return logits, loss, tape.gradient(loss, x)


def _adversarial(algorithm, logits, loss, labels):
    """Whether each iterate counts as adversarial inside the loop. FMN's linearised radius puts
    its first point of an affine model exactly on the boundary, where a tie or the last bit
    can keep the label; counting the boundary (margin <= 0) lets the verifier push such a point
    out by at most 0.1% (attacks.PUSH_STEPS) instead of FMN stalling there for good."""
    if algorithm == "fmn":
        return loss <= 0
    return tf.argmax(logits, axis=1, output_type=tf.int32) != labels


def _build_loop(ref, algorithm):
    from robust_saliency import input_checks

    dtype = input_checks.input_dtype(ref())
    image = compiled.image_spec(ref(), dtype)
    vector = tf.TensorSpec([None], dtype)
    scalar = tf.TensorSpec([], dtype)
    signature = [image, tf.TensorSpec([None], tf.int32), image, vector, image, vector,
                 tf.TensorSpec([None], tf.bool), tf.TensorSpec([], tf.int32),
                 tf.TensorSpec([], tf.int32), *[scalar] * 7]

    def loop(x, labels, delta, eps, best_delta, best_norm, found, k0, k1, total, alpha0,
             alpha1, gamma0, gamma1, low, high):
        worst = _flat_norm(tf.maximum(x - low, high - x))

        def body(k, delta, eps, best_delta, best_norm, found):
            kf = tf.cast(k, dtype)
            logits, loss, grad = _loss_and_gradient(ref(), algorithm, x + delta, labels)
            adv = _adversarial(algorithm, logits, loss, labels)
            norm = _flat_norm(delta)
            better = adv & (norm < best_norm)
            best_norm = tf.where(better, norm, best_norm)
            best_delta = tf.where(per_image(better, x), delta, best_delta)
            if algorithm == "fmn":
                # Descent components that would leave the box only get clipped away again: drop
                # them, so the linearised radius and the step see the box (not in the paper;
                # without it FMN stalls short of the boundary wherever the box is active, as on
                # MNIST's zero background).
                point = x + delta
                grad = tf.where(((point <= low) & (grad > 0)) | ((point >= high) & (grad < 0)),
                                tf.zeros_like(grad), grad)
            grad_norm = _flat_norm(grad)
            unit = tf.math.divide_no_nan(grad, per_image(grad_norm, x))
            alpha = _cosine(kf, total, alpha0, alpha1)
            gamma = _cosine(kf, total, gamma0, gamma1)
            if algorithm != "fmn":
                delta = delta + alpha * unit
                eps = tf.where(adv, eps * (1 - gamma), eps * (1 + gamma))
                eps = tf.minimum(eps, worst)
                scale = tf.math.divide_no_nan(eps, _flat_norm(delta))
            else:
                linear = norm + tf.math.divide_no_nan(tf.abs(loss), grad_norm)
                eps = tf.where(adv, tf.minimum(eps * (1 - gamma), best_norm),
                               tf.where(found, eps * (1 + gamma), linear))
                eps = tf.minimum(eps, worst)
                delta = delta - alpha * unit
                scale = tf.minimum(tf.math.divide_no_nan(eps, _flat_norm(delta)), 1)
            found = found | adv
            delta = tf.clip_by_value(x + delta * per_image(scale, x), low, high) - x
            return k + 1, delta, eps, best_delta, best_norm, found

        state = tf.while_loop(lambda k, *_: k < k1, body,
                              (k0, delta, eps, best_delta, best_norm, found))[1:]
        delta, eps, best_delta, best_norm, found = state
        # The last step's point, judged as every earlier one was.
        logits, loss, _ = _loss_and_gradient(ref(), algorithm, x + delta, labels)
        adv = _adversarial(algorithm, logits, loss, labels)
        norm = _flat_norm(delta)
        better = adv & (norm < best_norm)
        return (delta, eps, tf.where(per_image(better, x), delta, best_delta),
                tf.where(better, norm, best_norm), found | adv)

    return tf.function(loop, input_signature=signature, autograph=False)


def compiled_loop(network, algorithm):
    """The compiled step loop of `algorithm` on `network`, traced once and cached with it."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown minimal-norm algorithm {algorithm!r}; valid: {ALGORITHMS}")
    return compiled.per_network(network, ("attack", algorithm),
                                lambda ref: _build_loop(ref, algorithm))


def run(network, x, labels, bounds, algorithm, *, steps, alpha0, alpha1, gamma0, gamma1,
        init_epsilon=1.0, starting_points=None, check_every=None, tol=0.0, eager=False):
    """Runs `algorithm` for `steps` steps on every image; returns (best points, best distances).

    Args:
      network: Keras model from images to logits.
      x: (N, ...) images in the network's input dtype, inside `bounds`.
      labels: (N,) int labels to move away from.
      bounds: (low, high) pixel box.
      algorithm: one of ALGORITHMS.
      steps: total steps K of the annealing schedules.
      alpha0, alpha1: step length at the first and the last step.
      gamma0, gamma1: epsilon's relative change at the first and the last step.
      init_epsilon: DDN's starting radius (FMN starts from the linearised distance).
      starting_points: optional (N, ...) adversarial points to start from (FMN: epsilon starts at
        their distance and they are the first best points).
      check_every: steps per chunk between early-exit checks (None: one chunk).
      tol: an image leaves when its best distance improved by at most `tol` (relative) over a
        chunk, after a first adversarial was found; 0 keeps every image for all steps.
      eager: run the loop's Python function eagerly (tests compare it with the compiled one).

    Returns:
      (points (N, ...) = x + best e, distances (N,) float64 = ||best e||_2, np.inf where no
      adversarial iterate was found, the points are x there; image_steps: the number of
      (image, step) pairs computed, each one forward and one backward pass).
    """
    dtype = x.dtype
    loop = compiled_loop(network, algorithm)
    call = loop.python_function if eager else loop
    n = len(x)
    delta = np.zeros_like(x)
    eps = np.full(n, 0.0 if algorithm == "fmn" else init_epsilon, dtype)
    best_delta = np.zeros_like(x)
    best_norm = np.full(n, np.inf, dtype)
    found = np.zeros(n, bool)
    if starting_points is not None:
        delta = np.asarray(starting_points, dtype) - x
        best_delta = delta.copy()
        best_norm = np.linalg.norm(delta.reshape(n, -1), axis=1).astype(dtype)
        eps, found = best_norm.copy(), np.ones(n, bool)
    consts = [tf.constant(v, dtype) for v in (steps, alpha0, alpha1, gamma0, gamma1, *bounds)]
    image_steps = 0
    for active, k0, k1 in chunks(best_norm, steps, check_every, tol):
        image_steps += len(active) * (k1 - k0 + 1)
        out = call(tf.constant(x[active]), tf.constant(labels[active], tf.int32),
                   tf.constant(delta[active]), tf.constant(eps[active]),
                   tf.constant(best_delta[active]), tf.constant(best_norm[active]),
                   tf.constant(found[active]), tf.constant(k0, tf.int32),
                   tf.constant(k1, tf.int32), *consts)
        delta[active], eps[active], best_delta[active], best_norm[active], found[active] = (
            t.numpy() for t in out)
    return x + best_delta, best_norm.astype(np.float64), image_steps


class _MinimalNorm(Attack):
    """An attack that runs this module's loop (`algorithm`)."""

    algorithm = ""

    def run(self, attacker, x, labels):
        # Step lengths and DDN's first radius are in units of the box width, as the papers'
        # values are for images in [0, 1]; the ImageNet box is 285 wide.
        width = attacker.bounds[1] - attacker.bounds[0]
        schedule = self.schedule(self.options)
        for key in ("alpha0", "alpha1", "init_epsilon"):
            if key in schedule:
                schedule[key] *= width
        points, _, steps = run(attacker.network, x, labels, attacker.bounds, self.loop(),
                               **schedule)
        self.image_steps += steps
        return points

    def loop(self):
        """The name of the compiled loop (ALGORITHMS) this attack runs."""
        return self.algorithm


class DDN(_MinimalNorm):
    """DDN (Rony et al., "Decoupling Direction and Norm for Efficient Gradient-Based L2
    Adversarial Attacks and Defenses", CVPR 2019), Algorithm 1 as published by default:
    cross-entropy ascent with the step cosine-annealed from 1 to 0.01 and the radius multiplied
    by 1 -/+ `gamma` per step. As published it is exact on two-class affine models but not on
    ten-class ones: the radius shrinks only where the cross-entropy's ascent on the sphere is
    adversarial, and that ascent mixes the classes' directions instead of heading for the
    nearest boundary.

    Two options beyond the paper: `loss="margin"` ascends the negative logit margin
    max_{j != y} Psi^j - Psi^y instead (FMN's and CW's quantity), whose ascent on the sphere
    heads for the nearest boundary, and `final_gamma` cosine-anneals the radius' relative change
    from `gamma` to it (None: fixed, as published). With both (`final_gamma=1e-4`) DDN reaches
    the exact distance of affine models, two classes and ten, with the box active (tests)."""

    name, label, algorithm = "ddn", "DDN", "ddn"
    LOSSES = {"cross_entropy": "ddn", "margin": "ddn_margin"}
    defaults = {"steps": 100, "init_epsilon": 1.0, "gamma": 0.05, "final_gamma": None,
                "loss": "cross_entropy", "check_every": None, "tol": 0.0}

    def __init__(self, **options):
        super().__init__(**options)
        if self.options["loss"] not in self.LOSSES:
            raise ValueError(f"unknown loss {self.options['loss']!r} for attack 'ddn'; valid: "
                             f"{sorted(self.LOSSES)}")

    def loop(self):
        return self.LOSSES[self.options["loss"]]

    @staticmethod
    def schedule(o):
        final_gamma = o["gamma"] if o["final_gamma"] is None else o["final_gamma"]
        return {"steps": o["steps"], "alpha0": 1.0, "alpha1": 0.01, "gamma0": o["gamma"],
                "gamma1": final_gamma, "init_epsilon": o["init_epsilon"],
                "check_every": o["check_every"], "tol": o["tol"]}


class FMN(_MinimalNorm):
    """FMN-L2 (Pintor et al., "Fast Minimum-norm Adversarial Attacks through Adaptive Norm
    Constraints", NeurIPS 2021), Algorithm 1: logit-margin descent, the radius set to the
    linearised distance until a first adversarial and then multiplied by 1 -/+ gamma_k, both
    alpha_k (from `alpha0` to `final_alpha`, by default alpha0 / 100 as published) and gamma_k
    (from `gamma0` to `final_gamma`) cosine-annealed. One addition: descent components that
    would leave the box are dropped (else it stalls short of the boundary where the box is
    active). On affine models the last steps' length and radius change are its resolution;
    with `final_alpha=alpha0 / 1000` and `final_gamma=1e-4` it reaches their exact distance
    with the box active (tests)."""

    name, label, algorithm = "fmn", "FMN", "fmn"
    defaults = {"steps": 100, "alpha0": 1.0, "final_alpha": None, "gamma0": 0.05,
                "final_gamma": 0.001, "check_every": None, "tol": 0.0}

    @staticmethod
    def schedule(o):
        final_alpha = o["alpha0"] / 100 if o["final_alpha"] is None else o["final_alpha"]
        return {"steps": o["steps"], "alpha0": o["alpha0"], "alpha1": final_alpha,
                "gamma0": o["gamma0"], "gamma1": o["final_gamma"],
                "check_every": o["check_every"], "tol": o["tol"]}


class DDNFMN(Attack):
    """DDN, then FMN-L2 restarted from DDN's point: DDN as `ddn` for `ddn_steps` steps, and
    from each adversarial it found, FMN's Algorithm 1 with an adversarial initialisation
    (Pintor et al., NeurIPS 2021: epsilon starts at that point's distance) for `steps` steps,
    with a tenth of FMN's first step and a fifth of its first radius change, annealed to
    `final_alpha` and `final_gamma`. Why: on robust models each attack alone stops short of
    the boundary on some images (a local minimum of its own path), and a small-step descent of
    the margin from another attack's point gets past it."""

    name, label = "ddn_fmn", "DDN+FMN"
    defaults = {"ddn_steps": 300, "steps": 100, "alpha0": 0.1, "final_alpha": 0.001,
                "gamma0": 0.01, "final_gamma": 1e-4}

    def run(self, attacker, x, labels):
        ddn = DDN(steps=self.options["ddn_steps"])
        start = ddn.run(attacker, x, labels)
        self.image_steps += ddn.image_steps
        ok, _, points = attacker.verify_or_push(x, start, labels)
        if not ok.any():
            return start  # nothing to restart from: DDN's candidates, which verification rejects
        out = np.array(start)
        out[ok] = self.restart(attacker, x[ok], labels[ok], points[ok])
        return out

    def restart(self, attacker, x, labels, points):
        """The FMN part alone: candidate points from verified adversarial `points` of `x`
        (the benchmarks' reference runs it from DDN's points at 10x the steps)."""
        width = attacker.bounds[1] - attacker.bounds[0]
        o = self.options
        refined, _, steps = run(
            attacker.network, x, labels, attacker.bounds, "fmn", steps=o["steps"],
            alpha0=o["alpha0"] * width, alpha1=o["final_alpha"] * width, gamma0=o["gamma0"],
            gamma1=o["final_gamma"], starting_points=points)
        self.image_steps += steps
        return refined
