"""The upgrade command: lists with --dry_run, then rewrites an old folder; a missing folder is a
clear error."""

import os
import subprocess
import sys

from helpers import downgrade_to_oldest_layout, file_bytes, write_current_cohort

from robust_saliency import cohort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_command_lists_then_rewrites(tmp_path):
    folder = str(tmp_path / "c")
    _, member = write_current_cohort(folder)
    cohort.gather(folder)
    downgrade_to_oldest_layout(folder, member)
    before = file_bytes(folder)
    command = [sys.executable, "-m", "experiments.upgrade_results", folder]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    dry = subprocess.run([*command, "--dry_run"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert f"{folder}: would rewrite 4 file(s)" in dry.stdout and file_bytes(folder) == before
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{folder}: rewrote 4 file(s)" in done.stdout
    cohort.read(folder)  # now the current layout
    missing = subprocess.run([*command[:-1], str(tmp_path / "nowhere")], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "is not a folder" in missing.stderr
