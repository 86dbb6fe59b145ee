"""The on-disk format: atomic writes, the CSV tables and JSON documents read back as written, and
the one layout run.json and cohort.json are read in."""

import json
import os

import numpy as np
import pytest

from robust_saliency import results


def test_atomic_path_replaces_on_success_and_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "deep" / "table.csv"
    results.write_text(path, "old\n")
    with pytest.raises(RuntimeError):
        with results.atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old\n"
    assert os.listdir(path.parent) == ["table.csv"]  # no temporary file left behind
    results.write_text(path, "new\n")
    assert path.read_text() == "new\n" and os.listdir(path.parent) == ["table.csv"]


def test_a_table_reads_back_with_its_columns_order_and_kinds(tmp_path):
    columns = {"index": np.arange(3), "rho_cw": np.array([0.25, np.inf, np.nan]),
               "method": np.array(["a", "b", "c"])}
    path = tmp_path / "per_image.csv"
    results.write_table(path, columns)
    table = results.read_table(path)
    assert list(table) == ["index", "rho_cw", "method"]
    assert table["index"].dtype == np.int64 and table["rho_cw"].dtype == np.float64
    np.testing.assert_array_equal(table["index"], columns["index"])
    np.testing.assert_array_equal(table["rho_cw"], columns["rho_cw"])  # inf and NaN kept
    assert list(table["method"]) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="differ in length"):
        results.write_table(path, {"a": [1, 2], "b": [1]})
    assert results.read_table(path)["index"].tolist() == [0, 1, 2]  # the failed write lost nothing


def test_json_holds_numpy_values_and_infinities(tmp_path):
    path = tmp_path / "summary.json"
    results.write_json(path, {"b": np.float32(0.5), "a": np.arange(2), "c": float("inf")})
    assert results.read_json(path) == {"a": [0, 1], "b": 0.5, "c": "inf"}
    assert list(json.loads(path.read_text())) == ["a", "b", "c"]  # keys sorted: stable diffs


@pytest.mark.parametrize("name", [results.RUN_JSON, results.COHORT_JSON])
def test_run_and_cohort_files_are_read_in_the_current_layout_only(tmp_path, name):
    path = tmp_path / "cohort" / "m00" / name
    results.write_json(path, {results.SCHEMA_KEY: results.SCHEMA_VERSION, "x": 1})
    assert results.read_json(path)["x"] == 1
    results.write_json(path, {"x": 1})  # no version: the oldest layout
    with pytest.raises(results.OldLayoutError, match=results.UPGRADE_COMMAND):
        results.read_json(path)
    assert results.read_json(path, check=False) == {"x": 1}
    results.write_json(path, {results.SCHEMA_KEY: results.SCHEMA_VERSION + 1})
    with pytest.raises(results.OldLayoutError, match="newer than"):
        results.read_json(path)


def test_a_members_old_file_names_its_cohorts_folder(tmp_path):
    results.write_json(tmp_path / results.COHORT_JSON,
                       {results.SCHEMA_KEY: results.SCHEMA_VERSION})
    member = tmp_path / "m00_lam1" / results.RUN_JSON
    results.write_json(member, {"config": {}})
    with pytest.raises(results.OldLayoutError) as error:
        results.read_json(member)
    assert str(error.value).endswith(f"{results.UPGRADE_COMMAND} {tmp_path}")


def test_markdown_cells_escape_pipes():
    table = results.markdown_table(["norm", "value"], [["||g||", 1.5]])
    assert table.splitlines() == ["| norm | value |", "|---|---|", "| \\|\\|g\\|\\| | 1.5 |"]
