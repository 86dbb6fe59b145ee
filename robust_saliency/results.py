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
import importlib.metadata
import io
import json
import math
import os
import platform
import subprocess
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


# --- Older layouts, read through one upgrade per file kind ---------------------------------
# The flat training configuration run.json ("config") and cohort.json ("train") held before the
# nested one (train_config.TrainConfig): each flat name and the dotted name of its field now. The
# flat names stay the short names of the command line (--lam, --epochs, ...).
FLAT_TRAIN_CONFIG = {
    "dataset": "data.dataset", "data_dir": "data.data_dir", "data_source": "data.source",
    "image_size": "data.image_size", "train_subset": "data.train_subset",
    "val_subset": "data.val_subset", "model": "model.name", "weights": "model.weights",
    "num_classes": "model.num_classes", "depth": "model.depth",
    "init_weights": "model.init_weights", "bn_momentum": "model.bn_momentum",
    "penalty": "penalty.name", "lam": "penalty.lam",
    "penalty_options": "penalty.options", "penalty_convention": "penalty.convention",
    "penalty_batch_size": "penalty.batch_size", "sensitivity_mode": "penalty.sensitivity_mode",
    "learning_rate": "optimizer.learning_rate", "momentum": "optimizer.momentum",
    "weight_decay": "optimizer.weight_decay", "lr_schedule": "schedule.kind",
    "epochs": "schedule.epochs", "lr_decay_epochs": "schedule.decay_epochs",
    "lr_decay_factor": "schedule.decay_factor", "plateau_patience": "schedule.patience",
    "plateau_max_decays": "schedule.max_decays", "lr_milestones": "schedule.milestones",
    "batch_size": "batch_size",
    "probe_size": "probe_size", "seed": "seed",
}
# Flat fields whose default changed: a flat config saved without them was made at the old one
# (sensitivity_mode defaulted to 'nll' for every penalty before it took the penalty's own form).
FLAT_LEGACY_DEFAULTS = {"sensitivity_mode": "nll"}
# The same for the penalty part of a saved RobustModel (training.RobustModel.get_config), whose
# penalty was flat keyword arguments before it was a train_config.PenaltyConfig.
FLAT_MODEL_PENALTY = {"penalty": "name", "lam": "lam", "penalty_options": "options",
                      "penalty_convention": "convention", "penalty_batch_size": "batch_size",
                      "sensitivity_mode": "sensitivity_mode"}


_TRAIN_CONFIG_PARTS = {dotted.split(".")[0] for dotted in FLAT_TRAIN_CONFIG.values()
                       if "." in dotted}


def is_flat_train_config(saved):
    """Whether a saved training configuration has the flat layout (no nested parts)."""
    return not any(isinstance(saved.get(part), dict) for part in _TRAIN_CONFIG_PARTS)


def upgrade_train_config(saved):
    """A saved training configuration in the nested layout of train_config.TrainConfig.to_json:
    a flat one is nested by FLAT_TRAIN_CONFIG (with FLAT_LEGACY_DEFAULTS for fields it
    lacks); a nested one is returned as it is. Fields saved by neither stay absent, so the
    dataclass defaults fill them."""
    if not is_flat_train_config(saved):
        return {k: dict(v) if isinstance(v, dict) else v for k, v in saved.items()}
    nested = {}
    for name, value in {**FLAT_LEGACY_DEFAULTS, **saved}.items():
        dotted = FLAT_TRAIN_CONFIG.get(name, name)
        part, _, leaf = dotted.rpartition(".")
        (nested.setdefault(part, {}) if part else nested)[leaf] = value
    return nested


def train_setting(saved, dotted, default=None):
    """One setting of a saved training configuration (any layout) by its dotted name, e.g.
    'data.dataset'; `default` where the file predates the setting. TensorFlow-free, for the
    readers of results (train_config.TrainConfig.from_json gives the whole configuration)."""
    value = upgrade_train_config(saved)
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return default
        value = value[key]
    return value


def upgrade_model_penalty(saved):
    """RobustModel.get_config's dict with its penalty as one nested dict (the fields of
    train_config.PenaltyConfig): models saved with flat penalty arguments still load."""
    saved = dict(saved)
    if isinstance(saved.get("penalty"), dict):
        return saved
    penalty = {new: saved.pop(old) for old, new in FLAT_MODEL_PENALTY.items() if old in saved}
    return {**saved, "penalty": penalty}


# Fields cohort.json gained after folders had been written without them, with what their absence
# meant: one seed, no SmoothGrad/IG alignments, no explanation metrics.
COHORT_FIELDS_ADDED = {"seeds": [0], "aggregated_saliency": False, "explanation_metrics": False}


def upgrade(name, content):
    """A results file's content in the current layout, by file name: RUN_JSON's "config" and
    COHORT_JSON's "train" nested (upgrade_train_config), a COHORT_JSON's fields added since it
    was written at what their absence meant (COHORT_FIELDS_ADDED). Other files as they are:
    an older per_image.csv lacks columns, which readers treat as not measured; a summary.json
    from before bootstrap intervals gets them computed from its per_image.csv when its cohort
    is gathered (cohort.gather: a computation, not a change of layout)."""
    content = dict(content)
    name = os.path.basename(name)
    key = {RUN_JSON: "config", COHORT_JSON: "train"}.get(name)
    if key and isinstance(content.get(key), dict):
        content[key] = upgrade_train_config(content[key])
    if name == COHORT_JSON:
        for field, meant in COHORT_FIELDS_ADDED.items():
            content.setdefault(field, meant)
    return content


def read_upgraded(path):
    """read_json of a results file, upgraded to the current layout (upgrade)."""
    return upgrade(path, read_json(path))


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


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON document at `path` (run.json, summary.json, cohort.json, ...)."""
    with open(path) as f:
        return json.load(f)


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


def git_revision():
    """The source tree's git commit (with '-dirty' if modified), or 'unknown'."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# Distributions besides TensorFlow, Keras and NumPy whose versions run.json records.
VERSIONED = ("foolbox", "eagerpy", "scipy", "tensorflow-datasets", "matplotlib")


def versions():
    """Versions of what a result depends on, recorded beside every run: the interpreter, the
    libraries by their installed distributions (whether or not imported yet), the git revision and
    whether oneDNN's CPU kernels were on.
    requirements-lock.txt pins the same distributions for a rerun."""
    import keras
    import tensorflow as tf

    found = {"python": platform.python_version(), "tensorflow": tf.__version__,
             "keras": keras.__version__, "numpy": np.__version__}
    for name in VERSIONED:
        try:
            found[name.replace("-", "_")] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    found["git"] = git_revision()
    found["onednn"] = onednn_kernels()
    found["cpu"] = cpu()
    return found


def cpu_info():
    """(the CPU's model name, the set of its /proc/cpuinfo flags); the platform's processor name
    and no flags where /proc/cpuinfo cannot be read."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return name, flags
    name = next((line.split(":", 1)[1].strip() for line in lines
                 if line.startswith("model name")), name)
    flags = next((set(line.split(":", 1)[1].split()) for line in lines
                  if line.startswith("flags")), flags)
    return name, flags


def cpu():
    """The CPU's name and its widest vector unit ('AMD EPYC ..., avx512f'): the kernels' last
    bits differ between AVX2 and AVX-512 machines even at the same TensorFlow and oneDNN
    setting, so a rerun elsewhere is close but not bit-identical."""
    name, flags = cpu_info()
    widest = next((f for f in ("avx512f", "avx2", "avx") if f in flags), "no avx")
    return f"{name}, {widest}"


def onednn_kernels():
    """Whether TensorFlow runs oneDNN's CPU kernels in this process (its default only on
    AVX-512 CPUs; TF_ENABLE_ONEDNN_OPTS sets it): they change the last bits of every result.
    None where this TensorFlow does not say."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # no public API reports it
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())
