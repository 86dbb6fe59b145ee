"""The on-disk schema of runs and evaluations, written atomically.

A run folder holds `run.json` (configuration, versions, status, per-epoch history), `model.keras`,
TensorBoard logs under `tb/`, and once evaluated `per_image.csv`, `summary.json` and
`robust_accuracy.csv`. Every write goes to a temporary file in the same folder and is moved into
place with os.replace, so a reader (or a rerun after a kill) sees the old file or the new one,
never half of one.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import tempfile
from typing import Any

import numpy as np

COHORT_JSON = "cohort.json"
COHORT_CSV = "cohort.csv"
RUN_JSON = "run.json"
MODEL_FILE = "model.keras"
# The trained network's weights alone (about 1 MB for small_net), committed beside the results
# they produced; run.json's "trained_weights" holds its sha256.
WEIGHTS_FILE = "model.weights.h5"
PER_IMAGE_CSV = "per_image.csv"
SUMMARY_JSON = "summary.json"
ROBUST_ACCURACY_CSV = "robust_accuracy.csv"
ROBUST_ACCURACY_LINF_CSV = "robust_accuracy_linf.csv"
MAPS_NPZ = "maps.npz"
TIMINGS_JSON = "timings.json"
# What an evaluation writes into a run folder (evaluation.py): all of it describes one model.
EVALUATION_FILES = (PER_IMAGE_CSV, SUMMARY_JSON, ROBUST_ACCURACY_CSV, ROBUST_ACCURACY_LINF_CSV,
                    MAPS_NPZ, TIMINGS_JSON)
TENSORBOARD_DIR = "tb"
BACKUP_DIR = "backup"


# --- The layout version ------------------------------------------------------------------
# run.json and cohort.json carry the layout they were written in. The library reads exactly this
# one; `python -m experiments.upgrade_results <folder>` (robust_saliency.upgrade) rewrites older
# folders once.
SCHEMA_VERSION = 2
SCHEMA_KEY = "schema_version"
UPGRADE_COMMAND = "python -m experiments.upgrade_results"
VERSIONED_FILES = (RUN_JSON, COHORT_JSON)


class OldLayoutError(ValueError):
    """A results file written in a layout this version no longer reads; the message names the
    upgrade command."""


def check_layout(path, content):
    """Raises OldLayoutError unless `content` (of run.json or cohort.json at `path`) is in the
    current layout (SCHEMA_VERSION); returns it."""
    version = content.get(SCHEMA_KEY) if isinstance(content, dict) else None
    if version == SCHEMA_VERSION:
        return content
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise OldLayoutError(f"{path} has layout version {version}, newer than this "
                             f"robust_saliency's {SCHEMA_VERSION}; update robust_saliency.")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(os.path.join(os.path.dirname(folder), COHORT_JSON)):
        folder = os.path.dirname(folder)  # a cohort's member: the cohort is upgraded as one
    raise OldLayoutError(f"{path} is in an older layout (version {version or 1}, this "
                         f"robust_saliency reads {SCHEMA_VERSION}); rewrite the folder once "
                         f"with: {UPGRADE_COMMAND} {folder}")


def markdown_table(header, rows):
    """A Markdown table (no trailing newline) of `header` and `rows` of cells, each cell str()-ed
    with its pipes escaped, so that a norm like ||g|| cannot split a column."""
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(r) for r in rows)])


def is_linf(column):
    """Whether a result column holds L-infinity distances: their names end in '_linf' (the
    L-inf attack methods are named so, see attacks.NORMS); the others are L2."""
    return column.endswith("_linf")


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; on success moves it onto `path`, else deletes it."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    # The whole extension ('.weights.h5', not '.h5'): Keras checks it on the temporary name.
    suffix = "." + name.split(".", 1)[1] if "." in name else ".tmp"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + name + ".", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def file_digest(path, algorithm="sha256"):
    """The hex digest of a file's bytes (sha256 for weights files, sha1 for data tarballs)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def write_text(path, text):
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def jsonable(value):
    """numpy scalars/arrays and non-finite floats as JSON can hold them (inf -> "inf")."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_json(path, obj):
    """Writes `obj` (numpy values made plain, keys sorted) as indented JSON, atomically."""
    write_text(path, json.dumps(jsonable(obj), indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike[str], *, check: bool = True) -> Any:
    """The JSON document at `path` (run.json, summary.json, cohort.json, ...). A run.json or
    cohort.json is checked to be in the current layout (check_layout) unless `check` is False
    (the upgrade reads older ones)."""
    with open(path) as f:
        content = json.load(f)
    if check and os.path.basename(path) in VERSIONED_FILES:
        check_layout(path, content)
    return content


def write_table(path, columns):
    """Writes a dict of equal-length 1-D arrays as CSV, columns in the dict's order."""
    names = list(columns)
    lengths = {len(np.asarray(columns[n])) for n in names}
    if len(lengths) != 1:
        raise ValueError(f"columns of {path} differ in length: {sorted(lengths)}")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(names)
    writer.writerows(zip(*(np.asarray(columns[n]).tolist() for n in names)))
    write_text(path, buffer.getvalue())


def read_table(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Reads a CSV written by write_table: dict of numpy arrays (int, float or str columns)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path} is empty; rerun the stage that writes it.")
    names, body = rows[0], rows[1:]
    table = {}
    for i, name in enumerate(names):
        raw = [r[i] for r in body]
        for kind in (np.int64, np.float64):
            try:
                table[name] = np.asarray(raw, dtype=kind)
                break
            except ValueError:
                continue
        else:
            table[name] = np.asarray(raw)
    return table
