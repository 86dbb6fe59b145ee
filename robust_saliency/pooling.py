"""Max-pooling whose second derivative is fast on CPU, for double backpropagation.

Double backpropagation differentiates the max-pool's gradient, MaxPoolGrad, once more.
TensorFlow's kernel for that, MaxPoolGradGrad, is a single-threaded Eigen loop that re-finds
every window's maximum; in the profile of small_net's double-backprop step it sat alone on the
critical path (benchmarks/RESULTS.md: the train_step profile and the step with other max-pool
implementations). For
non-overlapping windows there is an exact replacement from fast oneDNN kernels: MaxPoolGrad(dy)
routes each window's dy to one position, so its adjoint sums the incoming ddx over each window
at the positions that routing marks, mask = MaxPoolGrad(ones), i.e. sum-pool(ddx * mask).

The forward pass and the first derivative are TensorFlow's own kernels, so values and gradients
are those of keras.layers.MaxPooling2D; only the kernel behind the second derivative differs.
"""

import keras
import tensorflow as tf


def _max_pool(x, ksize, strides, padding):
    """tf.nn.max_pool2d (NHWC) with the fast second derivative described in the module doc."""
    window = [1, *ksize, 1]
    step = [1, *strides, 1]

    def route(x, y, dy):
        return tf.raw_ops.MaxPoolGrad(orig_input=x, orig_output=y, grad=dy, ksize=window,
                                      strides=step, padding=padding)

    @tf.custom_gradient
    def first_derivative(x, y, dy):
        def adjoint(ddx):
            mask = route(x, y, tf.ones_like(y))
            area = float(ksize[0] * ksize[1])
            summed = area * tf.nn.avg_pool2d(ddx * mask, ksize, strides, padding)
            # MaxPoolGrad is piecewise constant in x and y: as TensorFlow's own gradient, zero.
            return tf.zeros_like(x), tf.zeros_like(y), summed

        return route(x, y, dy), adjoint

    @tf.custom_gradient
    def pool(x):
        y = tf.nn.max_pool2d(x, ksize, strides, padding)
        return y, lambda dy: first_derivative(x, y, dy)

    return pool(x)


@keras.saving.register_keras_serializable(package="robust_saliency")
class MaxPooling2D(keras.layers.MaxPooling2D):
    """keras.layers.MaxPooling2D with an exact, faster second derivative (module doc).

    The fast path needs non-overlapping 'valid' windows (strides == pool_size) in channels-last
    layout, where every input belongs to at most one window; anything else is Keras' layer.
    """

    def call(self, inputs):
        fast = (tuple(self.strides) == tuple(self.pool_size) and self.padding == "valid"
                and self.data_format == "channels_last")
        if not fast:
            return super().call(inputs)
        return _max_pool(inputs, tuple(self.pool_size), tuple(self.strides), "VALID")
