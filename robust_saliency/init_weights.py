"""Starting a run from another run's weights (TrainConfig's model.init_weights): fine-tuning.

`load(network, path)` finds the weights file (a run folder's WEIGHTS_FILE, checked against the
sha256 its run.json recorded, or a file), checks that it holds `network`'s variables shape by
shape, loads it and returns what run.json records of it: the path as given, the file and its
sha256. runs.train calls it once, on a fresh start; a resumed run continues from its backup.
"""

import os
import tempfile

from robust_saliency import results


def weights_file(path):
    """(the weights file, the sha256 its run recorded or None) of ModelConfig.init_weights
    `path`: a run folder's WEIGHTS_FILE, or `path` itself when it is a file.

    Raises:
      FileNotFoundError: nothing at `path`, or a folder without a finished run's weights.
      ValueError: the folder's weights file is not the one its run.json recorded.
    """
    if os.path.isdir(path):
        file = os.path.join(path, results.WEIGHTS_FILE)
        record_path = os.path.join(path, results.RUN_JSON)
        record = results.read_json(record_path) if os.path.exists(record_path) else {}
        if not os.path.exists(file):
            raise FileNotFoundError(
                f"init_weights {path}: the folder has no {results.WEIGHTS_FILE} (its run is "
                f"{record.get('status', 'not a run')!r}); finish that run first (e.g. its "
                "pretraining preset), or give a weights file.")
        expected = (record.get("trained_weights") or {}).get("sha256")
        digest = results.file_digest(file)
        if expected is not None and digest != expected:
            raise ValueError(f"init_weights {file} has sha256 {digest}, not the {expected} "
                             f"recorded in {record_path}: the file was changed or is "
                             "truncated; restore it or retrain that run.")
        return file, expected
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"init_weights {path!r} does not exist: give a finished run's folder or a weights "
            "file (.weights.h5) of this network, e.g. run its pretraining preset first; "
            "init_weights=none starts from a fresh initialisation.")
    return path, None


def _weight_shapes(file):
    """{path in the .weights.h5 file: shape} of every stored variable."""
    import h5py

    shapes = {}
    with h5py.File(file, "r") as f:
        f.visititems(lambda name, item: shapes.__setitem__(name, tuple(item.shape))
                     if isinstance(item, h5py.Dataset) else None)
    return shapes


def load(network, path, *, description="this run's network"):
    """Loads ModelConfig.init_weights `path` (see weights_file) into `network` after
    checking that the file holds this architecture's variables, shape by shape.

    Returns:
      run.json's record of them ('init_weights'): {'path': path as given, 'file': the
      absolute path of the weights file, 'sha256': its digest}.

    Raises:
      FileNotFoundError, ValueError: as weights_file; ValueError when the file holds
        another architecture, naming the file, the expected and the found shapes.
    """
    file, _ = weights_file(path)
    with tempfile.TemporaryDirectory() as folder:
        own = os.path.join(folder, "expected.weights.h5")
        network.save_weights(own)
        expected = _weight_shapes(own)
    found = _weight_shapes(file)
    # Shapes that differ first, then variables only one side has.
    differ = [f"{name}: expected {expected[name]}, found {found[name]}"
              for name in sorted(set(expected) & set(found)) if expected[name] != found[name]]
    differ += [f"{name}: expected {expected[name]}, not in the file"
               for name in sorted(set(expected) - set(found))]
    differ += [f"{name}: found {found[name]}, not in this network"
               for name in sorted(set(found) - set(expected))]
    if differ:
        more = f" (and {len(differ) - 5} more)" if len(differ) > 5 else ""
        raise ValueError(
            f"init_weights {file} does not fit {description} ({network.name}): "
            + "; ".join(differ[:5]) + more + ". Give the weights of a run of the same model, "
            "dataset and number of classes (see that run's run.json 'config'), or "
            "init_weights=none.")
    network.load_weights(file)
    return {"path": path, "file": os.path.abspath(file), "sha256": results.file_digest(file)}
