"""The Carlini-Wagner L2 attack as a compiled TensorFlow loop, step for step Foolbox 3's.

Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks" (IEEE S&P 2017), as
Foolbox 3.3.4's L2CarliniWagnerAttack implements it (the paper's protocol was measured with
that): the perturbation lives in tanh space, w -> tanh(w) * half_range + center; Adam (beta 0.9,
0.999, eps 1e-8) minimises, per image, c * max(0, Psi^y - max_{j != y} Psi^j + confidence) +
||x' - x||^2 summed over the batch; every ceil(steps / 10) steps the batch stops early when that
sum has not fallen below 0.9999 times its value at the last check; the constant c is searched
per image, x10 until an adversarial was found, then by bisection, over `binary_search_steps`
rounds; the smallest adversarial iterate of all rounds is kept. One difference: an image with
no adversarial iterate gets x back (Foolbox returns a black image, which the verifier could then
count as an adversarial at distance ||x||).

The step loop of one round is one `tf.function` per network (any batch size, the model's input
dtype); the rounds are a short Python loop around it.
"""

import math

import numpy as np

from robust_saliency import compiled
from robust_saliency.attacks.base import Attack, tf


class CW(Attack):
    """The paper's Carlini-Wagner L2 (Carlini & Wagner, 2017; confidence 0, early abort): a
    minimisation attack, compiled, step for step Foolbox 3.3.4's L2CarliniWagnerAttack, with
    which the paper's protocol was first measured: `binary_search_steps` rounds over the
    constant from `initial_const`, each `steps` Adam steps of size `stepsize`. A larger
    stepsize overshoots small distances; the presets say which settings they run and why."""

    name, label = "cw", "CW"
    defaults = {"binary_search_steps": 5, "steps": 500, "stepsize": 0.01, "initial_const": 0.1}

    def run(self, attacker, x, labels):
        points, _, steps = run(attacker.network, x, labels, attacker.bounds, **self.options)
        self.image_steps += steps
        return points


def _flat_sq_norm(v):
    return tf.reduce_sum(tf.square(tf.reshape(v, [tf.shape(v)[0], -1])), axis=1)


def _build(ref):
    from robust_saliency import input_checks
    from robust_saliency.attacks.minimal_norm import logit_margin, per_image

    dtype = input_checks.input_dtype(ref())
    image = compiled.image_spec(ref(), dtype)
    vector = tf.TensorSpec([None], dtype)
    scalar = tf.TensorSpec([], dtype)
    signature = [image, tf.TensorSpec([None], tf.int32), vector, image, vector,
                 tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32), scalar, scalar,
                 scalar, scalar]

    def round_(x, labels, consts, best, best_norm, steps, check_every, stepsize, confidence,
               low, high):
        center, half = (high + low) / 2, (high - low) / 2
        w0 = tf.atanh((x - center) / half * 0.999999)
        reconstructed = tf.tanh(w0) * half + center
        beta1, beta2 = tf.constant(0.9, dtype), tf.constant(0.999, dtype)
        found = tf.zeros_like(labels, tf.bool)

        def body(k, delta, m, v, previous, stop, found, best, best_norm):
            with tf.GradientTape() as tape:
                tape.watch(delta)
                perturbed = tf.tanh(w0 + delta) * half + center
                logits = ref()(perturbed, training=False)
                margin = logit_margin(logits, labels) + confidence
                loss = (tf.reduce_sum(tf.maximum(margin, 0) * consts)
                        + tf.reduce_sum(_flat_sq_norm(perturbed - reconstructed)))
            grad = tape.gradient(loss, delta)
            t = tf.cast(k + 1, dtype)
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * tf.square(grad)
            delta = delta - stepsize * (m / (1 - beta1 ** t)) / (
                tf.sqrt(v / (1 - beta2 ** t)) + 1e-8)
            check = tf.equal(k % check_every, 0)
            stop = check & ~(loss <= 0.9999 * previous)
            previous = tf.where(check & ~stop, loss, previous)
            adv = (tf.argmax(logits, axis=1, output_type=tf.int32) != labels) & ~stop
            found = found | adv
            norm = tf.sqrt(_flat_sq_norm(perturbed - x))
            better = adv & (norm < best_norm)
            best = tf.where(per_image(better, x), perturbed, best)
            best_norm = tf.where(better, norm, best_norm)
            return k + 1, delta, m, v, previous, stop, found, best, best_norm

        zeros = tf.zeros_like(x)
        state = tf.while_loop(
            lambda k, *rest: (k < steps) & ~rest[4], body,
            (tf.constant(0), zeros, zeros, zeros, tf.constant(np.inf, dtype),
             tf.constant(False), found, best, best_norm))
        return state[6], state[7], state[8], state[0]

    return tf.function(round_, input_signature=signature, autograph=False)


def compiled_round(network):
    """One binary-search round's step loop on `network`, traced once and cached with it."""
    return compiled.per_network(network, ("attack", "cw"), _build)


def run(network, x, labels, bounds, *, binary_search_steps=5, steps=500, stepsize=0.01,
        initial_const=0.1, confidence=0.0, abort_early=True, eager=False):
    """Carlini-Wagner L2 on a batch; returns (points, distances, image_steps): the smallest
    adversarial iterate per image (x where none, at np.inf), and the (image, step) pairs
    computed, each one forward and one backward pass."""
    dtype = x.dtype
    call = compiled_round(network).python_function if eager else compiled_round(network)
    n = len(x)
    consts = np.full(n, initial_const)
    lower, upper = np.zeros(n), np.full(n, np.inf)
    best, best_norm = np.array(x), np.full(n, np.inf, dtype)
    check_every = math.ceil(steps / 10) if abort_early else steps + 1
    image_steps = 0
    for round_index in range(binary_search_steps):
        if round_index == binary_search_steps - 1 and binary_search_steps >= 10:
            consts = np.minimum(upper, 1e10)  # Foolbox's last round at the upper bound
        found, best_t, best_norm_t, done = call(
            tf.constant(x), tf.constant(labels, tf.int32), tf.constant(consts.astype(dtype)),
            tf.constant(best), tf.constant(best_norm), tf.constant(steps, tf.int32),
            tf.constant(check_every, tf.int32), *(tf.constant(v, dtype) for v in (
                stepsize, confidence, *bounds)))
        found, image_steps = found.numpy(), image_steps + n * int(done)
        best, best_norm = best_t.numpy(), best_norm_t.numpy()
        upper = np.where(found, consts, upper)
        lower = np.where(found, lower, consts)
        consts = np.where(np.isinf(upper), consts * 10, (lower + upper) / 2)
    return best, best_norm.astype(np.float64), image_steps
