"""Keras callbacks of a training run: divergence guard, probe measurements, run history."""

import math

import keras
import numpy as np
import tensorflow as tf

from robust_saliency import metrics, results
from robust_saliency.logits import logits_network


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training at the first batch whose running loss is NaN or infinite.

    Large lambdas or learning rates can blow the penalised loss up; training on would only
    produce a NaN model. `diverged` holds {'epoch', 'batch', 'loss'} once it fired.
    """

    def __init__(self):
        super().__init__()
        self.diverged = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss) and self.diverged is None:
            self.diverged = {"epoch": self._epoch, "batch": int(batch), "loss": loss}
            self.model.stop_training = True


def _to_unit_range(maps):
    """Each map scaled to [0, 1] by its own extreme absolute value (0 maps to 0.5)."""
    scale = np.abs(maps).reshape(len(maps), -1).max(axis=1)
    scale = np.where(scale > 0, scale, 1.0).reshape(-1, *[1] * (maps.ndim - 1))
    return 0.5 + 0.5 * maps / scale


class ProbeMetrics(keras.callbacks.Callback):
    """Median alignment and linearized robustness on a fixed probe batch, each epoch.

    Adds `probe_alignment` and `probe_lin_robustness` to the epoch logs (so TensorBoard and the
    run history record them; list this callback before those) and writes the probe images and
    their saliency maps grad Psi^{i*} as a TensorBoard image summary.
    """

    def __init__(self, images, log_dir=None, max_images=8, display=None):
        super().__init__()
        self.images = np.asarray(images)
        self.max_images = max_images
        self.display = display or (lambda x: x)
        self.writer = tf.summary.create_file_writer(log_dir) if log_dir else None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not math.isfinite(float(logs.get("loss", 0.0))):
            return
        network = logits_network(self.model)
        # The probe images are training images, already checked against the dataset's box.
        r = metrics.measure(network, self.images, bounds=None, verbose=False,
                            return_maps=self.writer is not None)
        logs["probe_alignment"] = float(np.median(r["alignment"]))
        logs["probe_lin_robustness"] = float(np.median(r["lin_robustness"]))
        if self.writer is not None:
            k = min(self.max_images, len(self.images))
            images = np.clip(self.display(self.images[:k]), 0.0, 1.0)
            saliency = _to_unit_range(r["grad_pred"][:k])
            with self.writer.as_default():
                tf.summary.image("probe/images", images, step=epoch, max_outputs=k)
                tf.summary.image("probe/saliency", saliency, step=epoch, max_outputs=k)
            self.writer.flush()


class RunRecorder(keras.callbacks.Callback):
    """Keeps run.json's per-epoch history and progress current, written atomically each epoch.

    History is keyed by epoch, so an epoch repeated after a resume replaces its earlier row
    instead of duplicating it.
    """

    def __init__(self, path, record):
        super().__init__()
        self.path = path
        self.record = record

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        if "learning_rate" not in row:
            lr = self.model.optimizer.learning_rate
            row["learning_rate"] = float(lr(self.model.optimizer.iterations)
                                         if callable(lr) else keras.ops.convert_to_numpy(lr))
        history = [h for h in self.record.get("history", []) if h["epoch"] <= epoch]
        self.record["history"] = history + [row]
        self.record["epochs_completed"] = epoch + 1
        results.write_json(self.path, self.record)
