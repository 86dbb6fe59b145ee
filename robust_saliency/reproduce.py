"""Does a rerun reproduce a cohort? Two cohort folders compared member by member.

`compare(results_dir, reference_dir)` matches members by folder name (m00_lam10, ...) and says
per member whether its per-image table is bit-identical to the reference's on every column both
have, else whether each key median falls inside the reference's 95% bootstrap interval (the
accuracy: inside its binomial 95% interval), with the largest relative difference and the
versions (kernels, libraries, CPU) in which the two runs differ, read from run.json: the usual
reason a rerun on other hardware is close but not identical. `report(comparison)` is the text a
user reads; TensorFlow-free.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from robust_saliency import results

# The medians a reproduction is judged on, besides every rho_<attack> column and the accuracy.
KEY_MEDIANS = ("alignment", "alignment_bin", "lin_robustness")
VERDICTS = ("bit-identical", "within intervals", "outside intervals", "missing", "unevaluated")


def _members(folder):
    return sorted(d for d in os.listdir(folder)
                  if os.path.isfile(os.path.join(folder, d, results.RUN_JSON)))


def _read(folder, member, name, reader):
    path = os.path.join(folder, member, name)
    return reader(path) if os.path.exists(path) else None


def _identical(a, b):
    common = [k for k in a if k in b]
    return bool(common) and all(
        a[k].shape == b[k].shape and np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f")
        for k in common)


def _version_differences(ours, theirs):
    mine, other = (ours or {}).get("versions", {}), (theirs or {}).get("versions", {})
    keys = sorted((set(mine) | set(other)) - {"git"})
    return {k: (mine.get(k), other.get(k)) for k in keys if mine.get(k) != other.get(k)}


def compare_member(folder, reference, member, skip=()):
    """One member's comparison: {'member', 'verdict', 'outside': [(column, ours, low, high)],
    'max_rel_diff': (column, value), 'versions': {key: (ours, reference)}, 'seed_ranges':
    {column: (min, max)} over the reference's seeds of this lambda for the columns outside,
    'in_seed_range': those of them inside it}; columns in `skip` are not judged."""
    out = {"member": member, "outside": [], "max_rel_diff": (None, 0.0), "versions": {},
           "seed_ranges": {}, "in_seed_range": []}
    ours = _read(folder, member, results.SUMMARY_JSON, results.read_json)
    theirs = _read(reference, member, results.SUMMARY_JSON, results.read_json)
    if theirs is None or ours is None:
        out["verdict"] = "missing" if theirs is None else "unevaluated"
        return out
    out["versions"] = _version_differences(
        _read(folder, member, results.RUN_JSON, results.read_json),
        _read(reference, member, results.RUN_JSON, results.read_json))
    table = _read(folder, member, results.PER_IMAGE_CSV, results.read_table)
    ref_table = _read(reference, member, results.PER_IMAGE_CSV, results.read_table)
    if table is not None and ref_table is not None and _identical(table, ref_table):
        out["verdict"] = "bit-identical"
        return out
    columns = [c for c in (*KEY_MEDIANS, *sorted(theirs["medians"]))
               if c in theirs["medians"] and c in ours["medians"]
               and (c in KEY_MEDIANS or c.startswith("rho_"))]
    columns = [c for c in dict.fromkeys(columns) if c not in skip]
    checks = [(c, ours["medians"][c], *theirs["median_intervals"][c], theirs["medians"][c])
              for c in columns]
    n, p = theirs["num_images"], theirs["accuracy"]
    half = 1.96 * math.sqrt(max(p * (1 - p), 0.0) / n) if n else 0.0
    checks.append(("accuracy", ours["accuracy"], p - half, p + half, p))
    worst = (None, 0.0)
    for column, value, low, high, center in checks:
        if not low <= value <= high:
            out["outside"].append((column, value, low, high))
        rel = abs(value - center) / abs(center) if center else abs(value - center)
        if rel > worst[1]:
            worst = (column, rel)
    out["max_rel_diff"] = worst
    out["verdict"] = "outside intervals" if out["outside"] else "within intervals"
    # Where the reference trained several seeds of this lambda, their range is the spread
    # across training runs, which a rerun on other kernels (other weights) should be judged
    # by; the interval over images does not cover it.
    ranges = _seed_ranges(reference, member)
    out["in_seed_range"] = [c for c, value, *_ in out["outside"]
                            if c in ranges and ranges[c][0] <= value <= ranges[c][1]]
    out["seed_ranges"] = {c: ranges[c] for c, *_ in out["outside"] if c in ranges}
    return out


def _seed_ranges(reference, member):
    """{median column: (min, max)} over the reference's seeds of `member`'s lambda, when it
    has more than one; {} else."""
    base = member.rsplit("_seed", 1)[0]
    siblings = [m for m in _members(reference) if m.rsplit("_seed", 1)[0] == base]
    summaries = [s for s in (_read(reference, m, results.SUMMARY_JSON, results.read_json)
                             for m in siblings) if s is not None]
    if len(summaries) < 2:
        return {}
    ranges = {}
    for column in summaries[0]["medians"]:
        values = [s["medians"].get(column) for s in summaries]
        if all(v is not None for v in values):
            ranges[column] = (min(values), max(values))
    accuracies = [s["accuracy"] for s in summaries]
    ranges["accuracy"] = (min(accuracies), max(accuracies))
    return ranges


def compare_cohorts(results_dir: str, reference_dir: str) -> dict[str, Any]:
    """Every member of `reference_dir` compared with the same member of `results_dir`.

    Returns:
      {'members': [compare_member(...)], 'spec_differences': [field names in which the two
      cohort.json differ], 'extra': members only in results_dir}.

    Raises:
      FileNotFoundError: a folder without cohort.json.
    """
    specs = []
    for folder in (results_dir, reference_dir):
        path = os.path.join(folder, results.COHORT_JSON)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: {folder} is not a cohort folder")
        specs.append(results.read_json(path))
    ignore = {"data", "seeds", "attacks", "attack_options"}
    fields = sorted((set(specs[0]) | set(specs[1])) - ignore)
    differences = [f for f in fields if _differs(specs[0].get(f), specs[1].get(f))]
    # rho_best is the minimum over the attacks run: with other attacks it is another estimate.
    same_attacks = (sorted(specs[0].get("attacks", [])) == sorted(specs[1].get("attacks", []))
                    and specs[0].get("attack_options") == specs[1].get("attack_options"))
    skip = () if same_attacks else ("rho_best", "rho_best_linf")
    ours, theirs = set(_members(results_dir)), _members(reference_dir)
    # Members the rerun did not ask for (a one-seed demo against a three-seed reference) are
    # left out rather than reported missing.
    wanted = [m for m in theirs if m in ours or _seed(m) in specs[0].get("seeds", [0])]
    return {"members": [compare_member(results_dir, reference_dir, m, skip) for m in wanted],
            "spec_differences": differences, "extra": sorted(ours - set(theirs)),
            "skipped": list(skip)}


compare = compare_cohorts  # the library's own name for it (robust_saliency.compare_cohorts)


def _differs(a, b):
    """Whether two cohort.json values differ (both files are in the one current layout)."""
    return a != b


def _shown(value):
    return "not recorded" if value is None else value


def _seed(member):
    return int(member.rsplit("_seed", 1)[1]) if "_seed" in member else 0


def reproduction_report(comparison: dict[str, Any]) -> list[str]:
    """The comparison as lines of text, ending in a one-line summary."""
    lines = []
    if comparison.get("skipped"):
        lines.append("the two cohorts ran different attacks: " + ", ".join(comparison["skipped"])
                     + " not compared")
    if comparison["spec_differences"]:
        lines.append("the two cohorts differ in " + ", ".join(comparison["spec_differences"])
                     + ": a different preset, so differences are expected")
    counts = {v: 0 for v in VERDICTS}
    for m in comparison["members"]:
        counts[m["verdict"]] += 1
        line = f"{m['member']}: {m['verdict']}"
        column, rel = m["max_rel_diff"]
        if m["verdict"] in ("within intervals", "outside intervals") and column:
            line += f"; largest relative difference {rel:.2%} ({column})"
        for column, value, low, high in m["outside"]:
            line += f"; {column} {value:.4g} outside [{low:.4g}, {high:.4g}]"
            if column in m.get("seed_ranges", {}):
                a, b = m["seed_ranges"][column]
                where = "inside" if column in m["in_seed_range"] else "outside"
                line += f" ({where} the reference's seed range {a:.4g}-{b:.4g})"
        if m["versions"] and m["verdict"] != "bit-identical":
            line += "; runs differ in " + ", ".join(
                f"{k} ({_shown(a)} vs {_shown(b)})" for k, (a, b) in m["versions"].items())
        lines.append(line)
    for member in comparison["extra"]:
        lines.append(f"{member}: not in the reference")
    total = len(comparison["members"])
    same = counts["bit-identical"]
    if total and same == total:
        summary = f"{total}/{total} members reproduce the committed results: bit-identical"
    else:
        summary = (f"{same + counts['within intervals']}/{total} members reproduce the "
                   f"committed results ({same} bit-identical, {counts['within intervals']} "
                   "within the 95% intervals)")
        rest = [f"{counts[v]} {v}" for v in VERDICTS[2:] if counts[v]]
        if rest:
            summary += "; " + ", ".join(rest)
        outside = [m for m in comparison["members"] if m["verdict"] == "outside intervals"]
        spread = [m for m in outside if m.get("seed_ranges")
                  and len(m["in_seed_range"]) == len(m["outside"])]
        if spread:
            summary += (f" ({len(spread)} of them with every such median inside the "
                        "reference's seed range: the spread across training runs)")
    lines.append(summary)
    return lines


report = reproduction_report  # the library's own name for it (robust_saliency.reproduction_report)
