"""The ImageNet input pipeline on tiny synthetic shards: layout, order, preprocessing, errors."""

import io
import tarfile

import numpy as np
import pytest
import tensorflow as tf
from helpers import SOLID_COLOURS, jpeg_of_solid, solid_image, write_solid_shards

from robust_saliency import imagenet, imagenet_records

MEAN_BGR = np.array(imagenet.CAFFE_MEAN_BGR, np.float32)
JPEG_TOL = 3.0  # solid colours survive JPEG (quality 95) within a few levels


def caffe_of(colour):
    """The preprocessed value of a pixel of RGB `colour`: BGR minus the means."""
    return np.array(colour[::-1], np.float32) - MEAN_BGR


def test_tfrecord_round_trip_labels_order_bgr_means(tmp_path):
    labels = [3, 999, 0, 500, 7]
    write_solid_shards(tmp_path, "validation", labels)
    batches = list(imagenet.dataset("validation", 2, data_dir=tmp_path, training=False,
                                    image_size=32))
    assert [tuple(x.shape) for x, _ in batches] == [(2, 32, 32, 3)] * 2 + [(1, 32, 32, 3)]
    assert all(x.dtype == tf.float32 and y.dtype == tf.int64 for x, y in batches)
    images = np.concatenate([x.numpy() for x, _ in batches])
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in batches]), labels)
    # Pure red: R (255) lands in channel 2, minus the R mean; B and G are 0 minus their means.
    np.testing.assert_allclose(images[0], np.broadcast_to(
        [-103.939, -116.779, 255.0 - 123.68], (32, 32, 3)), atol=JPEG_TOL)
    for image, colour in zip(images, SOLID_COLOURS):
        np.testing.assert_allclose(image, np.broadcast_to(caffe_of(colour), image.shape),
                                   atol=JPEG_TOL)
        np.testing.assert_allclose(imagenet.to_display(image) * 255.0,
                                   np.broadcast_to(colour, image.shape), atol=JPEG_TOL)
    full = imagenet.dataset("validation", 2, data_dir=tmp_path, drop_remainder=True,
                            image_size=32)
    assert [int(y.shape[0]) for _, y in full] == [2, 2]


@pytest.mark.parametrize("transpose", [False, True])
def test_preprocess_eval_short_side_then_centre_crop(transpose):
    # 60 x 120 in thirds A | B | C; short side 60 -> 20 makes it 20 x 40, whose centre 20 columns
    # span original columns 30..90: a little of A, B, a little of C. A crop without the resize
    # (all B) or with the wrong scale puts the colour boundaries elsewhere.
    a, b, c = (250, 10, 10), (10, 250, 10), (10, 10, 250)
    image = np.concatenate([solid_image(colour, (60, 40)) for colour in (a, b, c)], axis=1)
    out = imagenet.preprocess_eval(image.transpose(1, 0, 2) if transpose else image, 20)
    out = out.numpy().transpose(1, 0, 2) if transpose else out.numpy()
    assert out.shape == (20, 20, 3) and out.dtype == np.float32
    for columns, colour in [((0, 1), a), (range(4, 16), b), ((18, 19), c)]:
        for column in columns:
            np.testing.assert_allclose(out[:, column], np.broadcast_to(caffe_of(colour), (20, 3)),
                                       atol=1e-3, err_msg=f"column {column}")


def test_preprocess_eval_upscales_small_images():
    out = imagenet.preprocess_eval(solid_image((1, 2, 3), (10, 14)), 32)
    np.testing.assert_allclose(out, np.broadcast_to(caffe_of((1, 2, 3)), (32, 32, 3)), atol=1e-3)


def gradient_image(height=90, width=120):
    """Grey level rising left to right: hue-free, and a flip reverses the slope."""
    ramp = np.linspace(0, 255, width).astype(np.uint8)
    return np.repeat(np.broadcast_to(ramp[None, :, None], (height, width, 1)), 3, axis=2)


def test_preprocess_train_shape_range_seeds_and_flips():
    image = gradient_image()
    outs = [imagenet.preprocess_train(image, tf.constant([s, 7]), 32).numpy() for s in range(16)]
    low, high = imagenet.BOUNDS
    for out in outs:
        assert out.shape == (32, 32, 3) and out.dtype == np.float32
        assert low <= out.min() and out.max() <= high
    np.testing.assert_array_equal(
        outs[0], imagenet.preprocess_train(image, tf.constant([0, 7]), 32).numpy())
    assert not np.allclose(outs[0], outs[1])
    slopes = [np.sign(out[:, -1].mean() - out[:, 0].mean()) for out in outs]
    assert {-1.0, 1.0} <= set(slopes), slopes  # some flipped, some not


def test_preprocess_train_hue_jitter_is_bounded():
    # A solid red image is unchanged by rescale, crop and flip: only the hue moves it. A shift of
    # d (in turns, |d| <= 0.06) of pure red raises G or B to 6 |d| * 255 <= 91.8.
    red = solid_image((255, 0, 0), (40, 40))
    shifts = [np.abs(to_rgb - np.array([255.0, 0.0, 0.0])).max()
              for s in range(12)
              for to_rgb in [imagenet.to_display(
                  imagenet.preprocess_train(red, tf.constant([s, 1]), 16).numpy())[0, 0] * 255]]
    assert max(shifts) > 10.0
    assert max(shifts) <= 6 * imagenet.HUE_MAX_DELTA * 255 + 1.0


def test_training_dataset_is_seeded(tmp_path):
    write_solid_shards(tmp_path, "train", [4, 5, 6, 7, 8], num_shards=3)

    def epoch(seed):
        ds = imagenet.dataset("train", 5, data_dir=tmp_path, image_size=16, seed=seed)
        return next(iter(ds))

    (x0, y0), (x0_again, y0_again), (x1, _) = epoch(0), epoch(0), epoch(1)
    assert sorted(y0.numpy()) == [4, 5, 6, 7, 8]
    np.testing.assert_array_equal(y0, y0_again)
    np.testing.assert_array_equal(x0, x0_again)
    assert not np.allclose(x0, x1)


def test_training_subset_is_fixed_and_augmentation_varies(tmp_path):
    # Six copies of one image: any difference between them comes from per-example seeds.
    imagenet_records.write_tfrecords(tmp_path, "train", [gradient_image(40, 60)] * 6,
                             [0, 1, 2, 3, 4, 5], num_shards=3)
    orders = set()
    for seed in range(4):  # the subset is the first N in file order, whatever the seed
        ds = imagenet.dataset("train", 4, data_dir=tmp_path, image_size=16, num_examples=4,
                              seed=seed)
        orders.add(tuple(next(iter(ds))[1].numpy()))
    assert {tuple(sorted(order)) for order in orders} == {(0, 1, 2, 3)}
    assert len(orders) > 1  # ... and shuffled
    ds = imagenet.dataset("train", 6, data_dir=tmp_path, image_size=16)
    first, second = next(iter(ds))[0].numpy(), next(iter(ds))[0].numpy()
    assert len({out.tobytes() for out in first}) > 1  # per-example seeds differ
    assert not np.allclose(np.sort(first, axis=0), np.sort(second, axis=0))  # new each epoch


@pytest.mark.parametrize("training", [True, False])
def test_input_context_splits_the_records_between_workers(tmp_path, training):
    write_solid_shards(tmp_path, "train", [0, 1, 2, 3, 4], num_shards=2)
    shares = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker)
        ds = imagenet.dataset("train", 5, data_dir=tmp_path, image_size=8, training=training,
                              input_context=context)
        shares.append(set(next(iter(ds))[1].numpy()))
    assert not shares[0] & shares[1] and shares[0] | shares[1] == {0, 1, 2, 3, 4}
    policy = tf.data.experimental.AutoShardPolicy
    for kwargs, expected in [({}, policy.DATA), ({"training": False}, policy.AUTO),
                             ({"training": False, "num_examples": 2}, policy.DATA)]:
        ds = imagenet.dataset("train", 2, data_dir=tmp_path, **kwargs)
        assert ds.options().experimental_distribute.auto_shard_policy == expected


def test_load_arrays_first_n_in_file_order(tmp_path):
    write_solid_shards(tmp_path, "train", [10, 11, 12, 13, 14], num_shards=2)
    images, labels = imagenet.load_arrays("train", tmp_path, image_size=16, num_examples=4,
                                          batch_size=3)
    assert images.shape == (4, 16, 16, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(labels, [10, 11, 12, 13])
    for image, colour in zip(images, SOLID_COLOURS):
        np.testing.assert_allclose(image[8, 8], caffe_of(colour), atol=JPEG_TOL)
    _, everything = imagenet.load_arrays("train", tmp_path, image_size=16, num_examples=50)
    np.testing.assert_array_equal(everything, [10, 11, 12, 13, 14])


def test_to_display_numpy_and_tensor():
    x = np.stack([caffe_of((255, 0, 0)), caffe_of((0, 0, 0)) - 50.0])
    shown = imagenet.to_display(x)
    assert isinstance(shown, np.ndarray) and shown.dtype == np.float32
    np.testing.assert_allclose(shown, [[1, 0, 0], [0, 0, 0]], atol=1e-6)  # clipped below 0
    tensor = imagenet.to_display(tf.constant(x))
    assert tf.is_tensor(tensor)
    np.testing.assert_allclose(tensor.numpy(), shown, atol=1e-6)


def test_errors_name_split_source_folder_and_pattern(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"validation-\*-of-\*") as error:
        imagenet_records.shard_files(tmp_path, "validation")
    assert str(tmp_path) in str(error.value)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        imagenet.dataset("train", 2, data_dir=tmp_path / "missing")
    with pytest.raises(ValueError, match="train, validation"):
        imagenet_records.shard_files(tmp_path, "test")
    with pytest.raises(ValueError, match="train, validation"):
        imagenet.dataset("val", 2, data_dir=tmp_path)
    with pytest.raises(ValueError, match="tfrecord, tfds"):
        imagenet.dataset("train", 2, data_dir=tmp_path, source="folder")


def test_tfds_source_needs_the_tar_files(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        imagenet.dataset("validation", 2, data_dir=tmp_path, source="tfds")
    for text in (str(tmp_path), "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"):
        assert text in str(error.value)


def test_tfds_source_prepares_a_validation_tar(tmp_path):
    # Three "validation images" named as in ILSVRC2012_img_val.tar; TFDS knows their labels
    # (val_00000001..3 are classes 65, 970, 230), and fixes its own stored order.
    with tarfile.open(tmp_path / "ILSVRC2012_img_val.tar", "w") as tar:
        for i, colour in enumerate(SOLID_COLOURS[:3]):
            data = jpeg_of_solid(colour, (30, 40))
            info = tarfile.TarInfo(f"ILSVRC2012_val_{i + 1:08d}.JPEG")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    images, labels = imagenet.load_arrays("validation", tmp_path, source="tfds", image_size=16)
    again = imagenet.load_arrays("validation", tmp_path, source="tfds", image_size=16)[1]
    np.testing.assert_array_equal(labels, again)
    label_of = {65: SOLID_COLOURS[0], 970: SOLID_COLOURS[1], 230: SOLID_COLOURS[2]}
    assert sorted(labels) == sorted(label_of)
    for image, label in zip(images, labels):
        np.testing.assert_allclose(image[8, 8], caffe_of(label_of[label]), atol=JPEG_TOL)
    with pytest.raises(FileNotFoundError, match="prepared without the 'train' split"):
        imagenet.dataset("train", 2, data_dir=tmp_path, source="tfds")
