"""Datasets as arrays and tf.data pipelines: MNIST, Fashion-MNIST and a synthetic stand-in.

The paper's split (reference-notes.md): train on the first NUM_TRAIN of the 60,000 official
training images, validate on the rest; the official test set is available as 'test'. Sources for
the two MNIST-format sets, first usable one wins: `data_dir` (a folder of IDX files or a TFDS data
dir), then for Fashion-MNIST the Debian package folder, then TFDS (which downloads if it can).
"""

import functools
import operator
import os
import socket

import numpy as np
import tensorflow as tf

from robust_saliency.idx import DataFormatError, read_idx, write_idx  # noqa: F401 (public API)

DATASETS = ("mnist", "fashion_mnist", "synthetic", "imagenet")
SPLITS = ("train", "validation", "test")
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
NUM_TRAIN = 50_000
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
TFDS_DOWNLOAD_HOST = "storage.googleapis.com"  # where TFDS fetches MNIST-format data
SYNTHETIC_SIZES = {"train": 2_000, "validation": 500, "test": 500}

# Standard file names per official split, without the optional ".gz".
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SYNTHETIC_SEED = 1_905_013


class DataNotFoundError(FileNotFoundError):
    """No usable copy of a dataset; the message lists the places looked and the offline fix."""


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


def _load_tfds(name, split_spec, data_dir):
    """Loads one TFDS split whole as numpy (images uint8 (N, 28, 28, 1), integer labels).

    With `data_dir` None TFDS uses its default folder and may download; with a `data_dir` it
    must already hold a prepared copy. Tests replace this function to stay offline.
    """
    import tensorflow_datasets as tfds  # takes seconds to import; only this fallback needs it

    def load(download):
        return tfds.as_numpy(tfds.load(name, split=split_spec, data_dir=data_dir,
                                       as_supervised=True, batch_size=-1, download=download))

    if data_dir is not None:
        return load(download=False)
    try:
        return load(download=False)  # an already prepared copy needs no network
    except Exception:  # noqa: BLE001 - any failure here means "not prepared yet"
        if not _can_reach(TFDS_DOWNLOAD_HOST):
            raise ConnectionError(f"no network: {TFDS_DOWNLOAD_HOST} cannot be reached, and "
                                  "TFDS would retry for minutes before giving up") from None
        return load(download=True)


def _can_reach(host, port=443, timeout=3.0):
    """Whether a TCP connection to host:port opens within `timeout` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_fix(name):
    files = ", ".join(f"{base}.gz" for pair in IDX_FILES.values() for base in pair)
    steps = []
    if name == "fashion_mnist":
        steps.append("run `apt-get install dataset-fashion-mnist` (installs the files in "
                     f"{DEBIAN_FASHION_MNIST_DIR}, found without data_dir)")
    steps.append(f"download the four IDX files {files} into a folder and pass data_dir=FOLDER "
                 "(--data_dir=FOLDER on the command line)")
    if name == "mnist":
        steps.append("run the demo offline on Fashion-MNIST: `make demo DATASET=fashion_mnist`")
    return "Offline fix: " + "; or ".join(steps)


def _not_found(name, reason, looked):
    places = "".join(f"\n  - {place}" for place in looked)
    return DataNotFoundError(f"dataset {name!r} not found: {reason}.\nLooked in:{places}\n"
                             f"{_offline_fix(name)}.")


def _idx_files(folder):
    """Returns ({base name: path} of the standard files present, [missing base names])."""
    found = {}
    for base in (b for pair in IDX_FILES.values() for b in pair):
        for path in (os.path.join(folder, base + ".gz"), os.path.join(folder, base)):
            if base not in found and os.path.isfile(path):
                found[base] = path
    return found, [b for pair in IDX_FILES.values() for b in pair if b not in found]


def _idx_source(found):
    # Sizes and modification times in the cache key: files rewritten in-process are read again.
    stats = [os.stat(path) for path in found.values()]
    stamp = tuple((st.st_mtime_ns, st.st_size) for st in stats)
    return ("idx", tuple(found.items()), stamp)


def _resolve_source(name, data_dir):
    """Picks where `name` comes from. Returns (hashable source, places looked, for messages)."""
    if data_dir is not None:
        data_dir = os.path.abspath(os.fspath(data_dir))
        if not os.path.isdir(data_dir):
            raise _not_found(name, "data_dir is not a folder", [f"data_dir {data_dir}"])
        found, missing = _idx_files(data_dir)
        if found and missing:
            raise _not_found(name, f"data_dir lacks {', '.join(m + '[.gz]' for m in missing)}",
                             [f"data_dir {data_dir} (has {', '.join(sorted(found))})"])
        if found:
            return _idx_source(found), [f"data_dir {data_dir}"]
        if os.path.isdir(os.path.join(data_dir, name)):
            return ("tfds", data_dir, None), [f"TFDS data dir {data_dir}"]
        raise _not_found(name, "data_dir holds neither IDX files nor a TFDS copy",
                         [f"data_dir {data_dir} (no IDX files, no {name}/ subfolder)"])
    looked = []
    if name == "fashion_mnist":
        found, missing = _idx_files(DEBIAN_FASHION_MNIST_DIR)
        if not missing:
            return _idx_source(found), [f"Debian folder {DEBIAN_FASHION_MNIST_DIR}"]
        looked.append(f"Debian folder {DEBIAN_FASHION_MNIST_DIR} (absent or incomplete)")
    tfds_dir = os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))
    looked.append(f"TFDS data dir {tfds_dir} (then a TFDS download)")
    return ("tfds", None, None), ["data_dir (none given)"] + looked


@functools.lru_cache(maxsize=8)
def _official_split(name, official, source):
    """Reads one official split ('train' or 'test') once per process; arrays are read-only."""
    kind, where, _ = source
    if kind == "idx":
        paths = [dict(where)[base] for base in IDX_FILES[official]]
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        origin = " and ".join(paths)
    else:
        images, labels = _load_tfds(name, official, where)
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


def _official_arrays(name, official, data_dir):
    source, looked = _resolve_source(name, data_dir)
    if source[0] == "idx":
        return _official_split(name, official, source)
    try:
        return _official_split(name, official, source)
    except DataFormatError:
        raise
    except Exception as e:  # TFDS fails in many ways offline; all mean "not available here"
        raise _not_found(name, f"TFDS could not load it ({type(e).__name__}: {e})", looked) from e


def _synthetic_prototypes():
    """Ten fixed smooth class images in [0, 1]: coarse 7x7 noise, upsampled and box-blurred."""
    rng = np.random.default_rng(_SYNTHETIC_SEED)
    coarse = rng.uniform(size=(NUM_CLASSES, 7, 7))
    fine = np.kron(coarse, np.ones((4, 4)))
    padded = np.pad(fine, ((0, 0), (1, 1), (1, 1)), mode="edge")
    blurred = sum(padded[:, i:i + 28, j:j + 28] for i in range(3) for j in range(3)) / 9.0
    low = blurred.min(axis=(1, 2), keepdims=True)
    high = blurred.max(axis=(1, 2), keepdims=True)
    return ((blurred - low) / (high - low))[..., np.newaxis]


def _synthetic(split):
    # One stream per split: same prototypes, different draws, identical on every call.
    rng = np.random.default_rng([_SYNTHETIC_SEED, SPLITS.index(split) + 1])
    n = SYNTHETIC_SIZES[split]
    labels = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.int64)
    noisy = _synthetic_prototypes()[labels] + rng.normal(0.0, 0.3, size=(n,) + IMAGE_SHAPE)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32), labels


def load_arrays(name, split, data_dir=None, num_examples=None, image_size=None, source=None):
    """Loads one split of a dataset into memory.

    Args:
      name: one of DATASETS.
      split: 'train' (first NUM_TRAIN official training images), 'validation' (the remaining
        official training images) or 'test' (the official test set).
      data_dir: a folder with the four standard IDX files (.gz or not) or a TFDS data dir; None
        searches the default places. Ignored for 'synthetic'.
      num_examples: keep only the first `num_examples` of the split (all of it when None or
        when the split is smaller).
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
        images, labels = _synthetic(split)
        return images[:num_examples], labels[:num_examples]
    if name == "imagenet":
        from robust_saliency import imagenet

        if data_dir is None:
            raise DataNotFoundError("dataset 'imagenet' needs data_dir: a folder of TFRecord "
                                    "shards (train-*-of-*, validation-*-of-*) (--data_dir).")
        return imagenet.load_arrays(split, data_dir, num_examples=num_examples,
                                    source=source or "tfrecord",
                                    image_size=image_size or imagenet.IMAGE_SIZE)
    images, labels = _official_arrays(name, "test" if split == "test" else "train", data_dir)
    if split != "test":
        if len(images) <= NUM_TRAIN:
            raise DataFormatError(f"{name}: the official training set has {len(images)} images, "
                                  f"too few to split at NUM_TRAIN={NUM_TRAIN}")
        part = slice(None, NUM_TRAIN) if split == "train" else slice(NUM_TRAIN, None)
        images, labels = images[part], labels[part]
    images, labels = images[:num_examples], labels[:num_examples]
    # Both conversions allocate, so the cached read-only arrays are never handed out.
    return images.astype(np.float32) / np.float32(255.0), labels.astype(np.int64)


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
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def load_dataset(name, split, batch_size, *, data_dir=None, num_examples=None, shuffle=False,
                 seed=0):
    """`load_arrays` then `make_dataset`; see those for the arguments.

    Returns:
      A `tf.data.Dataset` of (float32 images, int64 labels) batches.
    """
    images, labels = load_arrays(name, split, data_dir=data_dir, num_examples=num_examples)
    return make_dataset(images, labels, batch_size, shuffle=shuffle, seed=seed)
