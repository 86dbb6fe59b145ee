"""The one-call report: every file, curves that are the per-image table's, a self-contained page,
resuming after a kill, and two models side by side."""

import os
import re

import keras
import numpy as np
import pytest

from robust_saliency import attacks, model_checks, reports, results, stats
from robust_saliency.figures import report as report_figures

# Few steps: the files and their consistency are under test here, not the attacks' strength.
FAST = {"ddn": {"steps": 20}, "fmn": {"steps": 20}, "alma": {"steps": 20},
        "ddn_fmn": {"ddn_steps": 20, "steps": 10}, "fab": {"steps": 10, "candidates": 3}}
FIGURES = ("robust_accuracy", "alignment_vs_rho", "rho_tilde_vs_rho", "decomposition",
           "gallery")


@pytest.fixture(scope="module")
def val(synthetic_arrays):
    _, (x, y) = synthetic_arrays
    return x[:20], y[:20]


@pytest.fixture(scope="module")
def finished(trained_small_net, val, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("report"))
    done = reports.report(trained_small_net, val[0], val[1], out_dir=out, attack_options=FAST,
                         gallery_images=2, name="small_net", verbose=False)
    return out, done


def test_writes_every_file(finished):
    out, done = finished
    for name in (results.PER_IMAGE_CSV, results.SUMMARY_JSON, results.ROBUST_ACCURACY_CSV,
                 reports.PREFLIGHT_JSON, reports.REPORT_JSON, reports.GALLERY_NPZ, "report.html",
                 "report.md"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    for stem in FIGURES:
        for ext in ("png", "pdf"):
            assert os.path.exists(os.path.join(out, reports.FIGURES_DIR, f"{stem}.{ext}"))
    assert done["stages_run"][:2] == ["metrics", "saliency"]
    assert "rho_alma" in done["stages_run"] and "gallery" in done["stages_run"]
    table = results.read_table(os.path.join(out, results.PER_IMAGE_CSV))
    strong = np.stack([table["rho_" + m] for m in attacks.STRONG])
    np.testing.assert_array_equal(table["rho_best"], strong.min(axis=0))
    assert [c["name"] for c in results.read_json(os.path.join(out, reports.PREFLIGHT_JSON))][0] \
        == "images"


def test_robust_accuracy_is_the_tables(finished):
    out, _ = finished
    table = results.read_table(os.path.join(out, results.PER_IMAGE_CSV))
    curve = results.read_table(os.path.join(out, results.ROBUST_ACCURACY_CSV))
    for eps, value in zip(curve["epsilon"], curve["robust_accuracy_best"]):
        want = np.mean((table["correct"] == 1) & (table["rho_best"] > eps))
        assert value == pytest.approx(want, abs=1e-12)
    eps = report_figures.budgets([table["rho_best"]])
    drawn = stats.robust_at(table["correct"], table["rho_best"], eps).mean(axis=0)
    for e, value in zip(eps, drawn):
        assert value == np.mean((table["correct"] == 1) & (table["rho_best"] > e))


def test_page_embeds_every_figure_and_links_nothing(finished):
    out, _ = finished
    page = open(os.path.join(out, "report.html")).read()
    assert page.count("src='data:image/png;base64,") == len(FIGURES)
    sources = re.findall(r"(?:src|href)\s*=\s*['\"]([^'\"]*)", page)
    assert sources and all(s.startswith("data:") for s in sources), sources
    for words in ("Preflight", "rho_best", "Spearman alignment vs rho_best", "Files"):
        assert words in page
    markdown = open(os.path.join(out, "report.md")).read()
    for stem in FIGURES:
        assert f"(figures/{stem}.png)" in markdown


def test_gallery_holds_each_images_own_rho_best(finished):
    out, _ = finished
    with np.load(os.path.join(out, reports.GALLERY_NPZ)) as g:
        np.testing.assert_allclose(g["distance"], g["rho_best"], rtol=1e-6)
        norms = np.sqrt((g["perturbation"].reshape(len(g["x"]), -1).astype(np.float64) ** 2)
                        .sum(axis=1))
        np.testing.assert_allclose(norms, g["distance"], rtol=1e-5)
        assert list(g["rho_best"]) == sorted(g["rho_best"], reverse=True)


def test_a_rerun_computes_nothing_again(trained_small_net, val, finished):
    out, _ = finished
    again = reports.report(trained_small_net, val[0], val[1], out_dir=out, attack_options=FAST,
                          gallery_images=2, verbose=False)
    assert again["stages_run"] == []
    with pytest.raises(ValueError, match="other images"):
        reports.report(trained_small_net, val[0][::-1], out_dir=out, verbose=False)


def test_a_killed_report_resumes_after_its_finished_stages(trained_small_net, val, tmp_path,
                                                           monkeypatch):
    out = str(tmp_path / "r")
    real = attacks.minimal_distance

    def dies_at_alma(model, images, method, *args, **kwargs):
        if method == "alma":
            raise KeyboardInterrupt
        return real(model, images, method, *args, **kwargs)

    monkeypatch.setattr(attacks, "minimal_distance", dies_at_alma)
    with pytest.raises(KeyboardInterrupt):
        reports.report(trained_small_net, val[0], out_dir=out, attack_options=FAST,
                      aggregated_saliency=False, verbose=False)
    monkeypatch.setattr(attacks, "minimal_distance", real)
    resumed = reports.report(trained_small_net, val[0], out_dir=out, attack_options=FAST,
                            aggregated_saliency=False, verbose=False)
    assert resumed["stages_run"] == ["rho_alma", "rho_fab", "gallery"]


def test_a_refused_preflight_stops_before_measuring(val, tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    with pytest.raises(model_checks.PreflightError, match="bounds"):
        reports.report(model, val[0] * 255, out_dir=str(tmp_path), verbose=False)
    assert os.path.exists(tmp_path / reports.PREFLIGHT_JSON)
    assert not os.path.exists(tmp_path / results.PER_IMAGE_CSV)


def test_two_models_side_by_side(trained_small_net, val, finished, tmp_path):
    out, _ = finished
    keras.utils.set_random_seed(1)
    other = keras.models.clone_model(trained_small_net)
    other.set_weights([w * 0.9 for w in trained_small_net.get_weights()])
    second = reports.report(other, val[0], val[1], out_dir=str(tmp_path / "b"),
                           attack_options=FAST, aggregated_saliency=False, gallery_images=1,
                           name="shrunk", verbose=False)
    pair = reports.compare(out, second["out_dir"], str(tmp_path / "pair"))
    page = open(pair["page"]).read()
    assert page.count("src='data:image/png;base64,") == 2
    assert "small_net and shrunk" in page
    with pytest.raises(ValueError, match="different images"):
        other_images = reports.report(other, val[0][:10], out_dir=str(tmp_path / "c"),
                                     attack_options=FAST, aggregated_saliency=False,
                                     verbose=False)
        reports.compare(out, other_images["out_dir"], str(tmp_path / "pair2"))


def test_the_command_reports_two_models_from_an_npz(trained_small_net, val, tmp_path):
    import subprocess
    import sys

    first, second = str(tmp_path / "a.keras"), str(tmp_path / "b.keras")
    trained_small_net.save(first)
    shrunk = keras.models.clone_model(trained_small_net)
    shrunk.set_weights([w * 0.9 for w in trained_small_net.get_weights()])
    shrunk.save(second)
    np.savez(tmp_path / "images.npz", x=val[0][:8], y=val[1][:8])
    options = ",".join(f"{m}.{k}={v}" for m, o in FAST.items() for k, v in o.items())
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "experiments.report", f"--model_path={first}",
         f"--second_model_path={second}", f"--data={tmp_path / 'images.npz'}",
         f"--out_dir={out}", f"--attack_options={options}", "--gallery_images=1"],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), capture_output=True,
        text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "data: 8 images from" in done.stdout and "with labels" in done.stdout
    for page in ("report.html", "second/report.html", "compare.html"):
        assert os.path.exists(out / page), page
