"""Replicate seeds in a cohort: members are (lambda, seed) pairs, resumable, and one-seed folders
written before seeds existed still read."""

import json
import os

import pytest

from robust_saliency import cohort, results, runs

TINY_TRAIN = runs.TrainConfig.of(
    data={"dataset": "synthetic", "train_subset": 200, "val_subset": 50},
    schedule={"epochs": 1, "kind": "constant"},
    optimizer={"learning_rate": 1e-2}, batch_size=50, probe_size=0)


def _spec(seeds=(0, 1), lambdas=(1.0,)):
    return cohort.CohortSpec(name="tiny", train=TINY_TRAIN, lambdas=lambdas, num_images=8,
                             attacks=("gradient",), seeds=seeds,
                             attack_options={"gradient": {"grid_size": 10, "refine_steps": 4}})


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_two_seed_cohort_trains_both_resumes_after_a_cut_and_then_skips(tmp_path):
    folder = str(tmp_path / "c")

    def cut_at_second_seed(message, end="\n"):
        if message == "model 2/2, lambda=1, seed 1: training":
            raise Interrupted

    with pytest.raises(Interrupted):
        cohort.run(folder, _spec(), progress=cut_at_second_seed, train_verbose=0)
    _, cut = cohort.read(folder)
    assert list(cut["status"]) == ["evaluated", "pending"] and list(cut["seed"]) == [0, 1]
    ran = cohort.run(folder, _spec(), train_verbose=0)
    assert ran == [(1, "train"), (1, "metrics"), (1, "rho_gradient")]
    spec, table = cohort.read(folder)
    assert spec["seeds"] == [0, 1]
    assert list(table["status"]) == ["evaluated", "evaluated"]
    assert list(table["run_dir"]) == ["m00_lam1", "m00_lam1_seed1"]
    assert list(table["lam"]) == [1.0, 1.0] and list(table["member"]) == [0, 1]
    configs = [results.read_json(os.path.join(folder, d, "run.json"))["config"]
               for d in table["run_dir"]]
    assert [c["seed"] for c in configs] == [0, 1]  # the top level of the nested layout
    # Two seeds, two different models: their measurements differ.
    assert table["median_alignment"][0] != table["median_alignment"][1]
    lines = []
    assert cohort.run(folder, _spec(), progress=lambda m, end="\n": lines.append(m)) == []
    assert lines == ["model 1/2, lambda=1, seed 0: done", "model 2/2, lambda=1, seed 1: done"]
    # One of its seeds (a one-seed `make demo` on a committed multi-seed folder): nothing to
    # run, and the table still holds both seeds.
    assert cohort.run(folder, _spec(seeds=(1,))) == []
    spec, table = cohort.read(folder)
    assert spec["seeds"] == [0, 1] and list(table["status"]) == ["evaluated", "evaluated"]


def test_seeds_can_be_added_to_or_picked_from_a_cohort_but_not_swapped(tmp_path):
    folder = str(tmp_path / "c")
    os.makedirs(folder)
    cohort._claim_folder(folder, _spec(seeds=(0,)))
    cohort._claim_folder(folder, _spec(seeds=(0, 1, 2)))  # more seeds: the same sweep grows
    assert json.load(open(os.path.join(folder, "cohort.json")))["seeds"] == [0, 1, 2]
    cohort._claim_folder(folder, _spec(seeds=(0, 2)))  # some of them: the folder keeps all
    assert json.load(open(os.path.join(folder, "cohort.json")))["seeds"] == [0, 1, 2]
    with pytest.raises(ValueError, match="different seeds"):
        cohort._claim_folder(folder, _spec(seeds=(3,)))
    with pytest.raises(ValueError, match="different lambdas"):
        cohort._claim_folder(folder, _spec(seeds=(0, 1, 2, 3), lambdas=(2.0,)))


@pytest.mark.parametrize("seeds", [(), (0, 0), (-1,), (0.5,)])
def test_bad_seeds_are_refused(seeds):
    with pytest.raises(ValueError, match="seeds must be distinct integers >= 0"):
        _spec(seeds=seeds)


def test_member_list_is_lambda_major_and_seed_zero_keeps_old_folder_names(tmp_path):
    assert cohort.member_list((1.0, 10.0), (0, 5)) == [(0, 1.0, 0), (0, 1.0, 5), (1, 10.0, 0),
                                                       (1, 10.0, 5)]
    assert cohort.member_dir("r", 3, 2000.0) == os.path.join("r", "m03_lam2000")
    assert cohort.member_dir("r", 3, 2000.0, 2) == os.path.join("r", "m03_lam2000_seed2")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHIVED = os.path.join(ROOT, "results", "archive_3epoch", "mnist_quick_fashion_mnist")


def test_a_committed_one_seed_folder_still_gives_figures_and_claims(tmp_path):
    """The archived quick cohort was written before seeds and intervals existed and rewritten
    once by the upgrade (seeds [0], seed and ci_ columns): it reads, draws and is judged."""
    from robust_saliency import claims, figures

    spec, table = cohort.read(ARCHIVED)
    assert any(k.startswith(cohort.CI_LOW) for k in table)
    assert spec["seeds"] == [0] and list(table["seed"]) == [0] * 5
    rows = {r["claim"]: r for r in claims.check(ARCHIVED)}
    assert rows["median alignment rises with median robustness (CW)"]["measured"].startswith(
        "Spearman 1.00")
    assert rows["rho_tilde <= right-hand side of (14)"]["verdict"] == "reproduced"
    paths = figures.draw("fig03_alignment_robustness", ARCHIVED, str(tmp_path))
    assert all(os.path.getsize(p) > 0 for p in paths)
