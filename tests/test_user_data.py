"""Images and models from the forms a command line gives them."""

import os

import keras
import numpy as np
import pytest

from robust_saliency import user_data


def test_npz_with_either_key_names(tmp_path):
    x, y = np.random.default_rng(0).uniform(0, 1, (5, 4, 4, 1)), np.arange(5)
    np.savez(tmp_path / "a.npz", images=x, labels=y)
    got, labels, bounds, dataset = user_data.load_images(str(tmp_path / "a.npz"), num_images=3)
    np.testing.assert_array_equal(got, x[:3])
    np.testing.assert_array_equal(labels, y[:3])
    assert bounds is None and dataset is None
    np.savez(tmp_path / "b.npz", pixels=x)
    with pytest.raises(ValueError, match="name the images array 'x' or 'images'"):
        user_data.load_images(str(tmp_path / "b.npz"))


def test_folder_with_class_subfolders_gives_labels_in_unit_range(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        os.makedirs(tmp_path / name)
        for i in range(2):
            pixels = rng.integers(0, 256, (6, 6, 1)).astype("float32")
            keras.utils.save_img(str(tmp_path / name / f"{i}.png"), pixels, scale=False)
    x, y, bounds, _ = user_data.load_images(str(tmp_path), image_shape=(6, 6, 1))
    assert x.shape == (4, 6, 6, 1) and 0 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(y, [0, 0, 1, 1])
    assert bounds == (0.0, 1.0)
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no image files"):
        user_data.load_images(str(tmp_path / "empty"))


def test_dataset_split_and_unknown_forms():
    x, y, bounds, dataset = user_data.load_images("synthetic:validation", num_images=7)
    assert len(x) == len(y) == 7 and dataset == "synthetic" and bounds == (0.0, 1.0)
    with pytest.raises(FileNotFoundError, match="<dataset>:<split>"):
        user_data.load_images("nowhere:validation")


def test_models_by_file_and_by_released_checkpoint(tmp_path):
    from robust_saliency import checkpoints, models

    path = str(tmp_path / "m.keras")
    models.linear_classifier().save(path)
    assert isinstance(user_data.load_model(path), keras.Model)
    lam, seed, _, has_weights = checkpoints.members("mnist_quick")[0]
    assert has_weights
    assert user_data.load_model(f"mnist_quick:{lam}").built
    with pytest.raises(FileNotFoundError, match="<cohort>:<lambda>"):
        user_data.load_model("not_a_model")
