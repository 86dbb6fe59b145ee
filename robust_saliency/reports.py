"""A user's model in one call: preflight, every measurement, figures and a page a person can read.

`report(model, images, out_dir=...)` runs the preflight (robust_saliency.model_checks), measures
every image (robust_saliency.evaluation.evaluate: alignment, rho_tilde, Theorem 1's
decomposition, the bounds of Theorems 2-3, the strong attacks whose per-image minimum is
rho_best, SmoothGrad and IG alignment, optionally the explanation metrics), picks a gallery of
the most and least robust images with their maps and minimal adversarial perturbations, draws
the figures (robust_saliency.figures.report) and writes report.html (self-contained, figures
embedded, readable offline) and report.md beside the per-image table. `compare(first, second)`
puts two finished reports on the same images side by side.

Every stage writes its results atomically and a rerun resumes after the last finished one (the
attacks one by one); the figures and the page are redrawn from the files each time.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from robust_saliency import attacks, environment, results

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import keras
    from numpy.typing import ArrayLike

REPORT_JSON = "report.json"
PREFLIGHT_JSON = "preflight.json"
GALLERY_NPZ = "gallery.npz"
FIGURES_DIR = "figures"
GALLERY_KEYS = ("index", "x", "grad_pred", "smoothgrad", "ig", "adversarial", "perturbation",
                "distance", "rho_best", "alignment", "attack", "pred", "adversarial_class")
# The strong minimal-L2 attacks, whose per-image minimum is rho_best (attacks.STRONG_OPTIONS).
ATTACKS = attacks.STRONG


def _fingerprint(images):
    arr = np.ascontiguousarray(images)
    return hashlib.sha256(arr.tobytes() + str((arr.shape, arr.dtype)).encode()).hexdigest()


def _printer(enabled):
    """A progress callback for evaluate: one line per stage, updated in place for attacks."""
    if not enabled:
        return lambda stage, done=None, total=None: None

    def say(stage, done=None, total=None):
        end = "\n" if done is None or done == total else ""
        count = f" {done}/{total} images" if done is not None else ""
        print(f"\r[report] {stage}{count}   ", end=end, file=sys.stderr, flush=True)

    return say


def report(model: keras.Model, images: ArrayLike, labels: ArrayLike | None = None, *,
           out_dir: str, bounds: tuple[float, float] = (0.0, 1.0),
           attack_methods: Sequence[str] = ATTACKS,
           attack_options: dict[str, dict[str, Any]] | None = None, paper_attacks: bool = False,
           aggregated_saliency: bool = True, explanation_metrics: bool = False,
           gallery_images: int = 3, name: str | None = None, batch_size: int = 100,
           verbose: bool = True, force: bool = False,
           display: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, Any]:
    """Measures `model` on `images` and writes a readable report into `out_dir`.

    Args:
      model: a Keras classifier (a final softmax is removed) or a RobustModel.
      images: array (N, *image_shape) inside `bounds`.
      labels: optional true labels (N,), for the accuracy and the robust-accuracy curves (an
        image counts where it is classified correctly); without them every image counts.
        Distances are always measured away from the model's own prediction, as in the paper.
      out_dir: the report's folder; a rerun resumes there (same images only).
      bounds: (low, high) pixel box of the images and the attacks.
      attack_methods: the L2 attacks whose per-image minimum is rho_best (default: the strong
        ones, attacks.STRONG, with attacks.STRONG_OPTIONS).
      attack_options: {attack: {option: value}} over those defaults.
      paper_attacks: also the paper's gradient, BIM and CW attacks (attacks.PAPER).
      aggregated_saliency: the alignment of SmoothGrad and IG maps per image.
      explanation_metrics: the explanation-quality metrics of the gradient map per image.
      gallery_images: how many of the most and of the least robust images the gallery shows.
      name: the model's name on the page (default: the Keras model's name).
      batch_size: images per kernel and attack batch.
      verbose: progress on stderr.
      force: measure even where the preflight refuses (the page shows the refusals).
      display: how to show an image (callable to [0, 1] RGB or gray); default min-max scaling.

    Returns:
      dict: 'out_dir', 'page' (report.html), 'markdown', 'figures' (paths), 'stages_run',
      'preflight' (robust_saliency.model_checks.Preflight), 'summary'.

    Raises:
      robust_saliency.model_checks.PreflightError: a check refused (unless `force`); its
        verdicts are in <out_dir>/preflight.json.
      ValueError: `out_dir` holds a report of other images.
    """
    from robust_saliency import evaluation, input_checks, model_checks
    from robust_saliency.logits import logits_network

    say = _printer(verbose)
    network = logits_network(model)
    os.makedirs(out_dir, exist_ok=True)
    record_path = os.path.join(out_dir, REPORT_JSON)
    arr = np.asarray(images)
    fingerprint = _fingerprint(arr)
    if os.path.exists(record_path):
        previous = results.read_json(record_path)
        if previous.get("images_sha256") != fingerprint:
            raise ValueError(f"{out_dir} holds a report of other images; pass another out_dir "
                             "(or delete that folder to start over).")
    say("preflight")
    found = model_checks.preflight(model, arr, bounds=bounds, labels=labels)
    results.write_json(os.path.join(out_dir, PREFLIGHT_JSON), found.as_rows())
    if not force:
        found.raise_if_refused()
    if verbose:
        print(str(found), file=sys.stderr)
    arr = input_checks.check_images(arr, network, bounds)
    labels_given = labels is not None
    if labels is not None:
        labels = input_checks.check_labels(labels, len(arr), network.output_shape[-1])
    else:
        labels = np.argmax(network.predict(arr, batch_size=batch_size, verbose=0), axis=1)
    methods = tuple(attacks.PAPER if paper_attacks else ()) + tuple(attack_methods)
    options = {**{m: o for m, o in attacks.STRONG_OPTIONS.items() if m in methods},
               **(attack_options or {})}
    record = {"name": name or network.name, "images_sha256": fingerprint,
              "num_images": len(arr), "image_shape": list(arr.shape[1:]),
              "bounds": list(bounds), "labels_given": labels_given, "attacks": list(methods),
              "attack_options": options, "library_version": _version(),
              "versions": environment.versions()}
    results.write_json(record_path, record)
    start = time.time()
    summary = evaluation.evaluate(
        model, arr, labels, out_dir, bounds=bounds, attack_methods=methods,
        attack_options=options, batch_size=batch_size, progress=say,
        aggregated_saliency=aggregated_saliency, explanation_metrics=explanation_metrics,
        meta={"name": record["name"], "labels_given": labels_given})
    stages = list(summary.pop("stages_run"))
    table = results.read_table(os.path.join(out_dir, results.PER_IMAGE_CSV))
    if _gallery(model, arr, table, out_dir, gallery_images, methods, options, bounds,
                batch_size, say):
        stages.append("gallery")
    record["seconds_this_call"] = time.time() - start
    results.write_json(record_path, record)
    say("figures and page")
    from robust_saliency import report_page

    figures = draw(out_dir, display=display)
    page, markdown = report_page.write(out_dir, figures)
    say(f"done: {page}")
    return {"out_dir": out_dir, "page": page, "markdown": markdown, "figures": figures,
            "stages_run": stages, "preflight": found, "summary": summary}


def _version():
    import robust_saliency

    return robust_saliency.__version__


def gallery_rows(table, count):
    """Table rows of the `count` most robust, then the `count` least robust images (finite,
    positive rho_best; the least robust last)."""
    rho = table["rho_best"]
    usable = np.flatnonzero(np.isfinite(rho) & (rho > 0))
    order = usable[np.argsort(rho[usable], kind="stable")]
    count = min(count, len(order) // 2) if len(order) > 1 else len(order)
    return np.concatenate([order[::-1][:count], order[:count][::-1]]).astype(int)


def _gallery(model, images, table, out_dir, count, methods, options, bounds, batch_size, say):
    """Writes gallery.npz unless it holds these rows already; whether it computed anything."""
    from robust_saliency import saliency
    from robust_saliency.logits import logits_network

    path = os.path.join(out_dir, GALLERY_NPZ)
    rows = gallery_rows(table, count)
    if os.path.exists(path):
        with np.load(path) as saved:
            # Resumed only when it holds these rows and every array the figure draws.
            if np.array_equal(saved["index"], rows) and set(GALLERY_KEYS) <= set(saved.files):
                return False
    say("gallery")
    x = images[rows]
    # Each image's distance depends on that image alone, so attacking the few rows again
    # gives each one the point its rho_best came from.
    found_by = [min(methods, key=lambda m, r=r: table["rho_" + m][r]) for r in rows]
    adversarial, distance = x.copy(), np.full(len(rows), np.inf)
    for method in sorted(set(found_by)):
        mine = np.array([m == method for m in found_by])
        dist, points = attacks.find_adversarials(model, x[mine], method, bounds,
                                                 batch_size=batch_size,
                                                 **options.get(method, {}))
        adversarial[mine], distance[mine] = points, dist
    pred = table["pred"][rows].astype(np.int32)
    grad = _gradients(model, x, pred)
    network = logits_network(model)
    adversarial_class = np.argmax(network.predict(adversarial, verbose=0), axis=1)
    arrays = {"index": rows, "x": x, "grad_pred": grad,
              "smoothgrad": saliency.smoothgrad(model, x, pred, bounds=bounds),
              "ig": saliency.integrated_gradients(model, x, pred, bounds=bounds),
              "adversarial": adversarial, "perturbation": adversarial - x,
              "distance": distance, "rho_best": table["rho_best"][rows],
              "alignment": table["alignment"][rows], "attack": np.array(found_by),
              "pred": pred, "adversarial_class": adversarial_class}
    with results.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return True


def _gradients(model, x, classes):
    from robust_saliency import logit_gradients
    from robust_saliency.logits import logits_network

    network = logits_network(model)
    return logit_gradients.grad_at(network, _tensor(x), _tensor(classes))[1].numpy()


def _tensor(value):
    import tensorflow as tf

    return tf.convert_to_tensor(value)


def draw(out_dir, *, display=None):
    """Every report figure from the files in `out_dir`, into <out_dir>/figures; their PNGs by
    name."""
    from robust_saliency.figures import report as figures

    table = results.read_table(os.path.join(out_dir, results.PER_IMAGE_CSV))
    where = os.path.join(out_dir, FIGURES_DIR)
    os.makedirs(where, exist_ok=True)
    drawn = {
        "robust_accuracy": figures.robust_accuracy(table, where),
        "alignment": figures.alignment(table, where),
        "linearized": figures.linearized(table, where),
        "decomposition": figures.decomposition(table, where),
    }
    gallery_path = os.path.join(out_dir, GALLERY_NPZ)
    if os.path.exists(gallery_path):
        with np.load(gallery_path) as arrays:
            drawn["gallery"] = figures.gallery(dict(arrays), where, display=display)
    return {key: paths[0] for key, paths in drawn.items()}


def compare_reports(first_dir: str, second_dir: str, out_dir: str, *,
                    names: Sequence[str] | None = None) -> dict[str, Any]:
    """Two finished reports of the same images side by side: the rho_best curves overlaid and
    the per-image changes (did the images whose distance grew most also gain alignment?).

    Returns:
      dict: 'page', 'markdown', 'figures'.

    Raises:
      ValueError: the reports measured different images.
    """
    from robust_saliency import report_page
    from robust_saliency.figures import report as figures

    records = [results.read_json(os.path.join(d, REPORT_JSON)) for d in (first_dir, second_dir)]
    if records[0]["images_sha256"] != records[1]["images_sha256"]:
        raise ValueError(f"{first_dir} and {second_dir} measured different images; a "
                         "comparison needs both models on the same images.")
    names = list(names or [r["name"] for r in records])
    if names[0] == names[1]:
        names = [f"{names[0]} (1)", f"{names[1]} (2)"]
    tables = [results.read_table(os.path.join(d, results.PER_IMAGE_CSV))
              for d in (first_dir, second_dir)]
    where = os.path.join(out_dir, FIGURES_DIR)
    os.makedirs(where, exist_ok=True)
    drawn = {"pair_curves": figures.pair_curves(tables, names, where)[0],
             "pair_changes": figures.pair_changes(tables, names, where)[0]}
    page, markdown = report_page.write_pair(out_dir, [first_dir, second_dir], names, tables,
                                            drawn)
    return {"page": page, "markdown": markdown, "figures": drawn}


compare = compare_reports  # the library's own name for it (robust_saliency.compare_reports)
