"""What the figures read from a cohort folder, checked: the cohort's evaluated members
(cohort.json and cohort.csv), one member's per_image.csv and maps.npz.

Figures read only what `experiments.cohort` wrote; anything missing raises MissingResults
naming the file, member or column and the command that writes it. Drawing them is
robust_saliency.plotting's and robust_saliency.figures'.
"""

import os

import numpy as np

from robust_saliency import cohort, results

COHORT_COMMAND = "python -m experiments.cohort --results_dir={}"


class MissingResults(ValueError):
    """A figure's input file, member or column is absent; the message says what writes it."""


def _require_file(path, results_dir):
    if not os.path.exists(path):
        raise MissingResults(f"{path} not found; it is written by "
                             f"{COHORT_COMMAND.format(results_dir)}")


def load(results_dir, *, columns=("median_lin_robustness",)):
    """The cohort's specification and its evaluated members.

    Args:
      results_dir: a cohort folder.
      columns: cohort.csv columns the caller needs; absent ones raise MissingResults.

    Returns:
      (spec, members): cohort.json as a dict, and the evaluated rows of cohort.csv as a dict of
      numpy columns, ordered by lambda (the sweep's order, so lines join neighbouring lambdas).
    """
    for name in (results.COHORT_JSON, results.COHORT_CSV):
        _require_file(os.path.join(results_dir, name), results_dir)
    spec, table = cohort.read(results_dir)
    keep = np.flatnonzero(table["status"] == "evaluated")
    if not len(keep):
        counts = ", ".join(f"{int((table['status'] == s).sum())} {s}"
                           for s in np.unique(table["status"]))
        table_path = os.path.join(results_dir, results.COHORT_CSV)
        raise MissingResults(f"no evaluated member in {table_path} "
                             f"({counts}); finish it with {COHORT_COMMAND.format(results_dir)}")
    missing = [c for c in columns if c not in table]
    if missing:
        raise MissingResults(f"column {', '.join(missing)} missing from "
                             f"{os.path.join(results_dir, results.COHORT_CSV)}; it is written by "
                             f"{COHORT_COMMAND.format(results_dir)}")
    keep = keep[np.lexsort((table["member"][keep], table["lam"][keep]))]
    return spec, {name: column[keep] for name, column in table.items()}


def pick(members, member=None):
    """Position of member index `member` among `members`; None: the most robust
    (cohort.extremes)."""
    if member is None:
        return cohort.extremes(members)[1]
    found = np.flatnonzero(members["member"] == member)
    if not len(found):
        raise MissingResults(f"member {member} is not evaluated; evaluated members: "
                             f"{', '.join(str(m) for m in members['member'])}")
    return int(found[0])


def per_image(results_dir, members, position, columns=()):
    """One member's per_image.csv as a dict of columns, checking that `columns` exist."""
    path = os.path.join(results_dir, str(members["run_dir"][position]), results.PER_IMAGE_CSV)
    _require_file(path, results_dir)
    table = results.read_table(path)
    missing = [c for c in columns if c not in table]
    if missing:
        raise MissingResults(f"column {', '.join(missing)} missing from {path}; it is written "
                             f"by {COHORT_COMMAND.format(results_dir)}")
    return table


def maps(results_dir, members, position):
    """One member's maps.npz (x, grad_pred, grad_bin, xi, gamma and their alignments)."""
    path = os.path.join(results_dir, str(members["run_dir"][position]), results.MAPS_NPZ)
    _require_file(path, results_dir)
    with np.load(path) as arrays:
        return dict(arrays)
