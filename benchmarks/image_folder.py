"""Ingestion benchmark of ImageFolderExampleGen against its decode floor.

Generates N textured 500x375 RGB JPEGs of about 50 KiB (seeded, a few
classes, every file's bytes distinct), then reports in one run:
  * the component's images/s (executor `Do` only) on Beam's DirectRunner
    in-memory (one core) and multi-processing with 1 and 2 workers;
  * the floor: a tight single-process loop that reads each file and runs
    `Image.open(io.BytesIO(data)).load()` (a full Pillow decode);
  * per-core ratios (in-memory / floor, end to end and at the margin), the
    2-worker ratio (mp2 / floor at the margin) and peak memory, against the
    issue's targets.

Usage (from the repository root):

    .venv/bin/python benchmarks/image_folder.py [--n 4000] [--repeats 3]
        [--scale-check] [--workdir DIR]
    .venv/bin/python benchmarks/image_folder.py --levers

`--scale-check` also runs 10N images once in each of `--scale-modes` to
compare peak memory at N and 10N. `--levers` times, per image and in one
process, each step the component does for a JPEG and the alternatives it
was chosen over (full decodes with Pillow and simplejpeg, the DCT-scaled
validation, Example building, TFRecord writing).
"""

import argparse
import hashlib
import io
import json
import os
import pathlib
import sys
import tempfile
from typing import Any, Dict, List, Tuple

import _common  # First: quiets TensorFlow before it loads.

import numpy as np
from PIL import Image
import simplejpeg
import tensorflow as tf

from image_example_gen import ImageFolderExampleGen
from image_example_gen import keys
from image_example_gen import limits
from image_example_gen import listing
from image_example_gen import records
from image_example_gen import sample_data
from image_example_gen.image_folder import converter
from image_example_gen.image_folder import decoding

_NUM_CLASSES = 4
_POOL_SIZE = 256
_JPEG_QUALITY = 87
_WIDTH, _HEIGHT = 500, 375
# Targets of the issue: in_memory / floor at the margin and end to end, and
# 2 workers / floor at the margin.
PER_CORE_TARGET = 1.0
END_TO_END_TARGET = 0.8
TWO_WORKERS_TARGET = 1.9
# Peak memory over the post-import baseline may grow at most this much while
# N grows 10x (linear growth would be 10x).
FLAT_MEMORY_TARGET = 1.5


def render_photo(index: int, seed: int, width: int = _WIDTH,
                 height: int = _HEIGHT) -> Tuple[Image.Image, int]:
  """A photo-like RGB image, and its digit.

  A coloured digit on a shaded, striped background with sensor-like noise,
  so that JPEG decoding costs what it costs on photos of that size.
  """
  rng = np.random.default_rng([seed, index])
  digit, label = sample_data.render_digit(index, max(width, height), seed)
  digit = digit[:height, :width, np.newaxis]
  rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
  cols = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
  top, bottom, right = rng.uniform(0.1, 0.7, (3, 3)).astype(np.float32)
  background = top + (bottom - top) * rows + (right - top) * cols * 0.5
  stripes = 0.08 * np.sin(cols * rng.uniform(20, 60) + rows *
                          rng.uniform(20, 60))
  ink = rng.uniform(0.5, 1.0, 3).astype(np.float32)
  noise = rng.normal(0.0, 0.04, (height, width, 3)).astype(np.float32)
  pixels = (1 - digit) * (background + stripes) + digit * ink + noise
  image = Image.fromarray(
      (np.clip(pixels, 0.0, 1.0) * 255).round().astype(np.uint8), 'RGB')
  return image, label


def with_comment(jpeg: bytes, text: str) -> bytes:
  """`jpeg` with a COM segment holding `text` after its SOI marker."""
  payload = text.encode('ascii')
  return (jpeg[:2] + b'\xff\xfe' + (len(payload) + 2).to_bytes(2, 'big') +
          payload + jpeg[2:])


def make_image_folder(root: pathlib.Path, n: int, seed: int = 0) -> List[str]:
  """Writes `root/class_<k>/img_<i>.jpg`, i < n; returns the paths.

  A pool of at most 256 images is rendered and JPEG-encoded once; file i
  holds pool image i % pool (same class) with its index in a JPEG comment, so
  that every file's bytes differ (no two files are duplicates) while
  generating 10x more files stays cheap.
  """
  pool = []
  for index in range(min(n, _POOL_SIZE)):
    image, digit = render_photo(index, seed)
    buffer = io.BytesIO()
    image.save(buffer, 'JPEG', quality=_JPEG_QUALITY)
    pool.append((f'class_{digit % _NUM_CLASSES}', buffer.getvalue()))
  paths = []
  for i in range(n):
    class_name, data = pool[i % len(pool)]
    path = root / class_name / f'img_{i:06d}.jpg'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(with_comment(data, f'benchmark image {i}'))
    paths.append(str(path))
  return paths


def decode_floor(paths: List[str]) -> None:
  """Reads and fully decodes each file with Pillow, as the component does."""
  for path in paths:
    with open(path, 'rb') as f:
      data = f.read()
    Image.open(io.BytesIO(data), formats=('JPEG',)).load()


def _pillow_draft(data: bytes) -> None:
  image = Image.open(io.BytesIO(data), formats=('JPEG',))
  image.draft('RGB', (image.width // 8, image.height // 8))
  image.load()


def _write_records(serialized: List[bytes], path: str) -> None:
  with records.TFRecordGzipWriter(path) as writer:
    for record in serialized:
      writer.write(record)


def levers(workdir: pathlib.Path, repeats: int, seed: int) -> None:
  """Per-image cost of each step for a JPEG, and of its alternatives."""
  paths = make_image_folder(workdir / 'levers', _POOL_SIZE, seed)
  datas = [pathlib.Path(p).read_bytes() for p in paths]
  items = [listing.ListedFile(p, str(pathlib.Path(p).relative_to(
      workdir / 'levers')), len(d), 0.0) for p, d in zip(paths, datas)]
  file_converter = converter.ImageFileConverter(
      '', [f'class_{k}' for k in range(_NUM_CLASSES)], _common.SALT,
      exif_transpose=True, max_size=None, limits=limits.SizeLimits())
  file_converter.setup()
  serialized = [file_converter.convert(item, None).examples[0]
                .SerializeToString() for item in items]
  examples = [tf.train.Example.FromString(s) for s in serialized]
  record_path = str(workdir / 'levers.tfrecord.gz')
  steps = [
      ('read the file', lambda: [pathlib.Path(p).read_bytes() for p in paths]),
      ('floor: Pillow open + load (full decode)', lambda: [
          Image.open(io.BytesIO(d)).load() for d in datas]),
      ('Pillow draft 1/8 + load', lambda: [_pillow_draft(d) for d in datas]),
      ('simplejpeg full decode', lambda: [
          simplejpeg.decode_jpeg(d) for d in datas]),
      ('simplejpeg 1/8 strict (validation)', lambda: [
          decoding._scaled_decode_succeeds(d, 3) for d in datas]),  # pylint: disable=protected-access
      ('decoding.convert: header + validation', lambda: [
          decoding.convert(d) for d in datas]),
      ('sha256 + HMAC content key', lambda: [keys.keyed_hash(
          hashlib.sha256(d).hexdigest(), _common.SALT, 'content')
                                             for d in datas]),
      ('converter.convert: read, validate, Example', lambda: [
          file_converter.convert(item, None) for item in items]),
      ('Example.SerializeToString', lambda: [
          e.SerializeToString() for e in examples]),
      ('TFRecord write (stored gzip)', lambda: _write_records(
          serialized, record_path)),
  ]
  print(f'Per-image cost of each step, {len(paths)} distinct {_WIDTH}x'
        f'{_HEIGHT} JPEGs ({np.mean([len(d) for d in datas]) / 1024:.0f} KiB),'
        f' median of {repeats} passes, one process')
  print(f'start: {_common.load_average()}')
  print(f'{"step":<44} {"wall us":>8} {"CPU us":>8}')
  for name, fn in steps:
    fn()  # Warm-up.
    timing = _common.median_timing([_common.timed(fn) for _ in range(repeats)])
    print(f'{name:<44} {timing.wall / len(paths) * 1e6:>8.0f} '
          f'{timing.cpu / len(paths) * 1e6:>8.0f}')
  print(f'end: {_common.load_average()}')


def _make_component(spec: Dict[str, Any], input_base: str):
  del spec
  return ImageFolderExampleGen(input_base=input_base)



def main(argv: List[str]) -> None:
  parser = _common.argument_parser(__doc__.split('\n')[0], 'images',
                                   n=4000, small_n=40, repeats=3,
                                   scale_modes='in_memory,mp2')
  parser.add_argument('--levers', action='store_true',
                      help='time each step per image, in one process, only')
  args = parser.parse_args(argv)
  if args.child:
    _common.child_main(json.loads(args.child), _make_component)
    return
  with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
    if args.levers:
      levers(pathlib.Path(tmp), max(args.repeats, 5), args.seed)
    else:
      _run(args, pathlib.Path(tmp))


def _run(args: argparse.Namespace, workdir: pathlib.Path) -> None:
  n = args.n
  print(f'ImageFolderExampleGen benchmark, N={n}, repeats={args.repeats}')
  print(f'start: {_common.load_average()}')
  paths = make_image_folder(workdir / 'images', n, args.seed)
  make_image_folder(workdir / 'small', args.small_n, args.seed)
  sizes = [os.path.getsize(p) for p in paths]
  print(f'data: {n} JPEGs (quality {_JPEG_QUALITY}, {_WIDTH}x{_HEIGHT}, '
        f'{_NUM_CLASSES} classes), {np.mean(sizes) / 1024:.0f} KiB on average')
  decode_floor(paths[:_POOL_SIZE])  # Warms the page cache and Pillow.
  floor = [_common.timed(lambda: decode_floor(paths))
           for _ in range(args.repeats)]
  spec = {'repeats': args.repeats, 'n': n,
          'input_base': str(workdir / 'images'),
          'small_input_base': str(workdir / 'small'), 'small_n': args.small_n}
  runs = _common.component_runs(__file__, list(_common.BEAM_MODES), spec,
                                 workdir)
  print('\nEnd to end (median of the repeats):')
  print(_common.RATE_HEADER)
  print(_common.rate_row('floor: read + Pillow decode, 1 process', n, floor))
  for mode, run in runs.items():
    print(_common.rate_row(f'component, DirectRunner {mode}', n, run.runs))
  print(f'\nFixed cost (a run over {args.small_n} images) and marginal rate:')
  print(_common.MARGINAL_HEADER)
  for run in runs.values():
    print(_common.marginal_row(run))
  print('\nPeak RSS of the process tree:')
  for run in runs.values():
    print(_common.memory_row(run))
  scaled = {}
  if args.scale_check:
    make_image_folder(workdir / 'images10', 10 * n, args.seed)
    scaled = _common.component_runs(
        __file__, args.scale_modes.split(','),
        {'repeats': 1, 'n': 10 * n, 'input_base': str(workdir / 'images10')},
        workdir)
    _common.print_scaled(scaled, 10 * n)
  print()
  print_targets(_common.median_timing(floor), n, runs, scaled)
  print(f'end: {_common.load_average()}')


def print_targets(floor: _common.Timing, n: int,
                  runs: Dict[str, _common.ComponentRun],
                  scaled: Dict[str, _common.ComponentRun]) -> None:
  """The issue's targets, each a ratio to the floor's images/s.

  Columns: end to end (median runs); marginal (once the fixed cost of a run
  is taken off); marginal CPU (images per CPU-second at the margin over the
  floor's: the per-core cost whatever the load).
  """
  floor_wall, floor_cpu = floor.wall / n, floor.cpu / n
  single, mp1, mp2 = runs['in_memory'], runs['mp1'], runs['mp2']

  def at_margin(run, seconds_per_image, cpu=False):
    marginal = run.marginal()
    return marginal and seconds_per_image / (marginal.cpu if cpu else
                                             marginal.wall)

  print(_common.TARGET_HEADER)
  print(_common.target_row('per core: in_memory / floor', PER_CORE_TARGET,
                           None, at_margin(single, floor_wall),
                           at_margin(single, floor_cpu, cpu=True)))
  print(_common.target_row('end to end: in_memory / floor',
                           END_TO_END_TARGET, single.rate() * floor.wall / n,
                           None, None))
  _common.print_two_workers(floor, n, mp2, TWO_WORKERS_TARGET)
  print(f'(2 workers / 1 worker, end to end: {mp2.rate() / mp1.rate():.2f})')
  for mode, run in scaled.items():
    print(_common.target_row(f'peak memory 10N / N, {mode}',
                             FLAT_MEMORY_TARGET,
                             _common.memory_growth(runs[mode], run), None,
                             None, higher_is_better=False))


if __name__ == '__main__':
  main(sys.argv[1:])
