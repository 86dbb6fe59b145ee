"""Input-gradient penalties for double backpropagation (eq. 17), one class per penalty.

A penalty maps (network, images, labels) to per-example terms; `RobustModel.train_step` sums
them, so a new penalty is a new class registered here and no edit to the training loop.
"""

import keras
import tensorflow as tf

CONVENTIONS = ("batch_mean", "per_example")
SENSITIVITY_MODES = ("nll", "logits")


def nll(labels, logits):
    """Per-example negative log-likelihood of integer labels under softmax(logits)."""
    return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)


class GradientNormPenalty:
    """lam * ||grad_x s(x)||^2 per image, s the NLL ('nll') or the true-class logit ('logits').

    Conventions for the scale (reference-notes.md, "The penalty, exactly as the authors computed
    it"):
      'batch_mean': the authors' code differentiated the batch *mean* of s, so each image's
        gradient is its own divided by the batch size B; the penalty is lam * mean_i of
        ||grad s_i / B||^2 = (lam / B^2) * mean_i ||grad s_i||^2. The paper's lambdas (MNIST
        10..180,000 at B = 100; ImageNet 1e4..1e7 at B = 16 per GPU) are on this scale.
      'per_example': eq. (17) read per image: lam * mean_i ||grad s_i||^2, a factor B^2 larger
        at the same lam. (The authors' 'logits' mode differentiated the plain *sum* of true-class
        logits, which is this convention.)
    B is `batch_size` when given, else the number of images in the call: under a distribution
    strategy that is the replica's own batch, as in the authors' multi-GPU code, so the paper's
    ImageNet lambdas refer to B = 16 images per GPU.
    """

    name = "gradient_norm"

    def __init__(self, *, lam, convention="batch_mean", sensitivity_mode="nll", batch_size=None):
        if not lam >= 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown penalty convention {convention!r}; valid: {CONVENTIONS}")
        if sensitivity_mode not in SENSITIVITY_MODES:
            raise ValueError(
                f"unknown sensitivity mode {sensitivity_mode!r}; valid: {SENSITIVITY_MODES}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"penalty batch_size must be >= 1, got {batch_size}")
        self.lam = float(lam)
        self.convention = convention
        self.sensitivity_mode = sensitivity_mode
        self.batch_size = batch_size

    def sensitivity(self, labels, logits, losses):
        if self.sensitivity_mode == "nll":
            return losses
        return tf.gather(logits, tf.cast(labels, tf.int32)[:, None], batch_dims=1)[:, 0]

    def scale(self, batch):
        """Factor on ||grad s_i||^2: lam / B^2 ('batch_mean') or lam ('per_example')."""
        if self.convention == "per_example":
            return tf.constant(self.lam)
        size = float(self.batch_size) if self.batch_size else tf.cast(batch, tf.float32)
        return self.lam / tf.square(size)

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
        return logits, losses, tf.cast(self.scale(batch), term.dtype) * term

    def per_example_term(self, x, grad):
        """||grad s||^2 per image (x and grad flattened to (B, D))."""
        del x
        return tf.reduce_sum(tf.square(grad), axis=1)

    def get_config(self):
        return {"penalty": self.name, "lam": self.lam, "convention": self.convention,
                "sensitivity_mode": self.sensitivity_mode, "batch_size": self.batch_size}


class AlignmentPenalty(GradientNormPenalty):
    """lam * (||x||^2 ||grad s||^2 - <x, grad s>^2) per image: the paper's Outlook penalty.

    With sensitivity_mode 'logits' (the Outlook's form) s is the true-class logit Psi^i; with
    'nll' it is the image's NLL. By Cauchy-Schwarz the term is >= 0 and vanishes exactly when
    the saliency map is parallel to the image, so it raises the alignment directly; its first
    summand is also a (scaled) gradient-norm penalty, which the Outlook warns confounds the
    effect. Both conventions scale as for GradientNormPenalty (the term is quadratic in the
    gradient, so 'batch_mean' again divides by B^2).
    """

    name = "alignment"

    def per_example_term(self, x, grad):
        inner = tf.reduce_sum(x * grad, axis=1)
        return (tf.reduce_sum(tf.square(x), axis=1) * tf.reduce_sum(tf.square(grad), axis=1)
                - tf.square(inner))


PENALTIES = {p.name: p for p in (GradientNormPenalty, AlignmentPenalty)}


def get(name="gradient_norm", **options):
    """The penalty registered under `name`, built with `options`."""
    if name not in PENALTIES:
        raise ValueError(f"unknown penalty {name!r}; valid: {sorted(PENALTIES)}")
    return PENALTIES[name](**options)
