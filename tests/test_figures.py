"""The figure commands on a real, tiny cohort: every file written, every missing input named."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from robust_saliency import figures, plotting, results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def cohort_dir(tiny_cohort):
    """Two synthetic members, trained one epoch and measured on 12 images with all attacks (the
    session's shared tiny cohort: the figures only read it)."""
    return tiny_cohort[0]


def _copy(cohort_dir, tmp_path):
    # The figures read tables and maps only; leaving the models out keeps the copy cheap.
    target = str(tmp_path / "copy")
    shutil.copytree(cohort_dir, target, ignore=shutil.ignore_patterns("model.keras", "tb"))
    return target


def _rewrite(path, change):
    table = results.read_table(path)
    change(table)
    results.write_table(path, table)


def _member_files(results_dir, name):
    spec, members = plotting.load(results_dir)
    return [os.path.join(results_dir, d, name) for d in members["run_dir"]]


@pytest.fixture(scope="module")
def drawn(cohort_dir, tmp_path_factory):
    """(out_dir, paths, errors) of the figures command's `plot` on the tiny cohort (member 0 for
    figures 4 and 5), drawn once for the tests below: each figure's test reads its files."""
    out_dir = str(tmp_path_factory.mktemp("figs"))
    return (out_dir, *figures.draw_all(cohort_dir, out_dir, member=0))


@pytest.mark.parametrize("name", figures.PAPER_FIGURES)
def test_each_figure_writes_png_and_pdf(drawn, name):
    out_dir, paths, errors = drawn
    assert name not in errors, errors.get(name)
    mine = sorted(os.path.basename(p) for p in paths if os.path.basename(p).startswith(name))
    assert mine == [f"{name}.pdf", f"{name}.png"]
    for path in mine:
        assert os.path.getsize(os.path.join(out_dir, path)) > 1000, path


def test_figures_command_draws_all_twenty(drawn):
    out_dir, paths, errors = drawn
    assert errors == {}
    assert len(paths) == 20 and len(set(paths)) == 20
    # Each figure writes its two files and nothing else.
    assert sorted(os.listdir(out_dir)) == sorted(os.path.basename(p) for p in paths)


@pytest.mark.parametrize("name", figures.PAPER_FIGURES)
def test_empty_folder_names_the_file_and_the_command(tmp_path, name):
    with pytest.raises(plotting.MissingResults,
                       match=r"cohort.json not found.*python -m experiments.cohort "
                             + re.escape(f"--results_dir={tmp_path}")):
        figures.draw(name, str(tmp_path), str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


def test_no_evaluated_member_fails_every_figure(cohort_dir, tmp_path):
    copy = _copy(cohort_dir, tmp_path)
    path = os.path.join(copy, "cohort.csv")
    _rewrite(path, lambda t: t.update(status=np.array(["diverged", "pending"])))
    for name in figures.PAPER_FIGURES:
        with pytest.raises(plotting.MissingResults, match="no evaluated member.*1 diverged"):
            figures.draw(name, copy, str(tmp_path / "out"))


def test_without_cw_figure5_falls_back_and_says_so(cohort_dir, tmp_path):
    copy = _copy(cohort_dir, tmp_path)
    _rewrite(os.path.join(copy, "cohort.csv"), lambda t: t.pop("median_rho_cw"))
    for path in _member_files(copy, results.PER_IMAGE_CSV):
        _rewrite(path, lambda t: t.pop("rho_cw"))
    from robust_saliency.figures import pointwise

    table = results.read_table(_member_files(copy, results.PER_IMAGE_CSV)[0])
    assert pointwise.choose_attack(table) in ("rho_gradient", "rho_bim")
    assert len(figures.draw("fig05_pointwise_attack", copy, str(tmp_path / "out"))) == 2
    assert len(figures.draw("fig02_alignment_robustness", copy, str(tmp_path / "out"))) == 2


def test_missing_maps_and_columns_are_named(cohort_dir, tmp_path):
    copy = _copy(cohort_dir, tmp_path)
    for path in _member_files(copy, "maps.npz"):
        os.remove(path)
    for name in ("fig01_saliency", "fig10_gallery"):
        with pytest.raises(plotting.MissingResults, match="maps.npz not found.*experiments.cohort"):
            figures.draw(name, copy, str(tmp_path / "out"))
    for path in _member_files(copy, results.PER_IMAGE_CSV):
        _rewrite(path, lambda t: t.pop("bound14"))
    with pytest.raises(plotting.MissingResults, match="column bound14 missing from .*per_image"):
        figures.draw("fig06_bound18", copy, str(tmp_path / "out"))


def test_member_option(cohort_dir, tmp_path):
    # `drawn` passed member=0; here the default and a member that does not exist.
    assert len(figures.draw("fig04_pointwise_alignment", cohort_dir, str(tmp_path))) == 2
    with pytest.raises(plotting.MissingResults, match="member 7 is not evaluated.*0, 1"):
        figures.draw("fig04_pointwise_alignment", cohort_dir, str(tmp_path), member=7)


def test_command_exits_with_one_error_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "experiments.figures", "--figures=fig06",
         f"--results_dir={tmp_path}", f"--out_dir={tmp_path / 'out'}"], cwd=ROOT,
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"error: 1 of 1 figures not drawn (fig06_bound18): {tmp_path}/cohort.json not found")


def test_saved_figures_do_not_depend_on_the_clock(tmp_path, monkeypatch):
    # matplotlib stamps PDFs with the time (SOURCE_DATE_EPOCH when set): two saves at different
    # times must give the same bytes, so redrawn committed figures show no spurious diff.
    import matplotlib.pyplot as plt

    written = []
    for epoch in ("0", "1000000000"):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        out = tmp_path / epoch
        out.mkdir()
        written.append([open(p, "rb").read() for p in plotting.save(fig, str(out), "f")])
    assert written[0] == written[1]


def test_seed_bands_leave_out_a_collapsed_seeds_undefined_values():
    # Three seeds of two lambdas; lambda 2's seed 1 collapsed to a constant classifier: its
    # attack distance is undefined (nan) and its rho_tilde infinite. A band to infinity, or a
    # median that drops the whole lambda, would hide the two sound seeds.
    members = {"lam": np.repeat([1.0, 2.0], 3),
               "median_rho_bim": np.array([1.0, 1.2, 1.1, 2.0, np.nan, 1.5]),
               "median_lin_robustness": np.array([1.0, 1.2, 1.1, 3.0, np.inf, 0.9])}
    lams, centre, low, high, band = plotting.by_lambda(members, "median_rho_bim")
    np.testing.assert_array_equal(lams, [1.0, 2.0])
    np.testing.assert_allclose(centre, [1.1, 1.75])
    np.testing.assert_allclose(low, [1.0, 1.5])
    np.testing.assert_allclose(high, [1.2, 2.0])
    assert band == "seed range (3 seeds per lambda)"
    _, centre, low, high, _ = plotting.by_lambda(members, "median_lin_robustness")
    np.testing.assert_allclose([centre[1], low[1], high[1]], [1.95, 0.9, 3.0])
    members["median_rho_bim"][3:] = np.nan
    assert np.isnan(plotting.by_lambda(members, "median_rho_bim")[1][1])


# The committed cohorts whose figures are final, and those of them measured with the
# explanation metrics (figures 11 and 12 too).
FINAL_COHORTS = ("mnist_quick_mnist", "mnist_converged_mnist", "mnist_quick_fashion_mnist",
                 "mnist_quick_alignment_mnist", "mnist_quick_pgd_mnist", "mnist_quick_linf_mnist")
WITH_EXPLANATION_METRICS = ("mnist_quick_mnist", "mnist_converged_mnist")


@pytest.mark.parametrize("name", FINAL_COHORTS)
def test_the_committed_cohorts_redraw_byte_for_byte(tmp_path, name):
    # `make figures` must reproduce the committed figures exactly, the explanation figures 11
    # and 12 included where the cohort measured those metrics.
    cohort_dir = os.path.join(ROOT, "results", name)
    committed = os.path.join(ROOT, "figures", name)
    paths, errors = figures.draw_all(cohort_dir, str(tmp_path))
    assert errors == {}
    names = sorted(os.path.basename(p) for p in paths)
    expected = figures.NAMES if name in WITH_EXPLANATION_METRICS else figures.PAPER_FIGURES
    assert names == sorted(os.listdir(committed)) and len(names) == 2 * len(expected)
    for name in names:
        with open(tmp_path / name, "rb") as new, open(os.path.join(committed, name), "rb") as old:
            assert new.read() == old.read(), name


def test_explanation_figures_are_left_out_unless_measured_and_named_when_asked(cohort_dir,
                                                                               tmp_path):
    # The tiny cohort has no explanation metrics: the default run leaves 11 and 12 out (the
    # twenty-file test above), but asking for them names what is missing and how to measure it.
    paths, errors = figures.draw_all(cohort_dir, str(tmp_path), names=["fig11", "fig12"])
    assert paths == [] and sorted(errors) == list(figures.EXPLANATION_FIGURES)
    for message in errors.values():
        assert "no explanation-metric column" in message and "--explanation_metrics" in message


def test_figure_selection_by_name_and_prefix():
    assert figures.select(["fig12", "fig02_alignment_robustness"]) == (
        "fig02_alignment_robustness", "fig12_explanation_gallery")
    assert figures.select(None) == figures.NAMES
    with pytest.raises(ValueError, match="unknown figure 'fig13'.*fig01_saliency"):
        figures.select(["fig13"])


def test_explanation_panel_signs_spearman_by_the_better_direction():
    # complexity is lower-is-better: a metric falling as robustness rises is "better with
    # robustness", +1 in the panel as in the claims' rows; the raw correlation is -1.
    import matplotlib.pyplot as plt

    from robust_saliency.figures import explanations

    rho = np.array([1.0, 1.5, 2.0, 2.5])
    members = {"lam": np.array([1.0, 10.0, 100.0, 1000.0]), "median_rho_best": rho,
               "median_complexity": 6.0 - rho, "degenerate": np.zeros(4, bool)}
    fig, ax = plt.subplots()
    explanations._panel(ax, members, lambda suffix: f"median_complexity{suffix}",
                             np.ones(4, bool), title="complexity", sign=-1.0)
    assert ax.get_title().endswith("+1.00")
    explanations._panel(ax, members, lambda suffix: f"median_complexity{suffix}",
                             np.ones(4, bool), title="complexity", sign=1.0)
    assert ax.get_title().endswith("-1.00")
    plt.close(fig)
