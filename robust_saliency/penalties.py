"""Input-gradient penalties for double backpropagation (eq. 17), one class per penalty.

A penalty maps (network, images, labels) to per-example terms; `RobustModel.train_step` sums
them, so a new penalty is a new class registered here and no edit to the training loop.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras
import tensorflow as tf

CONVENTIONS = ("batch_mean", "per_example")
SENSITIVITY_MODES = ("nll", "logits")


def nll(labels, logits):
    """Per-example negative log-likelihood of integer labels under softmax(logits)."""
    return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)


class GradientNormPenalty:
    """lam * ||grad_x s(x)||^2 per image, s the NLL ('nll') or the true-class logit ('logits').

    Each penalty's default sensitivity (`sensitivity_mode=None`) is the form its source defines:
    the NLL here, as in the paper's double backpropagation (eq. 17); `default_sensitivity(name)`
    says which. An explicit sensitivity_mode overrides it.

    Conventions for the scale (eq. (17) of Etmann et al. (2019), and the penalty as the authors'
    released TensorFlow code computes it):
      'per_example' (the default): eq. (17) read per image, lam * ||grad s_i||^2. (The authors'
        'logits' mode differentiated the plain *sum* of true-class logits, which is this
        convention.)
      'batch_mean': the authors' code differentiated the batch *mean* of s, so each image's
        gradient was its own divided by the batch size B: lam * ||grad s_i / B||^2 =
        (lam / B^2) * ||grad s_i||^2. The paper's lambdas (MNIST 10..180,000 at B = 100;
        ImageNet 1e4..1e7 at B = 16 per GPU) are on this scale. B is the fixed `batch_size`,
        required with this convention, so that a lam means the same whatever batch a model is
        trained or evaluated with.
    """

    name = "gradient_norm"
    default_sensitivity = "nll"

    def __init__(self, *, lam, convention="per_example", sensitivity_mode=None, batch_size=None):
        if not lam >= 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown penalty convention {convention!r}; valid: {CONVENTIONS}")
        sensitivity_mode = sensitivity_mode or self.default_sensitivity
        if sensitivity_mode not in SENSITIVITY_MODES:
            raise ValueError(
                f"unknown sensitivity mode {sensitivity_mode!r}; valid: {SENSITIVITY_MODES}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"penalty batch_size must be >= 1, got {batch_size}")
        if convention == "batch_mean" and batch_size is None:
            raise ValueError(
                "convention 'batch_mean' needs the batch size B its lam refers to: give "
                "batch_size (the paper's 100 on MNIST, 16 per GPU on ImageNet), or use "
                "convention 'per_example' with lam / B^2")
        self.lam = float(lam)
        self.convention = convention
        self.sensitivity_mode = sensitivity_mode
        self.batch_size = batch_size

    def sensitivity(self, labels, logits, losses):
        if self.sensitivity_mode == "nll":
            return losses
        return tf.gather(logits, tf.cast(labels, tf.int32)[:, None], batch_dims=1)[:, 0]

    def scale(self, dtype=tf.float32):
        """Factor on ||grad s_i||^2: lam ('per_example') or lam / B^2 ('batch_mean'), in `dtype`
        (a float32 factor alone would cost a float64 model 7 digits)."""
        if self.convention == "per_example":
            return tf.constant(self.lam, dtype)
        return tf.constant(self.lam, dtype) / tf.square(tf.constant(float(self.batch_size), dtype))

    def __call__(self, network, images, labels, *, training):
        """Per-example (logits, nll, penalty) for one batch.

        The inner tape differentiates s w.r.t. the images; the caller's outer tape then
        differentiates the penalised loss w.r.t. the weights (double backpropagation). With
        lam = 0 the inner tape is skipped, so training is exactly ordinary training.
        """
        if self.lam == 0:
            logits = network(images, training=training)
            losses = nll(labels, logits)
            return logits, losses, tf.zeros_like(losses)
        with tf.GradientTape() as inner:
            inner.watch(images)
            logits = network(images, training=training)
            losses = nll(labels, logits)
            # The gradient of the batch sum is the batch of per-image gradients (images are
            # independent except through batch-norm statistics, which the authors kept too).
            total = tf.reduce_sum(self.sensitivity(labels, logits, losses))
        grad = inner.gradient(total, images)
        batch = tf.shape(images)[0]
        term = self.per_example_term(tf.reshape(images, [batch, -1]),
                                     tf.reshape(grad, [batch, -1]))
        return logits, losses, self.scale(term.dtype) * term

    def per_example_term(self, x, grad):
        """||grad s||^2 per image (x and grad flattened to (B, D))."""
        del x
        return tf.reduce_sum(tf.square(grad), axis=1)

    def get_config(self):
        return {"penalty": self.name, "lam": self.lam, "convention": self.convention,
                "sensitivity_mode": self.sensitivity_mode, "batch_size": self.batch_size}


class AlignmentPenalty(GradientNormPenalty):
    """lam * (||x||^2 ||grad s||^2 - <x, grad s>^2) per image: the paper's Outlook penalty.

    By default (sensitivity_mode None or 'logits', the Outlook's form) s is the true-class logit
    Psi^y, so the term is ||x||^2 ||grad Psi^y||^2 - <x, grad Psi^y>^2; an explicit 'nll' takes
    the image's NLL instead (a different objective). By Cauchy-Schwarz the term is >= 0 and
    vanishes exactly when the saliency map is parallel to the image, so it raises the alignment
    directly; its first summand is also a (scaled) gradient-norm penalty, which the Outlook
    warns confounds the effect. Both conventions scale as for GradientNormPenalty (the term is
    quadratic in the gradient, so 'batch_mean' again divides by B^2).
    """

    name = "alignment"
    default_sensitivity = "logits"

    def per_example_term(self, x, grad):
        inner = tf.reduce_sum(x * grad, axis=1)
        return (tf.reduce_sum(tf.square(x), axis=1) * tf.reduce_sum(tf.square(grad), axis=1)
                - tf.square(inner))


class DualNormPenalty(GradientNormPenalty):
    """lam * ||grad s||_1^2 per image: the gradient penalty for L-infinity robustness.

    To first order a perturbation e with ||e||_inf <= eps changes s by at most eps * ||grad s||_1
    (Hoelder: the L1 norm is the dual of the L-infinity norm), as ||grad s||_2 bounds it for L2
    (Simon-Gabriel et al., 2019). Squared, so that it scales with lam and B exactly as the L2
    penalty does in both conventions.
    """

    name = "gradient_l1"

    def per_example_term(self, x, grad):
        del x
        return tf.square(tf.reduce_sum(tf.abs(grad), axis=1))


class PGDTraining(GradientNormPenalty):
    """Adversarial training (Madry et al., 2018) with L2 PGD: the loss is the NLL at the worst
    image PGD finds in the L2 ball of radius eps = `lam` around each training image.

    `lam` is the radius (0: ordinary training), so an epsilon sweep is a cohort's lambda sweep.
    The attack runs `steps` normalised-gradient ascent steps of `rel_stepsize` * eps on the NLL,
    each projected onto the ball and clipped to `bounds`, from a uniformly random start in the
    ball; 2.5 / steps is Madry et al.'s step, which reaches the ball's far side from anywhere
    in it. The network is attacked in inference mode, so dropout's noise does not blur the
    attack, and trained in `training` mode on the attacked images, which are constants to the
    outer tape (Danskin's theorem: the gradient at the maximiser is the gradient of the max).

    Per-example terms: `nll` is the clean NLL (reported, not differentiated) and the penalty is
    the NLL increase the attack achieved, so nll + penalty is the adversarial NLL that is
    minimised, and the `penalty` metric shows how much the attack still gains.

    `convention` and `batch_size` do not apply: they scale a penalty quadratic in an input
    gradient, and this loss is not one (lam is a radius, not a weight). They are accepted,
    checked as for every penalty and recorded in the configuration only, so that configurations
    written with the training defaults (convention 'batch_mean', batch_size 100, as every
    pgd_l2 preset and saved cohort has) still load; the loss is the same whatever they are.
    """

    name = "pgd_l2"

    def __init__(self, *, lam, convention="per_example", sensitivity_mode=None, batch_size=None,
                 steps=7, rel_stepsize=None, random_start=True, bounds=(0.0, 1.0)):
        super().__init__(lam=lam, convention=convention, sensitivity_mode=sensitivity_mode,
                         batch_size=batch_size)
        if self.sensitivity_mode != "nll":
            raise ValueError("penalty 'pgd_l2' attacks the NLL; use sensitivity_mode='nll'")
        if steps < 1:
            raise ValueError(f"pgd_l2 steps must be >= 1, got {steps}")
        low, high = (float(b) for b in bounds)
        if not low < high:
            raise ValueError(f"pgd_l2 bounds must satisfy low < high, got {bounds}")
        self.steps = int(steps)
        self.rel_stepsize = 2.5 / steps if rel_stepsize is None else float(rel_stepsize)
        self.random_start = bool(random_start)
        self.bounds = (low, high)

    @property
    def epsilon(self):
        return self.lam

    def attack(self, network, images, labels):
        """The adversarial images: inside the eps-ball of `images` and inside `bounds`."""
        batch = tf.shape(images)[0]
        eps = tf.constant(self.lam, images.dtype)
        step = tf.constant(self.lam * self.rel_stepsize, images.dtype)
        low, high = (tf.constant(b, images.dtype) for b in self.bounds)

        def norms(v):  # (B,) L2 norm of each image's slice
            return tf.norm(tf.reshape(v, [batch, -1]), axis=1)

        def per_image(s):  # (B,) -> broadcastable against the images
            return tf.reshape(s, [-1] + [1] * (len(images.shape) - 1))

        def project(delta):
            norm = norms(delta)
            delta = delta * per_image(tf.minimum(tf.ones_like(norm),
                                                 tf.math.divide_no_nan(eps, norm)))
            return tf.clip_by_value(images + delta, low, high) - images

        delta = tf.zeros_like(images)
        if self.random_start:
            # Uniform in the ball: a Gaussian direction, radius eps * U^(1/D).
            direction = tf.random.normal(tf.shape(images), dtype=images.dtype)
            dim = tf.cast(tf.size(direction) // batch, images.dtype)
            radius = eps * tf.random.uniform([batch], dtype=images.dtype) ** (1.0 / dim)
            delta = project(direction * per_image(tf.math.divide_no_nan(radius,
                                                                        norms(direction))))
        for _ in range(self.steps):
            with tf.GradientTape() as tape:
                tape.watch(delta)
                loss = tf.reduce_sum(nll(labels, network(images + delta, training=False)))
            grad = tape.gradient(loss, delta)
            delta = project(delta + step * (grad / per_image(tf.maximum(norms(grad), 1e-12))))
        return tf.stop_gradient(images + delta)

    def __call__(self, network, images, labels, *, training):
        if self.lam == 0:
            return super().__call__(network, images, labels, training=training)
        adversarial = self.attack(network, images, labels)
        logits = tf.stop_gradient(network(images, training=training))
        clean = nll(labels, logits)
        return logits, clean, nll(labels, network(adversarial, training=training)) - clean

    def get_config(self):
        return {**super().get_config(), "steps": self.steps, "rel_stepsize": self.rel_stepsize,
                "random_start": self.random_start, "bounds": list(self.bounds)}


PENALTIES: dict[str, type[GradientNormPenalty]] = {
    p.name: p for p in (GradientNormPenalty, AlignmentPenalty, DualNormPenalty, PGDTraining)}


def option_names(name):
    """The keyword options penalty `name` accepts."""
    return tuple(inspect.signature(PENALTIES[name].__init__).parameters)[2:]


def default_sensitivity(name):
    """The sensitivity penalty `name` differentiates when none is given: 'nll' or 'logits'."""
    if name not in PENALTIES:
        raise ValueError(f"unknown penalty {name!r}; valid: {sorted(PENALTIES)}")
    return PENALTIES[name].default_sensitivity


def penalty(name: str = "gradient_norm", **options: Any) -> GradientNormPenalty:
    """The penalty registered under `name`, built with `options`."""
    if name not in PENALTIES:
        raise ValueError(f"unknown penalty {name!r}; valid: {sorted(PENALTIES)}")
    return PENALTIES[name](**options)


get = penalty  # the library's own name for it (robust_saliency.penalty)
