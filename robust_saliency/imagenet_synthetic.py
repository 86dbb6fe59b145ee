"""A tiny synthetic ImageNet-shaped TFRecord set, so the ImageNet code path runs anywhere.

Images are JPEGs of varied sizes whose colour pattern encodes the class (learnable), labels are
stored 1-based like real ImageNet records, and the set is written once: an existing complete set
in the folder is kept.
"""

import numpy as np

from robust_saliency import imagenet_records


def write_synthetic_set(folder, *, num_train=64, num_validation=16, num_classes=10, seed=0,
                        num_shards=2):
    """Writes train-*/validation-* TFRecord shards into `folder` unless both already exist.

    Args:
      folder: destination folder.
      num_train, num_validation: examples per split.
      num_classes: labels used, 0..num_classes-1 of ImageNet's 1000.
      seed: the set is a function of the seed.
      num_shards: shards per split.

    Returns:
      The folder.
    """
    try:
        imagenet_records.shard_files(folder, "train")
        imagenet_records.shard_files(folder, "validation")
        return folder
    except FileNotFoundError:
        pass
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (num_classes, 2, 3))
    for split, count in (("train", num_train), ("validation", num_validation)):
        labels = np.arange(count) % num_classes
        images = []
        for label in labels:
            height, width = rng.integers(36, 72, 2)
            image = np.empty((height, width, 3), np.uint8)
            image[:, : width // 2] = palette[label, 0]
            image[:, width // 2:] = palette[label, 1]
            noise = rng.integers(-20, 21, image.shape)
            images.append(np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8))
        imagenet_records.write_tfrecords(folder, split, images, labels, num_shards=num_shards)
    return folder
