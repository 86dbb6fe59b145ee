"""The public API: names, Keras registration, checkpoints, the wheel, logits not probabilities."""

import os
import shutil
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import robust_saliency as rs
from robust_saliency import checkpoints, logits, metrics, models, results, training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **env}, timeout=300)


def test_every_public_name_resolves_and_is_documented():
    assert rs.__all__ == sorted(rs.__all__)
    for name in rs.__all__:
        value = getattr(rs, name)
        assert value is not None
        if callable(value):
            assert value.__doc__, f"rs.{name} has no docstring"
        assert name in rs.__doc__, f"rs.{name} is not listed in the package docstring"
    with pytest.raises(AttributeError, match="no attribute 'measur'"):
        rs.measur  # noqa: B018


def test_every_public_name_is_itself_and_annotated():
    # help(rs.X) shows X; parameters and returns are typed (mypy checks them in make lint).
    import inspect

    for name in rs.__all__:
        value = getattr(rs, name)
        if not callable(value):
            continue
        assert value.__name__ == name, f"rs.{name} is {value.__name__}"
        functions = [value] if inspect.isfunction(value) else [
            getattr(f, "__func__", f) for m, f in vars(value).items()
            if (m == "__init__" or not m.startswith("_"))
            and (inspect.isfunction(f) or isinstance(f, classmethod))]
        for f in functions:
            signature = inspect.signature(f)
            untyped = [p.name for p in signature.parameters.values()
                       if p.name not in ("self", "cls") and p.annotation is p.empty]
            assert not untyped and signature.return_annotation is not signature.empty, (
                f"rs.{name}: {f.__name__} lacks annotations ({untyped or 'return'})")


def test_import_loads_no_tensorflow_until_a_tensorflow_name_is_used():
    code = """
import sys
import robust_saliency as rs
assert "tensorflow" not in sys.modules and "keras" not in sys.modules
rs.ATTACKS, rs.read_cohort, rs.check_claims, rs.compare_cohorts, rs.read_table
rs.EXPLANATION_METRICS
import robust_saliency.plotting, robust_saliency.explanation_claims
assert "tensorflow" not in sys.modules, "a TensorFlow-free name imported TensorFlow"
rs.measure
assert "tensorflow" in sys.modules
print("ok")
"""
    done = _python(code)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def _families():
    return {
        "small_net": models.small_net(),
        "small_net_no_bias": models.small_net(use_bias=False),
        "small_bn_net": models.small_bn_net(),
        "resnet_cifar": models.resnet_cifar(depth=8),  # its option-A shortcut layer
        "linear": models.linear_classifier(),
        "resnet50": models.resnet50(input_shape=(32, 32, 3), num_classes=10),
    }


@pytest.mark.slow
def test_keras_load_model_after_import_for_every_family(tmp_path):
    rng = np.random.default_rng(0)
    saved = {}
    for name, network in _families().items():
        model = training.RobustModel(network, lam=1.0)
        x = rng.uniform(0, 1, (2, *network.input_shape[1:])).astype("float32")
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        np.save(str(tmp_path / f"{name}_x.npy"), x)
        np.save(str(tmp_path / f"{name}_y.npy"), np.asarray(model(x)))
        saved[name] = path
    # Keras imported before and after robust_saliency: both orders must register the layers.
    for first in ("import robust_saliency\nimport keras", "import keras\nimport robust_saliency"):
        code = f"""
{first}
import numpy as np
for name in {sorted(saved)!r}:
    model = keras.models.load_model(r"{tmp_path}/" + name + ".keras")
    x = np.load(r"{tmp_path}/" + name + "_x.npy")
    np.testing.assert_array_equal(np.asarray(model(x)), np.load(r"{tmp_path}/" + name + "_y.npy"))
print("ok")
"""
        done = _python(code, TF_CPP_MIN_LOG_LEVEL="3")
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_pretrained_loads_a_committed_member_and_refuses_what_is_not_there(tiny_cohort,
                                                                           tmp_path):
    root = tmp_path / "results"
    folder = str(root / "tiny_synthetic")
    shutil.copytree(tiny_cohort[0], folder,
                    ignore=shutil.ignore_patterns(results.MODEL_FILE, "tb", "backup"))
    model = rs.pretrained("tiny", lam=1000, dataset="synthetic", root=str(root))
    full = keras.models.load_model(os.path.join(tiny_cohort[0], "m01_lam1000",
                                                results.MODEL_FILE))
    x = np.random.default_rng(1).uniform(0, 1, (4, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(model.network(x)), np.asarray(full.network(x)))
    # The same member by folder path, and through $ROBUST_SALIENCY_RESULTS.
    assert isinstance(rs.pretrained(folder, lam=1.0), training.RobustModel)
    os.environ[checkpoints.ROOT_VARIABLE] = str(root)
    try:
        assert checkpoints.cohort_dir("tiny", dataset="synthetic") == folder
    finally:
        del os.environ[checkpoints.ROOT_VARIABLE]

    with pytest.raises(FileNotFoundError, match=r"no checkpoint for lam=5, seed=0.*lam=1 seed=0, "
                                                r"lam=1000 seed=0"):
        rs.pretrained("tiny", lam=5, dataset="synthetic", root=str(root))
    with pytest.raises(FileNotFoundError, match="no checkpoint for lam=1, seed=3"):
        rs.pretrained("tiny", lam=1, seed=3, dataset="synthetic", root=str(root))
    with pytest.raises(FileNotFoundError, match="no cohort 'nothing'.*tiny_synthetic"):
        rs.pretrained("nothing", lam=1, root=str(root))
    weights = os.path.join(folder, "m00_lam1", results.WEIGHTS_FILE)
    with open(weights, "r+b") as f:
        f.seek(-64, os.SEEK_END)
        byte = f.read(1)
        f.seek(-64, os.SEEK_END)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ValueError, match="sha256"):
        rs.pretrained("tiny", lam=1, dataset="synthetic", root=str(root))


def test_committed_checkpoints_are_listed_for_the_quick_cohort():
    found = checkpoints.members("mnist_quick")
    assert len(found) == 15 and all(has for *_, has in found)


@pytest.mark.slow
def test_the_wheel_holds_only_the_library(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO, name), source)
    for package in ("robust_saliency", "experiments", "benchmarks"):
        shutil.copytree(os.path.join(REPO, package), source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
                           str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").iterdir()
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"robust_saliency", f"robust_saliency-{rs.__version__}.dist-info"}


def test_the_library_imports_nothing_from_the_entry_points():
    for folder, _, files in os.walk(os.path.join(REPO, "robust_saliency")):
        for name in files:
            if name.endswith(".py"):
                text = open(os.path.join(folder, name)).read()
                for package in ("experiments", "benchmarks"):
                    assert f"from {package}" not in text and f"import {package}" not in text, (
                        f"{name} imports {package}")


def _dense_head(activation=None, final_layer=None):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(4, activation=activation, name="head")(hidden)
    if final_layer is not None:
        outputs = final_layer(outputs)
    return keras.Model(inputs, outputs)


class _Probabilities(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(4)

    def call(self, x, training=False):
        return keras.ops.softmax(self.dense(x))


@pytest.mark.parametrize("kind", ["activation", "Softmax layer", "Activation layer",
                                  "Sequential", "sigmoid"])
def test_a_final_softmax_is_measured_on_its_logits(kind):
    x = np.random.default_rng(0).uniform(0, 1, (5, 6)).astype("float32")
    plain = _dense_head()
    if kind == "activation":
        model = _dense_head("softmax")
    elif kind == "sigmoid":
        model = _dense_head("sigmoid")
    elif kind == "Softmax layer":
        model = _dense_head(final_layer=keras.layers.Softmax())
    elif kind == "Activation layer":
        model = _dense_head(final_layer=keras.layers.Activation("softmax"))
    else:
        model = keras.Sequential([keras.Input((6,)), *plain.layers[1:], keras.layers.Softmax()])
    model.set_weights(plain.get_weights())
    assert logits.squashing(model) in logits.SQUASHING
    unwrapped = rs.logits_model(model)
    np.testing.assert_array_equal(np.asarray(unwrapped(x)), np.asarray(plain(x)))
    # The unwrapped model shares the user's weights: training one trains the other.
    assert {id(v) for v in unwrapped.trainable_variables} == {
        id(v) for v in model.trainable_variables}
    got, want = metrics.measure(model, x), metrics.measure(plain, x)
    for key in ("logits", "alignment", "lin_robustness", "bound15"):
        np.testing.assert_array_equal(got[key], want[key])


def test_probabilities_that_cannot_be_unwrapped_are_refused():
    x = np.random.default_rng(0).uniform(0, 1, (5, 6)).astype("float32")
    model = _Probabilities()
    model(x)
    with pytest.raises(ValueError, match="outputs probabilities.*logits"):
        metrics.measure(model, x)
    with pytest.raises(ValueError, match="outputs probabilities"):
        rs.minimal_distance(model, x, "gradient", (0, 1))
    with pytest.raises(ValueError, match="outputs probabilities"):
        rs.smoothgrad(model, x, samples=2)
    functional = keras.Model(*(lambda i: (i, keras.ops.softmax(keras.layers.Dense(4)(i))))(
        keras.Input((6,))))
    with pytest.raises(ValueError, match="outputs probabilities"):
        training.RobustModel(functional, lam=1.0)


@pytest.mark.parametrize("outputs", ["two", "dict"])
def test_a_model_of_several_outputs_is_refused_with_the_fix(outputs):
    inputs = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten()(inputs)
    heads = [keras.layers.Dense(10)(flat), keras.layers.Dense(3)(flat)]
    model = keras.Model(inputs, heads if outputs == "two" else {"logits": heads[0]})
    found = "has 2 outputs" if outputs == "two" else r"returns a dict of outputs \(logits\)"
    x = np.full((2, 28, 28, 1), 0.5, "float32")
    for call in (lambda: rs.measure(model, x), lambda: rs.RobustModel(model, lam=1.0),
                 lambda: rs.minimal_distance(model, x, "gradient", (0.0, 1.0))):
        with pytest.raises(ValueError, match=found + ".*keras.Model\\(model.inputs, "):
            call()


def test_robust_model_trains_the_logits_of_a_softmax_network():
    x = np.random.default_rng(0).uniform(0, 1, (8, 6)).astype("float32")
    network = _dense_head("softmax")
    model = training.RobustModel(network, lam=1.0)
    assert not logits.looks_like_probabilities(np.asarray(model(x)))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [np.array(v) for v in network.trainable_variables]
    model.fit(x, np.arange(8) % 4, epochs=1, batch_size=8, verbose=0)
    assert any(not np.array_equal(b, np.asarray(v))
               for b, v in zip(before, network.trainable_variables))


def test_the_logits_cache_keeps_no_model_alive():
    import gc
    import weakref

    x = np.random.default_rng(0).uniform(0, 1, (3, 6)).astype("float32")
    for activation in (None, "softmax"):
        model = _dense_head(activation)
        metrics.measure(model, x)
        assert logits.logits_network(model) is logits.logits_network(model)  # one kernel each
        alive = weakref.ref(model)
        del model
        gc.collect()
        assert alive() is None


@pytest.mark.parametrize("given, expected", [(None, True), ("0", False)])
def test_import_chooses_onednn_kernels_unless_told_otherwise(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if given is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = given
    code = ("import robust_saliency, robust_saliency.environment as e, tensorflow\n"
            "print(e.onednn_kernels())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(expected)
