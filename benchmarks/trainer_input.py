"""Trainer input pipeline vs Keras `image_dataset_from_directory`.

Both read the same images and decode and resize them with TensorFlow
(`tf.io.decode_image`, grayscale; bilinear resize to the model's size) into
batches of 32:
  * ours: the ImageFolderExampleGen's gzip TFRecords, read with tf.data as
    the Trainer reads them (`image_example_gen.training.model.make_dataset`:
    interleaved files, batched `parse_example`, Transform's graph in a
    parallel map, prefetch). Transform's graph does a little more than the
    Keras loader: an antialiased resize, scaling to [0, 1] and the contrast
    stretch;
  * Keras: `tf_keras.utils.image_dataset_from_directory` on the image folder
    (one file read per image, parallel map), plus the scaling to [0, 1].

Reports images/s over several passes through one iterator (after a warm-up
run, so that the start-up costs of both are left out), images per CPU
second, and the ratio (target: at least 1.5).

The images are the digits sample folder's JPEG and PNG files that the
ExampleGen stores unchanged, so both read the very same bytes. Usage (from
the repository root):

    .venv/bin/python benchmarks/trainer_input.py [--n 3000] [--size 64]
        [--model-size 28] [--runs 3] [--passes 20] [--workdir DIR]
"""

import argparse
import pathlib
import sys
import tempfile
from typing import Callable, List, Tuple

import _common

_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
_SCHEMA = _REPO_ROOT / 'schemas' / 'image_folder' / 'schema.pbtxt'
_BATCH_SIZE = 32
RATIO_TARGET = 1.5


def make_folder(root: pathlib.Path, n: int, size: int) -> int:
  """The digits sample folder, less what the ExampleGen would re-encode.

  Returns the number of images left.
  """
  from image_example_gen import sample_data  # pylint: disable=g-import-not-at-top
  sample = sample_data.make_image_folder(root, n, size=size)
  for rel_path in sample.rejects:
    (root / rel_path).unlink()
  kept = 0
  for image in sample.images:
    if image.source_format != image.stored_format:
      (root / image.rel_path).unlink()
    else:
      kept += 1
  return kept


def time_runs(dataset, runs: int, passes: int) -> List[_common.Timing]:
  """Timings of `runs` iterations of `passes` passes each (one iterator).

  One iterator over several passes measures the steady rate: a new iterator
  per pass would mostly measure how fast tf.data ramps up its parallelism
  on a few thousand images. One untimed run warms up first.
  """
  repeated = dataset.repeat(passes)

  def one_run() -> None:
    for _ in repeated:
      pass

  one_run()
  return [_common.timed(one_run) for _ in range(runs)]


def ours(examples_uri: str, workdir: pathlib.Path, size: int):
  """The Trainer's input pipeline over every split of the Examples."""
  from image_example_gen.training import model  # pylint: disable=g-import-not-at-top
  from image_example_gen.training import preprocessing  # pylint: disable=g-import-not-at-top
  from image_example_gen.training import transform_graph  # pylint: disable=g-import-not-at-top
  pattern = f'{examples_uri}/Split-*/*'
  transform_output = transform_graph.write_transform_graph(
      pattern, str(_SCHEMA), str(workdir / 'transform_graph'),
      str(workdir / 'tmp'), {preprocessing.IMAGE_SIZE_KEY: size})
  return model.make_dataset([pattern], transform_output, _BATCH_SIZE)


def keras(folder: pathlib.Path, size: int):
  """Keras' directory loader with the same decode and resize."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  dataset = tf_keras.utils.image_dataset_from_directory(
      str(folder), color_mode='grayscale', batch_size=_BATCH_SIZE,
      image_size=(size, size), interpolation='bilinear', shuffle=True,
      seed=0)
  return dataset.map(lambda images, labels: (images / 255.0, labels),
                     num_parallel_calls=tf.data.AUTOTUNE).prefetch(
                         tf.data.AUTOTUNE)


def run(workdir: pathlib.Path, n: int, sample_size: int, size: int,
        runs: int, passes: int) -> float:
  """Prints the measurements; returns the ratio ours / Keras."""
  from image_example_gen import ImageFolderExampleGen  # pylint: disable=g-import-not-at-top
  folder = workdir / 'images'
  kept = make_folder(folder, n, sample_size)
  examples_uri = workdir / 'examples'
  _common.run_executor(ImageFolderExampleGen(input_base=str(folder)),
                       examples_uri, _common.BEAM_MODES['in_memory'])
  measured = {}
  candidates: List[Tuple[str, Callable[[], object]]] = [
      ('Trainer input (TFRecords + Transform)',
       lambda: ours(str(examples_uri), workdir, size)),
      ('Keras image_dataset_from_directory', lambda: keras(folder, size)),
  ]
  print(f'{kept} images of {sample_size} px resized to {size} px, batches '
        f'of {_BATCH_SIZE}; {runs} timed runs of {passes} passes each; '
        f'{_common.load_average()}')
  print(_common.RATE_HEADER)
  for name, make in candidates:
    measured[name] = time_runs(make(), runs, passes)
    print(_common.rate_row(name, kept * passes, measured[name]))
  ours_run, keras_run = (_common.median_timing(t) for t in measured.values())
  ratio = keras_run.wall / ours_run.wall
  print(f'ratio (images/s ours / Keras): {ratio:.2f}, target >= '
        f'{RATIO_TARGET}: {_common.verdict(ratio, RATIO_TARGET)}')
  print(f'ratio per CPU second (less sensitive to the machine\'s load): '
        f'{keras_run.cpu / ours_run.cpu:.2f}')
  return ratio


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--n', type=int, default=3000,
                      help='images generated (before dropping re-encoded)')
  parser.add_argument('--size', type=int, default=64,
                      help='side of the generated images, px')
  parser.add_argument('--model-size', type=int, default=28,
                      help='side the images are resized to, px')
  parser.add_argument('--runs', type=int, default=3,
                      help='timed runs (the median is reported)')
  parser.add_argument('--passes', type=int, default=20,
                      help='passes over the images per run')
  parser.add_argument('--workdir', help='default: a temporary folder')
  args = parser.parse_args(argv)
  _common.quiet_environment()
  if args.workdir:
    run(pathlib.Path(args.workdir), args.n, args.size, args.model_size,
        args.runs, args.passes)
  else:
    with tempfile.TemporaryDirectory() as workdir:
      run(pathlib.Path(workdir), args.n, args.size, args.model_size,
          args.runs, args.passes)
  return 0


if __name__ == '__main__':
  sys.exit(main())
