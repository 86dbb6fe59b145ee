"""The logits Psi of a user's classifier, where its last layer turns them into probabilities.

Every identity of the paper (Theorem 1's decomposition, the bounds of Theorems 2-3, rho_tilde)
is about the logits. A Keras classifier often ends in a softmax, as the keras-io examples do;
measuring its probabilities instead would give numbers that look plausible and are wrong. So
every entry point that takes a model goes through `logits_network`, which measures the logits
before a final softmax / sigmoid / log-softmax, and `check_logits` refuses outputs that are
still probabilities (a subclassed model, whose last operation cannot be found and removed).
"""

from __future__ import annotations

import weakref

import keras
import numpy as np

#: Final activations `logits_model` removes (Keras names).
SQUASHING = ("softmax", "sigmoid", "log_softmax")

_UNWRAPPED: weakref.WeakKeyDictionary[keras.Model, keras.Model] = weakref.WeakKeyDictionary()


@keras.saving.register_keras_serializable(package="robust_saliency")
class Preactivation(keras.layers.Wrapper):
    """The wrapped layer's output before its activation, with the wrapped layer's own weights
    (training either trains both)."""

    def call(self, inputs):
        activation = self.layer.activation
        # Swapped for the length of the call only: the layer stays the user's, with its weights.
        self.layer.activation = keras.activations.linear
        try:
            return self.layer(inputs)
        finally:
            self.layer.activation = activation

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def _name(function):
    return getattr(function, "__name__", None)


def _final_layer(model):
    """(the operation producing the model's single output, its input tensor), or None when the
    model has no graph to read them from (subclassed, or Sequential without an input shape)."""
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1:
        return None
    history = getattr(outputs[0], "_keras_history", None)
    if history is None:
        return None
    operation, node_index = history[0], history[1]
    inputs = operation._inbound_nodes[node_index].input_tensors
    return (operation, inputs[0]) if len(inputs) == 1 else None


def squashing(model):
    """The name of the final activation `logits_model` would remove, or None."""
    final = _final_layer(model)
    if final is None:
        return None
    layer = final[0]
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    name = _name(getattr(layer, "activation", None))
    return name if name in SQUASHING else None


def logits_model(model: keras.Model) -> keras.Model:
    """`model` without its final softmax, sigmoid or log-softmax: a Keras model from the same
    inputs to the logits before it, sharing `model`'s layers and weights. A model without one
    is returned as it is.

    The activation is found as the activation of the layer that produces the output (e.g.
    `Dense(10, activation="softmax")`) or as a final `Softmax` / `Activation` layer; a
    subclassed model has no such graph, and `check_logits` tells whether its outputs are
    probabilities.
    """
    kind = squashing(model)
    if kind is None:
        return model
    layer, inputs = _final_layer(model)
    if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
        logits = inputs
    else:
        logits = Preactivation(layer, name=f"{layer.name}_logits")(inputs)
    # A lone input as a tensor, not a one-element list: called on a tensor, Keras otherwise
    # warns on every call that the input structure does not match.
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, logits, name=f"{model.name}_logits")


def check_single_output(model):
    """Raises a ValueError naming the fix where a functional model has more than one output or a
    dict of outputs: the paper's quantities need one (N, classes) logits tensor. A subclassed
    model has no output graph to check before it is called."""
    try:
        outputs, structure = model.outputs, model.output
    except (AttributeError, ValueError):
        return
    if isinstance(structure, dict):
        found = f"returns a dict of outputs ({', '.join(map(str, structure))})"
    elif outputs and len(outputs) > 1:
        found = f"has {len(outputs)} outputs"
    else:
        return
    raise ValueError(f"{model.name} {found}; measuring and training need one tensor of logits "
                     "(N, classes). Pass the classifier's head alone, e.g. "
                     "keras.Model(model.inputs, model.outputs[0]).")


def logits_network(model):
    """The images-to-logits network behind `model`: a training wrapper's `.network`, without a
    final squashing activation (`logits_model`); the same object on every call for one model, so
    the kernels compiled for it are reused."""
    model = getattr(model, "network", model)
    check_single_output(model)
    if model in _UNWRAPPED:
        return _UNWRAPPED[model]
    unwrapped = logits_model(model)
    if unwrapped is not model:
        # Only a distinct logits model is kept: the model itself as the value of its own weak
        # key would keep it alive for ever (a cohort evaluates model after model).
        _UNWRAPPED[model] = unwrapped
    return unwrapped


def looks_like_probabilities(outputs, atol=1e-4):
    """Whether every row is non-negative and sums to 1 (to `atol`), as softmax outputs do."""
    outputs = np.asarray(outputs, dtype=np.float64)
    return bool(outputs.ndim == 2 and outputs.shape[-1] >= 2 and np.all(outputs >= 0)
                and np.allclose(outputs.sum(axis=-1), 1.0, rtol=0.0, atol=atol))


def check_logits(model, images):
    """Raise if `model` maps `images` (a few suffice) to probabilities rather than logits.

    Raises:
      ValueError: the outputs are probabilities; the message says how to pass the logits.
    """
    outputs = model(images, training=False)
    if looks_like_probabilities(keras.ops.convert_to_numpy(outputs)):
        raise ValueError(
            f"model '{model.name}' outputs probabilities (every row is non-negative and sums to "
            "1), but the paper's quantities are defined on the logits before the softmax. Pass "
            "a model that returns the logits: drop the final softmax (e.g. return the last "
            "Dense layer's output and apply softmax only in the loss, "
            "from_logits=True); functional and Sequential models ending in a softmax are "
            "unwrapped automatically (robust_saliency.logits_model).")
