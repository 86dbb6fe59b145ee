"""ImageNet's TFRecord layout on tiny synthetic shards: writing, parsing, errors naming the file."""

import os

import numpy as np
import pytest
import tensorflow as tf
from helpers import jpeg_of_solid, write_solid_shards

from robust_saliency import imagenet, imagenet_records


def example(features):
    """A serialized tf.train.Example from {name: bytes or int}."""
    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    return tf.train.Example(features=tf.train.Features(
        feature={k: feature(v) for k, v in features.items()})).SerializeToString()


def test_write_tfrecords_shards_and_cleans_up(tmp_path):
    paths = write_solid_shards(tmp_path, "validation", [3, 999, 0, 500, 7], num_shards=2)
    assert [os.path.basename(p) for p in paths] == ["validation-00000-of-00002",
                                                     "validation-00001-of-00002"]
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in paths)
    counts = [sum(1 for _ in tf.data.TFRecordDataset(p)) for p in paths]
    assert counts == [3, 2]
    assert imagenet_records.shard_files(tmp_path, "validation") == paths
    with pytest.raises(ValueError, match="0..999"):
        write_solid_shards(tmp_path, "validation", [1000])
    with pytest.raises(ValueError, match="uint8"):
        imagenet_records.write_tfrecords(tmp_path, "train", [np.zeros((4, 4, 3), np.float32)], [0])



def test_parse_example_one_based_labels():
    for stored, expected in [(1, 0), (1000, 999)]:
        image, label = imagenet_records.parse_example(example({
            "image/encoded": jpeg_of_solid(), "image/class/label": stored}))
        assert int(label) == expected and label.dtype == tf.int64
        assert image.dtype == tf.uint8 and tuple(image.shape) == (4, 6, 3)
    _, label = imagenet_records.parse_example(
        example({"image/encoded": jpeg_of_solid(), "image/class/label": 0}), label_offset=0)
    assert int(label) == 0
    with pytest.raises(tf.errors.InvalidArgumentError, match="label_offset"):
        imagenet_records.parse_example(
            example({"image/encoded": jpeg_of_solid(), "image/class/label": 0}))


@pytest.mark.parametrize("features, message", [
    ({"image/class/label": 5}, "image/encoded"),
    ({"image/encoded": b"not used"}, "image/class/label"),
    ({"image/encoded": jpeg_of_solid(), "image/class/label": 1001}, "outside 0..999"),
])
def test_bad_record_error_names_the_file(tmp_path, features, message):
    path = str(tmp_path / "validation-00000-of-00001")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(example(features))
    ds = imagenet.dataset("validation", 1, data_dir=tmp_path, image_size=8)
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        list(ds)
    assert path in str(error.value) and message in str(error.value)
