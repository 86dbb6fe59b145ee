"""The flags that override a preset's training configuration, generated from its fields and
shared by the train and cohort commands.

Every leaf of robust_saliency.train_config.TrainConfig is a flag by its dotted name,
--train.<part>.<field> (e.g. --train.optimizer.momentum=0.95, --train.penalty.lam=100), and the
short names of train_config.SHORT_NAMES (--lam, --epochs, --dataset, ...) are aliases of theirs.
Values are parsed as the field's type ('none' for an optional field's None, JSON for a dict)
and validated by the configuration itself, so a flag fails with the message Python would give.
A new field of the configuration is a new flag without any change here.
"""

import json
import sys

from absl import app, flags

from robust_saliency import train_config

PREFIX = "train."


def define(exclude=()):
    """Defines a flag per leaf (dotted) and per short name, except the dotted leaves in
    `exclude` (e.g. the cohort's lambda and seed, which its members set). All default None:
    the preset's value."""
    for leaf in train_config.leaves():
        if leaf.name not in exclude:
            kind = leaf.type.__name__ + (" or none" if leaf.optional else "")
            flags.DEFINE_string(PREFIX + leaf.name, None,
                                f"{leaf.help} ({kind}; default: the preset's)")
    for short, dotted in train_config.SHORT_NAMES.items():
        if dotted not in exclude:
            flags.DEFINE_string(short, None, f"Short for --{PREFIX}{dotted}.")


def parse_value(leaf, text, flag=None):
    """The value of `leaf` a flag's text stands for; ValueError naming the flag otherwise."""
    if leaf.optional and text.lower() == "none":
        return None
    try:
        if leaf.type is dict:
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError("not a JSON object")
            return value
        return leaf.type(text)
    except ValueError as e:
        kind = {dict: "a JSON object", int: "an integer", float: "a number"}.get(leaf.type, "text")
        raise ValueError(f"--{flag or PREFIX + leaf.name}={text!r} is not {kind}"
                         + (" (or none)" if leaf.optional else "") + f": {e}") from e


def overrides():
    """{dotted name: value} of the flags given on the command line (dotted or short)."""
    given = {}
    for leaf in train_config.leaves():
        names = [PREFIX + leaf.name] + [s for s, d in train_config.SHORT_NAMES.items()
                                        if d == leaf.name]
        values = {n: flags.FLAGS[n].value for n in names
                  if n in flags.FLAGS and flags.FLAGS[n].value is not None}
        if len(set(values.values())) > 1:
            raise ValueError("conflicting values for one setting: " + ", ".join(
                f"--{n}={v}" for n, v in values.items()))
        if values:
            flag, text = next(iter(values.items()))
            given[leaf.name] = parse_value(leaf, text, flag)
    return given


def parse_flags(argv):
    """absl's flag parsing, with an unknown --train.* name answered by the valid names (pass
    as app.run(main, flags_parser=train_flags.parse_flags))."""
    for arg in argv[1:]:
        name = arg.split("=", 1)[0].lstrip("-")
        if arg.startswith("--") and name.startswith(PREFIX) and name not in flags.FLAGS:
            valid = [PREFIX + leaf.name for leaf in train_config.leaves()
                     if PREFIX + leaf.name in flags.FLAGS]
            sys.exit(f"error: unknown flag --{name}; the training settings are "
                     + ", ".join(f"--{v}" for v in valid))
    return app.parse_flags_with_usage(argv)
