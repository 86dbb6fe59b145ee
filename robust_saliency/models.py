"""The paper's networks, all mapping images to logits (the score functions Psi).

`small_net` is the authors' MNIST network (the paper's appendix and the authors' code), `resnet50`
their ImageNet one (the pretrained ResNet50 that Etmann et al. (2019), Section 4, fine-tune) and
`resnet_cifar` the small-image ResNet of He et al. (2016) for their ImageNet protocol on small
images. `linear_classifier` and `small_net(use_bias=False)` are the exact cases of the theory:
for the first Lemma 1 holds globally, for the second every logit is positive one-homogeneous
(Lemma 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import layers, ops

from robust_saliency import pooling

if TYPE_CHECKING:
    from collections.abc import Callable

MNIST_SHAPE = (28, 28, 1)


def small_net(input_shape: tuple[int, ...] = MNIST_SHAPE, num_classes: int = 10, *,
              use_bias: bool = True, dropout: float = 0.5, dtype: str | None = None,
              name: str = "small_net") -> keras.Model:
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


def linear_classifier(input_shape: tuple[int, ...] = MNIST_SHAPE, num_classes: int = 10, *,
                      use_bias: bool = True, dtype: str | None = None,
                      name: str = "linear") -> keras.Model:
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


def small_bn_net(input_shape: tuple[int, ...] = MNIST_SHAPE, num_classes: int = 10, *,
                 dtype: str | None = None, name: str = "small_bn_net") -> keras.Model:
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


@keras.saving.register_keras_serializable(package="robust_saliency")
class ZeroPadShortcut(layers.Layer):
    """He et al.'s option-A shortcut: x[:, ::s, ::s, :] with zero channels appended up to
    `filters`. Linear and parameter-free, so a ResNet built with it keeps every additive
    parameter in its convolutions' batch norms and its Dense logits (Theorem 1)."""

    def __init__(self, filters, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.strides = int(filters), int(strides)

    def call(self, x):
        x = x[:, ::self.strides, ::self.strides, :]
        extra = self.filters - x.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        size = [None if d is None else -(-d // self.strides) for d in (h, w)]
        return (n, *size, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


def resnet_cifar(input_shape: tuple[int, ...] = MNIST_SHAPE, num_classes: int = 10, *,
                 depth: int = 20, bn_momentum: float = 0.999, dtype: str | None = None,
                 name: str | None = None) -> keras.Model:
    """The CIFAR ResNet of He et al. (2016, Sec. 4.2), batch-normalised, returning logits.

    A 3x3 convolution of 16 filters, then three stages of n = (depth - 2) / 6 basic blocks
    (two 3x3 convolutions each) of 16, 32 and 64 filters, every convolution followed by batch
    norm (and ReLU, the block's second after the shortcut is added); the first convolution of
    the second and third stage has stride 2. Shortcuts are identities, and where a block halves
    the size and doubles the filters He et al.'s option A (ZeroPadShortcut: subsampling and
    zero channels, no parameters). Global average pooling, Dense `num_classes` logits. No
    max-pooling and no dropout; the convolutions have no bias (batch norm's beta is theirs).
    Kernels are He-normal initialised, as in the paper.

    Args:
      input_shape: image shape (H, W, C); Fashion-MNIST's 28 x 28 gives stages of 28, 14, 7.
      num_classes: number of logits.
      depth: 6n + 2 layers with weights: 20 (n = 3, 0.27M parameters), 32, 44, 56, 110, ...
      bn_momentum: moving-average momentum of every batch norm (0.999 as the authors).
      dtype: layer dtype policy (None: Keras' default float32; "float64" for the theory tests).
      name: model name (None: 'resnet<depth>').

    Returns:
      An uncompiled functional `keras.Model` from images to logits.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, ...), got {depth}")
    blocks = (depth - 2) // 6

    def conv_bn(h, filters, strides=1):
        h = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                          kernel_initializer="he_normal", dtype=dtype)(h)
        return layers.BatchNormalization(momentum=bn_momentum, dtype=dtype)(h)

    inputs = keras.Input(shape=input_shape, dtype=dtype, name="image")
    h = layers.ReLU(dtype=dtype)(conv_bn(inputs, 16))
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            shortcut = h if strides == 1 else ZeroPadShortcut(filters, strides, dtype=dtype)(h)
            r = layers.ReLU(dtype=dtype)(conv_bn(h, filters, strides))
            r = conv_bn(r, filters)
            h = layers.ReLU(dtype=dtype)(layers.Add(dtype=dtype)([shortcut, r]))
    h = layers.GlobalAveragePooling2D(dtype=dtype)(h)
    logits = layers.Dense(num_classes, dtype=dtype, name="logits")(h)
    return keras.Model(inputs, logits, name=name or f"resnet{depth}")


def resnet50(input_shape: tuple[int, ...] = (256, 256, 3), num_classes: int = 1000, *,
             weights: str | None = None, bn_momentum: float = 0.999,
             name: str = "resnet50") -> keras.Model:
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


BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "small_net": small_net, "linear": linear_classifier, "small_bn_net": small_bn_net,
    "resnet_cifar": resnet_cifar, "resnet50": resnet50}


def build_network(name: str, input_shape: tuple[int, ...], num_classes: int,
                  **options: Any) -> keras.Model:
    """The network registered under `name` (BUILDERS), for images of `input_shape`."""
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; valid: {sorted(BUILDERS)}")
    return BUILDERS[name](input_shape, num_classes, **options)


build = build_network  # the library's own name for it (robust_saliency.build_network)
MODELS = BUILDERS  # robust_saliency.MODELS
