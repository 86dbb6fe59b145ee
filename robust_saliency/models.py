"""The paper's networks, all mapping images to logits (the score functions Psi).

`small_net` is the authors' MNIST network (reference-notes.md). `linear_classifier` and
`small_net(use_bias=False)` are the exact cases of the theory: for the first Lemma 1 holds
globally, for the second every logit is positive one-homogeneous (Lemma 2).
"""

import keras
from keras import layers

from robust_saliency import pooling

MNIST_SHAPE = (28, 28, 1)


def small_net(input_shape=MNIST_SHAPE, num_classes=10, *, use_bias=True, dropout=0.5,
              dtype=None, name="small_net"):
    """The authors' MNIST network: three conv/max-pool stages, Dense 128, dropout, logits.

    Conv 32/64/128 3x3 same ReLU, each followed by 2x2 max-pooling (valid padding, so 28 -> 14 ->
    7 -> 3), Dense 128 ReLU, Dropout 0.5
    (active only with training=True), Dense `num_classes` linear.

    Args:
      input_shape: image shape (H, W, C).
      num_classes: number of logits.
      use_bias: False drops every bias, which makes each logit positive one-homogeneous in the
        input (ReLU and max-pooling commute with positive scaling), the setting of Lemma 2.
      dropout: dropout rate before the last layer.
      dtype: layer dtype policy (None: Keras' default float32); the theory tests use "float64"
        so that exact identities are checked far below float32 round-off.
      name: model name.

    Returns:
      An uncompiled functional `keras.Model` from images to logits.
    """
    inputs = keras.Input(shape=input_shape, dtype=dtype, name="image")
    h = inputs
    for width in (32, 64, 128):
        h = layers.Conv2D(width, 3, padding="same", activation="relu", use_bias=use_bias,
                          dtype=dtype)(h)
        h = pooling.MaxPooling2D(2, dtype=dtype)(h)
    h = layers.Flatten(dtype=dtype)(h)
    h = layers.Dense(128, activation="relu", use_bias=use_bias, dtype=dtype)(h)
    h = layers.Dropout(dropout, dtype=dtype)(h)
    logits = layers.Dense(num_classes, use_bias=use_bias, dtype=dtype, name="logits")(h)
    return keras.Model(inputs, logits, name=name)


def linear_classifier(input_shape=MNIST_SHAPE, num_classes=10, *, use_bias=True, dtype=None,
                      name="linear"):
    """Psi(x) = W x + b: the multi-class linear case, where rho = rho_tilde = alpha_dagger.

    Args:
      input_shape: image shape.
      num_classes: number of logits.
      use_bias: whether Psi is affine (True) or linear (False).
      dtype: layer dtype policy (None: Keras' default).
      name: model name.

    Returns:
      An uncompiled `keras.Model` from images to logits.
    """
    inputs = keras.Input(shape=input_shape, dtype=dtype, name="image")
    h = layers.Flatten(dtype=dtype)(inputs)
    logits = layers.Dense(num_classes, use_bias=use_bias, dtype=dtype, name="logits")(h)
    return keras.Model(inputs, logits, name=name)


def small_bn_net(input_shape=MNIST_SHAPE, num_classes=10, *, dtype=None, name="small_bn_net"):
    """A small conv net with BatchNormalization, for Theorem 1 with moving means as biases.

    Conv 8 -> BN -> ReLU -> MaxPool -> Conv 16 -> BN -> ReLU -> Flatten -> Dense logits.

    Returns:
      An uncompiled `keras.Model` from images to logits.
    """
    inputs = keras.Input(shape=input_shape, dtype=dtype, name="image")
    h = inputs
    for width in (8, 16):
        h = layers.Conv2D(width, 3, padding="same", dtype=dtype)(h)
        h = layers.BatchNormalization(momentum=0.999, dtype=dtype)(h)
        h = layers.ReLU(dtype=dtype)(h)
        h = pooling.MaxPooling2D(2, dtype=dtype)(h)
    h = layers.Flatten(dtype=dtype)(h)
    logits = layers.Dense(num_classes, dtype=dtype, name="logits")(h)
    return keras.Model(inputs, logits, name=name)


def resnet50(input_shape=(256, 256, 3), num_classes=1000, *, weights=None, bn_momentum=0.999,
             name="resnet50"):
    """keras.applications ResNet50 returning logits (the scores Psi are pre-softmax).

    Args:
      input_shape: image shape; any size >= 32, since the top is global pooling + Dense.
      num_classes: logits; 1000 to load ImageNet weights.
      weights: None (random), 'imagenet' (Keras' pretrained weights, fetched once into
        ~/.keras/models), or the path of a weights file (.h5/.weights.h5) for this architecture.
      bn_momentum: moving-average momentum of every batch-norm layer (0.999 as the authors).
      name: model name.

    Returns:
      An uncompiled Keras model from caffe-preprocessed BGR images to logits.

    Raises:
      WeightsUnavailableError: 'imagenet' weights cannot be fetched (no network, no cached file).
    """
    import keras.applications

    network = keras.applications.ResNet50(
        include_top=True, weights=None, input_shape=input_shape, classes=num_classes,
        classifier_activation=None, name=name)
    for layer in network.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = bn_momentum
    if weights == "imagenet":
        _load_imagenet_weights(network)
    elif weights is not None:
        network.load_weights(weights)
    return network


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be fetched; the message names the offline alternative."""


def _load_imagenet_weights(network):
    """Copies Keras' ImageNet ResNet50 weights into `network` (any input size: the convolutions
    and the Dense top do not depend on it, but Keras builds the pretrained model at 224 only)."""
    import keras.applications

    if network.output_shape[-1] != 1000:
        raise ValueError("ImageNet weights need num_classes=1000")
    try:
        pretrained = keras.applications.ResNet50(weights="imagenet", classifier_activation=None)
    except Exception as e:  # noqa: BLE001 - urllib, HTTP and OS errors all mean "not fetched"
        raise WeightsUnavailableError(
            "could not fetch the ImageNet ResNet50 weights "
            f"({type(e).__name__}: {e}). Offline: copy "
            "resnet50_weights_tf_dim_ordering_tf_kernels.h5 into ~/.keras/models/ on this "
            "machine, or pass weights=PATH (--weights=PATH) to a weights file of this "
            "architecture.") from e
    network.set_weights(pretrained.get_weights())


BUILDERS = {"small_net": small_net, "linear": linear_classifier, "small_bn_net": small_bn_net,
            "resnet50": resnet50}


def build(name, input_shape, num_classes, **options):
    """The network registered under `name` (BUILDERS), for images of `input_shape`."""
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; valid: {sorted(BUILDERS)}")
    return BUILDERS[name](input_shape, num_classes, **options)
