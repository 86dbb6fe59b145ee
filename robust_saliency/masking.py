"""A gradient-masking check of rho_best with a decision-based attack.

rho_best, the smallest verified L2 distance the gradient-based attacks found, overstates
rho(x) where a gradient penalty hides the decision boundary from gradients (gradient
masking). HopSkipJump (Chen, Jordan & Wainwright, "HopSkipJumpAttack: A Query-Efficient
Decision-Based Attack", IEEE S&P 2020) reads only the predicted label, so masking cannot hide
the boundary from it. Per image

    ratio = rho_decision / rho_best,

and a member is flagged where ratio < FLAG_RATIO (the decision-based attack found a point more
than 5% closer than every gradient-based attack) on any image checked; an image where no
gradient-based attack found a point (rho_best = inf) and HopSkipJump did has ratio 0. A ratio
above 1 is the expected case: HopSkipJump is the weaker attack where gradients are honest
(measured: benchmarks/RESULTS.md).

`decision_based_distances` runs the attack, `check_member` checks a member of a cohort into
masking.csv and masking.json beside its per_image.csv (nothing committed is rewritten) and
`cohort_summary` gathers a cohort's for the claims table. This module imports TensorFlow and
Foolbox only when an attack runs, so the claims table reads the results without them.
"""

import functools
import inspect
import os
import time

import numpy as np

from robust_saliency import environment, results

MASKING_CSV = "masking.csv"
MASKING_JSON = "masking.json"
# The rule, fixed before any member was checked: flagged below this ratio on any image.
FLAG_RATIO = 0.95
START = ("nearest pool image of another predicted class, bisected towards the image "
         "(Foolbox HopSkipJump's binary search)")


def nearest_other_class(images, labels, pool, pool_labels):
    """Per image, the index into `pool` of the nearest (L2) pool image whose label differs from
    the image's, -1 where there is none; ties go to the lowest index.

    Args:
      images: (N, ...) images; labels: (N,) their labels.
      pool: (P, ...) candidate images; pool_labels: (P,) the model's labels of them.
    """
    x = np.asarray(images, np.float64).reshape(len(images), -1)
    p = np.asarray(pool, np.float64).reshape(len(pool), -1)
    d2 = (x * x).sum(1)[:, None] + (p * p).sum(1)[None] - 2 * x @ p.T
    d2[np.asarray(labels)[:, None] == np.asarray(pool_labels)[None]] = np.inf
    nearest = np.argmin(d2, axis=1)
    return np.where(np.isfinite(d2[np.arange(len(x)), nearest]), nearest, -1)


def _verifier(network, bounds):
    """The attacks' verifier of candidate points (its `predict`, `verify_or_push`,
    `adversarial_together`), the one place this module uses it."""
    from robust_saliency.attacks.verify import Attacker

    return Attacker(network, bounds)


@functools.cache
def _hop_skip_jump():
    """The HopSkipJump class (defined on first use: Foolbox and TensorFlow load with it)."""
    from robust_saliency import optional

    fb = optional.require("foolbox", "the decision-based masking check")
    ep = optional.require("eagerpy", "the decision-based masking check")
    import tensorflow as tf

    def norm(t, axes):
        return tf.sqrt(tf.reduce_sum(tf.square(t), axis=axes, keepdims=True))

    class HopSkipJump(fb.attacks.HopSkipJumpAttack):
        """Foolbox 3.3.4's L2 HopSkipJump with its estimate of the boundary's normal done per
        image: Foolbox divides the batch's estimates by their joint norm (so an image's step
        shrinks with the batch) and draws the batch's directions at once (so they depend on
        the batch). Here image `keys[i]`'s directions at iteration k are standard normal draws
        of the stateless stream (seed, keys[i], k), and each estimate is scaled to unit norm on
        its own, as in the authors' code. The decisions of an estimate are judged `chunk`
        images per forward pass of `logits` (Foolbox: one pass per direction); the rest is
        Foolbox's."""

        def __init__(self, *, logits, seed, chunk=2000, **options):
            super().__init__(constraint="l2", **options)
            self.logits, self.seed, self.chunk = logits, seed, chunk
            self.begin((), ())

        def begin(self, keys, labels):
            """Sets the batch's image keys and labels before `run`."""
            self.keys, self.labels, self.iteration = keys, tf.constant(labels, tf.int64), 0

        def approximate_gradients(self, is_adversarial, x_advs, steps, delta):
            x = x_advs.raw
            self.iteration += 1
            shape = (steps, *x.shape[1:])
            rv = tf.stack([tf.random.stateless_normal(shape, tf.random.experimental.
                                                      stateless_fold_in([self.seed, int(key)],
                                                                        self.iteration),
                                                      dtype=x.dtype)
                           for key in self.keys], axis=1)
            axes = list(range(2, rv.shape.rank))
            rv /= norm(rv, axes) + 1e-12
            delta = tf.reshape(tf.cast(delta.raw, x.dtype), [1, -1] + [1] * len(axes))
            perturbed = tf.clip_by_value(x[None] + delta * rv, 0, 1)
            rv = (perturbed - x[None]) / (delta + 1e-8)
            flat = tf.reshape(perturbed, [-1, *x.shape[1:]])
            labels = tf.tile(self.labels, [steps])
            adversarial = tf.concat([
                tf.argmax(self.logits(flat[i:i + self.chunk]), axis=1) != labels[i:i + self.chunk]
                for i in range(0, len(flat), self.chunk)], axis=0)
            sign = tf.reshape(tf.where(adversarial, tf.ones((), x.dtype), -tf.ones((), x.dtype)),
                              [steps, -1])
            mean = tf.reduce_mean(sign, axis=0, keepdims=True)
            vals = tf.where(tf.abs(mean) == 1, sign, sign - mean)
            grad = tf.reduce_mean(tf.reshape(vals, [steps, -1] + [1] * len(axes)) * rv, axis=0)
            grad /= norm(grad, [a - 1 for a in axes]) + 1e-12
            return ep.astensor(grad)

    return HopSkipJump


def _unit_box_logits(network, bounds):
    """`network`'s logits on [0, 1]^d, the box Foolbox's HopSkipJump clips to: pixel u stands
    for low + (high - low) u (the identity for MNIST's [0, 1]); compiled once per network."""
    import tensorflow as tf

    from robust_saliency import compiled, input_checks

    low, width = bounds[0], bounds[1] - bounds[0]

    def build(ref):
        spec = compiled.image_spec(ref(), input_checks.input_dtype(ref()))
        return tf.function(lambda u: ref()(low + width * u, training=False),
                           input_signature=[spec], autograph=False)

    return compiled.per_network(network, ("masking.unit_box", low, width), build)


def _foolbox_model(logits):
    from robust_saliency import optional

    fb = optional.require("foolbox", "the decision-based masking check")
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # Foolbox calls the deprecated tf.test.is_gpu_available
    try:
        return fb.TensorFlowModel(logits, bounds=(0, 1))
    finally:
        logger.setLevel(level)


def decision_based_distances(model, images, bounds, *, labels=None, starts=None, steps=32,
                             initial_evals=100, max_evals=10000, gamma=1.0, seed=0,
                             batch_size=100, progress=None):
    """Per image, the L2 norm of the verified adversarial perturbation HopSkipJump found.

    The start: the nearest (L2) image of `starts` that the model assigns another class than
    the image's label (`nearest_other_class`), which Foolbox's HopSkipJump bisects towards
    the image before its first step, so the start needs no gradient and no randomness. The
    random part is HopSkipJump's search directions: image i's come from the stateless
    stream (seed, i, iteration), so an image's result does not depend on the batch size or on
    the other images checked with it (up to the last bits of batched logits), and a rerun
    with the same `seed` repeats it.

    Args:
      model: Keras model (or RobustModel) from images to logits.
      images: (N, ...) finite images inside `bounds`.
      bounds: (low, high) pixel box every point stays in.
      labels: the labels to move away from; None: the model's predictions.
      starts: (P, ...) the pool of start images (the model's predictions are their labels);
        None: `images` themselves.
      steps: HopSkipJump iterations.
      initial_evals, max_evals: decisions per gradient estimate at the first iteration
        (growing with the square root of the iteration) and at most.
      gamma: HopSkipJump's binary-search threshold is gamma / d^1.5 of the start's distance.
      seed: the search directions' seed.
      batch_size: images per attack batch.
      progress: callable(done, total), after every batch.

    Returns:
      (N,) float64: ||e||_2 with argmax model(x + e) != label and x + e in bounds, verified
      (attacks' verifier, lengthened by at most 0.1% to pass); np.inf where the pool holds no
      other class; 0 where the image is already misclassified w.r.t. its label.

    Raises:
      ValueError: NaN/Inf pixels, pixels outside `bounds`, wrong shapes.
    """
    import tensorflow as tf

    from robust_saliency import input_checks
    from robust_saliency.logits import logits_network

    network = logits_network(model)
    x = input_checks.check_images(images, network, bounds=bounds)
    pool = x if starts is None else input_checks.check_images(starts, network, bounds=bounds)
    verifier = _verifier(network, bounds)

    def predict(batch):
        return np.concatenate([verifier.predict(batch[i:i + batch_size])
                               for i in range(0, len(batch), batch_size)])

    labels = input_checks.check_labels(predict(x) if labels is None else labels, len(x),
                                 network.output_shape[-1])
    nearest = nearest_other_class(x, labels, pool, predict(pool))
    low, width = bounds[0], bounds[1] - bounds[0]
    logits = _unit_box_logits(network, bounds)
    fmodel = _foolbox_model(logits)
    attack = _hop_skip_jump()(logits=logits, seed=seed, steps=steps, gamma=gamma,
                              initial_gradient_eval_steps=initial_evals,
                              max_gradient_eval_steps=max_evals)
    distances = np.full(len(x), np.inf)
    for first in range(0, len(x), batch_size):
        rows = np.arange(first, min(first + batch_size, len(x)))
        done = verifier.predict(x[rows]) != labels[rows]
        distances[rows[done]] = 0.0
        rows = rows[~done & (nearest[rows] >= 0)]
        # Foolbox requires every start to be adversarial in one batch of exactly them.
        rows = rows[verifier.adversarial_together(pool[nearest[rows]], labels[rows])]
        if len(rows):
            attack.begin(rows, labels[rows])
            u = (x[rows] - low) / width
            found = attack.run(fmodel, tf.constant(u), tf.constant(labels[rows], tf.int64),
                               starting_points=tf.constant((pool[nearest[rows]] - low) / width))
            ok, dist, _ = verifier.verify_or_push(x[rows], low + width * found.numpy(),
                                                  labels[rows])
            distances[rows[ok]] = dist[ok]
        if progress is not None:
            progress(min(first + batch_size, len(x)), len(x))
    return distances


# decision_based_distances' attack options with their defaults: what a check's result
# depends on besides its images (the batch size does not change it).
ATTACK_OPTIONS = {name: p.default for name, p in
                  inspect.signature(decision_based_distances).parameters.items()
                  if p.kind == p.KEYWORD_ONLY and name not in ("labels", "starts", "batch_size",
                                                               "progress")}


def check_member(run_dir, num_images, *, batch_size=100, progress=None, **options):
    """Checks a cohort member's rho_best on its first `num_images` measured images, writing
    MASKING_CSV (index, rho_best, rho_decision, ratio) and MASKING_JSON (the settings, the
    summary of `summarize`, seconds, versions) into `run_dir`; a member whose MASKING_JSON
    holds the same settings is not checked again.

    The start pool is every image the member's evaluation measured (per_image.csv's), so an
    image's start does not depend on `num_images`; the labels are the model's predictions
    the gradient-based attacks moved away from (per_image.csv's `pred`).

    Args:
      run_dir: an evaluated member folder (run.json, weights, per_image.csv with rho_best).
      num_images: how many of its measured images to check (at most all of them).
      batch_size, progress: as for `decision_based_distances`.
      **options: `decision_based_distances`' attack options (steps, initial_evals, ...).

    Returns:
      MASKING_JSON's content, plus 'skipped': whether it was there already.
    """
    from robust_saliency import data, evaluation, run_folders, runs

    unknown = sorted(set(options) - set(ATTACK_OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; valid: {sorted(ATTACK_OPTIONS)}")
    table = results.read_table(os.path.join(run_dir, results.PER_IMAGE_CSV))
    if "rho_best" not in table:
        raise ValueError(f"{run_dir}/{results.PER_IMAGE_CSV} has no rho_best; evaluate it first.")
    measured = len(table["rho_best"])
    if not 0 < num_images <= measured:
        raise ValueError(f"num_images must be in 1..{measured} (the images {run_dir} measured), "
                         f"got {num_images}")
    settings = {"num_images": int(num_images), "pool_images": measured, "start": START,
                "attack": "hop_skip_jump", **ATTACK_OPTIONS, **options}
    json_path = os.path.join(run_dir, MASKING_JSON)
    if os.path.exists(json_path):
        done = results.read_json(json_path)
        if done.get("settings") == settings:
            return {**done, "skipped": True}
    start = time.time()
    record = results.read_json(os.path.join(run_dir, results.RUN_JSON))
    config = run_folders.saved_config(record["config"])
    pool, _ = evaluation.validation_arrays(config, measured)
    rho_decision = decision_based_distances(
        runs.load_model(run_dir), pool[:num_images], data.bounds(config.data.dataset),
        labels=table["pred"][:num_images] if "pred" in table else None, starts=pool,
        batch_size=batch_size, progress=progress, **options)
    rho_best = table["rho_best"][:num_images].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rho_best > 0, rho_decision / rho_best, np.nan)
    results.write_table(os.path.join(run_dir, MASKING_CSV),
                        {"index": table["index"][:num_images], "rho_best": rho_best,
                         "rho_decision": rho_decision, "ratio": ratio})
    summary = {"settings": settings, **summarize(ratio), "lam": config.penalty.lam,
               "seconds": time.time() - start, "batch_size": batch_size,
               "versions": environment.versions()}
    results.write_json(json_path, summary)
    return {**summary, "skipped": False}


def summarize(ratio):
    """images, median and smallest ratio (where finite), the smallest's position, how many
    images are below FLAG_RATIO, and `flagged` (any is)."""
    finite = np.isfinite(ratio)
    below = int(np.sum(ratio[finite] < FLAG_RATIO))
    smallest = int(np.nanargmin(np.where(finite, ratio, np.inf))) if finite.any() else None
    return {"images": int(len(ratio)), "images_compared": int(finite.sum()),
            "median_ratio": float(np.median(ratio[finite])) if finite.any() else float("nan"),
            "min_ratio": float(ratio[smallest]) if smallest is not None else float("nan"),
            "min_ratio_index": smallest, "below": below, "flag_ratio": FLAG_RATIO,
            "flagged": below > 0}


def current_ratios(run_dir):
    """rho_decision / rho_best per checked image of a member, with rho_best read from its
    per_image.csv as it is now: a cohort re-measured with more attacks after the check is judged
    by its new rho_best, without running the decision-based attack again."""
    checked = results.read_table(os.path.join(run_dir, MASKING_CSV))
    table = results.read_table(os.path.join(run_dir, results.PER_IMAGE_CSV))
    rho_best = table["rho_best"][:len(checked["rho_decision"])].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rho_best > 0, checked["rho_decision"] / rho_best, np.nan)


def cohort_summary(results_dir, run_dirs):
    """The masking check over the members `run_dirs` (folder names in `results_dir`) that
    have MASKING_JSON, judged against their current rho_best (current_ratios): None if none
    has; else members checked, their image counts, the smallest ratio and its member, images
    below FLAG_RATIO and members flagged."""
    found = {d: summarize(current_ratios(os.path.join(results_dir, d))) for d in run_dirs
             if os.path.exists(os.path.join(results_dir, d, MASKING_JSON))}
    if not found:
        return None
    ratios = {d: float(s["min_ratio"]) for d, s in found.items()}
    worst = min(ratios, key=lambda d: np.inf if np.isnan(ratios[d]) else ratios[d])
    return {"members": len(found), "images": sorted({int(s["images"]) for s in found.values()}),
            "min_ratio": ratios[worst], "min_member": worst,
            "below": sum(int(s["below"]) for s in found.values()),
            "flagged": sorted(d for d, s in found.items() if s["flagged"])}
