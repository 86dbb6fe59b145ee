"""Attacks run through Foolbox 3: the glue they share, and the paper's BIM and CW as the
paper's protocol was first measured, the references the compiled ones are checked against
(tests, benchmarks.attack_tightness).

Foolbox 3 supplies the L-inf pair's algorithms (attacks.bim_linf, attacks.fmn_linf); what it
does not have (one epsilon per image) is added here.
"""

import importlib
from typing import Any

import numpy as np
import tensorflow as tf

from robust_saliency import optional
from robust_saliency.attacks import bim, cw

fb: Any = optional.require("foolbox", "the L-infinity attacks and the Foolbox reference attacks")
ep = optional.require("eagerpy", "the L-infinity attacks and the Foolbox reference attacks")
GDOptimizer = importlib.import_module("foolbox.attacks.gradient_descent_base").GDOptimizer
atleast_kd = fb.devutils.atleast_kd

# Foolbox keeps numba's ImportError (brendel_bethge.NUMBA_IMPORT_ERROR, raised only if that attack
# is used) with its traceback, whose frames hold, through f_back, every caller of the import:
# the first model attacked in a process was never freed. The error stays; only its traceback goes.
_numba_error = getattr(fb.attacks.brendel_bethge, "NUMBA_IMPORT_ERROR", None)
if _numba_error is not None:
    _numba_error.__traceback__ = None


def labels_tensor(labels):
    """Labels as int64, the dtype of eagerpy's argmax: with any other dtype eagerpy's comparison
    calls np.find_common_type, which NumPy 2 removed."""
    return tf.constant(np.asarray(labels, np.int64))


def model(attacker):
    """The Foolbox model of an attacks.verify.Attacker (its compiled forward pass and box)."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # Foolbox calls the deprecated tf.test.is_gpu_available
    try:
        return fb.TensorFlowModel(attacker.logits, bounds=attacker.bounds)
    finally:
        logger.setLevel(level)


class _PerImageEpsilon:
    """Mixin for Foolbox's gradient-descent attacks: epsilon may be an (N,) tensor, one per image
    (Foolbox multiplies the gradient by a stepsize it expects to be a scalar)."""

    def get_optimizer(self, x, stepsize):
        if isinstance(stepsize, ep.Tensor):
            stepsize = atleast_kd(stepsize, x.ndim)
        return GDOptimizer(x, stepsize)


class PerImageEpsilonL2BIM(_PerImageEpsilon, fb.attacks.L2BasicIterativeAttack):
    """L2 BIM; Foolbox's L2 projection already takes one epsilon per image."""


class PerImageEpsilonLinfBIM(_PerImageEpsilon, fb.attacks.LinfBasicIterativeAttack):
    """L-inf BIM; Foolbox's projection passes epsilon to tf.clip_by_value, which cannot take an
    eagerpy tensor (and would not broadcast an (N,) one over (N, H, W, C))."""

    def project(self, x, x0, epsilon):
        epsilon = atleast_kd(epsilon, x.ndim)
        return x0 + ep.minimum(ep.maximum(x - x0, -epsilon), epsilon)


def fixed_epsilon(attacker, attack, dtype):
    """A Foolbox fixed-epsilon attack as bim.epsilon_search's `fixed` callable."""
    fmodel = model(attacker)

    def fixed(x, labels, eps):
        criterion = fb.criteria.Misclassification(labels_tensor(labels))
        eps_t = ep.astensor(tf.constant(eps.astype(dtype)))
        return attack.run(fmodel, tf.convert_to_tensor(x), criterion, epsilon=eps_t).numpy()

    return fixed


def minimisation(attacker, attack, x, labels, **kwargs):
    """The raw points of a Foolbox minimisation attack (epsilons=None)."""
    raw, _, _ = attack(model(attacker), tf.convert_to_tensor(x), labels_tensor(labels),
                       epsilons=None, **kwargs)
    return raw.numpy()


class FoolboxBIM(bim.BIM):
    """The paper's BIM as first measured: Foolbox's L2 BIM in the same epsilon search, every
    image run at every epsilon of it."""

    def run(self, attacker, x, labels):
        o = self.options
        attack = PerImageEpsilonL2BIM(steps=o["steps"], rel_stepsize=o["rel_stepsize"],
                                      random_start=False)
        return bim.epsilon_search(attacker, fixed_epsilon(attacker, attack, x.dtype), 2, x,
                                  labels, o["initial_epsilon"], o["search_steps"])


class FoolboxCW(cw.CW):
    """The paper's CW as first measured: Foolbox's Carlini-Wagner L2."""

    def run(self, attacker, x, labels):
        o = self.options
        return minimisation(attacker, fb.attacks.L2CarliniWagnerAttack(
            binary_search_steps=o["binary_search_steps"], steps=o["steps"],
            stepsize=o["stepsize"], confidence=0.0, initial_const=o["initial_const"],
            abort_early=True), x, labels)
