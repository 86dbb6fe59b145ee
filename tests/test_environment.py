"""robust_saliency.environment and the pinned environment it records: the versions beside a
result, requirements-lock.txt satisfying setup.cfg's ranges, and make installing it (and
installing unpinned only when asked to)."""

import configparser
import os
import shutil
import subprocess

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from robust_saliency import environment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK = os.path.join(ROOT, "requirements-lock.txt")


def _pins():
    pins = {}
    for line in open(LOCK):
        line = line.strip()
        if line and not line.startswith("#"):
            assert "==" in line and not line.startswith("-e"), f"not an exact pin: {line!r}"
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def _direct_requirements():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    lines = (config["options"]["install_requires"] + "\n"
             + config["options.extras_require"]["dev"]).splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def test_lock_pins_every_direct_dependency_inside_setup_cfg_ranges():
    pins = _pins()
    assert "robust-saliency" not in pins, "the lock must not pin the project itself"
    for requirement in _direct_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in requirements-lock.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{requirement.name}=={pins[name]} is outside setup.cfg's {requirement}")
    # The libraries whose behaviour the code works around carry an upper bound.
    bounded = {canonicalize_name(r.name) for r in _direct_requirements()
               if any(s.operator in ("<", "<=", "~=", "==") for s in r.specifier)}
    assert {"tensorflow", "keras", "foolbox"} <= bounded


def test_results_record_the_versions_the_lock_pins():
    pins = _pins()
    found = environment.versions()
    for name in ("tensorflow", "keras", "numpy", "foolbox", "eagerpy", "scipy",
                 "tensorflow-datasets", "matplotlib"):
        assert name.replace("-", "_") in found, name
        assert name in pins, name
    assert found["git"]
    # conftest sets TF_ENABLE_ONEDNN_OPTS (unless given) before TensorFlow loads.
    assert found["onednn"] is (os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1")
    assert found["cpu"] == environment.cpu()
    assert found["git"] == environment.git_revision()


def test_cpu_names_the_processor_and_its_widest_vector_unit():
    name, flags = environment.cpu_info()
    assert name and isinstance(flags, set)
    assert environment.cpu().rsplit(", ", 1) == [
        name, next((f for f in ("avx512f", "avx2", "avx") if f in flags), "no avx")]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_installs_the_lock_file_unless_told_otherwise():
    def recipe(*args):
        return subprocess.run(["make", "-n", "-B", "install", *args], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout

    assert "-c requirements-lock.txt" in recipe()
    unpinned = recipe("LOCK=")
    assert "pip install" in unpinned and " -c " not in unpinned and "--upgrade" in unpinned
