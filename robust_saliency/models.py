"""The paper's networks, all mapping images to logits (the score functions Psi).

`small_net` is the authors' MNIST network (reference-notes.md). `linear_classifier` and
`small_net(use_bias=False)` are the exact cases of the theory: for the first Lemma 1 holds
globally, for the second every logit is positive one-homogeneous (Lemma 2).
"""

import keras
from keras import layers

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
        h = layers.MaxPooling2D(2, dtype=dtype)(h)
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
        h = layers.MaxPooling2D(2, dtype=dtype)(h)
    h = layers.Flatten(dtype=dtype)(h)
    logits = layers.Dense(num_classes, dtype=dtype, name="logits")(h)
    return keras.Model(inputs, logits, name=name)


BUILDERS = {"small_net": small_net, "linear": linear_classifier, "small_bn_net": small_bn_net}


def build(name, input_shape, num_classes, **options):
    """The network registered under `name` (BUILDERS), for images of `input_shape`."""
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; valid: {sorted(BUILDERS)}")
    return BUILDERS[name](input_shape, num_classes, **options)
