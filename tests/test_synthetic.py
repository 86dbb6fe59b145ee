"""The synthetic stand-in dataset: its shapes, balance, determinism and learnability."""

import numpy as np

from robust_saliency import data


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
