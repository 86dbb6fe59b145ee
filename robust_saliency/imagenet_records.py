"""ImageNet's TFRecord layout: reading, writing and finding the shards.

The common layout of tensorflow/models' build_imagenet_data.py: files `<split>-NNNNN-of-NNNNN`
of tf.train.Examples with 'image/encoded' (JPEG) and 'image/class/label' (1..1000; 0 was that
script's background class). It and TFDS number classes in sorted-synset order, the order of the
Keras ImageNet weights. The pipeline that preprocesses them is robust_saliency.imagenet.
"""

import os

import numpy as np
import tensorflow as tf

NUM_CLASSES = 1000
SPLITS = ("train", "validation")
JPEG_QUALITY = 95
TFDS_TARS = {"train": "ILSVRC2012_img_train.tar", "validation": "ILSVRC2012_img_val.tar"}

_ENCODED = "image/encoded"
_LABEL = "image/class/label"
_NO_LABEL = -(2 ** 62)  # default marking a missing label feature
_READ_CYCLE = 16  # files read at once while training: enough mixing and read-ahead
_HOW_TO_PROVIDE = (
    "Provide TFRecord shards in the common ImageNet layout ('image/encoded' JPEG bytes, "
    "'image/class/label' 1..1000), e.g. written by tensorflow/models' build_imagenet_data.py "
    "from the ILSVRC2012 tar files; or pass source='tfds' with data_dir holding "
    f"{TFDS_TARS['train']} and {TFDS_TARS['validation']}; or make a tiny synthetic set with "
    "robust_saliency.imagenet_records.write_tfrecords.")


def check_split(split: str) -> None:
    """Raises ValueError naming the valid splits unless `split` is one of SPLITS."""
    if split not in SPLITS:
        raise ValueError(f"unknown ImageNet split {split!r}; valid splits: {', '.join(SPLITS)}")


def decode(encoded: tf.Tensor) -> tf.Tensor:
    """uint8 RGB (H, W, 3) of encoded JPEG (or PNG, or greyscale) bytes."""
    # decode_image also reads PNG and greyscale files; channels=3 gives RGB in every case.
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def _parse(serialized, label_offset, filename):
    """Returns (JPEG bytes, 0-based int64 label) of one record; errors name `filename`."""
    # Defaults instead of required features, so that the error can name the file.
    features = tf.io.parse_single_example(serialized, {
        _ENCODED: tf.io.FixedLenFeature([], tf.string, default_value=""),
        _LABEL: tf.io.FixedLenFeature([], tf.int64, default_value=_NO_LABEL),
    })
    encoded, label = features[_ENCODED], features[_LABEL] - label_offset
    where = ["ImageNet record"] if filename is None else ["ImageNet record in", filename]
    checks = [
        tf.debugging.Assert(tf.strings.length(encoded) > 0,
                            where + [f"has no (or an empty) '{_ENCODED}'"]),
        tf.debugging.Assert(features[_LABEL] != _NO_LABEL, where + [f"has no '{_LABEL}'"]),
        tf.debugging.Assert(
            tf.logical_and(label >= 0, label < NUM_CLASSES),
            where + [f"has '{_LABEL}' - label_offset ({label_offset}) =", label,
                     f"outside 0..{NUM_CLASSES - 1}; is label_offset right?"]),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(encoded), tf.identity(label)


def parse_example(serialized, label_offset=1, filename=None):
    """Parses and decodes one serialized tf.train.Example of the common ImageNet layout.

    Args:
      serialized: scalar string tensor.
      label_offset: subtracted from 'image/class/label': 1 for the common 1-based files, 0 for
        files already 0-based.
      filename: the file named in error messages, if known.

    Returns:
      (uint8 RGB image (H, W, 3), int64 label in 0..NUM_CLASSES - 1).

    Raises:
      tf.errors.InvalidArgumentError: a feature is missing or the label is out of range.
    """
    encoded, label = _parse(serialized, label_offset, filename)
    return decode(encoded), label


def _serialize(image, label):
    """One tf.train.Example in the common layout: JPEG bytes, size, label stored 1-based."""
    def ints(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    def text(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    jpeg = tf.io.encode_jpeg(image, quality=JPEG_QUALITY).numpy()
    return tf.train.Example(features=tf.train.Features(feature={
        _ENCODED: text(jpeg), "image/format": text(b"JPEG"), "image/height": ints(image.shape[0]),
        "image/width": ints(image.shape[1]), "image/channels": ints(3), _LABEL: ints(label + 1),
    })).SerializeToString()


def write_tfrecords(folder, split, images_uint8, labels, num_shards=2):
    """Writes images in the common ImageNet TFRecord layout, e.g. a tiny synthetic set.

    Shards hold contiguous runs of the examples, so the shards read in sorted order give them
    back in the order given. Each shard is written under a hidden temporary name and then
    renamed, so readers never see half a shard.

    Args:
      folder: destination folder (created if missing).
      split: one of SPLITS; files are named `<split>-%05d-of-%05d`.
      images_uint8: sequence of uint8 RGB images (H, W, 3); sizes may differ.
      labels: 0-based class indices (stored 1-based).
      num_shards: number of files (>= 1).

    Returns:
      The shard paths, in order.

    Raises:
      ValueError: bad split, shard count, image or label.
    """
    check_split(split)
    images = [np.asarray(image) for image in images_uint8]
    labels = np.asarray(labels)
    bad = [i for i, x in enumerate(images) if x.dtype != np.uint8 or x.shape[2:] != (3,)]
    if bad:
        raise ValueError(f"images {bad} are not uint8 (H, W, 3)")
    if (len(images) != len(labels) or not np.issubdtype(labels.dtype, np.integer)
            or (labels.size and not 0 <= labels.min() <= labels.max() < NUM_CLASSES)):
        raise ValueError(f"need one integer label in 0..{NUM_CLASSES - 1} per image, got "
                         f"{labels.size} labels of dtype {labels.dtype} for {len(images)} images")
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for shard, indices in enumerate(np.array_split(np.arange(len(images)), num_shards)):
        name = f"{split}-{shard:05d}-of-{num_shards:05d}"
        path, tmp = os.path.join(folder, name), os.path.join(folder, f".{name}.{os.getpid()}.tmp")
        try:
            with tf.io.TFRecordWriter(tmp) as writer:
                for i in indices:
                    writer.write(_serialize(images[i], labels[i]))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        paths.append(path)
    return paths


def shard_files(folder, split):
    """The TFRecord shards `<split>-*-of-*` in `folder`, sorted (also GCS and other gfile paths).

    Raises:
      ValueError: unknown split.
      FileNotFoundError: `folder` is missing or holds no shard of `split`; the message names the
        folder, the pattern and how to provide the data.
    """
    check_split(split)
    folder = os.fspath(folder)
    pattern = f"{split}-*-of-*"
    if not tf.io.gfile.isdir(folder):
        raise FileNotFoundError(f"ImageNet data_dir {folder} is not a folder (looked for "
                                f"{pattern!r} shards there). {_HOW_TO_PROVIDE}")
    files = sorted(tf.io.gfile.glob(os.path.join(folder, pattern)))
    if not files:
        raise FileNotFoundError(f"no ImageNet TFRecord shards matching {pattern!r} in "
                                f"{folder}. {_HOW_TO_PROVIDE}")
    return files


def stream(data_dir, split, shuffle_files, seed, label_offset):
    """(JPEG bytes, label) of every record: files one after another, or shuffled and mixed."""
    files = shard_files(data_dir, split)
    names = tf.data.Dataset.from_tensor_slices(files)

    def read(filename):
        return tf.data.TFRecordDataset(filename).map(lambda record: (record, filename))

    if shuffle_files:
        names = names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        records = names.interleave(read, cycle_length=min(len(files), _READ_CYCLE),
                                   num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        records = names.flat_map(read)  # whole files in sorted order: "the first N" is stable
    return records.map(lambda record, filename: _parse(record, label_offset, filename),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
