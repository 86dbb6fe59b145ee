"""The per-image loop every attack runs in, and the verifier that judges every point it returns.

An attack (attacks.base.Attack) proposes candidate points; a minimisation attack does not
guarantee they are adversarial, so each is re-checked here: clipped to the bounds, the model's
prediction at x + e must differ from the label, and the reported distance is the norm of that
very e. One that fails is lengthened by at most 0.1% until it passes (`PUSH_STEPS`): a
minimisation attack ends on the boundary, where the logits' last bits depend on the CPU kernels
and the batch.
"""

import numpy as np
import tensorflow as tf

from robust_saliency import compiled, input_checks
from robust_saliency import progress as shown_progress
from robust_saliency.logits import logits_network

# Relative lengthenings of a perturbation whose end point fails verification, smallest first
# (see Attacker.verify_or_push): 1e-6 can be below float32 resolution, hence the ladder.
PUSH_STEPS = (1e-6, 1e-5, 1e-4, 1e-3)


def logits_function(network):
    """The network's compiled forward pass (inference mode), traced once for any batch size and
    shared by every attack on it: a cohort runs six or more attacks per model, and each would
    otherwise trace the network anew (seconds apiece for a ResNet50)."""
    def build(ref):
        spec = compiled.image_spec(network, input_checks.input_dtype(network))
        return tf.function(lambda x: ref()(x, training=False), input_signature=[spec],
                           autograph=False)

    return compiled.per_network(network, "logits", build)


class Attacker:
    """One network and pixel box: what an attack's `run` receives (`network`, `bounds`), and
    the verifier of every candidate it returns."""

    def __init__(self, network, bounds):
        self.network = network
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.logits = logits_function(network)

    def predict(self, x):
        return tf.argmax(self.logits(tf.convert_to_tensor(x)), axis=1,
                         output_type=tf.int32).numpy()

    def clip(self, candidate, dtype):
        """`candidate` as `dtype`, clipped to the bounds (what every reported point is)."""
        return np.clip(np.asarray(candidate, dtype), *self.bounds)

    def verify(self, x, candidate, labels, norm=2):
        """(adversarial?, ||e||_norm, x + e) per image for candidate = x + e, clipped to the
        bounds first."""
        candidate = self.clip(candidate, x.dtype)
        success = self.predict(candidate) != labels
        dist = np.linalg.norm((candidate - x).reshape(len(x), -1).astype(np.float64), ord=norm,
                              axis=1)
        return success, dist, candidate

    def verify_or_push(self, x, candidate, labels, norm=2):
        """`verify`, then each candidate that fails it lengthened along its own perturbation by
        the relative steps of PUSH_STEPS in turn until it verifies.

        CW, DDN and FMN end on the decision boundary as their own forward pass judged it, and
        the logits' last bits there depend on the CPU kernels and even on the batch: with
        oneDNN, an FMN point adversarial in a batch of one was not in the batch of 24 it was
        checked in. A verified point at most 0.1% further out is an honest upper bound where
        the alternative is 'not found'. Candidates equal to x stay as they are."""
        ok, dist, candidate = self.verify(x, candidate, labels, norm)
        moved = np.any((candidate != x).reshape(len(x), -1), axis=1)
        base = candidate.copy()
        for step in PUSH_STEPS:
            retry = np.flatnonzero(~ok & moved)
            if not len(retry):
                break
            pushed = x[retry] + (base[retry] - x[retry]) * np.asarray(1 + step, x.dtype)
            good, d, c = self.verify(x[retry], pushed, labels[retry], norm)
            ok[retry[good]], dist[retry[good]] = True, d[good]
            candidate[retry[good]] = c[good]
        return ok, dist, candidate

    def adversarial_together(self, candidates, labels):
        """Indices of the candidates that are adversarial when judged in one batch of exactly
        themselves, as Foolbox judges starting points (it asserts they all are). Under
        batch-dependent rounding, dropping a failed candidate can flip another, hence the
        loop; it ends because the set shrinks at every pass."""
        keep = np.arange(len(candidates))
        while len(keep):
            adversarial = self.predict(candidates[keep]) != labels[keep]
            if adversarial.all():
                break
            keep = keep[adversarial]
        return keep


def find_adversarials(model, images, attack, bounds, labels=None, *, batch_size=100,
                      verbose=None, progress=None):
    """Per image, the smallest verified adversarial `attack` (an attacks.base.Attack) found.

    Returns:
      (distances, adversarials): distances (N,) float64 in the attack's norm, np.inf where no
      adversarial was found, 0 where the image is already misclassified w.r.t. its label;
      adversarials (N, ...) the perturbed images (the clean image where none).
    """
    network = logits_network(model)
    x = input_checks.check_images(images, network, bounds=bounds)
    attacker = Attacker(network, bounds)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if labels is None:
        labels = np.concatenate([attacker.predict(x[i:i + batch_size])
                                 for i in range(0, len(x), batch_size)])
    labels = input_checks.check_labels(labels, len(x), network.output_shape[-1])
    distances = np.full(len(x), np.inf)
    adversarials = x.copy()
    with shown_progress.Progress(len(x), attack.name, verbose=verbose) as shown:
        for start in range(0, len(x), batch_size):
            rows = np.arange(start, min(start + batch_size, len(x)))
            # Already misclassified w.r.t. the label: the clean image is the adversarial, at 0.
            done = attacker.predict(x[rows]) != labels[rows]
            distances[rows[done]] = 0.0
            todo = rows[~done]
            if len(todo):
                candidate = attack.run(attacker, x[todo], labels[todo])
                ok, dist, candidate = attacker.verify_or_push(x[todo], candidate, labels[todo],
                                                              attack.norm)
                distances[todo[ok]] = dist[ok]
                adversarials[todo[ok]] = candidate[ok]
            shown.advance(len(rows))
            if progress is not None:
                progress(int(rows[-1]) + 1, len(x))
    return distances, adversarials
