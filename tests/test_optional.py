"""The core install's parts run without the optional extras, and a part that needs one names it."""

import os
import subprocess
import sys

import pytest

from robust_saliency import optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_missing_package_names_its_extra(monkeypatch):
    monkeypatch.setitem(optional.EXTRAS, "not_a_module_at_all", "demo")
    with pytest.raises(ImportError, match=r"pip install 'robust_saliency\[demo\]'"):
        optional.require("not_a_module_at_all", "the demo")


def test_the_core_runs_without_foolbox_and_tfds_and_the_rest_says_what_to_install():
    # Both blocked as if not installed: the core measures, attacks (L2) and loads its data; the
    # L-infinity attack needs the foolbox extra and says so.
    code = """
import sys
sys.modules["foolbox"] = None
sys.modules["eagerpy"] = None
sys.modules["tensorflow_datasets"] = None
import numpy as np
import robust_saliency as rs
x, y = rs.load_arrays("synthetic", "validation", num_examples=4)
model = rs.linear_classifier()
rs.measure(model, x)
rs.minimal_distance(model, x, "gradient", (0.0, 1.0))
for attack in ("bim", "cw", "ddn", "fmn", "alma", "fab"):
    rs.minimal_distance(model, x, attack, (0.0, 1.0), steps=5)
try:
    rs.minimal_distance(model, x, "bim_linf", (0.0, 1.0), steps=5)
except ImportError as e:
    print(e)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pip install 'robust_saliency[foolbox]'" in done.stdout
