"""One model + held-out images -> the per-image table of every quantity, and its summary.

Stages (`_stages`: each a name, whether it is needed, what computes its columns), each written
atomically as soon as it is done so that an interrupted evaluation resumes with what is
missing: the metrics pass (per_image.csv and maps.npz), optionally the aggregated
saliency maps' alignments (columns alignment_smoothgrad, alignment_ig), optionally the
explanation-quality metrics of the gradient (and of the aggregated maps), then one `rho_<method>`
column per attack (per_image.csv rewritten with the new column), then summary.json and
robust_accuracy.csv from the table.
"""

from __future__ import annotations

import functools
import os
import time
import typing
from typing import TYPE_CHECKING, Any

import numpy as np

from robust_saliency import (
    attacks,
    data,
    explanations,
    input_checks,
    metrics,
    results,
    run_folders,
    runs,
    saliency,
    table_summary,
)
from robust_saliency.logits import logits_network

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import keras
    from numpy.typing import ArrayLike

SALIENCY_COLUMNS = ("alignment_smoothgrad", "alignment_ig")
AGGREGATED_MAPS = ("smoothgrad", "ig")


def explanation_columns(aggregated_saliency):
    """The per-image columns the explanation-metrics stage writes: every metric of the plain
    gradient under its name, and with the aggregated maps each map metric as
    `<metric>_smoothgrad` and `<metric>_ig`."""
    columns = list(explanations.METRICS)
    if aggregated_saliency:
        columns += [f"{name}_{kind}" for kind in AGGREGATED_MAPS
                    for name in explanations.MAP_METRICS]
    return columns


NUM_MAP_IMAGES = 16
def _write_maps(path, images, r):
    k = min(NUM_MAP_IMAGES, len(images))
    arrays = {"x": images[:k], **{key: r[key][:k] for key in metrics.MAP_KEYS},
              **{key: r[key][:k] for key in ("pred", "runner_up", "alignment", "alignment_bin",
                                             "alignment_xi", "lin_robustness")}}
    with results.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


# Recomputed aggregated maps count as the measured ones when at least this share of the images'
# alignments agree to 1e-4 relative. Not all of them: the CPU kernels' last bits differ between
# machines and can move a few images' maps (a max-pooling window of equal activations sends the
# gradient to whichever position the kernel picks; benchmarks/RESULTS.md, measurements moved
# from the code). Other settings or another model move nearly every image.
SAME_MAPS_SHARE = 0.95


def _same_aggregated_maps(model, images, table, bounds, batch_size):
    """The SmoothGrad and IG maps of an earlier call, recomputed (both are deterministic: a
    seeded noise, a fixed path) and checked against the alignments it recorded, so that the
    metrics score the maps whose alignment the table holds (up to SAME_MAPS_SHARE)."""
    maps = saliency.aggregated_alignments(model, images, bounds=bounds, batch_size=batch_size,
                                          return_maps=True)
    for column in SALIENCY_COLUMNS:
        same = np.isclose(maps[column], table[column], rtol=1e-4, atol=1e-6)
        if same.mean() < SAME_MAPS_SHARE:
            worst = float(np.max(np.abs(maps[column] - table[column])))
            raise ValueError(f"recomputed {column} differs from per_image.csv's on "
                             f"{int((~same).sum())} of {len(same)} images (by up to "
                             f"{worst:.3g}): the maps are not the ones measured before (another "
                             "model, or other SmoothGrad/IG settings); delete the column to "
                             "measure both again.")
    return maps


class _Stage(typing.NamedTuple):
    """One stage of `evaluate`."""

    name: str  # its key in timings.json and its entry in stages_run
    needed: typing.Callable  # table -> whether to run it, given the flags and the table so far
    compute: typing.Callable  # table -> the columns it adds, in their order
    announce: tuple  # what `progress` is told as it starts


class _Measure:
    """What the stages compute, for one model and one image set."""

    def __init__(self, model, images, labels, *, bounds, batch_size, attack_options, say,
                 verbose, maps_path):
        self.model, self.images, self.labels, self.bounds = model, images, labels, bounds
        self.batch_size, self.attack_options = batch_size, attack_options
        self.say, self.verbose, self.maps_path = say, verbose, maps_path
        self.aggregated = None  # the SmoothGrad and IG maps, once computed in this call

    def metrics_pass(self, table):
        r = metrics.measure(self.model, self.images, self.batch_size, bounds=self.bounds,
                            return_maps=True, verbose=self.verbose)
        _write_maps(self.maps_path, self.images, r)
        return {"index": np.arange(len(self.images)), "label": self.labels,
                "correct": (r["pred"] == self.labels).astype(int),
                **{key: r[key] for key in metrics.PER_IMAGE_KEYS}}

    def aggregated_maps(self, table):
        self.aggregated = saliency.aggregated_alignments(
            self.model, self.images, bounds=self.bounds, batch_size=self.batch_size,
            return_maps=True)
        return {c: self.aggregated[c] for c in SALIENCY_COLUMNS}

    def gradient_explanations(self, table):
        # The maps are the plain gradients g of the predicted class, the paper's saliency map.
        return explanations.measure(self.model, self.images, classes=table["pred"],
                                    bounds=self.bounds, batch_size=self.batch_size)

    def aggregated_explanations(self, table):
        maps = self.aggregated or _same_aggregated_maps(self.model, self.images, table,
                                                        self.bounds, self.batch_size)
        columns = {}
        for kind in AGGREGATED_MAPS:
            scores = explanations.measure(self.model, self.images, maps[kind],
                                          metrics=explanations.MAP_METRICS,
                                          classes=table["pred"], bounds=self.bounds,
                                          batch_size=self.batch_size)
            columns.update({f"{name}_{kind}": v for name, v in scores.items()})
        return columns

    def attack(self, method, table):
        return {"rho_" + method: attacks.minimal_distance(
            self.model, self.images, method, self.bounds, batch_size=self.batch_size,
            verbose=self.verbose, progress=lambda done, total: self.say(method, done, total),
            **self.attack_options.get(method, {}))}


def _missing(columns, wanted=True):
    """A stage's `needed`: wanted, and some of `columns` not in the table yet."""
    return lambda table: wanted and not all(c in table for c in columns)


def _stages(measure, attack_methods, aggregated_saliency, explanation_metrics):
    """`evaluate`'s stages, in their order."""
    both = aggregated_saliency and explanation_metrics
    return [
        # An empty table: none yet, or one of another image set (dropped).
        _Stage("metrics", lambda table: not table, measure.metrics_pass, ("metrics",)),
        _Stage("saliency", _missing(SALIENCY_COLUMNS, aggregated_saliency),
               measure.aggregated_maps, ("saliency",)),
        _Stage("explanations", _missing(explanations.METRICS, explanation_metrics),
               measure.gradient_explanations, ("explanations",)),
        _Stage("explanations_aggregated", _missing(explanation_columns(True), both),
               measure.aggregated_explanations, ("explanations of the aggregated maps",)),
        *(_Stage("rho_" + m, _missing(["rho_" + m]), functools.partial(measure.attack, m),
                 (m, 0, len(measure.images))) for m in attack_methods)]


def evaluate(model: keras.Model, images: ArrayLike, labels: ArrayLike, out_dir: str, *,
             bounds: tuple[float, float], attack_methods: Sequence[str] = attacks.PAPER,
             batch_size: int = 100, attack_options: dict[str, dict[str, Any]] | None = None,
             meta: dict[str, Any] | None = None, progress: Callable[..., object] | None = None,
             verbose: bool = False, aggregated_saliency: bool = False,
             explanation_metrics: bool = False) -> dict[str, Any]:
    """Measures `model` on `images` into `out_dir`, resuming from whatever is already there.

    Args:
      model: Keras model (or RobustModel) from images to logits.
      images: held-out images inside `bounds`.
      labels: their true labels.
      out_dir: folder for per_image.csv, maps.npz, summary.json, robust_accuracy.csv.
      bounds: attack box.
      attack_methods: attacks.METHODS to run; each adds a `rho_<method>` column.
      batch_size: images per kernel/attack batch.
      attack_options: {method: {option: value}} passed to that attack.
      meta: extra fields for summary.json (dataset, run, ...).
      progress: callable(stage, done=None, total=None), told when a stage starts and, for
        attacks, after every batch.
      verbose: Keras progress bars for the metrics pass and every attack.
      aggregated_saliency: also the alignments of SmoothGrad and Integrated Gradients maps
        (saliency.aggregated_alignments at its defaults), as columns SALIENCY_COLUMNS.
      explanation_metrics: also every explanation-quality metric of the plain gradient map
        (explanations.METRICS, at their defaults), one column each under its name; with
        aggregated_saliency also those of the SmoothGrad and IG maps (explanation_columns).

    Returns:
      The summary dict, plus 'stages_run': the stages computed by this call.
    """
    attack_options = attack_options or {}
    attacks.check_methods(attack_methods, attack_options)
    network = logits_network(model)
    images = input_checks.check_images(images, network, bounds=bounds)
    labels = input_checks.check_labels(labels, len(images), network.output_shape[-1])
    say = progress or (lambda stage, done=None, total=None: None)
    table_path = os.path.join(out_dir, results.PER_IMAGE_CSV)
    timings_path = os.path.join(out_dir, results.TIMINGS_JSON)
    timings = results.read_json(timings_path) if os.path.exists(timings_path) else {}
    table = results.read_table(table_path) if os.path.exists(table_path) else {}
    if table and not (len(table["label"]) == len(labels)
                      and np.array_equal(table["label"], labels)):
        table = {}  # another image set: start over
    if not table:
        timings = {}  # the metrics pass starts the timings over too
    measure = _Measure(model, images, labels, bounds=bounds, batch_size=batch_size,
                       attack_options=attack_options, say=say, verbose=verbose,
                       maps_path=os.path.join(out_dir, results.MAPS_NPZ))
    stages = []
    for stage in _stages(measure, attack_methods, aggregated_saliency, explanation_metrics):
        if not stage.needed(table):
            continue
        say(*stage.announce)
        start = time.time()
        table.update(stage.compute(table))
        results.write_table(table_path, table)
        timings[stage.name] = time.time() - start
        results.write_json(timings_path, timings)
        stages.append(stage.name)
    # The best estimate per norm: an L2 and an L-infinity distance never mix in one minimum.
    for norm, best in ((2, "rho_best"), (np.inf, "rho_best_linf")):
        rho = [table["rho_" + m] for m in attack_methods if attacks.NORMS[m] == norm]
        if rho:
            table[best] = np.min(np.stack(rho), axis=0)
            results.write_table(table_path, table)
    meta = {**(meta or {}), "attacks": list(attack_methods), "attack_options": attack_options,
            "bounds": list(bounds), "seconds": timings}
    summary = table_summary.summarize(table, meta=meta)
    results.write_json(os.path.join(out_dir, results.SUMMARY_JSON), summary)
    results.write_table(os.path.join(out_dir, results.ROBUST_ACCURACY_CSV),
                        table_summary.robust_accuracy(table))
    if "rho_best_linf" in table:
        results.write_table(os.path.join(out_dir, results.ROBUST_ACCURACY_LINF_CSV),
                            table_summary.robust_accuracy(table, norm=np.inf))
    return {**summary, "stages_run": stages}


def forget(out_dir, columns):
    """Drops `columns` from an evaluated folder so that the next evaluation measures them again
    (e.g. an attack after its implementation changed), leaving every other column as it is.

    The summary goes too (its medians include the dropped columns; the evaluation rewrites it),
    so a cohort counts the member as not evaluated until then.

    Returns:
      The columns dropped (those of `columns` the table had).

    Raises:
      ValueError: a column the metrics pass writes (those are the table's identity: delete
        per_image.csv to measure everything again).
    """
    table_path = os.path.join(out_dir, results.PER_IMAGE_CSV)
    if not os.path.exists(table_path):
        return []
    table = results.read_table(table_path)
    core = [c for c in columns if c in table_summary.CATEGORICAL or c in metrics.PER_IMAGE_KEYS]
    if core:
        raise ValueError(f"{core} are written by the metrics pass, not by a stage of their own; "
                         f"delete {table_path} to measure everything again.")
    dropped = [c for c in columns if c in table]
    if not dropped:
        return []
    results.write_table(table_path, {k: v for k, v in table.items() if k not in dropped})
    timings_path = os.path.join(out_dir, results.TIMINGS_JSON)
    if os.path.exists(timings_path):
        timings = results.read_json(timings_path)
        results.write_json(timings_path, {k: v for k, v in timings.items() if k not in dropped})
    summary_path = os.path.join(out_dir, results.SUMMARY_JSON)
    if os.path.exists(summary_path):
        os.remove(summary_path)
    return dropped


def validation_arrays(config, num_images):
    """(images, labels): the first `num_images` validation images of a training config (a
    TrainConfig, or run.json's or cohort.json's 'config'/'train' dict in any layout),
    preprocessed as for training. Raises data.DataNotFoundError when the source holds fewer."""
    d = (config if isinstance(config, runs.TrainConfig) else run_folders.saved_config(config)).data
    data.check_available(d.dataset, "validation", num_images, d.data_dir)
    return data.load_arrays(d.dataset, "validation", d.data_dir, num_examples=num_images,
                            image_size=d.image_size, source=d.source)


def evaluate_run(run_dir, *, num_images=1000, attack_methods=attacks.PAPER,
                 batch_size=100, attack_options=None, progress=None, verbose=False,
                 aggregated_saliency=False, explanation_metrics=False):
    """Evaluates the trained model of a run folder on its dataset's first validation images."""
    record = results.read_json(os.path.join(run_dir, results.RUN_JSON))
    config = run_folders.saved_config(record["config"])
    dataset = config.data.dataset
    run_folders.check_same_data(record.get("data"), data.source_info(dataset, config.data.data_dir),
                         run_dir)
    model = runs.load_model(run_dir)
    x, y = validation_arrays(config, num_images)
    meta = {"run_dir": os.path.abspath(run_dir), "dataset": dataset, "data": record.get("data"),
            "lam": config.penalty.lam, "split": "validation"}
    return evaluate(model, x, y, run_dir, bounds=data.bounds(dataset),
                    attack_methods=attack_methods, batch_size=batch_size,
                    attack_options=attack_options, meta=meta, progress=progress,
                    verbose=verbose, aggregated_saliency=aggregated_saliency,
                    explanation_metrics=explanation_metrics)
