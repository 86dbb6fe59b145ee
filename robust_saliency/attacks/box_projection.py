"""The box-constrained L2 projection onto a hyperplane of Croce & Hein, "Minimally distorted
Adversarial Examples with a Fast Adaptive Boundary Attack", ICML 2020, Sec. 3: exact, per row,
in one sort. FAB (attacks.fab) projects onto each step's linearised decision boundary with it.
"""

from robust_saliency.attacks.base import tf


def project(t, w, b, low, high):
    """The box-constrained L2 projection onto a hyperplane (the paper's Sec. 3), per row.

    The smallest d with w . (t + d) = b and low <= t + d <= high: by KKT d = clip(-lambda s w,
    low - t, high - t) with s = sign(w . t - b) and lambda >= 0 the root of the piecewise linear
    w . d(lambda) = b - w . t, found exactly from the sorted breakpoints lambda_i at which
    coordinate i reaches its bound. Where the box does not reach the hyperplane, d moves every
    coordinate to its bound on the hyperplane's side (the box point nearest to it).

    Args:
      t: (N, D) points inside the box.
      w: (N, D) normals.
      b: (N,) offsets.
      low, high: the box (scalars).

    Returns:
      (N, D) steps d.
    """
    c = tf.reduce_sum(w * t, axis=1) - b
    w = w * tf.where(c < 0, -tf.ones_like(c), tf.ones_like(c))[:, None]  # d moves against w
    c = tf.abs(c)
    aw = tf.abs(w)
    room = tf.where(w > 0, t - low, high - t)  # how far each coordinate can move against w
    breaks = tf.math.divide_no_nan(room, aw)
    # Zero (or vanishing) normals never change w . d: put them first, where they add nothing.
    breaks = tf.where(tf.math.is_finite(breaks), breaks, tf.zeros_like(breaks))
    order = tf.argsort(breaks, axis=1)
    lam = tf.gather(breaks, order, batch_dims=1)
    square = tf.gather(aw * aw, order, batch_dims=1)
    reach = tf.gather(aw * room, order, batch_dims=1)
    free = tf.reduce_sum(square, axis=1, keepdims=True) - tf.cumsum(square, axis=1)
    saturated = tf.cumsum(reach, axis=1)
    # -w . d at lambda_(k), non-decreasing in k: the root lies past every breakpoint at which it
    # is <= c.
    k = tf.reduce_sum(tf.cast(lam * free + saturated <= c[:, None], tf.int32), axis=1)
    last = tf.shape(t)[1] - 1
    below = tf.gather(lam, tf.maximum(k - 1, 0), batch_dims=1)
    below = tf.where(k > 0, below, tf.zeros_like(below))
    above = tf.gather(lam, tf.minimum(k, last), batch_dims=1)
    free_k = tf.where(k > 0, tf.gather(free, tf.maximum(k - 1, 0), batch_dims=1),
                      tf.reduce_sum(square, axis=1))
    reach_k = tf.where(k > 0, tf.gather(saturated, tf.maximum(k - 1, 0), batch_dims=1),
                       tf.zeros_like(c))
    # Past the last breakpoint (the box does not reach the plane) above == below == lambda_(D).
    lam_star = tf.clip_by_value(tf.math.divide_no_nan(c - reach_k, free_k), below, above)
    return tf.clip_by_value(-lam_star[:, None] * w, low - t, high - t)
