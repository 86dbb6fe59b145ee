"""Random draws that belong to an image: seeded by a seed and the image's own pixels.

A per-image number that needs random draws (SmoothGrad's noise, the explanation metrics' random
subsets, perturbations and classes) takes them from a stream keyed by (seed, the image's
content), so it depends on that image and the model alone: the same whether the image is
scored alone, among a thousand, in any order or batch size.
"""

import hashlib

import numpy as np


def keys(images, digest="sha256"):
    """One non-negative int per image from the hash of its pixels (as given, in their dtype and
    shape): by default sha256's first 63 bits, as int64. digest='blake2b' gives blake2b's 64
    bits as uint64: the key FAB's random restarts were drawn with when the committed cohorts'
    FAB distances were measured, kept so that they reproduce."""
    arr = np.ascontiguousarray(images)
    if digest == "blake2b":
        return np.array([int.from_bytes(hashlib.blake2b(image.tobytes(), digest_size=8).digest(),
                                        "little") for image in arr], dtype=np.uint64)
    if digest != "sha256":
        raise ValueError(f"digest must be 'sha256' or 'blake2b', got {digest!r}")
    return np.array([int.from_bytes(hashlib.sha256(image.tobytes()).digest()[:8], "little")
                     >> 1 for image in arr], dtype=np.int64)


def generators(seed, images, *, stream=(), digest="sha256"):
    """A numpy Generator per image, seeded by (seed, *stream, keys(images, digest)); `stream`
    separates independent draws of one image (FAB: the restart's number)."""
    return [np.random.default_rng([int(seed), *(int(s) for s in stream), int(k)])
            for k in keys(images, digest)]


def stateless(seed, images):
    """(N, 2) int64 seeds (seed, key) for TensorFlow's stateless random ops, one row per image."""
    k = keys(images)
    return np.stack([np.full(len(k), seed, dtype=np.int64), k], axis=1)
