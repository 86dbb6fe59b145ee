"""The documentation's tutorial runs end to end (on the synthetic digits, so offline)."""

import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIAL = os.path.join(REPO, "docs", "tutorials", "own_model.py")
NUMBER = r"(-?[0-9.]+)"


def test_own_model_tutorial_runs_and_measures_before_and_after(tmp_path):
    done = subprocess.run([sys.executable, TUTORIAL, "synthetic", str(tmp_path / "report")],
                          capture_output=True,
                          text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {}
    for name in ("as trained", "fine-tuned"):
        match = re.search(rf"{name}: accuracy {NUMBER}, median alignment {NUMBER}, rho_tilde "
                          rf"{NUMBER}, rho_best {NUMBER}", done.stdout)
        assert match, done.stdout
        rows[name] = [float(v) for v in match.groups()]
        accuracy, alignment, rho_tilde, rho_best = rows[name]
        assert 0.5 < accuracy <= 1 and alignment > 0 and rho_tilde > 0 and rho_best > 0
    assert rows["fine-tuned"] != rows["as trained"]  # the fine-tuning changed the network
    # The softmax model is measured through its logits without a warning per call.
    assert "doesn't match the expected structure" not in done.stderr
    # It ends with the one-call report: its page, written where the second argument says.
    assert os.path.exists(tmp_path / "report" / "report.html")
    assert re.search(r"report: .*report\.html \(5 figures; preflight: pass", done.stdout)
