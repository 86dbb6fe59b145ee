"""Train one model into a run folder: resumable, atomic, honest about divergence.

`train(config, run_dir)` is the single code path behind `python -m experiments.train` and every
member of a cohort. Rerunning it on the same folder resumes from the last completed epoch
(keras.callbacks.BackupAndRestore) and returns at once for a finished or diverged run;
`load_model(run_dir)` loads the trained model back. What a run folder records (its
configuration, data source and weights) is read and written by robust_saliency.run_folders.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
import time
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from robust_saliency import (
    callbacks,
    data,
    distribute,
    environment,
    init_weights,
    logits,
    models,
    penalties,
    results,
    run_folders,
    train_config,
    training,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

# TrainConfig lives in train_config; its name stays importable from here, where runs are.
TrainConfig = train_config.TrainConfig


def penalty_config(config):
    """`config`'s PenaltyConfig, where an attack-based penalty attacks inside the dataset's
    pixel bounds unless its options name others."""
    penalty = config.penalty
    if "bounds" in penalties.option_names(penalty.name) and "bounds" not in (penalty.options
                                                                             or {}):
        bounds = tuple(data.bounds(config.data.dataset))
        penalty = dataclasses.replace(penalty, options={**(penalty.options or {}),
                                                        "bounds": bounds})
    return penalty


class TrainingDiverged(RuntimeError):
    """The loss became NaN/Inf; run.json says where."""


def _datasets(config):
    """(train, validation, probe images, steps per epoch) of `config`, batched globally."""
    d = config.data
    if d.dataset == "imagenet":
        return _imagenet_datasets(config)
    x_train, y_train = data.load_arrays(d.dataset, "train", d.data_dir,
                                        num_examples=d.train_subset)
    x_val, y_val = data.load_arrays(d.dataset, "validation", d.data_dir,
                                    num_examples=d.val_subset)
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

    d = config.data
    if d.data_dir is None:
        raise ValueError("dataset 'imagenet' needs --data_dir (TFRecord shards or, with "
                         "data_source='tfds', the imagenet2012 manual-download folder).")
    size = d.image_size or imagenet.IMAGE_SIZE
    common = dict(data_dir=d.data_dir, source=d.source, image_size=size)
    train = imagenet.dataset("train", config.batch_size, training=True, seed=config.seed,
                             num_examples=d.train_subset, drop_remainder=True, **common)
    val = imagenet.dataset("validation", config.batch_size, training=False,
                           num_examples=d.val_subset, **common)
    probe = None
    if config.probe_size:
        probe, _ = imagenet.load_arrays("validation", d.data_dir, source=d.source,
                                        image_size=size, num_examples=config.probe_size)
    if not d.train_subset:
        return train, val, probe, None  # epochs end with the data
    # A known epoch length: Keras then keeps one iterator across epochs, so it must not end.
    return train.repeat(), val, probe, d.train_subset // config.batch_size


def build_model(config, steps_per_epoch=None):
    """The compiled RobustModel of `config` (call inside a strategy scope to distribute it)."""
    shape = data.image_shape(config.data.dataset, config.data.image_size)
    m = config.model
    options = {"weights": m.weights} if m.name == "resnet50" else {}
    if m.depth is not None:
        options["depth"] = m.depth
    if m.bn_momentum is not None:
        options["bn_momentum"] = m.bn_momentum
    network = models.build(m.name, shape, m.num_classes or data.num_classes(config.data.dataset),
                           **options)
    model = training.RobustModel(network, penalty=penalty_config(config),
                                 weight_decay=config.optimizer.weight_decay)
    lr, schedule = config.optimizer.learning_rate, config.schedule
    if schedule.kind in ("step", "milestones") and not steps_per_epoch:
        raise ValueError(f"lr_schedule {schedule.kind!r} needs a known epoch length: set "
                         "train_subset for streamed datasets, or use lr_schedule 'plateau'.")
    if schedule.kind == "step":
        lr = training.step_decay(lr, steps_per_epoch=steps_per_epoch,
                                 every_epochs=schedule.decay_epochs, factor=schedule.decay_factor)
    elif schedule.kind == "milestones":
        lr = milestone_decay(lr, steps_per_epoch=steps_per_epoch,
                             milestones=schedule.milestone_epochs(), factor=schedule.decay_factor)
    model.compile(optimizer=training.sgd(lr, config.optimizer.momentum))
    # Built now, so that BackupAndRestore can load weights and optimizer slots into it.
    model(np.zeros((1, *shape), "float32"))
    model.optimizer.build(model.trainable_variables)
    return model


def milestone_decay(initial, *, steps_per_epoch, milestones, factor):
    """initial * factor ** (number of milestones <= the epochs completed): He et al.'s CIFAR
    schedule (x0.1 after 50% and 75% of training). Like training.step_decay, a Keras
    schedule on the optimizer's step counter, so it resumes with the optimizer state."""
    # The counter is the number of steps done: the first step of epoch m + 1 sees m * spe.
    boundaries = [m * steps_per_epoch - 1 for m in milestones]
    values = [initial * factor ** k for k in range(len(milestones) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def _write_hparams(log_dir, config):
    from tensorboard.plugins.hparams import api as hp

    hparams = {name: (v if isinstance(v, (bool, int, float, str)) else str(v))
               for name, v in train_config.flatten(config).items()}
    with tf.summary.create_file_writer(log_dir).as_default():
        hp.hparams(hparams, trial_id=os.path.basename(os.path.abspath(log_dir)))


def train(config: train_config.TrainConfig, run_dir: str, *, strategy: str = "default",
          verbose: int | str = 1,
          extra_callbacks: Sequence[keras.callbacks.Callback] = ()) -> dict[str, Any]:
    """Trains `config` into `run_dir`, resuming whatever an earlier call left there.

    Args:
      config: TrainConfig.
      run_dir: folder for run.json, model.keras, tb/ (TensorBoard) and backup/ (resume state).
        A config with model.init_weights starts from those weights (init_weights.load) and
        run.json records them under 'init_weights' (path, file, sha256).
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
      ValueError: run_dir holds a run of a different configuration, or init_weights holds
        another architecture.
      FileNotFoundError: init_weights names no weights file.
    """
    scope = distribute.get_strategy(strategy)
    run_dir = distribute.worker_dir(run_dir) if strategy == "multi_worker" else run_dir
    run_json = os.path.join(run_dir, results.RUN_JSON)
    source = run_folders.data_record(config)
    record, finished = _earlier_record(config, run_dir, source)
    if finished:
        return record
    record = record or {results.SCHEMA_KEY: results.SCHEMA_VERSION, "config": config.to_json(),
                        "history": [], "epochs_completed": 0}
    record.update(status="running", versions=environment.versions(), command=sys.argv, data=source,
                  started=record.get("started", time.time()), strategy=strategy,
                  replicas=scope.num_replicas_in_sync,
                  # 0: TensorFlow's default, a thread per core (see train_process)
                  intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads())
    # A fresh start only: a resumed run's weights come from its backup.
    start_from = None if os.path.isdir(os.path.join(run_dir, results.BACKUP_DIR)) else (
        config.model.init_weights)
    if start_from is not None:
        init_weights.weights_file(start_from)  # a missing file fails before run.json
    results.write_json(run_json, record)

    keras.utils.set_random_seed(config.seed)
    train_ds, val_ds, probe, steps = _datasets(config)
    with scope.scope():
        model = build_model(config, steps)
        if start_from is not None:
            try:
                record["init_weights"] = init_weights.load(
                    logits.logits_network(model), start_from,
                    description=f"model {config.model.name!r} on {config.data.dataset}")
            except ValueError:
                if not record["epochs_completed"]:  # nothing trained: leave no record behind
                    os.remove(run_json)
                raise
            results.write_json(run_json, record)
    guard, schedule, cbs = _fit_callbacks(config, run_dir, record, probe, extra_callbacks)
    start = time.time()
    # A run whose plateau schedule ended it before an interruption only restores its weights.
    ended = bool(schedule) and schedule[0].state(record["history"])[1]
    model.fit(train_ds, validation_data=val_ds, callbacks=cbs, verbose=verbose,
              epochs=record["epochs_completed"] if ended else config.schedule.epochs,
              shuffle=False,  # the dataset reshuffles itself, seeded
              steps_per_epoch=steps)
    record["train_seconds"] = record.get("train_seconds", 0.0) + time.time() - start
    if guard.diverged is not None:
        shutil.rmtree(os.path.join(run_dir, results.BACKUP_DIR), ignore_errors=True)
        record.update(status="diverged", diverged_at=guard.diverged)
        results.write_json(run_json, record)
        raise TrainingDiverged(_diverged_message(record))
    with results.atomic_path(os.path.join(run_dir, results.MODEL_FILE)) as tmp:
        model.save(tmp)
    record["trained_weights"] = run_folders.save_weights(model, run_dir)
    last = record["history"][-1] if record["history"] else {}
    record.update(status="completed", finished=time.time(),
                  final={k: v for k, v in last.items() if isinstance(v, float)
                         and math.isfinite(v)})
    results.write_json(run_json, record)
    return record


def finished_record(config: train_config.TrainConfig, run_dir: str) -> dict[str, Any] | None:
    """The record (run.json's content) of `run_dir`'s finished training of `config`, or None when
    it has not finished.

    Raises:
      TrainingDiverged: the run diverged.
      ValueError: run_dir holds a run of another configuration or data source.
    """
    record, finished = _earlier_record(config, run_dir, run_folders.data_record(config))
    return record if finished else None


def _earlier_record(config, run_dir, source):
    """(the run.json record an earlier call left in `run_dir`, whether that run is finished):
    (None, False) when there is none or nothing to resume from. Raises ValueError for another
    configuration or data source, TrainingDiverged for a run that diverged."""
    run_json = os.path.join(run_dir, results.RUN_JSON)
    if not os.path.exists(run_json):
        return None, False
    record = results.read_json(run_json)
    if not run_folders.saved_config_matches(record.get("config", {}), config):
        raise ValueError(f"{run_dir} holds a run of another configuration; choose another "
                         "--run_dir or delete that folder.")
    run_folders.check_same_data(record.get("data"), source, run_dir)
    if record.get("status") == "completed" and (
            os.path.exists(os.path.join(run_dir, results.MODEL_FILE))
            or run_folders.has_weights(run_dir, record)):
        return record, True
    if record.get("status") == "diverged":
        raise TrainingDiverged(_diverged_message(record))
    if not os.path.isdir(os.path.join(run_dir, results.BACKUP_DIR)):
        # No model and nothing to resume from (e.g. a committed run.json without its model
        # file): train afresh, so that no recorded epoch claims weights that are gone, and drop
        # the evaluation of those weights, which a resumed evaluation would otherwise extend
        # with columns of the new model.
        for name in results.EVALUATION_FILES:
            if os.path.exists(os.path.join(run_dir, name)):
                os.remove(os.path.join(run_dir, name))
        return None, False
    return record, False


def _fit_callbacks(config, run_dir, record, probe, extra_callbacks):
    """(the divergence guard, the plateau schedule as a list of 0 or 1, every callback of fit in
    its order)."""
    tb_dir = os.path.join(run_dir, results.TENSORBOARD_DIR)
    _write_hparams(tb_dir, config)
    guard = callbacks.DivergenceGuard()
    schedule = []
    if config.schedule.kind == "plateau":
        schedule = [training.PlateauSchedule(
            config.optimizer.learning_rate, lambda: record["history"],
            factor=config.schedule.decay_factor, patience=config.schedule.patience,
            max_decays=config.schedule.max_decays)]
    # A probe costs a measurement per epoch (one backward pass per class): runs that only need
    # the trained model, such as quick tests, switch it off with probe_size=0.
    probes = [callbacks.ProbeMetrics(probe, os.path.join(tb_dir, "probe"),
                                     display=data.display(config.data.dataset))
              ] if config.probe_size else []
    # Order matters: the probe adds its medians to the logs the later callbacks record, and the
    # backup is saved before run.json counts the epoch as completed.
    cbs = [guard, *schedule, *probes,
           keras.callbacks.BackupAndRestore(os.path.join(run_dir, results.BACKUP_DIR),
                                            double_checkpoint=True),
           callbacks.RunRecorder(os.path.join(run_dir, results.RUN_JSON), record),
           keras.callbacks.TensorBoard(tb_dir, write_graph=False),
           *extra_callbacks]
    return guard, schedule, cbs


def _diverged_message(record):
    where = record.get("diverged_at", {})
    lam = TrainConfig.from_json(record["config"]).penalty.lam
    return (f"training diverged (loss {where.get('loss')}) in epoch {where.get('epoch', 0) + 1}, "
            f"batch {where.get('batch')}, lam={lam}; lower the learning "
            "rate or lambda.")


def load_model(run_dir: str) -> training.RobustModel:
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
    if not run_folders.has_weights(run_dir, record):
        raise FileNotFoundError(f"no trained model at {path} (nor weights recorded in "
                                f"{record_path}); train it first (python -m experiments.train "
                                "--run_dir=...).")
    digest = results.file_digest(weights)
    if digest != record["trained_weights"]["sha256"]:
        raise ValueError(f"{weights} has sha256 {digest}, not the "
                         f"{record['trained_weights']['sha256']} "
                         f"recorded in {record_path}: the file was changed or is truncated; "
                         "restore it (git checkout) or retrain the run.")
    config = run_folders.saved_config(record["config"]).replace(model={"weights": None})
    model = build_model(config, steps_per_epoch=1)
    logits.logits_network(model).load_weights(weights)
    return model
