"""A lambda sweep: train and evaluate one model per lambda into one results folder, resumably.

Layout of a cohort folder:
  cohort.json            the specification (name, dataset, lambdas, training template, protocol)
                         and the data source it was run on (data.source_info: kind, sha1, sizes)
  cohort.csv             one row per member: member, lam, seed, status, accuracy, degenerate,
                         num_images, run_dir and median_<column> for every numeric per-image
                         column, with its bootstrap interval over the images in
                         ci_low_/ci_high_median_<column>
  m00_lam10/ ...         one run folder per member (run.json, model.keras, per_image.csv, ...);
                         a member is a (lambda, seed) pair, seeds other than 0 add '_seed<s>'

Members are independent: `members=` runs only some of them, so a cohort can be spread over
machines or a cluster job array writing into the same folder; `gather` then summarises whatever
is complete. A stage whose outputs exist is skipped, so a rerun finishes what an interruption
left and a finished cohort reruns in seconds. A diverged member is recorded and the sweep goes on.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from robust_saliency import attacks as attack_registry
from robust_saliency import results

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from robust_saliency import runs

# evaluation and runs (TensorFlow) are imported where a member is trained or evaluated: reading
# a cohort (read, gather, degenerate) stays TensorFlow-free, for the claims and the figures.

STATUSES = ("evaluated", "diverged", "trained", "pending")
# Prefixes of the cohort.csv columns holding each median's bootstrap interval over images.
CI_LOW, CI_HIGH = "ci_low_", "ci_high_"
# The paper stopped its sweep "before the models start to degenerate". A member counts as
# degenerate when its accuracy on the measured images is below this share of the least
# regularised lambda's (the median over that lambda's seeds). Fixed before the converged cohort
# was run, so that no result chose it; claims and the least/most robust picks of the figures
# leave such members out, and say so.
DEGENERATE_SHARE = 0.9


@dataclasses.dataclass(frozen=True)
class CohortSpec:
    """What a cohort is: its training template, lambda sweep and evaluation protocol."""

    name: str
    train: runs.TrainConfig
    lambdas: tuple[float, ...]
    num_images: int = 1000
    attacks: tuple[str, ...] = attack_registry.PAPER
    attack_options: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # Also measure the alignment of SmoothGrad and Integrated Gradients maps (evaluation.py).
    aggregated_saliency: bool = False
    # Also score the plain gradient maps by every explanation-quality metric (explanations.py).
    explanation_metrics: bool = False
    # Replicate training seeds: every lambda is trained once per seed (the template's own seed
    # is replaced by the member's).
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self):
        if not self.lambdas:
            raise ValueError("a cohort needs at least one lambda")
        if any(not lam >= 0 for lam in self.lambdas):
            raise ValueError(f"lambdas must be >= 0, got {self.lambdas}")
        if self.num_images < 1:
            raise ValueError(f"num_images must be >= 1, got {self.num_images}")
        if (not self.seeds or len(set(self.seeds)) != len(self.seeds)
                or any(int(s) != s or s < 0 for s in self.seeds)):
            raise ValueError(f"seeds must be distinct integers >= 0, got {self.seeds}")

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> CohortSpec:
        """The CohortSpec of a cohort.json's content (to_json's layout)."""
        from robust_saliency import runs

        names = {f.name for f in dataclasses.fields(cls)}
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in saved.items() if k in names}
        return cls(**{**fields, "train": runs.TrainConfig.from_json(saved["train"])})

    def to_json(self) -> dict[str, Any]:
        return {results.SCHEMA_KEY: results.SCHEMA_VERSION,
                "name": self.name, "train": self.train.to_json(),
                "lambdas": list(self.lambdas), "num_images": self.num_images,
                "attacks": list(self.attacks), "attack_options": self.attack_options,
                "aggregated_saliency": self.aggregated_saliency,
                "explanation_metrics": self.explanation_metrics, "seeds": list(self.seeds)}


def member_list(lambdas, seeds=(0,)):
    """The members of a sweep, lambda-major: (lambda index, lambda, seed) per member index."""
    return [(i, lam, int(seed)) for i, lam in enumerate(lambdas) for seed in seeds]


def member_dir(results_dir, index, lam, seed=0):
    """The run folder of lambda number `index` trained with `seed`; seed 0 has no suffix, so a
    cohort of one seed keeps the folders it always had."""
    suffix = f"_seed{seed}" if seed else ""
    return os.path.join(results_dir, f"m{index:02d}_lam{lam:g}{suffix}")


def select_members(count, members=None, shard=None):
    """Member indices to run: all, an explicit list, or shard 'i/n' (every n-th from i)."""
    chosen = list(range(count))
    if members is not None:
        bad = [m for m in members if not 0 <= m < count]
        if bad:
            raise ValueError(f"members {bad} out of range: this cohort has members 0..{count - 1}")
        chosen = sorted(set(members))
    if shard is not None:
        try:
            i, n = (int(v) for v in str(shard).split("/"))
        except ValueError as e:
            raise ValueError(f"shard must look like 'i/n' (e.g. 0/4), got {shard!r}") from e
        if not 0 <= i < n:
            raise ValueError(f"shard {shard!r}: need 0 <= i < n")
        chosen = [m for m in chosen if m % n == i]
    return chosen


def _claim_folder(results_dir, spec):
    from robust_saliency import run_folders

    path = os.path.join(results_dir, results.COHORT_JSON)
    wanted = results.jsonable(spec.to_json())
    source = run_folders.data_record(spec.train)
    if os.path.exists(path):
        found = results.read_json(path)
        run_folders.check_same_data(found["data"], source, results_dir)
        changed = sorted(k for k in wanted if k != "train" and found.get(k) != wanted[k])
        if not run_folders.saved_config_matches(found["train"], spec.train):
            changed.append("train")
        if "attacks" in changed and _more_attacks(found, wanted):
            # Attacks added to a cohort's protocol (e.g. the strong ones to a cohort evaluated
            # with the paper's three): every member resumes with only the new columns.
            found = {**found, "attacks": wanted["attacks"],
                     "attack_options": wanted["attack_options"]}
            results.write_json(path, found)
            changed = [k for k in changed if k not in ("attacks", "attack_options")]
        if changed and "explanation_metrics" in changed and wanted["explanation_metrics"]:
            # The explanation metrics added to a measured cohort: a column stage of its own.
            found = {**found, "explanation_metrics": True}
            results.write_json(path, found)
            changed.remove("explanation_metrics")
        if changed == ["seeds"] and set(found["seeds"]) <= set(wanted["seeds"]):
            # More seeds for the same sweep: the members already there stay valid.
            results.write_json(path, {**found, "seeds": wanted["seeds"]})
        elif changed == ["seeds"] and set(wanted["seeds"]) <= set(found["seeds"]):
            # Some of the folder's seeds (a one-seed `make demo` on the committed three-seed
            # cohort): those members are run or skipped, and the folder keeps all its seeds.
            pass
        elif changed:
            raise ValueError(f"{results_dir} holds a cohort with different {', '.join(changed)}; "
                             "choose another --results_dir or delete that folder.")
    else:
        results.write_json(path, {**wanted, "data": source})


def _more_attacks(found, wanted):
    """Whether `wanted` runs every attack of `found` with the same options, and more."""
    old, new = found.get("attacks", []), wanted["attacks"]
    options, new_options = found.get("attack_options", {}), wanted["attack_options"]
    return (set(old) < set(new)
            and all(options.get(a, {}) == new_options.get(a, {}) for a in old))


def _evaluated(run_dir, spec):
    from robust_saliency import evaluation

    path = os.path.join(run_dir, results.SUMMARY_JSON)
    if not os.path.exists(path):
        return False
    summary = results.read_json(path)
    saliency_done = all(c in summary.get("medians", {}) for c in evaluation.SALIENCY_COLUMNS)
    return (summary.get("num_images") == spec.num_images
            and set(spec.attacks) <= set(summary.get("attacks", []))
            and (saliency_done or not spec.aggregated_saliency)
            and (not spec.explanation_metrics
                 or all(name in summary.get("medians", {})
                        for name in evaluation.explanation_columns(spec.aggregated_saliency))))


def run_cohort(results_dir: str, spec: CohortSpec, *, members: Sequence[int] | None = None,
               shard: str | None = None, progress: Callable[..., object] | None = None,
               train_verbose: int | str = 2, strategy: str = "default",
               cpu_replicas: int | None = None) -> list[tuple[int, str]]:
    """Trains and evaluates the chosen members of `spec` into `results_dir`, then gathers.

    Args:
      results_dir: the cohort folder.
      spec: CohortSpec.
      members: member indices to run (see select_members); None runs all.
      shard: 'i/n', every n-th member from i (see select_members); None runs all.
      progress: callable(str, end) for one progress line per stage (end='\\r' while a stage
        counts images, '\\n' when it is done).
      train_verbose: Keras verbosity while training (2: one line per epoch).
      strategy: distribute.STRATEGIES name used to train each member.
      cpu_replicas: with strategy 'mirrored' on a machine without GPUs, the number of logical
        CPU devices to train on; each member then trains in a child process with one thread per
        kernel (train_process.train_apart), and is measured in this one.

    Returns:
      The stages this call ran, as (member, stage) pairs; empty when everything existed.
    """
    from robust_saliency import evaluation, runs, train_process

    if cpu_replicas is not None and strategy != "mirrored":
        raise ValueError(f"cpu_replicas={cpu_replicas} needs strategy 'mirrored' (it is "
                         f"{strategy!r}): the replicas are what the mirrored strategy trains")
    say = progress or (lambda message, end="\n": None)
    everyone = member_list(spec.lambdas, spec.seeds)
    chosen = select_members(len(everyone), members, shard)
    _claim_folder(results_dir, spec)
    ran = []
    for m in chosen:
        index, lam, seed = everyone[m]
        run_dir = member_dir(results_dir, index, lam, seed)
        head = f"model {m + 1}/{len(everyone)}, lambda={lam:g}" + (
            f", seed {seed}" if len(spec.seeds) > 1 else "")
        if _evaluated(run_dir, spec):
            say(f"{head}: done")
            continue
        config = spec.train.replace(penalty={"lam": lam}, seed=seed)
        record_path = os.path.join(run_dir, results.RUN_JSON)
        before = results.read_json(record_path) if os.path.exists(record_path) else {}
        if before.get("status") != "completed":
            say(f"{head}: training")
            ran.append((m, "train"))
        try:
            if cpu_replicas is None:
                runs.train(config, run_dir, strategy=strategy, verbose=train_verbose)
            else:
                train_process.train_apart(config, run_dir, replicas=cpu_replicas,
                                          verbose=train_verbose)
        except runs.TrainingDiverged as e:
            say(f"{head}: diverged ({e})")
            gather(results_dir)
            continue

        def stage_progress(stage, done=None, total=None, head=head):
            count = f" {done}/{total}" if total else ""
            say(f"{head}: evaluating {stage}{count}", end="\r" if total and done < total
                else "\n")

        summary = evaluation.evaluate_run(
            run_dir, num_images=spec.num_images, attack_methods=spec.attacks,
            attack_options=spec.attack_options, progress=stage_progress,
            aggregated_saliency=spec.aggregated_saliency,
            explanation_metrics=spec.explanation_metrics)
        ran += [(m, stage) for stage in summary["stages_run"]]
        gather(results_dir)
    gather(results_dir)
    return ran


run = run_cohort  # the library's own name for it (robust_saliency.run_cohort)


def _member_row(results_dir, m, index, lam, seed):
    run_dir = member_dir(results_dir, index, lam, seed)
    row = {"member": m, "lam": lam, "seed": seed, "status": "pending", "accuracy": np.nan,
           "degenerate": 0, "num_images": 0, "run_dir": os.path.relpath(run_dir, results_dir)}
    run_json = os.path.join(run_dir, results.RUN_JSON)
    summary_json = os.path.join(run_dir, results.SUMMARY_JSON)
    if os.path.exists(run_json):
        status = results.read_json(run_json).get("status")
        row["status"] = {"completed": "trained", "diverged": "diverged"}.get(status, "pending")
    if row["status"] == "trained" and os.path.exists(summary_json):
        summary = results.read_json(summary_json)
        row.update(status="evaluated", accuracy=summary["accuracy"],
                   num_images=summary["num_images"])
        row.update({f"median_{k}": float(v) for k, v in summary["medians"].items()})
        for k, (low, high) in summary["median_intervals"].items():
            row[f"{CI_LOW}median_{k}"], row[f"{CI_HIGH}median_{k}"] = float(low), float(high)
    return row


def degenerate(table):
    """(members,) bool: evaluated members whose accuracy is below DEGENERATE_SHARE times the
    median accuracy of the smallest lambda's evaluated members (none while that lambda has no
    evaluated member)."""
    evaluated = np.asarray(table["status"]) == "evaluated"
    lam, accuracy = np.asarray(table["lam"], np.float64), np.asarray(table["accuracy"], np.float64)
    reference = evaluated & (lam == lam.min())
    if not reference.any():
        return np.zeros(len(lam), bool)
    return evaluated & (accuracy < DEGENERATE_SHARE * np.median(accuracy[reference]))


def extremes(members):
    """Positions (least, most) robust among `members`: by median rho_best, else median rho_tilde,
    among the members that are not degenerate (`degenerate`) when there are any.

    rho_best (the smallest distance any attack found) is the paper's notion of robustness; the
    linearized estimate stands in when no attack column exists or some median is undefined. A
    collapsed classifier is trivially "least robust" (many images sit at the boundary) and would
    otherwise stand in for the paper's least robust model.
    """
    key = "median_rho_best"
    if key not in members or not np.all(np.isfinite(members[key])):
        key = "median_lin_robustness"
    sound = ~np.asarray(members.get("degenerate", np.zeros(len(members[key]))), bool)
    candidates = np.flatnonzero(sound) if sound.any() else np.arange(len(members[key]))
    values = members[key][candidates]
    return int(candidates[np.argmin(values)]), int(candidates[np.argmax(values)])


def degenerate_note(table):
    """One sentence naming the degenerate members and the rule, '' when there are none."""
    bad = np.flatnonzero(np.asarray(table["degenerate"], bool))
    if not len(bad):
        return ""
    seeds = len(set(table["seed"])) > 1
    names = ", ".join(f"lambda={table['lam'][i]:g}"
                      + (f" seed {table['seed'][i]}" if seeds else "")
                      + f" (accuracy {table['accuracy'][i]:.3f})" for i in bad)
    return (f"degenerate, left out: {names}; rule: accuracy below {DEGENERATE_SHARE:g} x the "
            "least regularised lambda's")


def gather(results_dir):
    """Writes cohort.csv from whatever members exist; returns it as a dict of columns."""
    spec = results.read_json(os.path.join(results_dir, results.COHORT_JSON))
    rows = [_member_row(results_dir, m, *member)
            for m, member in enumerate(member_list(spec["lambdas"], spec["seeds"]))]
    flags = degenerate({k: [row[k] for row in rows] for k in ("status", "lam", "accuracy")})
    for row, flag in zip(rows, flags):
        row["degenerate"] = int(flag)
    names = list(rows[0])
    for row in rows:
        names += [k for k in row if k not in names]
    table = {n: [row.get(n, np.nan) for row in rows] for n in names}
    results.write_table(os.path.join(results_dir, results.COHORT_CSV), table)
    return {n: np.asarray(v) for n, v in table.items()}


def read_cohort(results_dir: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(cohort.json, cohort.csv as columns) of a cohort folder, with a clear error if absent."""
    spec_path = os.path.join(results_dir, results.COHORT_JSON)
    table_path = os.path.join(results_dir, results.COHORT_CSV)
    for path in (spec_path, table_path):
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"{path} not found: {results_dir} is not a cohort results folder; run "
                "python -m experiments.cohort --results_dir=... first.")
    table = results.read_table(table_path)
    # The rule is applied on reading too, so that a table edited or written by hand is judged
    # by the same rule as a gathered one.
    table["degenerate"] = degenerate(table)
    return results.read_json(spec_path), table


read = read_cohort  # the library's own name for it (robust_saliency.read_cohort)
