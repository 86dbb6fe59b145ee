"""Random streams that belong to an image: keyed by the seed and the image's pixels alone."""

import numpy as np

from robust_saliency import image_seeds


def _images(n=5, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 4, 4, 1)).astype(np.float32)


def test_an_images_stream_does_not_depend_on_its_neighbours_or_position():
    x = _images()
    alone = image_seeds.generators(7, x[2:3])[0].random(6)
    among = image_seeds.generators(7, x)[2].random(6)
    elsewhere = image_seeds.generators(7, np.roll(x, 1, axis=0))[3].random(6)  # x[2] moved to 3
    np.testing.assert_array_equal(alone, among)
    np.testing.assert_array_equal(alone, elsewhere)
    np.testing.assert_array_equal(image_seeds.stateless(7, x)[2],
                                  image_seeds.stateless(7, x[2:3])[0])


def test_the_stream_changes_with_the_seed_the_pixels_and_the_dtype():
    x = _images()
    first = image_seeds.generators(0, x[:1])[0].random(4)
    assert not np.array_equal(first, image_seeds.generators(1, x[:1])[0].random(4))
    moved = x[:1].copy()
    moved[0, 0, 0, 0] += 1e-3
    assert not np.array_equal(first, image_seeds.generators(0, moved)[0].random(4))
    assert image_seeds.keys(x[:1])[0] != image_seeds.keys(x[:1].astype(np.float64))[0]


def test_keys_are_non_negative_int64_and_equal_images_share_them():
    x = _images(3)
    keys = image_seeds.keys(np.concatenate([x, x[:1]]))
    assert keys.dtype == np.int64 and np.all(keys >= 0)
    assert keys[0] == keys[3] and len(set(keys[:3].tolist())) == 3
    seeds = image_seeds.stateless(5, x)
    assert seeds.shape == (3, 2) and seeds.dtype == np.int64
    np.testing.assert_array_equal(seeds[:, 0], 5)
    np.testing.assert_array_equal(seeds[:, 1], keys[:3])
