"""Progress appears on its own for long calls, also while one blocking call runs."""

import io
import time

import numpy as np

from robust_saliency import metrics, models, progress


def test_auto_progress_shows_only_after_a_while_and_ticks_while_blocked(monkeypatch):
    monkeypatch.setattr(progress, "AFTER", 0.2)
    monkeypatch.setattr(progress, "_TICK", 0.05)
    quick = io.StringIO()
    with progress.Progress(10, "quick", stream=quick) as shown:
        shown.advance(10)
    assert quick.getvalue() == ""
    slow = io.StringIO()
    with progress.Progress(10, "cw", stream=slow) as shown:
        time.sleep(0.5)  # one blocking call: the line appears with its elapsed time
        assert "cw: 0/10 images" in slow.getvalue()
        shown.advance(10)
    assert slow.getvalue().endswith("\n") and "cw: 10/10 images" in slow.getvalue()
    never = io.StringIO()
    with progress.Progress(10, "off", verbose=False, stream=never):
        time.sleep(0.3)
    assert never.getvalue() == ""


def test_measure_shows_progress_when_asked(capsys):
    x = np.random.default_rng(0).uniform(0, 1, (3, 28, 28, 1)).astype("float32")
    metrics.measure(models.linear_classifier(), x, verbose=True)
    assert "measure: 3/3 images" in capsys.readouterr().err
