"""Train one model into a run folder: resumable, atomic, honest about divergence.

`train(config, run_dir)` is the single code path behind `python -m experiments.train` and every
member of a cohort. Rerunning it on the same folder resumes from the last completed epoch
(keras.callbacks.BackupAndRestore) and returns at once for a finished or diverged run.
"""

import dataclasses
import math
import os
import shutil
import sys
import time

import keras
import numpy as np

from robust_saliency import (
    callbacks,
    data,
    distribute,
    metrics,
    models,
    penalties,
    results,
    training,
)

LR_SCHEDULES = ("step", "plateau", "constant")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines one trained model. Defaults are the paper's MNIST setup."""

    dataset: str = "mnist"
    data_dir: str | None = None
    data_source: str = "tfrecord"  # ImageNet only: 'tfrecord' shards or the 'tfds' manual dir
    image_size: int | None = None  # ImageNet only: crop size (None: the paper's 256)
    model: str = "small_net"
    weights: str | None = None  # resnet50 only: None, 'imagenet' or a weights file
    # ImageNet only: the network's logits (None: 1000). Fewer fit a class subset whose labels
    # all lie below it (the synthetic smoke set has 10); the measurements cost one backward
    # pass per class, so the smoke test keeps this small.
    num_classes: int | None = None
    lam: float = 0.0  # the penalty's strength: its weight, or the radius epsilon for 'pgd_l2'
    penalty: str = "gradient_norm"
    penalty_options: dict | None = None  # the penalty's own settings, e.g. {'steps': 7}
    penalty_convention: str = "batch_mean"
    penalty_batch_size: int | None = None  # B of 'batch_mean'; None: each replica's own batch
    # None: the penalty's own form (penalties.default_sensitivity), resolved on construction;
    # dataclasses.replace(config, penalty=...) therefore keeps the old penalty's resolved form.
    sensitivity_mode: str | None = None
    epochs: int = 200
    batch_size: int = 100
    learning_rate: float = 1e-3
    momentum: float = 0.9
    lr_schedule: str = "step"
    lr_decay_epochs: int = 80  # 'step': divide every lr_decay_epochs epochs
    lr_decay_factor: float = 0.1  # 'step' and 'plateau': the factor of each decay
    plateau_patience: int = 2  # 'plateau': epochs without a better val_loss before a decay
    plateau_max_decays: int | None = None  # 'plateau': stop at the plateau after this many
    weight_decay: float = 1e-6
    train_subset: int | None = None
    val_subset: int | None = None
    probe_size: int = 100  # 0 switches the per-epoch probe off
    seed: int = 0

    def __post_init__(self):
        problems = []
        if self.dataset not in data.DATASETS:
            problems.append(f"unknown dataset {self.dataset!r} (valid: {', '.join(data.DATASETS)})")
        if self.model not in models.BUILDERS:
            problems.append(f"unknown model {self.model!r} (valid: {', '.join(models.BUILDERS)})")
        if not self.lam >= 0:
            problems.append(f"lam must be >= 0, got {self.lam}")
        if self.penalty not in penalties.PENALTIES:
            problems.append(f"unknown penalty {self.penalty!r} "
                            f"(valid: {', '.join(penalties.PENALTIES)})")
        elif self.lam >= 0:
            if self.sensitivity_mode is None:  # resolved, so that run.json records the form
                object.__setattr__(self, "sensitivity_mode",
                                   penalties.default_sensitivity(self.penalty))
            try:  # the penalty checks its own options (a TypeError names an unknown one)
                penalty_from_config(self)
            except (TypeError, ValueError) as e:
                problems.append(f"penalty {self.penalty!r}: {e}")
        if self.penalty_convention not in penalties.CONVENTIONS:
            problems.append(f"unknown penalty_convention {self.penalty_convention!r} "
                            f"(valid: {', '.join(penalties.CONVENTIONS)})")
        if self.sensitivity_mode not in penalties.SENSITIVITY_MODES:
            problems.append(f"unknown sensitivity_mode {self.sensitivity_mode!r} "
                            f"(valid: {', '.join(penalties.SENSITIVITY_MODES)})")
        if self.weights is not None and self.model != "resnet50":
            problems.append(f"weights={self.weights!r} needs model 'resnet50'")
        if self.num_classes is not None and (self.dataset != "imagenet"
                                             or self.num_classes < 2):
            problems.append(f"num_classes={self.num_classes} needs dataset 'imagenet' and at "
                            "least 2 classes (other datasets have their fixed label sets)")
        if self.image_size is not None and self.image_size < 32:
            problems.append(f"image_size must be >= 32 or None, got {self.image_size}")
        if self.lr_schedule not in LR_SCHEDULES:
            problems.append(f"unknown lr_schedule {self.lr_schedule!r} "
                            f"(valid: {', '.join(LR_SCHEDULES)})")
        for name in ("epochs", "batch_size", "lr_decay_epochs", "plateau_patience"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.probe_size < 0:
            problems.append(f"probe_size must be >= 0 (0: no probe), got {self.probe_size}")
        for name in ("train_subset", "val_subset", "penalty_batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be >= 1 or None (all), got {value}")
        if self.plateau_max_decays is not None and self.plateau_max_decays < 0:
            problems.append(f"plateau_max_decays must be >= 0 or None, got "
                            f"{self.plateau_max_decays}")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1), got {self.momentum}")
        if not self.weight_decay >= 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))


def penalty_options(config):
    """The penalty's keyword options of `config`; an attack-based penalty attacks inside the
    dataset's pixel bounds unless the options name others."""
    options = dict(config.penalty_options or {})
    if "bounds" in penalties.option_names(config.penalty):
        options.setdefault("bounds", tuple(data.bounds(config.dataset)))
    return options


def penalty_from_config(config):
    return penalties.get(
        config.penalty, lam=config.lam, convention=config.penalty_convention,
        sensitivity_mode=config.sensitivity_mode, batch_size=config.penalty_batch_size,
        **penalty_options(config))


class TrainingDiverged(RuntimeError):
    """The loss became NaN/Inf; run.json says where."""


def _datasets(config):
    """(train, validation, probe images, steps per epoch) of `config`, batched globally."""
    if config.dataset == "imagenet":
        return _imagenet_datasets(config)
    x_train, y_train = data.load_arrays(config.dataset, "train", config.data_dir,
                                        num_examples=config.train_subset)
    x_val, y_val = data.load_arrays(config.dataset, "validation", config.data_dir,
                                    num_examples=config.val_subset)
    if len(x_train) < config.batch_size:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {len(x_train)} training "
                         "images; lower --batch_size or raise --train_subset.")
    # Full batches only: the 'batch_mean' penalty scale depends on the batch size.
    train = data.make_dataset(x_train, y_train, config.batch_size, shuffle=True,
                              seed=config.seed, drop_remainder=True)
    val = data.make_dataset(x_val, y_val, config.batch_size)
    return train, val, x_val[:config.probe_size], len(x_train) // config.batch_size


def _imagenet_datasets(config):
    from robust_saliency import imagenet

    if config.data_dir is None:
        raise ValueError("dataset 'imagenet' needs --data_dir (TFRecord shards or, with "
                         "data_source='tfds', the imagenet2012 manual-download folder).")
    size = config.image_size or imagenet.IMAGE_SIZE
    common = dict(data_dir=config.data_dir, source=config.data_source, image_size=size)
    train = imagenet.dataset("train", config.batch_size, training=True, seed=config.seed,
                             num_examples=config.train_subset, drop_remainder=True, **common)
    val = imagenet.dataset("validation", config.batch_size, training=False,
                           num_examples=config.val_subset, **common)
    probe = None
    if config.probe_size:
        probe, _ = imagenet.load_arrays("validation", config.data_dir,
                                        source=config.data_source, image_size=size,
                                        num_examples=config.probe_size)
    if not config.train_subset:
        return train, val, probe, None  # epochs end with the data
    # A known epoch length: Keras then keeps one iterator across epochs, so it must not end.
    return train.repeat(), val, probe, config.train_subset // config.batch_size


def build_model(config, steps_per_epoch=None):
    """The compiled RobustModel of `config` (call inside a strategy scope to distribute it)."""
    shape = data.image_shape(config.dataset, config.image_size)
    options = {"weights": config.weights} if config.model == "resnet50" else {}
    network = models.build(config.model, shape,
                           config.num_classes or data.num_classes(config.dataset), **options)
    model = training.RobustModel(
        network, lam=config.lam, penalty=config.penalty,
        penalty_convention=config.penalty_convention, sensitivity_mode=config.sensitivity_mode,
        weight_decay=config.weight_decay, penalty_batch_size=config.penalty_batch_size,
        penalty_options=penalty_options(config))
    lr = config.learning_rate
    if config.lr_schedule == "step":
        if not steps_per_epoch:
            raise ValueError("lr_schedule 'step' needs a known epoch length: set train_subset "
                             "for streamed datasets, or use lr_schedule 'plateau'.")
        lr = training.step_decay(lr, steps_per_epoch=steps_per_epoch,
                                 every_epochs=config.lr_decay_epochs, factor=config.lr_decay_factor)
    model.compile(optimizer=training.sgd(lr, config.momentum))
    # Built now, so that BackupAndRestore can load weights and optimizer slots into it.
    model(np.zeros((1, *shape), "float32"))
    model.optimizer.build(model.trainable_variables)
    return model


def _write_hparams(log_dir, config):
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    hparams = {k: (v if isinstance(v, (bool, int, float, str)) else str(v))
               for k, v in dataclasses.asdict(config).items()}
    with tf.summary.create_file_writer(log_dir).as_default():
        hp.hparams(hparams, trial_id=os.path.basename(os.path.abspath(log_dir)))


# Fields whose default changed: a config saved without them was made at the old default.
# (sensitivity_mode defaulted to 'nll' for every penalty before it took the penalty's own form.)
LEGACY_DEFAULTS = {"sensitivity_mode": "nll"}


def saved_config_matches(saved, config):
    """Whether a config saved in run.json/cohort.json is `config`; fields added to TrainConfig
    since it was saved count at their defaults (LEGACY_DEFAULTS for those whose default has
    changed since), so older result folders stay usable."""
    defaults = results.jsonable(dataclasses.asdict(TrainConfig()))
    return ({**defaults, **LEGACY_DEFAULTS, **saved}
            == results.jsonable(dataclasses.asdict(config)))


def train(config, run_dir, *, strategy="default", verbose=1, extra_callbacks=()):
    """Trains `config` into `run_dir`, resuming whatever an earlier call left there.

    Args:
      config: TrainConfig.
      run_dir: folder for run.json, model.keras, tb/ (TensorBoard) and backup/ (resume state).
      strategy: distribute.STRATEGIES name; batch_size is the global batch over all replicas.
        Under 'multi_worker' every worker runs this; the chief writes run_dir, the others
        run_dir/workers/<task> (see distribute.worker_dir).
      verbose: Keras progress-bar verbosity.
      extra_callbacks: further Keras callbacks (e.g. for tests or progress lines).

    Returns:
      The run record (run.json's content); record['status'] is 'completed'.

    Raises:
      TrainingDiverged: the loss became NaN/Inf (now or in an earlier call); run.json holds
        status 'diverged' and where.
      ValueError: run_dir holds a run of a different configuration.
    """
    scope = distribute.get_strategy(strategy)
    run_dir = distribute.worker_dir(run_dir) if strategy == "multi_worker" else run_dir
    run_json = os.path.join(run_dir, results.RUN_JSON)
    model_path = os.path.join(run_dir, results.MODEL_FILE)
    record = results.read_json(run_json) if os.path.exists(run_json) else None
    source = data_record(config)
    if record is not None:
        if not saved_config_matches(record.get("config", {}), config):
            raise ValueError(f"{run_dir} holds a run of another configuration; choose another "
                             "--run_dir or delete that folder.")
        check_same_data(record.get("data"), source, run_dir)
        if record.get("status") == "completed" and (
                os.path.exists(model_path) or _has_weights(run_dir, record)):
            return record
        if record.get("status") == "diverged":
            raise TrainingDiverged(_diverged_message(record))
        if not os.path.isdir(os.path.join(run_dir, results.BACKUP_DIR)):
            # No model and nothing to resume from (e.g. a committed run.json without its model
            # file): train afresh, so that no recorded epoch claims weights that are gone, and
            # drop the evaluation of those weights, which a resumed evaluation would otherwise
            # extend with columns of the new model.
            record = None
            for name in results.EVALUATION_FILES:
                if os.path.exists(os.path.join(run_dir, name)):
                    os.remove(os.path.join(run_dir, name))
    record = record or {"config": dataclasses.asdict(config), "history": [],
                        "epochs_completed": 0}
    record.update(status="running", versions=results.versions(), command=sys.argv, data=source,
                  started=record.get("started", time.time()), strategy=strategy,
                  replicas=scope.num_replicas_in_sync)
    results.write_json(run_json, record)

    keras.utils.set_random_seed(config.seed)
    train_ds, val_ds, probe, steps = _datasets(config)
    with scope.scope():
        model = build_model(config, steps)
    tb_dir = os.path.join(run_dir, results.TENSORBOARD_DIR)
    _write_hparams(tb_dir, config)
    guard = callbacks.DivergenceGuard()
    schedule = []
    if config.lr_schedule == "plateau":
        schedule = [training.PlateauSchedule(
            config.learning_rate, lambda: record["history"], factor=config.lr_decay_factor,
            patience=config.plateau_patience, max_decays=config.plateau_max_decays)]
    # A probe costs a measurement per epoch (one backward pass per class): runs that only need
    # the trained model, such as quick tests, switch it off with probe_size=0.
    probes = [callbacks.ProbeMetrics(probe, os.path.join(tb_dir, "probe"),
                                     display=data.display(config.dataset))
              ] if config.probe_size else []
    # Order matters: the probe adds its medians to the logs the later callbacks record, and the
    # backup is saved before run.json counts the epoch as completed.
    cbs = [guard, *schedule, *probes,
           keras.callbacks.BackupAndRestore(os.path.join(run_dir, results.BACKUP_DIR),
                                            double_checkpoint=True),
           callbacks.RunRecorder(run_json, record),
           keras.callbacks.TensorBoard(tb_dir, write_graph=False),
           *extra_callbacks]
    start = time.time()
    # A run whose plateau schedule ended it before an interruption only restores its weights.
    ended = bool(schedule) and schedule[0].state(record["history"])[1]
    model.fit(train_ds, validation_data=val_ds, callbacks=cbs, verbose=verbose,
              epochs=record["epochs_completed"] if ended else config.epochs,
              shuffle=False,  # the dataset reshuffles itself, seeded
              steps_per_epoch=steps)
    record["train_seconds"] = record.get("train_seconds", 0.0) + time.time() - start
    if guard.diverged is not None:
        shutil.rmtree(os.path.join(run_dir, results.BACKUP_DIR), ignore_errors=True)
        record.update(status="diverged", diverged_at=guard.diverged)
        results.write_json(run_json, record)
        raise TrainingDiverged(_diverged_message(record))
    with results.atomic_path(model_path) as tmp:
        model.save(tmp)
    record["trained_weights"] = save_weights(model, run_dir)
    last = record["history"][-1] if record["history"] else {}
    record.update(status="completed", finished=time.time(),
                  final={k: v for k, v in last.items() if isinstance(v, float)
                         and math.isfinite(v)})
    results.write_json(run_json, record)
    return record


def _diverged_message(record):
    where = record.get("diverged_at", {})
    return (f"training diverged (loss {where.get('loss')}) in epoch {where.get('epoch', 0) + 1}, "
            f"batch {where.get('batch')}, lam={record['config']['lam']}; lower the learning "
            "rate or lambda.")


def data_record(config):
    """data.source_info of `config`'s dataset, after checking that the source holds the
    training and validation images `config` asks for (DataNotFoundError if not)."""
    data.check_available(config.dataset, "train", config.train_subset, config.data_dir)
    data.check_available(config.dataset, "validation", config.val_subset, config.data_dir)
    return data.source_info(config.dataset, config.data_dir)


def check_same_data(saved, current, folder):
    """Raises ValueError when a folder's recorded data source (run.json or cohort.json 'data')
    is not the one `config` resolves to now: resuming would mix two datasets."""
    keys = ("source", "sha1", "train_images", "validation_images")
    if saved is None or all(saved.get(k) == current.get(k) for k in keys):
        return
    described = {k: saved.get(k) for k in keys}
    raise ValueError(f"{folder} was made with {described} but the data now resolves to "
                     f"{ {k: current.get(k) for k in keys} }; pass the original source with "
                     "--data_dir, or choose another folder.")


def _has_weights(run_dir, record):
    """Whether a completed run keeps its trained weights (a committed folder has no
    model.keras, but its weights file): then it is done, not to be retrained."""
    return bool(record.get("trained_weights")) and os.path.exists(
        os.path.join(run_dir, results.WEIGHTS_FILE))


def save_weights(model, run_dir):
    """Writes the trained network's weights to run_dir/WEIGHTS_FILE (atomically); returns
    run.json's record of them ('trained_weights'): {'file': ..., 'sha256': ...}."""
    path = os.path.join(run_dir, results.WEIGHTS_FILE)
    with results.atomic_path(path) as tmp:
        metrics.logits_network(model).save_weights(tmp)
    return {"file": results.WEIGHTS_FILE, "sha256": results.file_digest(path)}


def saved_config(saved):
    """The TrainConfig of a config dict saved in run.json (older layouts: fields added since
    at their defaults, LEGACY_DEFAULTS for those whose default changed)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{**LEGACY_DEFAULTS, **{k: v for k, v in saved.items() if k in names}})


def load_model(run_dir):
    """The trained RobustModel of `run_dir`: its model.keras, else (a committed result folder)
    the architecture rebuilt from run.json with the weights of WEIGHTS_FILE, checked against
    the sha256 run.json recorded.

    Raises:
      FileNotFoundError: neither file is there.
      ValueError: the weights file is not the one run.json recorded (sha256 mismatch).
    """
    path = os.path.join(run_dir, results.MODEL_FILE)
    if os.path.exists(path):
        return keras.models.load_model(path)
    weights = os.path.join(run_dir, results.WEIGHTS_FILE)
    record_path = os.path.join(run_dir, results.RUN_JSON)
    record = results.read_json(record_path) if os.path.exists(record_path) else {}
    if not _has_weights(run_dir, record):
        raise FileNotFoundError(f"no trained model at {path} (nor weights recorded in "
                                f"{record_path}); train it first (python -m experiments.train "
                                "--run_dir=...).")
    digest = results.file_digest(weights)
    if digest != record["trained_weights"]["sha256"]:
        raise ValueError(f"{weights} has sha256 {digest}, not the "
                         f"{record['trained_weights']['sha256']} "
                         f"recorded in {record_path}: the file was changed or is truncated; "
                         "restore it (git checkout) or retrain the run.")
    config = dataclasses.replace(saved_config(record["config"]), weights=None)
    model = build_model(config, steps_per_epoch=1)
    metrics.logits_network(model).load_weights(weights)
    return model
