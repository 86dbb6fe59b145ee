"""The documentation site as a reader sees it: the docstrings' notation survives rendering."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_inner_products_and_placeholders_render_as_text(tmp_path):
    # Python-Markdown reads <x, g> as an HTML tag and the browser drops it: alignment's formula
    # would read "|| / ||g||". docs/plain_angle_brackets.py keeps it text.
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "reference" / "metrics" / "index.html") as f:
        page = f.read()
    assert "alpha = |&lt;x, g&gt;| / ||g||" in page
    assert "<x, g>" not in page
    with open(tmp_path / "reference" / "runs" / "index.html") as f:
        assert "median_&lt;column&gt;" in f.read()
