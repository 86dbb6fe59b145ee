"""The figure commands on a real, tiny cohort: every file written, every missing input named."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from robust_saliency import attacks, figure_inputs, figures, plotting, results

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
    spec, members = figure_inputs.load(results_dir)
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
    with pytest.raises(figure_inputs.MissingResults,
                       match=r"cohort.json not found.*python -m experiments.cohort "
                             + re.escape(f"--results_dir={tmp_path}")):
        figures.draw(name, str(tmp_path), str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


def test_no_evaluated_member_fails_every_figure(cohort_dir, tmp_path):
    copy = _copy(cohort_dir, tmp_path)
    path = os.path.join(copy, "cohort.csv")
    _rewrite(path, lambda t: t.update(status=np.array(["diverged", "pending"])))
    for name in figures.PAPER_FIGURES:
        with pytest.raises(figure_inputs.MissingResults, match="no evaluated member.*1 diverged"):
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
        with pytest.raises(figure_inputs.MissingResults,
                           match="maps.npz not found.*experiments.cohort"):
            figures.draw(name, copy, str(tmp_path / "out"))
    for path in _member_files(copy, results.PER_IMAGE_CSV):
        _rewrite(path, lambda t: t.pop("bound14"))
    with pytest.raises(figure_inputs.MissingResults,
                       match="column bound14 missing from .*per_image"):
        figures.draw("fig06_bound18", copy, str(tmp_path / "out"))


def test_member_option(cohort_dir, tmp_path):
    # `drawn` passed member=0; here the default and a member that does not exist.
    assert len(figures.draw("fig04_pointwise_alignment", cohort_dir, str(tmp_path))) == 2
    with pytest.raises(figure_inputs.MissingResults, match="member 7 is not evaluated.*0, 1"):
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
    expected = figures.PAPER_FIGURES
    if name in WITH_EXPLANATION_METRICS:
        expected += figures.EXPLANATION_FIGURES
    if _strong_attacks(cohort_dir):
        expected += figures.STRONG_ATTACK_FIGURES
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
    assert figures.select(["fig13"]) == ("fig13_strong_attacks",)
    with pytest.raises(ValueError, match="unknown figure 'fig99'.*fig01_saliency.*fig13"):
        figures.select(["fig99"])


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


def _strong_attacks(results_dir):
    table = results.read_table(os.path.join(results_dir, results.COHORT_CSV))
    return plotting.attack_columns(table, prefix="median_rho_")[1]


# A sweep built from the tiny cohort: its first member at four lambdas, per-image values scaled
# so that the four points differ, the third degenerate (accuracy far below the first's), with a
# strong attack (ddn) beside the paper's three (CW's distances made finite) and one explanation
# metric.
SWEEP = (1.0, 10.0, 100.0, 1000.0)
DEGENERATE = 2


def _add_attack(results_dir, name, excess):
    """Adds rho_<name> = rho_best * (1 + excess) to every member, and its median to cohort.csv."""
    path = os.path.join(results_dir, results.COHORT_CSV)
    table = results.read_table(path)
    medians = []
    for run_dir in table["run_dir"]:
        per_image = os.path.join(results_dir, run_dir, results.PER_IMAGE_CSV)
        _rewrite(per_image, lambda t: t.update({f"rho_{name}": t["rho_best"] * (1 + excess)}))
        medians.append(np.median(results.read_table(per_image)[f"rho_{name}"]))
    table[f"median_rho_{name}"] = np.array(medians)
    results.write_table(path, table)


@pytest.fixture(scope="module")
def sweep_dir(cohort_dir, tmp_path_factory):
    target = str(tmp_path_factory.mktemp("sweep") / "c")
    shutil.copytree(cohort_dir, target, ignore=shutil.ignore_patterns("model.keras", "tb"))
    path = os.path.join(target, results.COHORT_CSV)
    table = results.read_table(path)
    rows = {name: [] for name in table}
    for k, lam in enumerate(SWEEP):
        scale = 1.0 + 0.1 * k
        run_dir = f"sweep_m{k}"
        shutil.copytree(os.path.join(target, table["run_dir"][0]), os.path.join(target, run_dir))
        _rewrite(os.path.join(target, run_dir, results.PER_IMAGE_CSV), lambda t, s=scale: t.update(
            {n: c * s for n, c in t.items() if c.dtype == np.float64}))
        for name, column in table.items():
            value = column[0]
            if name.startswith(("median_", "ci_")):
                value = value * scale
            rows[name].append(value)
        rows["member"][-1], rows["lam"][-1], rows["run_dir"][-1] = k, lam, run_dir
        rows["status"][-1] = "evaluated"
        rows["accuracy"][-1] = 0.1 if k == DEGENERATE else 0.9
    rows["median_sparseness"] = [0.5 + 0.05 * k for k in range(len(SWEEP))]
    results.write_table(path, {name: np.array(values) for name, values in rows.items()})
    spec = results.read_json(os.path.join(target, results.COHORT_JSON))
    results.write_json(os.path.join(target, results.COHORT_JSON), {**spec, "lambdas": SWEEP})
    _add_attack(target, "cw", 0.005)  # the tiny cohort's short CW finds nothing on most images
    _add_attack(target, "ddn", 0.01)
    return target


@pytest.fixture
def kept(monkeypatch):
    """{stem: figure} of the figures drawn, kept open instead of saved (plotting.save)."""
    figs = {}
    monkeypatch.setattr(plotting, "save", lambda fig, out_dir, stem: figs.update({stem: fig})
                        or [])
    yield figs
    import matplotlib.pyplot as plt

    for fig in figs.values():
        plt.close(fig)


def test_figure3_draws_the_papers_estimates_and_rho_best_only(sweep_dir, tmp_path, kept):
    # A cohort with strong attacks, one of them unknown to the registry: figure 3 keeps the
    # paper's curves (rho_tilde, gradient, BIM, CW) and rho_best, whatever else was measured.
    copy = _copy(sweep_dir, tmp_path)
    _add_attack(copy, "newattack", 0.02)
    figures.draw("fig03_alignment_robustness", copy, str(tmp_path))
    (ax,) = kept["fig03_alignment_robustness"].axes
    _, names = ax.get_legend_handles_labels()
    expected = [plotting.ESTIMATES[k][0] for k in
                ("lin_robustness", "rho_gradient", "rho_bim", "rho_cw", "rho_best")]
    assert [n for n in names if not n.startswith("degenerate")] == expected
    assert len([c for c in ax.containers if not c.get_label().startswith("_")]) == 5
    joined = [line for line in ax.lines if line.get_linestyle() not in ("None", "")
              and len(line.get_xdata()) > 1]
    assert len(joined) == 5  # one line per estimate, no more
    texts = [t.get_text() for t in ax.texts] + names
    assert not any("DDN" in t or "newattack" in t for t in texts)


def test_strong_attack_figure_picks_up_new_attack_columns(sweep_dir, tmp_path, kept,
                                                            monkeypatch):
    # Two attacks beyond the fixture's ddn, added as columns only: one registered now (as a
    # new attack class would be), one not registered at all. Both join figure 13, an L-inf
    # attack's column does not, and the default draw includes the figure.
    # Defining the class registers it. monkeypatch.setitem records that "zeta" was absent, so
    # the registration is undone after the test (delitem of an absent key records nothing, and
    # the registration leaked into later tests).
    monkeypatch.setitem(attacks.ATTACKS, "zeta", None)

    class Zeta(attacks.Attack):
        name, label = "zeta", "Zeta"

    assert attacks.ATTACKS["zeta"] is Zeta
    copy = _copy(sweep_dir, tmp_path)
    for name, excess in (("zeta", 0.02), ("omega", 0.0), ("fmn_linf", 0.03)):
        _add_attack(copy, name, excess)
    _, errors = figures.draw_all(copy, str(tmp_path))
    assert errors == {} and "fig13_strong_attacks" in kept
    fig = kept["fig13_strong_attacks"]
    names = fig.legends[0].get_texts()
    assert [t.get_text() for t in names if not t.get_text().startswith("degenerate")] == [
        "DDN", "Zeta", "omega"]
    median, share = fig.axes[:2]
    assert len(median.containers) == len(share.containers) >= 3
    # omega equals rho_best on every image: its share at the minimum is 1 for every member.
    omega = [c for c in share.containers if c.get_label() == "omega"][0]
    np.testing.assert_allclose(omega.lines[0].get_ydata()[[0, 1, 3]], 1.0)


def test_strong_attack_figure_is_left_out_without_strong_attacks_and_says_why(cohort_dir,
                                                                             tmp_path):
    paths, errors = figures.draw_all(cohort_dir, str(tmp_path), names=["fig13"])
    assert paths == [] and list(errors) == ["fig13_strong_attacks"]
    assert "no strong L2 attack column" in errors["fig13_strong_attacks"]
    assert "--attacks=gradient,bim,cw," in errors["fig13_strong_attacks"]


def _points(line):
    return np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float)


def _hollow(line):
    """A degenerate point as errorbars draws it: markers only, filled white."""
    import matplotlib.colors

    return (line.get_linestyle() in ("None", "") and len(line.get_xdata()) > 0
            and matplotlib.colors.to_rgba(line.get_markerfacecolor()) == (1.0, 1.0, 1.0, 1.0))


# Every figure that joins a cohort's models by lines.
JOINING = ("fig02_alignment_robustness", "fig03_alignment_robustness", "fig06_bound18",
           "fig07_bound19", "fig08_bound20", "fig09_linear_share", "fig11_explanation_metrics",
           "fig13_strong_attacks")


@pytest.mark.parametrize("name", JOINING)
def test_a_degenerate_member_is_hollow_and_joined_to_nothing(sweep_dir, tmp_path, kept, name):
    figures.draw(name, sweep_dir, str(tmp_path))
    fig = kept[name]
    hollow_points = joined_lines = 0
    for ax in fig.axes:
        joined = [_points(line) for line in ax.lines
                  if line.get_linestyle() not in ("None", "") and len(line.get_xdata()) > 1]
        hollow = [_points(line) for line in ax.lines if _hollow(line)]
        for points in hollow:
            for point in points:
                hollow_points += 1
                for line in joined:
                    assert not np.any(np.all(np.isclose(line, point), axis=1)), (ax, point)
        for line in joined:
            # Lines join neighbouring lambdas; the gap at the degenerate one is a break (nan),
            # so no segment spans it: never more than the one of lambdas 1 and 10.
            finite = np.isfinite(line).all(axis=1)
            if len(line) == len(SWEEP) and finite.sum() > 1:
                joined_lines += 1
                assert not finite[DEGENERATE]
                assert (finite[:-1] & finite[1:]).sum() == 1
    assert hollow_points and joined_lines
    assert any(t.startswith("degenerate") for ax in fig.axes
               for t in ax.get_legend_handles_labels()[1])


@pytest.mark.parametrize("name", ("fig03_alignment_robustness", "fig09_linear_share",
                                  "fig06_bound18"))
def test_lambda_labels_do_not_overlap_on_the_converged_cohort(tmp_path, kept, name):
    # The converged cohort's 16 lambdas crowd the low-robustness corner: the labels placed
    # there must still not overlap each other, and stay inside their axes.
    cohort_dir = os.path.join(ROOT, "results", "mnist_converged_mnist")
    figures.draw(name, cohort_dir, str(tmp_path))
    fig = kept[name]
    import matplotlib.text

    fig.canvas.draw()  # as saving would: annotations take their places
    renderer = fig.canvas.get_renderer()
    placed = 0
    for ax in fig.axes:
        # The text's own box (an annotation's extent also spans its leader line).
        boxes = [matplotlib.text.Text.get_window_extent(t, renderer) for t in ax.texts]
        placed += len(boxes)
        inside = ax.get_window_extent(renderer)
        for k, box in enumerate(boxes):
            assert inside.x0 <= box.x0 and box.x1 <= inside.x1
            assert inside.y0 <= box.y0 and box.y1 <= inside.y1
            assert not any(box.overlaps(other) for other in boxes[k + 1:]), ax.texts[k]
    assert placed >= 6
    assert any("(degenerate)" in t.get_text() for ax in fig.axes for t in ax.texts)
