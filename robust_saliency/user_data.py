"""A user's images and model from the forms a command line gives them (experiments.report).

Images: an `.npz` file (arrays `x` or `images`, optionally `y` or `labels`), a folder of image
files (PNG/JPEG; in class subfolders, sorted by name, for labels), or a registered dataset's
split as `<dataset>:<split>` (e.g. `fashion_mnist:validation`). Models: a `.keras` file, a run
folder, or a released checkpoint as `<cohort>:<lambda>[:<seed>]` (e.g. `mnist_converged:10`).
"""

import os

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def load_model(spec):
    """The Keras model named by `spec` (see the module docstring).

    Raises:
      FileNotFoundError: no such file, folder or checkpoint, with the forms accepted.
    """
    import keras

    from robust_saliency import checkpoints, runs

    if spec.endswith(".keras") and os.path.isfile(spec):
        return keras.models.load_model(spec)
    if os.path.isdir(spec):
        return runs.load_model(spec)
    parts = spec.split(":")
    if len(parts) in (2, 3) and not os.path.exists(spec):
        try:
            lam, seed = float(parts[1]), int(parts[2]) if len(parts) == 3 else 0
        except ValueError:
            lam = None
        if lam is not None:
            return checkpoints.pretrained(parts[0], lam, seed)
    raise FileNotFoundError(f"no model {spec!r}: give a .keras file, a run folder, or a "
                            "released checkpoint as <cohort>:<lambda>[:<seed>], e.g. "
                            "mnist_converged:10.")


def load_images(spec, *, num_images=None, image_shape=None):
    """(images, labels or None, bounds or None, dataset or None) from `spec`.

    Args:
      spec: an .npz path, an image folder, or `<dataset>:<split>`.
      num_images: keep the first N (None: all).
      image_shape: (H, W, C) to read image files at (a model's input shape).

    Raises:
      FileNotFoundError / ValueError: naming what was looked for.
    """
    from robust_saliency import data

    if spec.endswith(".npz"):
        x, y = _npz(spec)
        bounds, dataset = None, None
    elif os.path.isdir(spec):
        x, y = _folder(spec, image_shape)
        bounds, dataset = (0.0, 1.0), None
    elif ":" in spec and spec.split(":", 1)[0] in data.DATASETS:
        dataset, split = spec.split(":", 1)
        x, y = data.load_arrays(dataset, split, num_examples=num_images)
        bounds = data.bounds(dataset)
    else:
        raise FileNotFoundError(f"no images {spec!r}: give an .npz file (x, optional y), a "
                                "folder of image files, or <dataset>:<split> with a dataset "
                                f"of {', '.join(data.DATASETS)}.")
    if num_images is not None:
        x = x[:num_images]
        y = None if y is None else y[:num_images]
    return x, y, bounds, dataset


def _npz(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found.")
    with np.load(path) as arrays:
        keys = set(arrays.files)
        image_key = next((k for k in ("x", "images") if k in keys), None)
        if image_key is None:
            raise ValueError(f"{path} holds {sorted(keys)}; name the images array 'x' or "
                             "'images' (and the labels 'y' or 'labels').")
        label_key = next((k for k in ("y", "labels") if k in keys), None)
        return arrays[image_key], None if label_key is None else arrays[label_key]


def _folder(folder, image_shape):
    import keras

    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    sources = [(os.path.join(folder, c), i) for i, c in enumerate(classes)] or [(folder, None)]
    files, labels = [], []
    for where, label in sources:
        for name in sorted(os.listdir(where)):
            if name.lower().endswith(IMAGE_SUFFIXES):
                files.append(os.path.join(where, name))
                labels.append(label)
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {folder} "
                                "or its class subfolders.")
    mode = "grayscale" if image_shape is not None and image_shape[-1] == 1 else "rgb"
    size = tuple(image_shape[:2]) if image_shape is not None else None
    x = np.stack([keras.utils.img_to_array(keras.utils.load_img(f, color_mode=mode,
                                                                target_size=size))
                  for f in files]) / 255.0
    return x.astype(np.float32), (np.array(labels) if classes else None)
