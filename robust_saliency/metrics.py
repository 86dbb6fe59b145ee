"""Per-image quantities of Sections 2-3 of the paper, as compiled TensorFlow kernels.

`measure(model, images)` is the entry point: one row per image for every quantity below, under the
names used throughout the project (CSV columns, plots). Notation: `Psi` = logits, `i*` = pred,
`j*` = runner_up, `g = grad Psi^{i*}(x)`, `g_dagger = grad (Psi^{i*} - Psi^{j*})(x)`,
`v_bar = v / ||v||`.

Values at degenerate points are defined, never NaN:

  * a zero saliency map has alignment 0 (the image has no component along a null map);
  * a class j whose gradient equals g (||g - grad Psi^j|| = 0) is at linearized distance +inf when
    its margin is positive (the linearization never reaches that boundary) and 0 on a tie;
  * if every class is at +inf, `runner_up` is the class with the second-largest logit, g_dagger
    is then 0, so `bias_term` and the bounds are +inf (they still bound rho_tilde = +inf) and the
    shifted image xi equals x.
"""


from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from robust_saliency import compiled, logit_gradients, progress
from robust_saliency.input_checks import check_images, input_dtype
from robust_saliency.logit_gradients import x_terms  # noqa: F401 - public here too
from robust_saliency.logits import logits_network
from robust_saliency.theorem_bounds import (  # noqa: F401 - public here too
    bound_violated,
    roundoff_slack,
)

if TYPE_CHECKING:
    import keras
    from numpy.typing import ArrayLike

PER_IMAGE_KEYS = (
    "pred", "runner_up", "alignment", "alignment_bin", "lin_robustness", "lin_robustness_linf",
    "x_term_pred", "b_term_pred", "x_term_bin", "b_term_bin", "psi_bin",
    "x_norm", "grad_pred_norm", "grad_bin_norm", "grad_dist", "bias_term", "angle_term",
    "bound14", "bound15", "xi_norm", "alignment_xi", "grad_dist_xi", "angle_term_xi",
    "angle_term_xi_printed", "bound16", "bound16_printed", "pred_xi",
)
MAP_KEYS = ("grad_pred", "grad_bin", "xi", "gamma")

def measure_batch(model, x, class_chunk=None, return_maps=False):
    """Every per-image quantity for one batch, as tensors (the kernel behind `measure`).

    Args:
      model: Keras model from images to logits, called with training=False.
      x: float tensor (B, *image_shape).
      class_chunk: classes whose gradients are held at once (None: all, up to 100 classes).
      return_maps: also return the maps `grad_pred`, `grad_bin`, `xi`, `gamma` (image-shaped).

    Returns:
      dict of tensors, keys as in `measure`.
    """
    num_classes = model.output_shape[-1]
    if num_classes > logit_gradients.UNROLL_MAX_CLASSES:
        found = logit_gradients.runner_up_chunked(
            lambda v: logit_gradients.head(model, v),
            lambda *args: logit_gradients.chunk(model, *args), x, num_classes,
            class_chunk or num_classes)
        return _derived(model, x, *found, return_maps)
    _, xt = x_terms(model, x)
    with tf.control_dependencies([xt]):  # never both passes' activations at once
        x_after = tf.identity(x)
    return _derived(model, x, xt, *logit_gradients.runner_up(model, x_after), return_maps)


def _derived(model, x, xt, logits, pred, g, runner_up, lin_rob, g_runner, lin_rob_linf,
             return_maps):
    """Every quantity from the passes' results, plus the xi pass (see measure_batch)."""
    shape = tf.shape(x)
    xf = logit_gradients.flat(x)
    g_bin = g - g_runner
    bt = logits - xt
    pick = lambda t, idx: tf.gather(t, idx[:, None], batch_dims=1)[:, 0]  # noqa: E731
    # The per-image bound summands use <x, g> and <x, g_dagger> of the very vectors g, g_dagger
    # behind alignment and rho_tilde, and the logits behind rho_tilde: then Psi_dagger =
    # x_term_bin + b_term_bin to one rounding and eqs. (14)-(16) hold in floating point as they
    # do in exact arithmetic. Mixing in the JVP's x-terms (equal in exact arithmetic) lets a
    # small margin between large logits "violate" (14) by round-off alone.
    psi_bin = pick(logits, pred) - pick(logits, runner_up)
    x_term_pred = logit_gradients.dot(xf, g)
    x_term_bin = logit_gradients.dot(xf, g_bin)
    b_bin = psi_bin - x_term_bin
    grad_bin_norm = logit_gradients.norm(g_bin)
    g_unit, g_bin_unit = logit_gradients.unit(g), logit_gradients.unit(g_bin)
    grad_dist = logit_gradients.norm(g_bin_unit - g_unit)
    bias_term = logit_gradients.ratio(tf.abs(b_bin), grad_bin_norm)
    x_norm = logit_gradients.norm(xf)
    alignment = logit_gradients.alignment(xf, g)
    alignment_bin = logit_gradients.alignment(xf, g_bin)
    # Theorem 3: xi = x + beta_dagger / ||g_dagger|| * g_dagger_bar, so that
    # rho_tilde = <xi, g_dagger_bar>.
    step = tf.math.divide_no_nan(b_bin, grad_bin_norm)
    xi = xf + step[:, None] * g_bin_unit
    logits_xi, gamma = logit_gradients.grad_at(model, tf.reshape(xi, shape), pred)
    gamma = logit_gradients.flat(gamma)
    xi_norm = logit_gradients.norm(xi)
    grad_dist_xi = logit_gradients.norm(g_bin_unit - logit_gradients.unit(gamma))
    alignment_xi = logit_gradients.alignment(xi, gamma)
    angle_term = x_norm * grad_dist
    angle_term_xi = xi_norm * grad_dist_xi
    angle_term_xi_printed = xi_norm * grad_dist
    out = {
        "logits": logits,
        "x_terms": xt,
        "b_terms": bt,
        "pred": pred,
        "runner_up": runner_up,
        "alignment": alignment,
        "alignment_bin": alignment_bin,
        "lin_robustness": lin_rob,
        "lin_robustness_linf": lin_rob_linf,
        "x_term_pred": x_term_pred,
        "b_term_pred": pick(logits, pred) - x_term_pred,
        "x_term_bin": x_term_bin,
        "b_term_bin": b_bin,
        "psi_bin": psi_bin,
        "x_norm": x_norm,
        "grad_pred_norm": logit_gradients.norm(g),
        "grad_bin_norm": grad_bin_norm,
        "grad_dist": grad_dist,
        "bias_term": bias_term,
        "angle_term": angle_term,
        "bound14": alignment_bin + bias_term,
        "bound15": alignment + angle_term + bias_term,
        "xi_norm": xi_norm,
        "alignment_xi": alignment_xi,
        "grad_dist_xi": grad_dist_xi,
        "angle_term_xi": angle_term_xi,
        "angle_term_xi_printed": angle_term_xi_printed,
        "bound16": alignment_xi + angle_term_xi,
        "bound16_printed": alignment_xi + angle_term_xi_printed,
        "pred_xi": tf.argmax(logits_xi, axis=1, output_type=tf.int32),
    }
    if return_maps:
        for key, value in zip(MAP_KEYS, (g, g_bin, xi, gamma)):
            out[key] = tf.reshape(value, shape)
    return out


def _compiled_kernel(model, class_chunk, return_maps):
    """Compiled kernel per (model, options), traced once for any batch size and reused: one
    tf.function up to 100 classes, else compiled head, chunk and derived steps (see
    logit_gradients.runner_up_chunked)."""
    return compiled.per_network(model, ("measure", class_chunk, return_maps),
                                lambda ref: _build_kernel(ref, class_chunk, return_maps))


def _build_kernel(ref, class_chunk, return_maps):
    spec = compiled.image_spec(ref(), input_dtype(ref()))
    num_classes = ref().output_shape[-1]
    # autograph off throughout: the kernels branch and loop only on Python values, so the
    # conversion would change nothing but costs seconds per process (and it cannot parse
    # lambdas).
    if num_classes <= logit_gradients.UNROLL_MAX_CLASSES:
        return tf.function(lambda x: measure_batch(ref(), x, None, return_maps),
                           input_signature=[spec], autograph=False)
    head = tf.function(lambda x: logit_gradients.head(ref(), x), input_signature=[spec],
                       autograph=False)
    chunk = tf.function(
        lambda x, classes, pred, g: logit_gradients.chunk(ref(), x, classes, pred, g),
        reduce_retracing=True, autograph=False)
    derived = tf.function(lambda *found: _derived(ref(), *found, return_maps),
                          reduce_retracing=True, autograph=False)

    def kernel(x):
        return derived(x, *logit_gradients.runner_up_chunked(head, chunk, x, num_classes,
                                                             class_chunk or num_classes))

    return kernel


def measure(model: keras.Model, images: ArrayLike, batch_size: int = 100, *,
            bounds: tuple[float, float] | None = (0.0, 1.0), class_chunk: int | None = None,
            return_maps: bool = False, compiled: bool = True,
            verbose: bool | None = None) -> dict[str, np.ndarray]:
    """Every per-image quantity of the paper for a batch of images, one row per image.

    Args:
      model: any Keras model from images to logits, or a training.RobustModel wrapping one; a
        functional or Sequential model ending in a softmax/sigmoid is measured on the logits
        before it (logits.logits_model);
        evaluated with training=False (dropout off, batch norm on its moving statistics, which
        Theorem 1 counts among the biases).
      images: array (N, *image_shape), finite; NaN/Inf raise ValueError.
      batch_size: images per kernel call.
      bounds: (low, high) the pixels lie in, as the attacks take it: images outside raise
        ValueError (e.g. uint8 pixels in [0, 255] with the default (0, 1)); None skips the check
        (images whose range has no box, e.g. standardised ones).
      class_chunk: class gradients held in memory at once; None holds all n <= 100 classes and
        for more classes picks a chunk of at most 64 MB of gradients, so the (B, n, D)
        Jacobian is never materialised (only running minima and the i*, j* gradients are kept).
      return_maps: also return image-shaped `grad_pred`, `grad_bin`, `xi`, `gamma`.
      compiled: run the tf.function kernel (traced once per model and options); False runs the
        same code eagerly.
      verbose: progress on stderr: None shows it once the call has run a few seconds
        (robust_saliency.progress), True from the start, False never.

    Returns:
      dict of numpy arrays, first axis N:
        logits (N, n): Psi(x).  x_terms (N, n): <x, grad Psi^i> for every i (one forward-mode JVP).
        b_terms (N, n): beta^i = Psi^i - x_terms^i (Theorem 1).
        pred: i* = argmax Psi.  runner_up: j*, the minimiser in eq. (9).
        alignment: alpha = |<x, g>| / ||g||, eq. (7).
        alignment_bin: alpha_dagger = |<x, g_dagger>| / ||g_dagger||, eq. (11).
        lin_robustness: rho_tilde, eq. (9), exact minimum over all j != i*.
        lin_robustness_linf: the L-infinity analogue, min over j != i* of the margin over the
          L1 norm (the dual norm) of the gradient difference; for an affine classifier the exact
          L-infinity distance to the decision boundary.
        x_term_pred, b_term_pred: <x, g> and beta^{i*} = Psi^{i*} - <x, g>.
        x_term_bin, b_term_bin: <x, g_dagger> and beta_dagger = Psi_dagger - <x, g_dagger>.
          (These use the gradients behind alignment and rho_tilde, so that the bounds hold in
          floating point too; they equal the JVP columns x_terms/b_terms in exact arithmetic.)
        psi_bin: Psi_dagger(x) = Psi^{i*} - Psi^{j*} = x_term_bin + b_term_bin.
        x_norm: ||x||.  grad_pred_norm: ||g||.  grad_bin_norm: ||g_dagger||.
        grad_dist: ||g_dagger_bar - g_bar||.  bias_term: |beta_dagger| / ||g_dagger||.
        angle_term: ||x|| * grad_dist.
        bound14: alignment_bin + bias_term, right-hand side of eq. (14)/(18).
        bound15: alignment + angle_term + bias_term, right-hand side of eq. (15)/(19).
        xi_norm: ||xi||, xi = x + beta_dagger / ||g_dagger|| * g_dagger_bar (Theorem 3).
        alignment_xi: |<xi, gamma>| / ||gamma||, gamma = grad Psi^{i*}(xi).
        grad_dist_xi: ||g_dagger_bar - gamma_bar||.  angle_term_xi: ||xi|| * grad_dist_xi.
        bound16: alignment_xi + angle_term_xi, the form of eq. (16) that always holds.
        angle_term_xi_printed: ||xi|| * grad_dist.
        bound16_printed: alignment_xi + angle_term_xi_printed, eq. (16)/(20) as printed.
        pred_xi: argmax Psi(xi) (Theorem 3's second form needs pred_xi == pred).
        With return_maps: grad_pred g, grad_bin g_dagger, xi, gamma, each shaped like the images.

      Why two forms of (16): rho_tilde = (<x, g_dagger> + beta_dagger) / ||g_dagger||
      = <xi, g_dagger_bar> exactly, and <xi, g_dagger_bar> = <xi, gamma_bar> +
      <xi, g_dagger_bar - gamma_bar> <= alignment_xi + ||xi|| ||g_dagger_bar - gamma_bar||. The
      printed version replaces gamma_bar by g_bar (the saliency at x, not at xi); that is only
      guaranteed when gamma is parallel to g, e.g. when xi stays in x's affine region, so it can
      be violated and is reported separately.

    Raises:
      ValueError: NaN/Inf pixels or pixels outside `bounds`, a shape the model does not take,
        or non-logit model output (probabilities from a model whose final softmax cannot be
        removed).
    """
    model = logits_network(model)
    arr = check_images(images, model, bounds)
    if class_chunk is None:
        class_chunk = logit_gradients.auto_chunk(model.output_shape[-1],
                                                 min(batch_size, len(arr)),
                                                 int(np.prod(arr.shape[1:])))
    kernel = (_compiled_kernel(model, class_chunk, return_maps) if compiled
              else lambda x: measure_batch(model, x, class_chunk, return_maps))
    parts = []
    with progress.Progress(len(arr), "measure", verbose=verbose) as shown:
        for start in range(0, len(arr), batch_size):
            batch = tf.convert_to_tensor(arr[start:start + batch_size])
            parts.append({k: v.numpy() for k, v in kernel(batch).items()})
            shown.advance(len(batch))
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    flat = int(np.sum(out["grad_pred_norm"] == 0))
    if flat:
        warnings.warn(f"{flat} of {len(arr)} images have an exactly zero input gradient "
                      "(saliency map): their alignment is 0 and rho_tilde 0 or inf by "
                      "definition, not a measurement; robust_saliency.preflight says why.",
                      stacklevel=2)
    return out
