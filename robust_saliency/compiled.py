"""Functions compiled once per network and kept with it: the one cache every kernel uses.

The metric kernels, the saliency methods and every attack trace a `tf.function` around a
network (a forward pass, its input gradient, a whole attack loop). Tracing costs seconds per
function (and Grappler's optimisation more for a deep network), so each is built once per
(network, key) and reused for every batch size. The cache holds the network weakly: an entry
goes when its network does, and a built function must reach its network through the weak
reference it is given, never hold it.
"""

from __future__ import annotations

import weakref
from typing import Any

_FUNCTIONS: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()


def per_network(network, key, build):
    """The function `build(ref)` made for `network` under `key`, built on first use.

    Args:
      network: a Keras model (any weakly referenceable object).
      key: hashable; what distinguishes this function from the network's others (e.g.
        ("attack", "alma") or (class_chunk, return_maps)).
      build: callable(ref) -> function, where ref() returns the network; the function must
        call ref() instead of holding the network, or the cache keeps it alive for good.
    """
    functions = _FUNCTIONS.setdefault(network, {})
    if key not in functions:
        functions[key] = build(weakref.ref(network))
    return functions[key]


def image_spec(network, dtype):
    """A TensorSpec of a batch of any size of `network`'s input images in `dtype`."""
    import tensorflow as tf  # here, so that the attack registry imports no TensorFlow

    return tf.TensorSpec([None, *network.input_shape[1:]], dtype)
