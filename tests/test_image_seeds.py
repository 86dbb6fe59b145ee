"""Random streams that belong to an image: keyed by the seed and the image's pixels alone."""

import hashlib

import numpy as np
import pytest

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


def test_fabs_restart_streams_keep_the_key_their_distances_were_drawn_with():
    # FAB's committed distances were drawn from blake2b keys: changing the hash would change
    # every restart's noise, and so the distances.
    x = _images(2)
    expected = int.from_bytes(hashlib.blake2b(x[1].tobytes(), digest_size=8).digest(), "little")
    keys = image_seeds.keys(x, digest="blake2b")
    assert keys.dtype == np.uint64 and int(keys[1]) == expected
    drawn = image_seeds.generators(3, x, stream=(1,), digest="blake2b")[1].random(4)
    np.testing.assert_array_equal(drawn, np.random.default_rng([3, 1, expected]).random(4))
    other_restart = image_seeds.generators(3, x, stream=(2,), digest="blake2b")[1].random(4)
    assert not np.array_equal(drawn, other_restart)


def test_an_unknown_digest_is_refused():
    with pytest.raises(ValueError, match="'sha256' or 'blake2b'"):
        image_seeds.keys(_images(1), digest="md5")
