"""Rewrites result folders of older layouts into the current one, once (results.SCHEMA_VERSION).

The library reads one layout; `python -m experiments.upgrade_results <folder>` runs upgrade_tree
on a folder written by an older robust_saliency. What changed, and what each absence meant:

  run.json, cohort.json   the training configuration was flat (FLAT_TRAIN_CONFIG names each
                          field's place now); fields added since were absent and meant their
                          defaults of the time (FLAT_LEGACY_DEFAULTS, OLD_DEFAULTS); a
                          'batch_mean' penalty without its B divided by each replica's own
                          batch, which is now written out: B = batch_size / replicas.
  cohort.json             seeds, aggregated_saliency, explanation_metrics and data were added
                          (COHORT_FIELDS_ADDED).
  model.keras             RobustModel's penalty was flat keyword arguments (FLAT_MODEL_PENALTY).
  summary.json            bootstrap intervals of the medians were added: computed from the
                          per_image.csv beside it (a computation, not a guess).
  cohort.csv              seed and degenerate columns were added: the table is gathered again.

Every file is rewritten atomically, and only when it changes: a second run rewrites nothing.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

from robust_saliency import results

FLAT_TRAIN_CONFIG = {
    "dataset": "data.dataset", "data_dir": "data.data_dir", "data_source": "data.source",
    "image_size": "data.image_size", "train_subset": "data.train_subset",
    "val_subset": "data.val_subset", "model": "model.name", "weights": "model.weights",
    "num_classes": "model.num_classes", "depth": "model.depth",
    "init_weights": "model.init_weights", "bn_momentum": "model.bn_momentum",
    "penalty": "penalty.name", "lam": "penalty.lam",
    "penalty_options": "penalty.options", "penalty_convention": "penalty.convention",
    "penalty_batch_size": "penalty.batch_size", "sensitivity_mode": "penalty.sensitivity_mode",
    "learning_rate": "optimizer.learning_rate", "momentum": "optimizer.momentum",
    "weight_decay": "optimizer.weight_decay", "lr_schedule": "schedule.kind",
    "epochs": "schedule.epochs", "lr_decay_epochs": "schedule.decay_epochs",
    "lr_decay_factor": "schedule.decay_factor", "plateau_patience": "schedule.patience",
    "plateau_max_decays": "schedule.max_decays", "lr_milestones": "schedule.milestones",
    "batch_size": "batch_size", "probe_size": "probe_size", "seed": "seed",
}
# A flat configuration without sensitivity_mode was trained on the NLL, whatever its penalty.
FLAT_LEGACY_DEFAULTS = {"sensitivity_mode": "nll"}
# Defaults that have changed since: an older file without the field meant the old one.
OLD_DEFAULTS = {"penalty.convention": "batch_mean"}
FLAT_MODEL_PENALTY = {"penalty": "name", "lam": "lam", "penalty_options": "options",
                      "penalty_convention": "convention", "penalty_batch_size": "batch_size",
                      "sensitivity_mode": "sensitivity_mode"}
COHORT_FIELDS_ADDED = {"seeds": [0], "aggregated_saliency": False,
                       "explanation_metrics": False, "data": None}


class UpgradeError(ValueError):
    """A folder the upgrade cannot rewrite without more information; the message says which."""


def _write_out_b(penalty, batch_size, missing):
    """Gives a 'batch_mean' penalty dict without its B the B it divided by, its batch per
    replica (`batch_size`; None where unknown: UpgradeError saying `missing`)."""
    if penalty["convention"] == "batch_mean" and penalty.get("batch_size") is None:
        if batch_size is None:
            raise UpgradeError(f"a 'batch_mean' penalty divided by each replica's batch, and "
                               f"{missing}")
        penalty["batch_size"] = batch_size


def _parts():
    from robust_saliency import train_config

    return {leaf.name.split(".")[0] for leaf in train_config.leaves() if "." in leaf.name}


def train_config(saved: dict[str, Any], replicas: int | None) -> dict[str, Any]:
    """A saved training configuration (run.json's "config", cohort.json's "train") of any
    layout in the current one, every leaf written out.

    Args:
      saved: the configuration as it was saved.
      replicas: how many replicas trained with it, for the B of a 'batch_mean' penalty that did
        not record it (None: unknown, an error if needed).
    """
    from robust_saliency import train_config as tc

    if not any(isinstance(saved.get(part), dict) for part in _parts()):
        nested: dict[str, Any] = {}
        for name, value in {**FLAT_LEGACY_DEFAULTS, **saved}.items():
            part, _, leaf = FLAT_TRAIN_CONFIG.get(name, name).rpartition(".")
            (nested.setdefault(part, {}) if part else nested)[leaf] = value
    else:
        nested = {k: dict(v) if isinstance(v, dict) else v for k, v in saved.items()}
    for leaf in tc.leaves():
        part, _, name = leaf.name.rpartition(".")
        holder = nested.setdefault(part, {}) if part else nested
        holder.setdefault(name, OLD_DEFAULTS.get(leaf.name, leaf.default))
    _write_out_b(nested["penalty"], replicas and nested["batch_size"] // replicas,
                 "how many replicas trained is not recorded; pass --replicas")
    try:
        return tc.TrainConfig.from_json(nested).to_json()
    except tc.ConfigError as e:
        raise UpgradeError(f"cannot upgrade a training configuration: {e}") from e


def model_penalty(saved: dict[str, Any], batch_size: int | None) -> dict[str, Any]:
    """RobustModel.get_config's "penalty" (given the whole saved config) as a complete
    PenaltyConfig dict; `batch_size` is the B of a 'batch_mean' penalty that did not record it."""
    from robust_saliency import train_config as tc

    penalty = saved.get("penalty")
    if isinstance(penalty, dict):
        penalty = dict(penalty)
    else:
        penalty = {new: saved[old] for old, new in FLAT_MODEL_PENALTY.items() if old in saved}
        penalty.setdefault("sensitivity_mode", FLAT_LEGACY_DEFAULTS["sensitivity_mode"])
    penalty.setdefault("convention", OLD_DEFAULTS["penalty.convention"])
    _write_out_b(penalty, batch_size, "neither the saved RobustModel's run.json nor "
                 "--replicas and --batch_size say how large that was")
    try:
        return results.jsonable(vars(tc.PenaltyConfig(**penalty)))
    except (tc.ConfigError, TypeError) as e:
        raise UpgradeError(f"cannot upgrade a saved RobustModel's penalty: {e}") from e


def _model_config(saved, batch_size):
    config = {k: v for k, v in saved.items() if k not in FLAT_MODEL_PENALTY or k == "penalty"}
    return {**config, "penalty": model_penalty(saved, batch_size)}


def _keras_config(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


def _keras_needs_upgrade(document):
    from robust_saliency import train_config as tc

    if document.get("class_name") != "RobustModel":
        return False
    penalty = document["config"].get("penalty")
    return not isinstance(penalty, dict) or set(penalty) != tc.PenaltyConfig.field_names()


def upgrade_keras(path: str, batch_size: int | None) -> None:
    """Rewrites the RobustModel config inside the .keras file at `path` (its other members are
    copied byte for byte), atomically."""
    document = _keras_config(path)
    document["config"] = _model_config(document["config"], batch_size)
    with zipfile.ZipFile(path) as source, results.atomic_path(path) as tmp, \
            zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = (json.dumps(document).encode() if item.filename == "config.json"
                    else source.read(item.filename))
            target.writestr(item, data)


def _record_replicas(record):
    if "replicas" in record:
        return int(record["replicas"])
    return 1 if record.get("strategy", "default") == "default" else None


def _member_replicas(folder):
    """The replicas every member of the cohort at `folder` trained with (None: no member, or
    they differ)."""
    found = set()
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry, results.RUN_JSON)
        if os.path.exists(path):
            found.add(_record_replicas(results.read_json(path, check=False)))
    return found.pop() if len(found) == 1 else None


def _upgrade_file(path, replicas, batch_size):
    """The new content of the results file at `path`, or None when it is current."""
    name = os.path.basename(path)
    folder = os.path.dirname(path)
    if name in results.VERSIONED_FILES:
        content = results.read_json(path, check=False)
        if content.get(results.SCHEMA_KEY) == results.SCHEMA_VERSION:
            return None
        if name == results.RUN_JSON:
            config = train_config(content["config"], replicas or _record_replicas(content))
            return {**content, "config": config, results.SCHEMA_KEY: results.SCHEMA_VERSION}
        content = {**COHORT_FIELDS_ADDED, **content}
        config = train_config(content["train"], replicas or _member_replicas(folder))
        return {**content, "train": config, results.SCHEMA_KEY: results.SCHEMA_VERSION}
    if name == results.SUMMARY_JSON:
        summary = results.read_json(path)
        table_path = os.path.join(folder, results.PER_IMAGE_CSV)
        if "median_intervals" in summary or not os.path.exists(table_path):
            return None
        from robust_saliency import table_summary

        table = results.read_table(table_path)
        return {**summary, **table_summary.summarize(table, meta=summary)}
    return None


def _cohort_table_outdated(folder):
    path = os.path.join(folder, results.COHORT_CSV)
    with open(path) as f:
        header = f.readline().strip().split(",")
    return not {"seed", "degenerate"} <= set(header)


def _keras_batch_size(folder, replicas, batch_size):
    if batch_size is not None:
        return batch_size
    path = os.path.join(folder, results.RUN_JSON)
    if not os.path.exists(path):
        return None
    record = results.read_json(path, check=False)
    replicas = replicas or _record_replicas(record)
    config = record["config"]
    total = config.get("batch_size", 100)
    return total // replicas if replicas else None


def upgrade_tree(root: str, *, dry_run: bool = False, replicas: int | None = None,
                 batch_size: int | None = None) -> list[str]:
    """Rewrites every results file under `root` that is in an older layout.

    Args:
      root: a run folder, a cohort folder or any folder holding them (e.g. results/).
      dry_run: only list what would be rewritten.
      replicas: the replicas a run trained with, where its files do not record it.
      batch_size: the B of a 'batch_mean' penalty in a model.keras without a run.json beside it.

    Returns:
      The paths rewritten (or, with dry_run, to be rewritten), in the order they were.

    Raises:
      FileNotFoundError: root does not exist.
      UpgradeError: a file needs information it does not hold (the message says which flag).
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root} is not a folder")
    changed, cohorts = [], []
    for folder, subfolders, files in sorted(os.walk(root)):
        subfolders[:] = sorted(d for d in subfolders if d not in (results.TENSORBOARD_DIR,
                                                                  results.BACKUP_DIR))
        if results.MODEL_FILE in files:
            path = os.path.join(folder, results.MODEL_FILE)
            if _keras_needs_upgrade(_keras_config(path)):
                if not dry_run:
                    upgrade_keras(path, _keras_batch_size(folder, replicas, batch_size))
                changed.append(path)
        for name in (results.RUN_JSON, results.COHORT_JSON, results.SUMMARY_JSON):
            path = os.path.join(folder, name)
            if name in files and (content := _upgrade_file(path, replicas, batch_size)):
                if not dry_run:
                    results.write_json(path, content)
                changed.append(path)
        if results.COHORT_JSON in files and results.COHORT_CSV in files:
            cohorts.append(folder)
    for folder in cohorts:  # gathered last: it reads the members' upgraded files
        path = os.path.join(folder, results.COHORT_CSV)
        inside = any(p.startswith(folder + os.sep) for p in changed)
        if not (inside or _cohort_table_outdated(folder)):
            continue
        if dry_run:
            changed.append(path)
            continue
        from robust_saliency import cohort

        with open(path, "rb") as f:
            before = f.read()
        cohort.gather(folder)
        with open(path, "rb") as f:
            if f.read() != before:
                changed.append(path)
    return changed
