"""The ImageNet input pipeline: TFRecord shards or TFDS imagenet2012 -> preprocessed tf.data.

Preprocessing as in the authors' code for the ResNet50 that Etmann et al. (2019), Section 4,
fine-tune: 256x256 crops (training: a random short-side rescale to 256..512, hue jitter and
flips; evaluation: a centre crop after a short-side resize), ending in the "caffe" convention of
keras.applications.resnet50.preprocess_input: BGR minus the channel means, no scaling, so pixels
lie in [-123.68, 151.061], inside the attack box BOUNDS. TFRecord shards use the common layout
of tensorflow/models' build_imagenet_data.py (robust_saliency.imagenet_records reads and writes
it).
"""

import os

import numpy as np
import tensorflow as tf

from robust_saliency import imagenet_records
from robust_saliency.imagenet_records import TFDS_TARS, check_split, decode

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
BOUNDS = (-130.0, 155.0)
IMAGE_SIZE = 256
SOURCES = ("tfrecord", "tfds")
HUE_MAX_DELTA = 0.06
SHUFFLE_BUFFER = 10_000  # serialized examples (~110 kB each for ImageNet): ~1 GB of host memory

_SHARD_POLICY = tf.data.experimental.AutoShardPolicy
_PIPELINE_SEED_STRIDE = 1_000_003  # worker k augments with seed + k * stride


def _caffe(rgb):
    """float RGB in [0, 255] -> BGR minus CAFFE_MEAN_BGR (keras resnet50 'caffe' mode)."""
    return rgb[..., ::-1] - tf.constant(CAFFE_MEAN_BGR, tf.float32)


def _resize_short_side(image, size):
    """Bilinear, antialiased resize keeping the aspect ratio, the short side becoming `size`."""
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
    scale = tf.cast(size, tf.float64) / tf.minimum(height, width)
    # float64: h * (size / h) rounds back to exactly `size` on the short side.
    new_size = tf.cast(tf.round(tf.stack([height * scale, width * scale])), tf.int32)
    new_size = tf.maximum(new_size, tf.cast(size, tf.int32))
    resized = tf.image.resize(image, new_size, method="bilinear", antialias=True)
    return tf.clip_by_value(resized, 0.0, 255.0)


def preprocess_eval(image_uint8, image_size=IMAGE_SIZE):
    """Evaluation preprocessing: short side to `image_size`, centre crop, caffe BGR means.

    Args:
      image_uint8: uint8 RGB image (H, W, 3).
      image_size: side S of the square output.

    Returns:
      float32 (S, S, 3), BGR minus CAFFE_MEAN_BGR.
    """
    resized = _resize_short_side(tf.convert_to_tensor(image_uint8), image_size)
    shape = tf.shape(resized)
    top, left = (shape[0] - image_size) // 2, (shape[1] - image_size) // 2
    crop = resized[top:top + image_size, left:left + image_size]
    return tf.ensure_shape(_caffe(crop), (image_size, image_size, 3))


def preprocess_train(image_uint8, seed, image_size=IMAGE_SIZE):
    """Training augmentation, then caffe BGR means; all draws stateless, from `seed`.

    Short side to a size uniform in [S, 2S] (the paper's 256..512), random S x S crop, hue shift
    of up to HUE_MAX_DELTA turns, left-right flip with probability 1/2.

    Args:
      image_uint8: uint8 RGB image (H, W, 3).
      seed: shape-[2] integer tensor; the same seed gives the same output.
      image_size: side S of the square output.

    Returns:
      float32 (S, S, 3), BGR minus CAFFE_MEAN_BGR.
    """
    seeds = tf.random.experimental.stateless_split(tf.convert_to_tensor(seed), num=4)
    short = tf.random.stateless_uniform([], seeds[0], minval=image_size,
                                        maxval=2 * image_size + 1, dtype=tf.int32)
    resized = _resize_short_side(tf.convert_to_tensor(image_uint8), short)
    crop = tf.image.stateless_random_crop(resized, (image_size, image_size, 3), seeds[1])
    # The [0, 1] scale is the documented input range of the hue op (the hue itself is scale-free).
    hued = tf.image.stateless_random_hue(crop / 255.0, HUE_MAX_DELTA, seeds[2])
    flipped = tf.image.stateless_random_flip_left_right(tf.clip_by_value(hued, 0.0, 1.0),
                                                        seeds[3])
    return tf.ensure_shape(_caffe(flipped * 255.0), (image_size, image_size, 3))


def to_display(x):
    """Undoes the caffe step for showing images: adds the means, BGR -> RGB, / 255, clips.

    Args:
      x: preprocessed images (..., 3), numpy array or tensor.

    Returns:
      float32 RGB in [0, 1], numpy for numpy input, a tensor for a tensor.
    """
    if tf.is_tensor(x):
        rgb = (tf.cast(x, tf.float32) + tf.constant(CAFFE_MEAN_BGR, tf.float32))[..., ::-1]
        return tf.clip_by_value(rgb / 255.0, 0.0, 1.0)
    rgb = (np.asarray(x, np.float32) + np.asarray(CAFFE_MEAN_BGR, np.float32))[..., ::-1]
    return np.clip(rgb / np.float32(255.0), 0.0, 1.0)


def _tfds_stream(data_dir, split, shuffle_files, seed):
    """(JPEG bytes, label) from TFDS imagenet2012, prepared from the tar files if needed."""
    from robust_saliency import optional

    # Slow to import; only this source needs it.
    tfds = optional.require("tensorflow_datasets", "reading ImageNet through TFDS")

    data_dir = os.fspath(data_dir)
    tars = f"{TFDS_TARS['train']} and {TFDS_TARS['validation']}"
    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    if not builder.is_prepared():
        if not tf.io.gfile.exists(os.path.join(data_dir, TFDS_TARS[split])):
            raise FileNotFoundError(
                f"TFDS imagenet2012 is not prepared in {data_dir} and {TFDS_TARS[split]} is "
                f"not there to prepare its {split!r} split. Put the manual-download files {tars} "
                f"(from https://image-net.org) in {data_dir}, or use source='tfrecord'.")
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=data_dir))
    if split not in builder.info.splits:
        raise FileNotFoundError(
            f"TFDS imagenet2012 in {builder.data_dir} was prepared without the {split!r} split "
            f"({TFDS_TARS[split]} was missing). Delete that folder and put both {tars} in "
            f"{data_dir} to prepare it again.")
    # Eval: one file at a time, so the order is the stored order of the examples.
    order = {} if shuffle_files else {"interleave_cycle_length": 1}
    return builder.as_dataset(split=split, shuffle_files=shuffle_files, as_supervised=True,
                              decoders={"image": tfds.decode.SkipDecoding()},
                              read_config=tfds.ReadConfig(shuffle_seed=seed, **order))


def dataset(split, batch_size, *, data_dir, source="tfrecord", training=None,
            image_size=IMAGE_SIZE, num_examples=None, seed=0, drop_remainder=False,
            label_offset=1, shuffle_buffer=SHUFFLE_BUFFER, input_context=None):
    """A batched, prefetched tf.data pipeline of preprocessed ImageNet images.

    Training shuffles the files and the examples and augments with preprocess_train, each
    example's seed drawn from `seed`, new ones each epoch; evaluation reads the files in sorted
    order, record after record, and applies preprocess_eval, so its order is fixed.

    Several workers: with `input_context` (distribute_datasets_from_function) each decodes only
    its share. Without it, training and subset pipelines ask for auto-sharding by DATA (each
    worker decodes all): by FILE fails on the seed stream and a subset would be N per worker.

    Args:
      split: 'train' or 'validation'.
      batch_size: examples per batch (per pipeline when `input_context` is given).
      data_dir: folder of TFRecord shards (source 'tfrecord') or the TFDS data and
        manual-download folder (source 'tfds').
      source: one of SOURCES.
      training: augment and shuffle; defaults to split == 'train'.
      image_size: side S of the square images.
      num_examples: only the first N examples in file order, taken before shuffling: a fixed
        subset, the same in every epoch and for every seed.
      seed: seed of the file order, the shuffle buffer and the augmentation.
      drop_remainder: drop a last, smaller batch.
      label_offset: see imagenet_records.parse_example ('tfrecord' only; TFDS labels are 0-based).
      shuffle_buffer: examples in the training shuffle buffer (held serialized).
      input_context: optional tf.distribute.InputContext.

    Returns:
      tf.data.Dataset of (float32 images (B, S, S, 3), int64 labels (B,)).

    Raises:
      ValueError: unknown split or source, or negative num_examples.
      FileNotFoundError: no data in `data_dir` (the message says how to provide it).
    """
    check_split(split)
    if source not in SOURCES:
        raise ValueError(f"unknown ImageNet source {source!r}; valid sources: "
                         f"{', '.join(SOURCES)}")
    if num_examples is not None and num_examples < 0:
        raise ValueError(f"num_examples must be None or >= 0, got {num_examples}")
    training = split == "train" if training is None else training
    shuffle_files = training and num_examples is None
    if source == "tfrecord":
        records = imagenet_records.stream(data_dir, split, shuffle_files, seed, label_offset)
    else:
        records = _tfds_stream(data_dir, split, shuffle_files, seed)
    if num_examples is not None:
        records = records.take(num_examples)
    options = tf.data.Options()
    if input_context is not None:
        # Same file order on every worker (same seed so far), so the shards are disjoint.
        records = records.shard(input_context.num_input_pipelines,
                                input_context.input_pipeline_id)
        seed = seed + _PIPELINE_SEED_STRIDE * input_context.input_pipeline_id
        options.experimental_distribute.auto_shard_policy = _SHARD_POLICY.OFF
    elif training or num_examples is not None:
        options.experimental_distribute.auto_shard_policy = _SHARD_POLICY.DATA
    if training:
        records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        # One [2] seed per example, new ones each epoch, the whole sequence fixed by `seed`.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        images = tf.data.Dataset.zip(records, seeds).map(
            lambda record, pair: (preprocess_train(decode(record[0]), pair, image_size),
                                  record[1]),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        images = records.map(
            lambda encoded, label: (preprocess_eval(decode(encoded), image_size), label),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    images = images.batch(batch_size, drop_remainder=drop_remainder)
    return images.prefetch(tf.data.AUTOTUNE).with_options(options)


def load_arrays(split, data_dir, *, source="tfrecord", image_size=IMAGE_SIZE, num_examples=None,
                label_offset=1, batch_size=64):
    """The first `num_examples` images of a split in memory, with evaluation preprocessing.

    Args:
      split, data_dir, source, image_size, num_examples, label_offset: as for dataset(); the
        order is the deterministic evaluation order, also for 'train'. A split smaller than
        `num_examples` is returned whole. Mind the memory: 1,000 images of 256 take 786 MB.
      batch_size: examples decoded per step (no effect on the result).

    Returns:
      (images, labels): float32 (N, S, S, 3) caffe BGR and int64 (N,).
    """
    batches = dataset(split, batch_size, data_dir=data_dir, source=source, training=False,
                      image_size=image_size, num_examples=num_examples,
                      label_offset=label_offset)
    images = [np.zeros((0, image_size, image_size, 3), np.float32)]
    labels = [np.zeros((0,), np.int64)]
    for x, y in batches.as_numpy_iterator():
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)
