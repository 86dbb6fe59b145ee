"""Random draws that belong to an image: seeded by a seed and the image's own pixels.

A per-image number that needs random draws (SmoothGrad's noise, the explanation metrics' random
subsets, perturbations and classes) takes them from a stream keyed by (seed, the image's
content), so it depends on that image and the model alone: the same whether the image is
scored alone, among a thousand, in any order or batch size.
"""

import hashlib

import numpy as np


def keys(images):
    """One non-negative int64 per image: the first 63 bits of the sha256 of its pixels (as
    given, in their dtype and shape)."""
    arr = np.ascontiguousarray(images)
    return np.array([int.from_bytes(hashlib.sha256(image.tobytes()).digest()[:8], "little")
                     >> 1 for image in arr], dtype=np.int64)


def generators(seed, images):
    """A numpy Generator per image, seeded by (seed, keys(images))."""
    return [np.random.default_rng([int(seed), int(k)]) for k in keys(images)]


def stateless(seed, images):
    """(N, 2) int64 seeds (seed, key) for TensorFlow's stateless random ops, one row per image."""
    k = keys(images)
    return np.stack([np.full(len(k), seed, dtype=np.int64), k], axis=1)
