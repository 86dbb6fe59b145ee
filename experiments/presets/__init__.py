"""Named experiments: each preset is a CohortSpec, made by a registered factory whose docstring
gives its command, cost and expectation.

    spec = presets.get("mnist_quick")          # a robust_saliency.cohort.CohortSpec
    print(presets.describe(spec))              # the docstring and every resolved setting
    spec = presets.override(spec, lambdas=(10.0,), schedule={"epochs": 2})

A CohortSpec is the training template (robust_saliency.runs.TrainConfig; each member sets its
lambda and seed), the lambda sweep and the evaluation protocol: what cohort.json records. The
registry is in base.py, the MNIST presets in mnist.py, the ImageNet and Fashion-MNIST ResNet ones
in deep.py; importing this package registers them all.
"""

from experiments.presets import deep, mnist  # noqa: F401 (registers the presets)
from experiments.presets.base import (  # noqa: F401 (the package's interface)
    ATTACKS,
    CONVERGED_ATTACKS,
    PRESETS,
    SYNTHETIC_DATA,
    describe,
    get,
    override,
    preset,
    with_data,
)
