"""Tests for robust_saliency.idx, through data's re-exports (data.read_idx, data.write_idx,
data.DataFormatError): IDX files round trip, and truncated or malformed ones are named."""

import gzip
import os

import numpy as np
import pytest

from robust_saliency import data


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 5, 4)])
def test_idx_round_trip(tmp_path, suffix, shape):
    array = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path / f"file{suffix}"
    data.write_idx(path, array)
    assert os.listdir(tmp_path) == [path.name]  # the temporary file was renamed, not left over
    back = data.read_idx(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # the result belongs to the caller


def test_write_idx_gz_is_gzip_and_plain_is_not(tmp_path):
    array = np.arange(5, dtype=np.uint8)
    data.write_idx(tmp_path / "a.gz", array)
    data.write_idx(tmp_path / "a", array)
    plain = (tmp_path / "a").read_bytes()
    assert plain[:4] == b"\x00\x00\x08\x01"
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == plain


@pytest.mark.parametrize("array", [np.zeros((2, 3), np.uint8), np.zeros(4, np.float32)])
def test_write_idx_rejects_other_arrays(tmp_path, array):
    with pytest.raises(ValueError, match="uint8"):
        data.write_idx(tmp_path / "x", array)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("cut", [2, 10, -1])
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_truncated_idx_raises_with_filename(tmp_path, suffix, cut):
    path = tmp_path / f"train-images-idx3-ubyte{suffix}"
    data.write_idx(tmp_path / "full", np.ones((2, 28, 28), np.uint8))
    raw = (tmp_path / "full").read_bytes()[:cut]
    path.write_bytes(gzip.compress(raw) if suffix else raw)
    with pytest.raises(data.DataFormatError, match="train-images-idx3-ubyte"):
        data.read_idx(path)


def test_truncated_gzip_stream_raises(tmp_path):
    path = tmp_path / "labels.gz"
    data.write_idx(path, np.arange(200, dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(data.DataFormatError, match="labels.gz"):
        data.read_idx(path)


def test_trailing_bytes_raise(tmp_path):
    path = tmp_path / "labels"
    data.write_idx(path, np.arange(3, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(data.DataFormatError, match="found 12"):
        data.read_idx(path)


def test_wrong_magic_raises_with_filename(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"\x00" * 12)
    with pytest.raises(data.DataFormatError, match=r"t10k-labels-idx1-ubyte.*0x00000d01"):
        data.read_idx(path)
