"""Ingestion benchmark of ImageFolderExampleGen against its decode floor.

Generates N textured RGB JPEGs of 256-512 px (seeded, a few classes), then
reports in one run:
  * the component's images/s (executor `Do` only) on Beam's DirectRunner
    in-memory (one core) and multi-processing with 1 and 2 workers;
  * the floor: a tight single-process loop that reads each file and fully
    decodes it with Pillow, the component's decoder;
  * per-core ratio (in-memory / floor), the 2-worker speed-up (2 vs 1
    multi-processing workers) and peak memory, against the issue's targets.

Usage (from the repository root):

    .venv/bin/python benchmarks/image_folder.py [--n 4000] [--repeats 3]
        [--scale-check] [--workdir DIR]

`--scale-check` also runs 10N images once in each of `--scale-modes` to
compare peak memory at N and 10N.
"""

import argparse
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

from image_example_gen import ImageFolderExampleGen
from image_example_gen import sample_data

_NUM_CLASSES = 4
_POOL_SIZE = 256
_JPEG_QUALITY = 90
_MIN_SIDE, _MAX_SIDE = 256, 512
PER_CORE_TARGET = 0.9
SPEEDUP_TARGET = 1.7
# Peak memory over the post-import baseline may grow at most this much while
# N grows 10x (linear growth would be 10x).
FLAT_MEMORY_TARGET = 1.5


def render_photo(index: int, seed: int) -> Tuple[Image.Image, int]:
  """A photo-like RGB image of random size, and its digit.

  A coloured digit on a shaded, striped background with sensor-like noise,
  so that JPEG decoding costs what it costs on photos of that size.
  """
  rng = np.random.default_rng([seed, index])
  width, height = (int(v) for v in rng.integers(_MIN_SIDE, _MAX_SIDE + 1, 2))
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


def make_image_folder(root: pathlib.Path, n: int, seed: int = 0) -> List[str]:
  """Writes `root/class_<k>/img_<i>.jpg`, i < n; returns the paths.

  A pool of at most 256 distinct images is rendered and JPEG-encoded once;
  file i holds pool image i % pool (same bytes, same class), which keeps
  generating 10x more files cheap.
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
    path.write_bytes(data)
    paths.append(str(path))
  return paths


def decode_floor(paths: List[str]) -> None:
  """Reads and fully decodes each file with Pillow, as the component does."""
  for path in paths:
    with open(path, 'rb') as f:
      data = f.read()
    Image.open(io.BytesIO(data), formats=('JPEG',)).load()


def _make_component(spec: Dict[str, Any], input_base: str):
  del spec
  return ImageFolderExampleGen(input_base=input_base)



def main(argv: List[str]) -> None:
  parser = _common.argument_parser(__doc__.split('\n')[0], 'images',
                                   n=4000, small_n=40, repeats=3,
                                   scale_modes='in_memory,mp2')
  args = parser.parse_args(argv)
  if args.child:
    _common.child_main(json.loads(args.child), _make_component)
    return
  with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
    _run(args, pathlib.Path(tmp))


def _run(args: argparse.Namespace, workdir: pathlib.Path) -> None:
  n = args.n
  print(f'ImageFolderExampleGen benchmark, N={n}, repeats={args.repeats}')
  print(f'start: {_common.load_average()}')
  paths = make_image_folder(workdir / 'images', n, args.seed)
  make_image_folder(workdir / 'small', args.small_n, args.seed)
  sizes = [os.path.getsize(p) for p in paths]
  print(f'data: {n} JPEGs (quality {_JPEG_QUALITY}, {_MIN_SIDE}-{_MAX_SIDE} '
        f'px, {_NUM_CLASSES} classes), {np.mean(sizes) / 1024:.0f} KiB on '
        'average')
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
  _common.print_targets(_common.median_timing(floor), n, runs, scaled,
                        PER_CORE_TARGET, SPEEDUP_TARGET, FLAT_MEMORY_TARGET)
  print(f'end: {_common.load_average()}')


if __name__ == '__main__':
  main(sys.argv[1:])
