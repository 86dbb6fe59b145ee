"""The attack engine: one verifier per (network, bounds), the Foolbox-based attacks of the paper
and the L-inf pair, and the per-image loop every attack runs in (`find_adversarials`).

The attacks themselves, with their settings, norms and papers, are the classes of
`robust_saliency.attacks`; this module is what they run on. Foolbox 3 supplies the paper's
gradient-free pieces; what it no longer has (Foolbox 1's line-search GradientAttack and BIM's
binary search over epsilon) is built here on them. Since a minimisation attack does not
guarantee an adversarial output, every perturbation is re-checked: clipped to the bounds, the
model's prediction at x + e must differ from the label, and the reported value is the norm of
that very e. One that fails is lengthened by at most 0.1% until it passes (`PUSH_STEPS`): a
minimisation attack ends on the boundary, where the logits' last bits depend on the CPU kernels
and the batch.
"""

import math
import weakref

import eagerpy as ep
import foolbox as fb
import keras
import numpy as np
import tensorflow as tf
from foolbox.attacks.gradient_descent_base import GDOptimizer
from foolbox.devutils import atleast_kd

from robust_saliency import metrics, penalties

# Foolbox keeps numba's ImportError (brendel_bethge.NUMBA_IMPORT_ERROR, raised only if that attack
# is used) with its traceback, whose frames hold, through f_back, every caller of the import:
# the first model attacked in a process (this module is imported by find_adversarials) was never
# freed. The error stays; only its traceback goes.
_numba_error = getattr(fb.attacks.brendel_bethge, "NUMBA_IMPORT_ERROR", None)
if _numba_error is not None:
    _numba_error.__traceback__ = None

# Relative lengthenings of a perturbation whose end point fails verification, smallest first
# (see _Attacker.verify_or_push): 1e-6 can be below float32 resolution, hence the ladder.
PUSH_STEPS = (1e-6, 1e-5, 1e-4, 1e-3)


def _foolbox_labels(labels):
    """Labels as int64, the dtype of eagerpy's argmax: with any other dtype eagerpy's comparison
    calls np.find_common_type, which NumPy 2 removed."""
    return tf.constant(np.asarray(labels, np.int64))


class _PerImageEpsilon:
    """Mixin for Foolbox's gradient-descent attacks: epsilon may be an (N,) tensor, one per image
    (Foolbox multiplies the gradient by a stepsize it expects to be a scalar)."""

    def get_optimizer(self, x, stepsize):
        if isinstance(stepsize, ep.Tensor):
            stepsize = atleast_kd(stepsize, x.ndim)
        return GDOptimizer(x, stepsize)


class _PerImageEpsilonL2BIM(_PerImageEpsilon, fb.attacks.L2BasicIterativeAttack):
    """L2 BIM; Foolbox's L2 projection already takes one epsilon per image."""


class _PerImageEpsilonLinfBIM(_PerImageEpsilon, fb.attacks.LinfBasicIterativeAttack):
    """L-inf BIM; Foolbox's projection passes epsilon to tf.clip_by_value, which cannot take an
    eagerpy tensor (and would not broadcast an (N,) one over (N, H, W, C))."""

    def project(self, x, x0, epsilon):
        epsilon = atleast_kd(epsilon, x.ndim)
        return x0 + ep.minimum(ep.maximum(x - x0, -epsilon), epsilon)


# One compiled forward pass per network, shared by every attack on it: a cohort runs five or
# six attacks per model, and each had traced (and Grappler-optimised) the network and its
# backward pass anew, about 4 s apiece for ResNet50. Any batch size, so the retries' subsets
# do not retrace either.
_LOGITS = weakref.WeakKeyDictionary()


def _logits_function(network):
    if network not in _LOGITS:
        ref = weakref.ref(network)  # the cached function must not keep its key alive
        spec = tf.TensorSpec([None, *network.input_shape[1:]], metrics.input_dtype(network))
        _LOGITS[network] = tf.function(lambda x: ref()(x, training=False),
                                       input_signature=[spec], autograph=False)
    return _LOGITS[network]


class _Attacker:
    """One model, bounds and label set; verifies every candidate it is given."""

    def __init__(self, network, bounds):
        self.network = network
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self._logits = _logits_function(network)
        logger = tf.get_logger()
        level = logger.level
        logger.setLevel("ERROR")  # Foolbox calls the deprecated tf.test.is_gpu_available
        try:
            self.fmodel = fb.TensorFlowModel(self._logits, bounds=self.bounds)
        finally:
            logger.setLevel(level)

    def predict(self, x):
        return tf.argmax(self._logits(tf.convert_to_tensor(x)), axis=1,
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

    def gradient(self, x, labels, grid_size=100, refine_steps=20):
        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(penalties.nll(labels, self._logits(xt)))
        grad = tape.gradient(loss, xt).numpy().reshape(len(x), -1)
        norms = np.linalg.norm(grad, axis=1, keepdims=True)
        direction = np.divide(grad, norms, out=np.zeros_like(grad), where=norms > 0)
        direction = direction.reshape(x.shape)
        low, high = self.bounds
        steps = np.geomspace(1e-3, math.sqrt(x[0].size) * (high - low), grid_size)

        def point(t):
            return x + t.reshape(-1, *[1] * (x.ndim - 1)).astype(x.dtype) * direction

        first = np.full(len(x), -1)
        for k, t in enumerate(steps):
            ok, _, _ = self.verify(x, point(np.full(len(x), t)), labels)
            first = np.where((first < 0) & ok, k, first)
        found = first >= 0
        hi = np.where(found, steps[np.maximum(first, 0)], np.inf)
        lo = np.where(found & (first > 0), steps[np.maximum(first - 1, 0)], 0.0)
        for _ in range(refine_steps):
            mid = np.where(found, 0.5 * (lo + hi), 0.0)
            ok, _, _ = self.verify(x, point(mid), labels)
            hi = np.where(found & ok, mid, hi)
            lo = np.where(found & ~ok, mid, lo)
        return point(np.where(found, hi, 0.0))

    def bim(self, x, labels, steps=20, rel_stepsize=0.1, initial_epsilon=0.5, search_steps=8):
        """Foolbox's L2 BIM in the same search: the reference the compiled `bim` attack
        (attacks.iterative) is checked against (tests, benchmarks.attack_tightness)."""
        attack = _PerImageEpsilonL2BIM(steps=steps, rel_stepsize=rel_stepsize,
                                       random_start=False)
        return self.epsilon_search(self._foolbox_fixed(attack, x.dtype), 2, x, labels,
                                   initial_epsilon, search_steps)

    def bim_linf(self, x, labels, steps=20, rel_stepsize=0.1, initial_epsilon=0.05,
                 search_steps=8):
        attack = _PerImageEpsilonLinfBIM(steps=steps, rel_stepsize=rel_stepsize,
                                         random_start=False)
        return self.epsilon_search(self._foolbox_fixed(attack, x.dtype), np.inf, x, labels,
                                   initial_epsilon, search_steps)

    def _foolbox_fixed(self, attack, dtype):
        def fixed(x, labels, eps):
            criterion = fb.criteria.Misclassification(_foolbox_labels(labels))
            eps_t = ep.astensor(tf.constant(eps.astype(dtype)))
            return attack.run(self.fmodel, tf.convert_to_tensor(x), criterion,
                              epsilon=eps_t).numpy()
        return fixed

    def epsilon_search(self, fixed, norm, x, labels, initial_epsilon, search_steps, *,
                       compact=False):
        """Smallest verified output of a fixed-epsilon attack over a per-image epsilon: doubling
        from `initial_epsilon` until it succeeds, then `search_steps` bisection steps.

        Args:
          fixed: callable(x, labels, epsilon (N,)) -> candidate points of the attack.
          compact: run only the images whose search goes on (those still doubling, then those
            with a bracket). Each image's run depends on that image alone, so the search is
            the same; Foolbox's attacks run the whole batch every time, as the committed
            results were measured, and the last bits of a batch's logits depend on its size.
        """
        best = x.copy()
        best_dist = np.full(len(x), np.inf)
        everyone = np.arange(len(x))
        # The largest perturbation inside the box: its diagonal in L2, its width in L-inf.
        max_eps = np.linalg.norm(np.full(x[0].size, self.bounds[1] - self.bounds[0]), ord=norm)

        def run(eps, active):
            rows = np.flatnonzero(active) if compact else everyone
            ok = np.zeros(len(x), bool)
            if not len(rows):
                return ok
            candidate = fixed(x[rows], labels[rows], eps[rows])
            ok[rows], dist, candidate = self.verify(x[rows], candidate, labels[rows], norm)
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

    def _minimisation(self, attack, x, labels, **kwargs):
        raw, _, _ = attack(self.fmodel, tf.convert_to_tensor(x), _foolbox_labels(labels),
                           epsilons=None, **kwargs)
        return raw.numpy()

    def cw(self, x, labels, binary_search_steps=5, steps=500, stepsize=0.01,
           initial_const=0.1):
        """Foolbox's Carlini-Wagner L2, the reference the compiled `cw` attack is checked
        against (tests, benchmarks.attack_tightness)."""
        return self._minimisation(fb.attacks.L2CarliniWagnerAttack(
            binary_search_steps=binary_search_steps, steps=steps, stepsize=stepsize,
            confidence=0.0, initial_const=initial_const, abort_early=True), x, labels)

    def fmn_linf(self, x, labels, steps=100):
        attack = fb.attacks.LInfFMNAttack(steps=steps)
        out = self._minimisation(attack, x, labels)
        # Started from x, FMN can sit on the decision boundary for good where its distance
        # estimate |margin| / ||grad||_1 is exact (an affine model): whether that point counts
        # as adversarial is then a matter of the logits' last bit, which differs between CPU
        # kernels (oneDNN's lost one image of the linear test case at any number of steps). So
        # where it found nothing, it runs again from bim_linf's adversarial, which Foolbox
        # first bisects towards x: it can then only improve on that point.
        ok, _, _ = self.verify(x, out, labels, np.inf)
        retry = np.flatnonzero(~ok)
        if len(retry):
            start = self.clip(self.bim_linf(x[retry], labels[retry]), x.dtype)
            keep = self.adversarial_together(start, labels[retry])
            retry, start = retry[keep], start[keep]
        if len(retry):
            out[retry] = self._minimisation(
                attack, x[retry], labels[retry],
                starting_points=ep.astensor(tf.convert_to_tensor(start)))
        return out


def find_adversarials(model, images, attack, bounds, labels=None, *, batch_size=100,
                      verbose=False, progress=None):
    """Per image, the smallest verified adversarial `attack` (an attacks.Attack) found.

    Returns:
      (distances, adversarials): distances (N,) float64 in the attack's norm, np.inf where no
      adversarial was found, 0 where the image is already misclassified w.r.t. its label;
      adversarials (N, ...) the perturbed images (the clean image where none).
    """
    network = metrics.logits_network(model)
    x = metrics.check_images(images, network, bounds=bounds)
    attacker = _Attacker(network, bounds)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if labels is None:
        labels = np.concatenate([attacker.predict(x[i:i + batch_size])
                                 for i in range(0, len(x), batch_size)])
    labels = np.asarray(labels).astype(np.int32)
    if labels.shape != (len(x),):
        raise ValueError(f"labels must have shape ({len(x)},), got {labels.shape}")
    distances = np.full(len(x), np.inf)
    adversarials = x.copy()
    progbar = keras.utils.Progbar(len(x), unit_name="image") if verbose else None
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
        if progbar is not None:
            progbar.add(len(rows))
        if progress is not None:
            progress(int(rows[-1]) + 1, len(x))
    return distances, adversarials
