"""RobustModel: any logits network trained with an input-gradient penalty (double backprop).

The step follows the Keras 'customizing fit' pattern: the penalty's own inner tape inside the
outer tape, `keras.metrics.Mean` trackers, build and compile inside `strategy.scope()`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from robust_saliency import input_checks, logits, results

if TYPE_CHECKING:
    from robust_saliency.train_config import PenaltyConfig

TRACKERS = ("loss", "nll", "penalty", "weight_norm", "accuracy")


@keras.saving.register_keras_serializable(package="robust_saliency")
class RobustModel(keras.Model):
    """A logits network whose training loss is NLL + penalty + weight decay.

    loss = mean_i [NLL_i + P_i] + weight_decay * sum of squared trainable weights, with P the
    per-example penalty (see penalties.GradientNormPenalty for the two lambda conventions and the
    factor B^2 between them).

    Distribution: each replica sums its own per-example terms and divides by the *global* batch
    size, and adds weight_decay / num_replicas of the weight term; Keras sums the replicas'
    gradients, so one step equals the single-device step on the global batch (for batch-norm-free
    networks; with batch norm each replica normalises by its own batch statistics). The penalty
    of an image depends on that image alone (and on its batch only through batch norm in
    training mode): 'batch_mean' divides by a fixed B, never by the batch at hand.

    Args:
      network: Keras model from images to logits. A functional or Sequential network ending in
        a softmax/sigmoid is trained on the logits before it (logits.logits_model: the same
        layers and weights); one whose outputs are still probabilities raises ValueError.
      penalty: a train_config.PenaltyConfig, or the name of a registered penalty
        (penalties.PENALTIES; default 'gradient_norm') with the other PenaltyConfig fields as
        keyword arguments of their own names: lam, options, convention, batch_size,
        sensitivity_mode. E.g. RobustModel(network, lam=1.0) (per image, eq. 17),
        RobustModel(network, lam=100.0, convention="batch_mean", batch_size=100) (the paper's
        MNIST scale) or RobustModel(network, penalty="alignment", lam=10.0). lam = 0 is exactly
        ordinary training. A None sensitivity_mode takes the penalty's own form
        (penalties.default_sensitivity): 'nll' for gradient_norm, gradient_l1 and pgd_l2 (the
        paper's double backpropagation), 'logits' for alignment.
      weight_decay: coefficient on the sum of squared trainable weights (the authors' form).
      **kwargs: the PenaltyConfig fields (above), then keras.Model's own (name, ...).
    """

    def __init__(self, network: keras.Model, *, penalty: PenaltyConfig | str | None = None,
                 weight_decay: float = 0.0, **kwargs: Any) -> None:
        # Imported here: importing keras registers this class (robust_saliency/__init__.py)
        # while models.py, which train_config needs, may itself be importing keras.
        from robust_saliency import train_config

        fields = train_config.PenaltyConfig.field_names() - {"name"}
        given = {k: kwargs.pop(k) for k in list(kwargs) if k in fields}
        if isinstance(penalty, train_config.PenaltyConfig):
            if given:
                raise TypeError(f"RobustModel: give {', '.join(given)} in the PenaltyConfig, "
                                "not beside it")
        else:
            if penalty is not None:
                given["name"] = penalty
            penalty = train_config.PenaltyConfig(**given)
        super().__init__(**kwargs)
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        logits.check_single_output(network)
        self.network = logits.logits_model(network)
        self.weight_decay = float(weight_decay)
        self.penalty_config = penalty
        self.penalty = penalty.build()
        self.trackers = {name: keras.metrics.Mean(name=name) for name in TRACKERS}
        # The wrapper has no weights of its own: it is built once its network is (a functional
        # network is at construction). Loading a saved model relies on it: Keras's
        # compile_from_config builds the optimizer's slots only for a built model, and otherwise
        # skips loading them ("Skipping variable loading for optimizer"), losing the momentum.
        self.built = bool(network.built)
        if getattr(self.network, "inputs", None):
            _check_logits(self.network, self.network.inputs[0].shape)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.trackers.values())

    def compile(self, optimizer: str | keras.optimizers.Optimizer = "rmsprop", loss: Any = None,
                metrics: Any = None, **kwargs: Any) -> None:
        """keras.Model.compile with the optimizer and run options only: the loss is NLL +
        penalty + weight decay and the tracked metrics are TRACKERS, so a `loss` or `metrics`
        would be silently ignored and is refused instead."""
        if loss is not None or metrics is not None or kwargs.get("weighted_metrics"):
            raise ValueError(
                "RobustModel computes its own loss (NLL + penalty + weight decay) and tracks "
                f"{', '.join(TRACKERS)}; compile it with the optimizer alone, e.g. "
                "robust.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9)).")
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        # Keras skips compiling a loaded model whose compile is overridden (losing the
        # optimizer's slots); this compile takes the saved config as Keras's own would.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, *args: Any, callbacks: list[keras.callbacks.Callback] | None = None,
            **kwargs: Any) -> keras.callbacks.History:
        """keras.Model.fit, stopping at the first non-finite loss (keras.callbacks.
        TerminateOnNaN is added unless one is given): a diverged step leaves NaN weights, and
        every later number would be NaN."""
        callbacks = list(callbacks or [])
        if not any(isinstance(c, keras.callbacks.TerminateOnNaN) for c in callbacks):
            callbacks.append(keras.callbacks.TerminateOnNaN())
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3 (3.15) builds a distributed model before fit by all-reducing a sample batch
        # eagerly, which raises under MultiWorkerMirroredStrategy ("Attempt to convert a value
        # (PerReplica...)"). A RobustModel built with its optimizer (runs.build_model does so)
        # needs no symbolic build: it has no compiled loss or metrics.
        if self.built and self.optimizer is not None and self.optimizer.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def build(self, input_shape: tuple[int | None, ...] | None = None) -> None:
        if not self.network.built:
            self.network.build(input_shape)
            if input_shape is not None:
                _check_logits(self.network, input_shape)
        self.built = True

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.network(images, training=training)

    def weight_norm_squared(self, dtype: tf.DType | str) -> tf.Tensor:
        return tf.add_n([tf.reduce_sum(tf.square(tf.cast(v, dtype)))
                         for v in self.network.trainable_variables])

    def _loss_terms(self, images, labels, training):
        if labels.shape.rank not in (None, 1):  # checked while tracing, before the first step
            raise ValueError(
                f"labels must be class indices of shape (batch,), got shape {labels.shape}; "
                "for one-hot labels pass np.argmax(labels, axis=1).")
        # Differentiate w.r.t. images in the network's own dtype (Keras feeds floatx).
        images = tf.cast(images, input_checks.input_dtype(self.network))
        logits, nll, penalty = self.penalty(self.network, images, labels, training=training)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        global_batch = tf.cast(tf.shape(images)[0] * replicas, nll.dtype)
        weights = self.weight_norm_squared(nll.dtype)
        loss = tf.reduce_sum(nll + penalty) / global_batch + self.weight_decay / replicas * weights
        return loss, logits, nll, penalty, weights

    def _update_trackers(self, labels, logits, nll, penalty, weights):
        hit = tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32),
                               tf.cast(labels, tf.int32)), tf.float32)
        per_example = nll + penalty
        self.trackers["loss"].update_state(per_example + self.weight_decay * weights)
        self.trackers["nll"].update_state(nll)
        self.trackers["penalty"].update_state(penalty)
        self.trackers["weight_norm"].update_state(tf.sqrt(weights))
        self.trackers["accuracy"].update_state(hit)
        logs = {name: m.result() for name, m in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 averages step outputs across workers along axis 0, which scalars lack.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def train_step(self, data: tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        images, labels = data[0], data[1]
        with tf.GradientTape() as tape:
            loss, logits, nll, penalty, weights = self._loss_terms(images, labels, training=True)
        variables = self.network.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return self._update_trackers(labels, logits, nll, penalty, weights)

    def test_step(self, data: tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        images, labels = data[0], data[1]
        _, logits, nll, penalty, weights = self._loss_terms(images, labels, training=False)
        return self._update_trackers(labels, logits, nll, penalty, weights)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "network": keras.saving.serialize_keras_object(self.network),
            "penalty": results.jsonable(dataclasses.asdict(self.penalty_config)),
            "weight_decay": self.weight_decay,
        })
        return config

    @classmethod
    def from_config(cls, saved: dict[str, Any]) -> RobustModel:
        from robust_saliency import train_config

        saved = dict(saved)
        penalty = saved.pop("penalty", None)
        complete = isinstance(penalty, dict) and (
            set(penalty) == train_config.PenaltyConfig.field_names())
        if not complete:
            raise results.OldLayoutError(
                "this RobustModel was saved by an older robust_saliency (its penalty is not a "
                "complete PenaltyConfig); rewrite its results folder once with: "
                f"{results.UPGRADE_COMMAND} <folder>")
        network = keras.saving.deserialize_keras_object(saved.pop("network"))
        return cls(network, penalty=train_config.PenaltyConfig(**penalty), **saved)


def _check_logits(network, input_shape):
    # Softmax outputs sum to 1 at any input, so two random images expose them.
    if all(d is not None for d in tuple(input_shape)[1:]):
        shape = (2, *tuple(input_shape)[1:])
        images = tf.random.stateless_uniform(shape, (0, 0), dtype=input_checks.input_dtype(network))
        logits.check_logits(network, images)


def sgd(learning_rate, momentum):
    """SGD with momentum, as in both of the paper's setups."""
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)


def step_decay(initial, *, steps_per_epoch, every_epochs, factor):
    """initial * factor ** floor(epoch / every_epochs): the MNIST schedule (x0.1 every 80 epochs).

    A Keras schedule on the optimizer's step counter, so it resumes with the optimizer state.
    """
    return keras.optimizers.schedules.ExponentialDecay(
        initial, decay_steps=steps_per_epoch * every_epochs, decay_rate=factor, staircase=True)


def plateau_state(values, *, patience, max_decays=None, min_delta=1e-4):
    """Where a plateau schedule stands after epochs whose monitored values are `values`.

    An epoch improves when its value is below the best so far by more than `min_delta`; after
    `patience` epochs in a row without improvement the learning rate is divided (a decay) and
    the count restarts; the plateau after `max_decays` decays (None: never) ends training.
    A pure function of the recorded values, so a resumed run continues exactly as an
    uninterrupted one (Keras' ReduceLROnPlateau keeps its counters in memory only).

    Returns:
      (decays so far, whether training has stopped).
    """
    best, wait, decays = math.inf, 0, 0
    for value in values:
        if value < best - min_delta:
            best, wait = value, 0
            continue
        wait += 1
        if wait >= patience:
            if max_decays is not None and decays >= max_decays:
                return decays, True
            decays, wait = decays + 1, 0
    return decays, False


class PlateauSchedule(keras.callbacks.Callback):
    """Learning rate initial * factor ** decays, decays following plateau_state of the
    validation loss; stops training at the plateau after `max_decays` decays.

    Args:
      initial: the starting learning rate.
      history: the run's recorded epoch rows (run.json 'history'), read at every epoch end:
        the state is recomputed from them, never kept.
      factor: the learning rate's factor at each decay.
      patience: as in plateau_state.
      max_decays: as in plateau_state.
      min_delta: as in plateau_state.
      monitor: the logged value to watch.
    """

    def __init__(self, initial, history, *, factor=0.1, patience=2, max_decays=None,
                 min_delta=1e-4, monitor="val_loss"):
        super().__init__()
        self.initial, self.history, self.factor = initial, history, factor
        self.options = dict(patience=patience, max_decays=max_decays, min_delta=min_delta)
        self.monitor = monitor

    def state(self, rows):
        return plateau_state([row[self.monitor] for row in rows], **self.options)

    def _apply(self, decays):
        self.model.optimizer.learning_rate = self.initial * self.factor ** decays

    def on_train_begin(self, logs=None):
        self._apply(self.state(self.history())[0])

    def on_epoch_end(self, epoch, logs=None):
        # The rate this epoch trained with, before a decay changes it for the next one.
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(
            self.model.optimizer.learning_rate))
        rows = [r for r in self.history() if r["epoch"] <= epoch]
        rows.append({self.monitor: float(logs[self.monitor])})
        decays, stopped = self.state(rows)
        self._apply(decays)
        self.model.stop_training = self.model.stop_training or stopped
