"""The reproduction report: two cohort folders the test writes, compared member by member."""

import os
import shutil

import numpy as np
import pytest
from helpers import tiny_cohort_spec

from robust_saliency import reproduce, results

MEMBERS = ("m00_lam10", "m01_lam150")


def write_member(folder, member, *, shift=0.0, versions=None):
    rng = np.random.default_rng(len(member))
    table = {"index": np.arange(50), "label": rng.integers(0, 10, 50),
             "correct": np.ones(50, int), "alignment": rng.uniform(1, 3, 50) + shift,
             "alignment_bin": rng.uniform(1, 3, 50), "lin_robustness": rng.uniform(1, 2, 50),
             "rho_cw": rng.uniform(1, 2, 50)}
    run_dir = os.path.join(folder, member)
    results.write_table(os.path.join(run_dir, results.PER_IMAGE_CSV), table)
    medians = {k: float(np.median(v)) for k, v in table.items()
               if k in ("alignment", "alignment_bin", "lin_robustness", "rho_cw")}
    intervals = {k: [v - 0.1, v + 0.1] for k, v in medians.items()}
    results.write_json(os.path.join(run_dir, results.SUMMARY_JSON),
                       {"num_images": 50, "accuracy": 0.98, "medians": medians,
                        "median_intervals": intervals})
    results.write_json(os.path.join(run_dir, results.RUN_JSON),
                       {results.SCHEMA_KEY: results.SCHEMA_VERSION, "status": "completed",
                        "versions": versions or {"tensorflow": "2.21.0", "onednn": True}})


def write_cohort(folder, name="mnist_quick", members=MEMBERS, attacks=("cw",), **kwargs):
    results.write_json(os.path.join(folder, results.COHORT_JSON),
                       {results.SCHEMA_KEY: results.SCHEMA_VERSION, "name": name,
                        "lambdas": [10.0, 150.0], "seeds": [0], "attacks": list(attacks),
                        "train": tiny_cohort_spec().train.to_json()})
    for member in members:
        write_member(folder, member, **kwargs)


@pytest.fixture
def reference(tmp_path):
    folder = str(tmp_path / "reference")
    write_cohort(folder)
    return folder


def test_identical_tables_are_bit_identical(tmp_path, reference):
    rerun = str(tmp_path / "rerun")
    shutil.copytree(reference, rerun)
    lines = reproduce.report(reproduce.compare(rerun, reference))
    assert lines[-1] == "2/2 members reproduce the committed results: bit-identical"


def test_a_median_moved_inside_its_interval_is_within(tmp_path, reference):
    rerun = str(tmp_path / "rerun")
    write_cohort(rerun, shift=0.05, versions={"tensorflow": "2.21.0", "onednn": False})
    comparison = reproduce.compare(rerun, reference)
    assert [m["verdict"] for m in comparison["members"]] == ["within intervals"] * 2
    lines = reproduce.report(comparison)
    assert "0 bit-identical, 2 within the 95% intervals" in lines[-1]
    assert "onednn (False vs True)" in lines[0]  # why it is not bit-identical


def test_rho_best_of_other_attacks_is_not_compared(tmp_path, reference):
    rerun = str(tmp_path / "rerun")
    write_cohort(rerun, attacks=("cw", "fmn"), shift=0.05)
    for member in MEMBERS:  # rho_best far off: another estimate, not a difference
        path = os.path.join(rerun, member, results.SUMMARY_JSON)
        summary = results.read_json(path)
        summary["medians"]["rho_best"] = 0.5
        summary["median_intervals"]["rho_best"] = [0.4, 0.6]
        results.write_json(path, summary)
        ref_path = os.path.join(reference, member, results.SUMMARY_JSON)
        ref = results.read_json(ref_path)
        ref["medians"]["rho_best"] = 1.5
        ref["median_intervals"]["rho_best"] = [1.4, 1.6]
        results.write_json(ref_path, ref)
    comparison = reproduce.compare(rerun, reference)
    assert comparison["spec_differences"] == []
    assert comparison["skipped"] == ["rho_best", "rho_best_linf"]
    assert [m["verdict"] for m in comparison["members"]] == ["within intervals"] * 2
    assert "rho_best, rho_best_linf not compared" in reproduce.report(comparison)[0]


def test_a_median_moved_outside_is_named_with_member_and_column(tmp_path, reference):
    rerun = str(tmp_path / "rerun")
    write_cohort(rerun, members=MEMBERS[:1])
    write_member(rerun, MEMBERS[1], shift=0.5)
    comparison = reproduce.compare(rerun, reference)
    bad = comparison["members"][1]
    assert bad["verdict"] == "outside intervals"
    assert [c for c, *_ in bad["outside"]] == ["alignment"]
    lines = reproduce.report(comparison)
    assert lines[1].startswith("m01_lam150: outside intervals") and "alignment" in lines[1]
    assert "1 outside intervals" in lines[-1]


def test_missing_members_and_other_presets_are_reported_not_crashed_on(tmp_path, reference):
    rerun = str(tmp_path / "rerun")
    write_cohort(rerun, name="mnist_converged", members=MEMBERS[:1])
    os.makedirs(os.path.join(rerun, MEMBERS[1]))
    results.write_json(os.path.join(rerun, MEMBERS[1], results.RUN_JSON),
                       {results.SCHEMA_KEY: results.SCHEMA_VERSION, "status": "running"})
    comparison = reproduce.compare(rerun, reference)
    assert comparison["spec_differences"] == ["name"]
    assert [m["verdict"] for m in comparison["members"]] == ["bit-identical", "unevaluated"]
    lines = reproduce.report(comparison)
    assert "differ in name" in lines[0]
    assert "1 unevaluated" in lines[-1]
    with pytest.raises(FileNotFoundError, match="not a cohort folder"):
        reproduce.compare(str(tmp_path / "nowhere"), reference)


def test_a_rerun_with_another_training_template_differs_in_train(tmp_path, reference):
    saved = results.read_json(os.path.join(reference, results.COHORT_JSON))
    rerun = str(tmp_path / "rerun")
    shutil.copytree(reference, rerun)
    assert reproduce.compare(rerun, reference)["spec_differences"] == []
    saved["train"]["schedule"]["epochs"] = 7
    results.write_json(os.path.join(rerun, results.COHORT_JSON), saved)
    assert reproduce.compare(rerun, reference)["spec_differences"] == ["train"]


def _hashes(folder):
    import hashlib

    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_make_demo_runs_into_a_working_folder_and_compares_with_the_reference():
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    plan = subprocess.run(["make", "-n", "demo", "STAMP=", "PY=python"], cwd=root,
                          capture_output=True, text=True, check=True).stdout
    cohort_line = next(line for line in plan.splitlines() if "experiments.cohort" in line)
    assert "--results_dir=runs/mnist_quick_mnist" in cohort_line
    assert "--out_dir=runs/mnist_quick_mnist/figures" in plan  # not the committed figures/
    assert "experiments.reproduce --results_dir=runs/mnist_quick_mnist " \
           "--reference=results/mnist_quick_mnist" in " ".join(plan.split())


@pytest.mark.slow
def test_the_demo_cohort_trains_into_an_empty_folder_and_leaves_the_reference_alone(
    tiny_cohort, tmp_path):

    from robust_saliency import cohort

    reference = tiny_cohort[0]
    before = _hashes(reference)
    folder = str(tmp_path / "demo")
    ran = cohort.run(folder, tiny_cohort_spec(), train_verbose=0)
    assert [m for m, stage in ran if stage == "train"] == [0, 1]  # trained, not skipped
    assert _hashes(reference) == before
    comparison = reproduce.compare(folder, reference)
    assert [m["member"] for m in comparison["members"]] == ["m00_lam1", "m01_lam1000"]
    assert all(m["verdict"] in ("bit-identical", "within intervals")
               for m in comparison["members"]), reproduce.report(comparison)


def test_outside_the_image_interval_but_inside_the_seed_range_is_said(tmp_path):
    # A rerun on other kernels trains other weights: the reference's seeds, not its interval
    # over images, give the spread to expect, and the report says which medians fall in it.
    reference = str(tmp_path / "reference")
    write_cohort(reference, members=("m00_lam10",))
    for member, shift in (("m01_lam150", 0.0), ("m01_lam150_seed1", 1.0),
                          ("m01_lam150_seed2", -1.0)):
        write_member(reference, member, shift=shift)
    near, far = str(tmp_path / "near"), str(tmp_path / "far")
    for folder, shift in ((near, 0.5), (far, 3.0)):
        write_cohort(folder, members=("m00_lam10",))
        write_member(folder, "m01_lam150", shift=shift)
    lines = reproduce.report(reproduce.compare(near, reference))
    member = next(line for line in lines if line.startswith("m01_lam150:"))
    assert "alignment" in member and "(inside the reference's seed range" in member
    assert "1 of them with every such median inside the reference's seed range" in lines[-1]
    lines = reproduce.report(reproduce.compare(far, reference))
    member = next(line for line in lines if line.startswith("m01_lam150:"))
    assert "(outside the reference's seed range" in member
    assert "seed range" not in lines[-1]
    # m00 has one seed in the reference: no range to judge by, nothing said.
    comparison = reproduce.compare(far, reference)
    assert comparison["members"][0]["seed_ranges"] == {}
