"""The derivatives of the logits with respect to the image behind metrics.measure: forward-mode
x-terms <x, grad Psi^i(x)>, per-class input gradients (one backward pass per class, unrolled in
one graph, or in class chunks for many classes) and the exact minimiser of eq. (9) over them,
plus the small vector helpers they share with metrics and saliency.
"""

import numpy as np
import tensorflow as tf


def norm(v):
    return tf.norm(v, axis=-1)


def dot(u, v):
    return tf.reduce_sum(u * v, axis=-1)


def ratio(num, den):
    """num / den for num >= 0, with x / 0 = +inf for x > 0 and 0 / 0 = 0 (see module doc)."""
    inf = tf.constant(np.inf, num.dtype)
    return tf.where(den > 0, tf.math.divide_no_nan(num, den), tf.where(num > 0, inf, 0 * num))


def unit(v):
    """v / ||v|| along the last axis; the zero vector maps to itself."""
    return tf.math.divide_no_nan(v, norm(v)[..., None])


def alignment(v, w):
    """|<v, w>| / ||w||, eq. (3)/(7)/(11); 0 where w = 0."""
    return ratio(tf.abs(dot(v, w)), norm(w))


def flat(t):
    return tf.reshape(t, [tf.shape(t)[0], -1])


def x_terms(model, x):
    """<x, grad_x Psi^i(x)> for every class i, by one forward-mode pass in the direction x.

    Args:
      model: Keras model from images to logits.
      x: image batch tensor.

    Returns:
      (logits, x_terms), both (B, n).
    """
    with tf.autodiff.ForwardAccumulator(primals=x, tangents=x) as acc:
        logits = model(x, training=False)
    tangent = acc.jvp(logits)
    if tangent is None:  # found while tracing, before any number is computed
        raise ValueError(f"the logits of model '{model.name}' do not depend on its input "
                         "images (no gradient path, e.g. a stop_gradient or a constant "
                         "output): the saliency map is undefined; measure a model that does.")
    return logits, tangent


def grad_at(model, x, classes):
    """(logits at x, grad_x Psi^{classes}(x)) per image."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model(x, training=False)
        score = tf.gather(logits, classes[:, None], batch_dims=1)
    return logits, tape.gradient(score, x)


# Up to this many classes, one backward pass per class unrolled in one compiled graph is faster
# on CPU than a pfor-vectorised Jacobian (benchmarks/RESULTS.md, lin_robustness kernel). Beyond
# it (ImageNet's 1000) the classes go in chunks, each one compiled call of its own from a Python
# loop that keeps only running minima: inside one graph, TensorFlow kept every chunk's buffers
# alive, so peak memory grew with the number of chunks (benchmarks/RESULTS.md, measurements
# moved from the code), and separate calls bound the memory to one chunk's gradients plus one
# backward pass.
UNROLL_MAX_CLASSES = 100
# Bytes of class gradients (batch x chunk x pixels x 4) held at once when class_chunk is None.
_CHUNK_BYTES = 64 * 2**20


def auto_chunk(num_classes, batch_size, pixels):
    """class_chunk for `measure`: all classes when they are unrolled, else a memory-bound chunk."""
    if num_classes <= UNROLL_MAX_CLASSES:
        return None
    return int(max(1, min(num_classes, _CHUNK_BYTES // (4 * batch_size * pixels))))


def head(model, x):
    """JVP x-terms, then logits, prediction and its gradient g (one pass after the other)."""
    _, xt = x_terms(model, x)
    with tf.control_dependencies([xt]):  # never both passes' activations at once
        x = tf.identity(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model(x, training=False)
        pred = tf.argmax(logits, axis=1, output_type=tf.int32)
        score = tf.gather(logits, pred[:, None], batch_dims=1)
    return xt, logits, pred, flat(tape.gradient(score, x))


def runner_up(model, x):
    """Exact minimiser j* of eq. (9) over all j != i*, one unrolled backward pass per class.

    Images are independent at inference, so the gradient of a batch sum of one class's scores is
    the batch of per-image gradients of that class.

    Returns:
      logits (B, n), pred (B,), g (B, D), runner_up (B,), lin_robustness (B,), grad of j* (B, D),
      lin_robustness_linf (B,).
    """
    num_classes = model.output_shape[-1]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        logits = model(x, training=False)
        pred = tf.argmax(logits, axis=1, output_type=tf.int32)
        class_sums = [tf.reduce_sum(logits[:, c]) for c in range(num_classes)]
    grads = tf.stack([flat(tape.gradient(s, x)) for s in class_sums], axis=1)
    g = tf.gather(grads, pred, batch_dims=1)
    classes = tf.range(num_classes)
    best, best_j, g_best, best_linf = _chunk_minimum(logits, pred, g, grads, classes)
    # When every class is at +inf, fall back to the logit runner-up (see module doc).
    second = tf.math.top_k(logits, k=2).indices[:, 1]
    found = tf.math.is_finite(best)
    best_j = tf.where(found, best_j, second)
    g_best = tf.where(found[:, None], g_best, g)
    return logits, pred, g, best_j, best, g_best, best_linf


def _chunk_minimum(logits, pred, g, grads, classes):
    """Per image, over `classes` (their gradients `grads` (B, k, D)): the smallest ratio of
    eq. (9), its class and its gradient, and the smallest L-infinity ratio (the margin over the
    L1 norm, the dual norm, of the gradient difference); the predicted class counts as +inf."""
    logit_pred = tf.gather(logits, pred[:, None], batch_dims=1)
    margin = logit_pred - tf.gather(logits, classes, axis=1)
    diff = g[:, None, :] - grads
    is_pred = classes[None, :] == pred[:, None]
    inf = tf.constant(np.inf, logits.dtype)
    ratios = tf.where(is_pred, inf, ratio(margin, norm(diff)))
    ratios_linf = tf.where(is_pred, inf, ratio(margin, tf.reduce_sum(tf.abs(diff), axis=-1)))
    local = tf.argmin(ratios, axis=1, output_type=tf.int32)
    return (tf.reduce_min(ratios, axis=1), tf.gather(classes, local),
            tf.gather(grads, local, batch_dims=1), tf.reduce_min(ratios_linf, axis=1))


def chunk(model, x, classes, pred, g):
    """`_chunk_minimum` over one chunk of classes, from its own forward pass and one backward
    pass per class at a time (a while-loop Jacobian)."""
    # persistent: eager while-loop Jacobians need it (compiled ones do not care).
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        logits = model(x, training=False)
        sums = tf.reduce_sum(tf.gather(logits, classes, axis=1), axis=0)
    jac = tape.jacobian(sums, x, experimental_use_pfor=False, parallel_iterations=1)
    grads = tf.transpose(tf.reshape(jac, [tf.shape(classes)[0], tf.shape(x)[0], -1]), [1, 0, 2])
    return _chunk_minimum(logits, pred, g, grads, classes)


def runner_up_chunked(head, chunk, x, num_classes, class_chunk):
    """`runner_up` for many classes: compiled head and chunk calls, running minima in between.

    Returns:
      xt (B, n) and the seven results of `runner_up`.
    """
    xt, logits, pred, g = head(x)
    best = tf.fill(tf.shape(pred), tf.constant(np.inf, logits.dtype))
    best_linf = best
    best_j = tf.math.top_k(logits, k=2).indices[:, 1]
    g_best = g
    for c0 in range(0, num_classes, class_chunk):
        # Every call has the same shapes (one trace): the last chunk repeats its final class.
        classes = tf.constant(np.minimum(np.arange(c0, c0 + class_chunk), num_classes - 1),
                              tf.int32)
        local_min, local_j, local_g, local_linf = chunk(x, classes, pred, g)
        best_linf = tf.minimum(best_linf, local_linf)
        # Strict '<' keeps the first minimiser, and the logit runner-up when all are +inf.
        better = local_min < best
        best = tf.where(better, local_min, best)
        best_j = tf.where(better, local_j, best_j)
        g_best = tf.where(better[:, None], local_g, g_best)
    return xt, logits, pred, g, best_j, best, g_best, best_linf
