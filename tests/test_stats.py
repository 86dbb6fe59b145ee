"""The shared rank statistics, and the module layering they made possible: no import cycle among
the library's modules and no module reaching into another's underscore names."""

import ast
import glob
import os

import numpy as np
import pytest

from robust_saliency import stats

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "robust_saliency")


def test_rank_statistics():
    assert stats.spearman([1, 2, 3, 4], [10, 20, 30, 400]) == pytest.approx(1.0)
    assert stats.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert stats.spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)
    assert np.isnan(stats.pearson([1, 2], [3, 4]))


def test_ranks_share_the_mean_rank_of_ties_per_row():
    np.testing.assert_array_equal(stats.ranks([3.0, 1.0, 2.0, 2.0]), [4.0, 1.0, 2.5, 2.5])
    np.testing.assert_array_equal(stats.ranks([[1.0, 1.0, 0.0], [0.0, 1.0, 2.0]]),
                                  [[2.5, 2.5, 1.0], [1.0, 2.0, 3.0]])


def test_spearman_and_pearson_skip_non_finite_pairs():
    a = [1.0, 2.0, np.nan, 3.0, 4.0]
    b = [2.0, 4.0, 5.0, np.inf, 8.0]
    assert stats.pearson(a, b) == pytest.approx(1.0)
    assert stats.spearman(a, [4.0, 3.0, 9.0, 1.0, 0.0]) == pytest.approx(-1.0)


def _imports():
    """{module: (library modules it imports anywhere, (module, name) underscore names it takes
    from them)} for every module of the package, from its source."""
    modules = {f[:-3] for f in os.listdir(PACKAGE) if f.endswith(".py")}
    found = {}
    for module in modules:
        tree = ast.parse(open(os.path.join(PACKAGE, module + ".py")).read())
        deps, private = set(), set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "robust_saliency":
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "robust_saliency."):
                source = node.module.split(".")[1]
                deps.add(source)
                private |= {(source, a.name) for a in node.names if a.name.startswith("_")}
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id in modules and node.attr.startswith("_")
                  and not node.attr.startswith("__")):
                private.add((node.value.id, node.attr))
        found[module] = (deps & modules, private)
    return found


def test_no_import_cycle_among_library_modules():
    graph = {m: deps for m, (deps, _) in _imports().items()}
    state = {}

    def visit(module, path):
        state[module] = "open"
        for dep in sorted(graph[module]):
            assert state.get(dep) != "open", "import cycle: " + " -> ".join(path + [dep])
            if dep not in state:
                visit(dep, path + [dep])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # The cycle this layering broke: saliency -> claims -> cohort -> evaluation -> saliency.
    assert "claims" not in graph["saliency"] and "stats" in graph["saliency"]


def test_no_module_uses_another_modules_underscore_names():
    private = {m: names for m, (_, names) in _imports().items() if names}
    assert private == {}, private


ROOT = os.path.dirname(PACKAGE)


def _finite_pairs(a, b):
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def _reference_pearson(a, b):
    """The hand-written Pearson this project used before scipy: over the finite pairs, nan
    with < 3 pairs or where a side is constant (a collapsed model's zero maps)."""
    a, b = _finite_pairs(a, b)
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _reference_spearman(a, b):
    """The hand-written Spearman this project used before scipy (over the finite pairs, average
    ranks of ties, then numpy's Pearson), kept here as the reference that the committed numbers
    came from."""
    a, b = _finite_pairs(a, b)

    def rank(v):
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(1, len(v) + 1)
        for value in np.unique(v):
            r[v == value] = r[v == value].mean()
        return r
    return float(np.corrcoef(rank(a), rank(b))[0, 1])


def test_scipy_statistics_reproduce_the_committed_claims_numbers():
    from robust_saliency import results

    folders = sorted(glob.glob(os.path.join(ROOT, "results", "**", "cohort.csv"),
                               recursive=True))
    assert folders, "the repository's committed results are missing"
    checked = 0
    for path in folders:
        table = results.read_table(path)
        done = table["status"] == "evaluated"
        if done.sum() < 3:
            continue
        robust, align = table["median_lin_robustness"][done], table["median_alignment"][done]
        assert stats.spearman(robust, align) == pytest.approx(
            _reference_spearman(robust, align), abs=1e-12)
        for run_dir in table["run_dir"][done]:
            m = results.read_table(os.path.join(os.path.dirname(path), run_dir, "per_image.csv"))
            assert stats.pearson(m["lin_robustness"], m["alignment"]) == pytest.approx(
                _reference_pearson(m["lin_robustness"], m["alignment"]), abs=1e-12, nan_ok=True)
            checked += 1
    assert checked >= 5


def test_median_interval_covers_the_true_median_at_the_stated_level():
    # 400 samples of 101 draws from a standard normal (true median 0), data seeded: the
    # coverage must be the stated level within 3 Monte-Carlo standard errors.
    rng = np.random.default_rng(20261127)
    trials = 400
    covered = 0
    for _ in range(trials):
        low, high = stats.median_interval(rng.normal(size=101))
        covered += low <= 0.0 <= high
    error = np.sqrt(stats.CONFIDENCE * (1 - stats.CONFIDENCE) / trials)
    assert abs(covered / trials - stats.CONFIDENCE) <= 3 * error, covered / trials


def test_intervals_are_seeded_and_skip_non_finite_values():
    values = np.r_[np.random.default_rng(3).exponential(size=300), np.inf, np.nan]
    assert stats.median_interval(values) == stats.median_interval(values[:300])
    low, high = stats.median_interval(values)
    assert low < np.median(values[:300]) < high
    assert np.isnan(stats.median_interval([1.0])).all()


def test_spearman_interval_separates_a_trend_from_noise():
    x = np.arange(20.0)
    trend = stats.spearman_interval(x, x + np.random.default_rng(4).normal(0, 2, 20))
    noise = stats.spearman_interval(x, np.random.default_rng(5).normal(size=20))
    assert 0.6 < trend[0] <= trend[1] <= 1.0
    assert noise[0] < 0 < noise[1]
    assert stats.overlap(noise, (0.0, 0.0)) and not stats.overlap(trend, noise)
    assert stats.overlap((np.nan, np.nan), (5.0, 6.0))  # undefined: never a decision


def test_median_share_leaves_out_undefined_and_infinite_shares():
    part = np.array([1.0, 2.0, 3.0, 0.0, 1.0, np.inf])
    whole = np.array([2.0, 4.0, 4.0, 0.0, 0.0, np.inf])
    # 0/0, 1/0 and inf/inf are dropped: the median of 0.5, 0.5, 0.75 (with the inf kept it
    # would be 0.625).
    assert stats.median_share(part, whole) == 0.5


def test_median_magnitude_ratio_is_a_ratio_of_medians():
    numerator = np.array([-1.0, 2.0, -3.0])
    denominator = np.array([4.0, -1.0, 10.0])
    # M|num| = 2, M|den| = 4; the median of the per-image ratios would be 0.3.
    assert stats.median_magnitude_ratio(numerator, denominator) == (0.5, 2.0, 4.0)
