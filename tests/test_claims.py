"""The claims module's verdicts on hand-made results with known answers."""

import os

import numpy as np
import pytest

from robust_saliency import claims, cohort, results


def _member(rng, n, *, scale, correlated):
    lin = rng.uniform(0.5, 1.5, n) * scale
    noise = rng.normal(0, 0.05 * scale, n)
    return {
        "index": np.arange(n), "label": np.zeros(n, int), "correct": np.ones(n, int),
        "lin_robustness": lin,
        "alignment": lin * 2 + noise if correlated else rng.uniform(0, 3 * scale, n),
        "alignment_bin": lin * 0.9, "bias_term": lin * 0.2 * scale,
        "bound14": lin * 0.9 + lin * 0.2 * scale, "bound15": lin * 5, "bound16": lin * 4,
        "bound16_printed": lin * 0.5,  # below rho_tilde: the printed form fails here
        "x_term_bin": lin / scale, "b_term_bin": lin * (1 - 1 / scale), "psi_bin": lin,
        "grad_bin_norm": np.ones(n),
        "rho_cw": lin * 1.1, "rho_bim": lin * 1.2, "rho_gradient": lin * 1.5,
    }


def _write_cohort(folder, members, dataset="fashion_mnist"):
    rows = {"member": [], "lam": [], "status": [], "run_dir": [], "accuracy": [],
            "num_images": []}
    medians = {}
    for i, m in enumerate(members):
        run_dir = f"m{i:02d}"
        results.write_table(os.path.join(folder, run_dir, results.PER_IMAGE_CSV), m)
        rows["member"].append(i)
        rows["lam"].append(10.0 ** i)
        rows["status"].append("evaluated")
        rows["run_dir"].append(run_dir)
        rows["accuracy"].append(0.9)
        rows["num_images"].append(len(m["label"]))
        for key in ("alignment", "lin_robustness", "rho_cw", "rho_bim", "rho_gradient"):
            medians.setdefault("median_" + key, []).append(np.median(m[key]))
    results.write_table(os.path.join(folder, cohort.COHORT_CSV), {**rows, **medians})
    results.write_json(os.path.join(folder, cohort.COHORT_JSON),
                       {"name": "hand", "train": {"dataset": dataset},
                        "lambdas": rows["lam"]})


def _verdicts(folder):
    return {r["claim"]: r["verdict"] for r in claims.check(str(folder))}


def test_known_answers(tmp_path):
    rng = np.random.default_rng(0)
    members = [_member(rng, 50, scale=s, correlated=True) for s in (1.0, 2.0, 3.0, 4.0)]
    _write_cohort(tmp_path, members)
    v = _verdicts(tmp_path)
    assert v["median alignment rises with median robustness (CW)"] == "reproduced"
    assert v["CW <= BIM <= gradient attack medians"] == "reproduced"
    assert v["pointwise lin_robustness vs rho_cw correlation"] == "reproduced"
    assert v["pointwise lin_robustness vs alignment correlation"] == "reproduced"
    assert v["rho_tilde <= right-hand side of (14)"] == "reproduced"
    # x_term_bin / psi_bin = 1 / scale falls with robustness: the MNIST trend of Fig. 9.
    assert v["M|<x, g_dagger>| / M|Psi_dagger| vs robustness"] == "reproduced"
    rows = {r["claim"]: r for r in claims.check(str(tmp_path))}
    assert rows["rho_tilde <= (16) as printed (g_bar in place of gamma_bar)"]["measured"] \
        .startswith("200 violations")


def test_known_failures(tmp_path):
    rng = np.random.default_rng(1)
    members = [_member(rng, 50, scale=s, correlated=False) for s in (1.0, 2.0, 3.0)]
    members[1]["rho_cw"] = members[1]["rho_gradient"] * 2  # CW worse than gradient
    members[2]["bound14"] = members[2]["lin_robustness"] * 0.5  # a violated theorem
    members[0]["rho_cw"] = rng.permutation(members[0]["rho_cw"])
    for m in members:
        m["rho_cw"] = rng.permutation(m["rho_cw"])
    _write_cohort(tmp_path, members)
    v = _verdicts(tmp_path)
    assert v["CW <= BIM <= gradient attack medians"] == "not reproduced"
    assert v["pointwise lin_robustness vs rho_cw correlation"] == "not reproduced"
    assert v["pointwise lin_robustness vs alignment correlation"] == "not reproduced"
    assert v["rho_tilde <= right-hand side of (14)"] == "not reproduced"


def test_imagenet_expectations_flip(tmp_path):
    rng = np.random.default_rng(2)
    members = [_member(rng, 50, scale=s, correlated=False) for s in (1.0, 2.0, 3.0)]
    _write_cohort(tmp_path, members, dataset="imagenet")
    v = _verdicts(tmp_path)
    assert v["pointwise lin_robustness vs alignment correlation"] == "reproduced"
    assert v["M|<x, g_dagger>| / M|Psi_dagger| vs robustness"] == "not reproduced"


def test_markdown_escapes_pipes():
    md = claims.to_markdown([{"claim": "M|x|", "paper": "p", "measured": "m", "rule": "r",
                              "verdict": "n/a"}], "t")
    assert "M\\|x\\|" in md and md.count("\n| ") == 2


def test_missing_results_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="cohort.json not found"):
        claims.check(str(tmp_path))


def test_cohort_markdown_lists_every_member(tmp_path):
    rng = np.random.default_rng(3)
    _write_cohort(tmp_path, [_member(rng, 10, scale=s, correlated=True) for s in (1.0, 2.0)])
    _, table = cohort.read(str(tmp_path))
    md = claims.cohort_markdown(table)
    assert md.splitlines()[0].startswith("| lambda | status | accuracy | M[alpha]")
    assert "| 1 | evaluated | 0.900 |" in md and "| 10 | evaluated |" in md
