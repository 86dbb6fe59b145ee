"""What determines one trained model, as nested data: TrainConfig and its parts.

    config = TrainConfig()                                     # the paper's MNIST setup
    config = config.replace(penalty={"lam": 100.0}, schedule={"epochs": 6})  # parts as dicts
    config = config.replace(**{"optimizer.momentum": 0.95})     # or a leaf by its dotted name
    TrainConfig.from_json(results.read_json(run_json)["config"])

Each part (robust_saliency.train_config_parts) validates its own fields when it is made,
reporting all of its problems in one error, and TrainConfig the rule that joins two parts
(num_classes needs imagenet). `leaves()` lists every field by dotted name with its type, default
and help: the command-line flags (experiments.train_flags), `--print_preset` and run.json follow
from it, so a new setting is one field in one part. Saved configurations are read in the current
layout only; older result folders are rewritten once by robust_saliency.upgrade (python -m
experiments.upgrade_results).
"""

import dataclasses
import difflib
import functools
import types
import typing

from robust_saliency import results
from robust_saliency import train_config_parts as config_parts
from robust_saliency.train_config_parts import (  # noqa: F401 (public API)
    LR_SCHEDULES,
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    PenaltyConfig,
    ScheduleConfig,
)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines one trained model. Defaults are the paper's MNIST setup."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    penalty: PenaltyConfig = PenaltyConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    batch_size: int = config_parts.field(100, "The (global) batch size, over every replica.")
    probe_size: int = config_parts.field(100, "Validation images measured after every epoch "
                                         "for TensorBoard (0: no probe).")
    seed: int = config_parts.field(0, "The random seed of initialisation and shuffling.")

    def __post_init__(self):
        problems = []
        for name, part in _PARTS.items():
            if not isinstance(getattr(self, name), part):
                problems.append(f"{name} must be a {part.__name__}, got "
                                f"{type(getattr(self, name)).__name__}")
        config_parts.check_problems(problems, "training configuration")
        config_parts.at_least(problems, self, "", ("batch_size",), 1)
        if self.probe_size < 0:
            problems.append(f"probe_size must be >= 0 (0: no probe), got {self.probe_size}")
        if self.model.num_classes is not None and self.data.dataset != "imagenet":
            problems.append(f"num_classes={self.model.num_classes} needs dataset 'imagenet' "
                            "(other datasets have their fixed label sets)")
        config_parts.check_problems(problems, "training configuration")

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


def likely(name: str, renamed: typing.Mapping[str, str] | None = None) -> list[str]:
    """The leaves an unknown setting `name` probably means: its entry in `renamed` (e.g. the flat
    names of an older layout, robust_saliency.upgrade.FLAT_TRAIN_CONFIG: 'lr_schedule' ->
    'schedule.kind') or a leaf of that last name ('lam' -> 'penalty.lam'); failing those, close
    spellings ('optimizer.momentun' -> 'optimizer.momentum')."""
    valid = [leaf.name for leaf in leaves()]
    exact = [renamed[name]] if renamed and name in renamed else []
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
