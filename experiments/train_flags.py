"""The flags that override a preset's training configuration, generated from its fields and
shared by the train and cohort commands.

Every leaf of robust_saliency.train_config.TrainConfig is a flag by its dotted name,
--train.<part>.<field> (e.g. --train.optimizer.momentum=0.95, --train.penalty.lam=100): one
name per setting, the configuration's own. Values are parsed as the field's type ('none' for
an optional field's None, JSON for a dict) and validated by the configuration itself, so a
flag fails with the message Python would give. A new field of the configuration is a new flag
without any change here.
"""

import json
import sys

from absl import app, flags

from robust_saliency import train_config, upgrade

PREFIX = "train."


def define(exclude=()):
    """Defines a flag per leaf, by its dotted name, except the leaves in `exclude` (e.g. the
    cohort's lambda and seed, which its members set). All default None: the preset's value."""
    for leaf in train_config.leaves():
        if leaf.name not in exclude:
            kind = leaf.type.__name__ + (" or none" if leaf.optional else "")
            flags.DEFINE_string(PREFIX + leaf.name, None,
                                f"{leaf.help} ({kind}; default: the preset's)")


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
    """{dotted name: value} of the --train.* flags given on the command line."""
    given = {}
    for leaf in train_config.leaves():
        flag = PREFIX + leaf.name
        if flag in flags.FLAGS and flags.FLAGS[flag].value is not None:
            given[leaf.name] = parse_value(leaf, flags.FLAGS[flag].value, flag)
    return given


def parse_flags(argv):
    """absl's flag parsing, with an unknown training setting answered by its flag (--lam:
    --train.penalty.lam) or the valid names (pass as app.run(main,
    flags_parser=train_flags.parse_flags))."""
    valid = [PREFIX + leaf.name for leaf in train_config.leaves()
             if PREFIX + leaf.name in flags.FLAGS]
    for arg in argv[1:]:
        name = arg.split("=", 1)[0].lstrip("-")
        if not arg.startswith("--") or name in flags.FLAGS:
            continue
        likely = [PREFIX + v for v in train_config.likely(name.removeprefix(PREFIX),
                                                          upgrade.FLAT_TRAIN_CONFIG)
                  if PREFIX + v in valid]
        if likely:
            sys.exit(f"error: unknown flag --{name}; the training settings are flags of their "
                     f"dotted names: did you mean {' or '.join('--' + v for v in likely)}? "
                     "Valid: " + ", ".join(f"--{v}" for v in valid))
        if name.startswith(PREFIX):
            sys.exit(f"error: unknown flag --{name}; the training settings are "
                     + ", ".join(f"--{v}" for v in valid))
    return app.parse_flags_with_usage(argv)
