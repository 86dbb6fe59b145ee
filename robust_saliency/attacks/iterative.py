"""The paper's L2 basic iterative attack as a compiled TensorFlow loop, step for step Foolbox 3's.

Kurakin, Goodfellow & Bengio, "Adversarial examples in the physical world" (ICLR 2017
workshop), in L2 as Foolbox 3.3.4's L2BasicIterativeAttack implements it (the paper's protocol
was measured with that): from x0 with no random start, `steps` times: the gradient of the summed
cross-entropy of the logits at the labels, divided by its L2 norm (at least 1e-12), a step of
`rel_stepsize` times epsilon along it, the perturbation clipped to L2 norm epsilon, the point
clipped into the box. Epsilon is one per image. The step loop is one `tf.function` per network
(any batch size, the model's input dtype); the search over epsilon around it is the engine's
(engine._Attacker.epsilon_search), shared with Foolbox's L-inf BIM.
"""

import weakref

import tensorflow as tf

from robust_saliency import metrics, penalties
from robust_saliency.attacks import minimal_norm

_LOOPS = weakref.WeakKeyDictionary()


def _clip_l2(v, norm):
    # Foolbox's clip_lp_norms: factor min(1, norm / max(||v||, 1e-12)) per image.
    norms = tf.maximum(tf.norm(tf.reshape(v, [tf.shape(v)[0], -1]), axis=1), 1e-12)
    return v * minimal_norm.per_image(tf.minimum(tf.ones_like(norms), norm / norms), v)


def _build(network):
    ref = weakref.ref(network)  # the cached loop must not keep its network alive
    dtype = metrics.input_dtype(network)
    image = tf.TensorSpec([None, *network.input_shape[1:]], dtype)
    signature = [image, tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], dtype),
                 tf.TensorSpec([], tf.int32), tf.TensorSpec([], dtype),
                 tf.TensorSpec([], dtype), tf.TensorSpec([], dtype)]

    def loop(x0, labels, epsilon, steps, rel_stepsize, low, high):
        stepsize = minimal_norm.per_image(rel_stepsize * epsilon, x0)

        def body(k, x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(penalties.nll(labels, ref()(x, training=False)))
            grad = tape.gradient(loss, x)
            norms = tf.maximum(tf.norm(tf.reshape(grad, [tf.shape(grad)[0], -1]), axis=1),
                               1e-12)
            x = x + stepsize * (grad * minimal_norm.per_image(1 / norms, grad))
            x = x0 + _clip_l2(x - x0, epsilon)
            return k + 1, tf.clip_by_value(x, low, high)

        return tf.while_loop(lambda k, x: k < steps, body, (tf.constant(0), x0))[1]

    return tf.function(loop, input_signature=signature, autograph=False)


def compiled_loop(network):
    """The fixed-epsilon step loop on `network`, traced once and cached with it."""
    if network not in _LOOPS:
        _LOOPS[network] = _build(network)
    return _LOOPS[network]


def fixed_epsilon(network, x, labels, epsilon, bounds, *, steps=20, rel_stepsize=0.1,
                  eager=False):
    """L2 BIM's end points for a batch, one epsilon (N,) per image; `eager` runs the same code
    without tf.function (the tests' check of the compiled loop)."""
    loop = compiled_loop(network)
    call = loop.python_function if eager else loop
    dtype = x.dtype
    return call(tf.constant(x), tf.constant(labels, tf.int32), tf.constant(epsilon, dtype),
                tf.constant(steps, tf.int32), *(tf.constant(v, dtype) for v in (
                    rel_stepsize, *bounds))).numpy()
