"""Packages only some parts of the library need, installed with an extra of the package:
`pip install 'robust_saliency[datasets]'` (TFDS) or `'robust_saliency[foolbox]'` (the L-infinity
attacks, the Foolbox reference attacks, the decision-based masking check); `[all]` both."""

import importlib

EXTRAS = {"tensorflow_datasets": "datasets", "foolbox": "foolbox", "eagerpy": "foolbox"}


def require(module, purpose):
    """`module` imported, or an ImportError naming the extra that installs it.

    Args:
      module: a key of EXTRAS.
      purpose: what needs it, for the message ("the L-infinity attacks").
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{purpose} needs the {module} package, an optional extra of "
                          f"robust_saliency: pip install 'robust_saliency[{EXTRAS[module]}]' "
                          "(or [all]).") from e
