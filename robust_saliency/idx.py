"""IDX files (the format of MNIST and Fashion-MNIST): checked reading and atomic writing."""

import contextlib
import gzip
import math
import os
import struct
import tempfile
import zlib

import numpy as np

_IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}  # ndim -> magic; both mean unsigned bytes


class DataFormatError(ValueError):
    """A data file is malformed or truncated; the message names the file and the mismatch."""


def read_idx(path):
    """Reads one IDX file of unsigned bytes (gzipped if `path` ends in .gz).

    Returns:
      A uint8 array of the shape stored in the header: (N,) for labels, (N, H, W) for images.

    Raises:
      DataFormatError: bad gzip stream, unknown magic number, or a payload whose size does not
        match the header's dimensions exactly.
    """
    path = os.fspath(path)
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            data = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataFormatError(f"{path}: not a complete gzip stream ({e})") from e
    if len(data) < 4:
        raise DataFormatError(f"{path}: {len(data)} bytes, too short for the IDX magic number")
    (magic,) = struct.unpack(">I", data[:4])
    ndim = {m: n for n, m in _IDX_MAGIC.items()}.get(magic)
    if ndim is None:
        raise DataFormatError(f"{path}: magic number 0x{magic:08x}, expected 0x00000801 "
                              "(uint8 labels) or 0x00000803 (uint8 images)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFormatError(f"{path}: header truncated, expected {header} bytes for "
                              f"{ndim} dimensions, found {len(data)}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    size = math.prod(dims)
    if len(data) != header + size:
        raise DataFormatError(f"{path}: dimensions {dims} need {header + size} bytes "
                              f"({header} header + {size} payload), found {len(data)}")
    # frombuffer on bytes is read-only; callers get an array of their own.
    return np.frombuffer(data, np.uint8, count=size, offset=header).reshape(dims).copy()


def write_idx(path, array):
    """Writes `array` as an IDX file, atomically (gzipped if `path` ends in .gz).

    Args:
      path: destination file.
      array: uint8 array of ndim 1 (labels) or 3 (images).

    Raises:
      ValueError: `array` is not uint8 or has another ndim.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in _IDX_MAGIC:
        raise ValueError(f"IDX needs a uint8 array of ndim 1 or 3, got {array.dtype} "
                         f"with shape {array.shape}")
    path = os.fspath(path)
    payload = struct.pack(f">{1 + array.ndim}I", _IDX_MAGIC[array.ndim], *array.shape)
    payload += np.ascontiguousarray(array).tobytes()
    if path.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)  # mtime=0: same bytes for same data
    folder, base = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; data files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
