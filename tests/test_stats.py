"""The shared rank statistics, and the module layering they made possible: no import cycle among
the library's modules and no module reaching into another's underscore names."""

import ast
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
