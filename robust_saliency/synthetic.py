"""The synthetic stand-in for MNIST-format data: ten fixed smooth class prototypes plus noise.

Small and learnable in seconds, so tests can train real models without any dataset on disk.
"""

import numpy as np

SIZES = {"train": 2_000, "validation": 500, "test": 500}
SPLITS = ("train", "validation", "test")
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
_SEED = 1_905_013


def prototypes():
    """Ten fixed smooth class images in [0, 1]: coarse 7x7 noise, upsampled and box-blurred."""
    rng = np.random.default_rng(_SEED)
    coarse = rng.uniform(size=(NUM_CLASSES, 7, 7))
    fine = np.kron(coarse, np.ones((4, 4)))
    padded = np.pad(fine, ((0, 0), (1, 1), (1, 1)), mode="edge")
    blurred = sum(padded[:, i:i + 28, j:j + 28] for i in range(3) for j in range(3)) / 9.0
    low = blurred.min(axis=(1, 2), keepdims=True)
    high = blurred.max(axis=(1, 2), keepdims=True)
    return ((blurred - low) / (high - low))[..., np.newaxis]


def arrays(split):
    """(float32 images (N, 28, 28, 1) in [0, 1], int64 labels) of `split`, balanced over the
    classes; one stream per split (same prototypes, other draws), identical on every call."""
    rng = np.random.default_rng([_SEED, SPLITS.index(split) + 1])
    n = SIZES[split]
    labels = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.int64)
    noisy = prototypes()[labels] + rng.normal(0.0, 0.3, size=(n,) + IMAGE_SHAPE)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32), labels
