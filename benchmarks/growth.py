"""Growth benchmark: cost per file and memory as the number of files grows.

Runs each ExampleGen's executor (`Do` only) on 2 Beam multi-processing
workers over N and 10N small generated files:
  * ImageFolderExampleGen: tiny images, 1-4 KiB, half JPEG and half PNG,
    4 classes (default N = 10^4, 10N = 10^5);
  * DicomExampleGen: 64x64 16-bit DICOMs with a labels CSV (default N = 10^3,
    10N = 10^4).
Every file's bytes are distinct. It reports per run: seconds per file end to
end and at the margin (a run over `--small-n` files measures the fixed cost),
the peak RSS of the launching process and of the largest Beam worker, and
the number and sizes of the Split files; then the 10N / N ratios against the
issue's targets (time per file within 1.15x, peak RSS within 1.2x).

Usage (from the repository root):

    .venv/bin/python benchmarks/growth.py [--images 10000] [--dicoms 1000]
        [--shard-size-mb 128] [--workdir DIR]
"""

import argparse
import csv
import io
import json
import pathlib
import sys
import tempfile
import zlib
from typing import Any, Dict, List

import _common  # First: quiets TensorFlow before it loads.

import numpy as np
from PIL import Image
from pydicom import dataset
from pydicom import uid

from image_example_gen import DicomExampleGen
from image_example_gen import ImageFolderExampleGen

TIME_TARGET = 1.15
MEMORY_TARGET = 1.2
_NUM_CLASSES = 4
_POOL_SIZE = 64
_FILES_PER_FOLDER = 1000
_DICOM_SIDE = 64
_SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7'


def _tiny_pool(seed: int) -> List[bytes]:
  """Small textured images of 48-80 px: even indices JPEG, odd PNG."""
  pool = []
  for index in range(_POOL_SIZE):
    rng = np.random.default_rng([seed, index])
    side = int(rng.integers(48, 81))
    gradient = np.linspace(0, 255, side)[None, :, None]
    noise = rng.normal(0, 24, (side, side, 3))
    pixels = np.clip(gradient + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    if index % 2:
      Image.fromarray(pixels[..., 0], 'L').save(buffer, 'PNG')
    else:
      Image.fromarray(pixels, 'RGB').save(buffer, 'JPEG', quality=80)
    pool.append(buffer.getvalue())
  return pool


def _distinct(data: bytes, index: int) -> bytes:
  """`data` made unique by `index` in a comment (JPEG COM, PNG tEXt)."""
  text = f'growth benchmark {index}'.encode('ascii')
  if data.startswith(b'\x89PNG'):
    body = b'tEXt' + b'Comment\x00' + text
    chunk = (len(body) - 4).to_bytes(4, 'big') + body + (
        zlib.crc32(body).to_bytes(4, 'big'))
    return data[:33] + chunk + data[33:]  # After the signature and IHDR.
  return data[:2] + b'\xff\xfe' + (len(text) + 2).to_bytes(2, 'big') + text + (
      data[2:])


def make_tiny_images(root: pathlib.Path, n: int, seed: int = 0) -> int:
  """Writes n distinct tiny images under `root/class_<k>/<folder>/`."""
  pool = _tiny_pool(seed)
  total = 0
  for i in range(n):
    data = _distinct(pool[i % _POOL_SIZE], i)
    suffix = 'png' if data.startswith(b'\x89PNG') else 'jpg'
    folder = root / f'class_{i % _NUM_CLASSES}' / f'{i // _FILES_PER_FOLDER:03d}'
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f'img_{i:06d}.{suffix}').write_bytes(data)
    total += len(data)
  return total


def make_small_dicoms(root: pathlib.Path, csv_path: pathlib.Path, n: int,
                      seed: int = 0) -> int:
  """Writes n 64x64 16-bit DICOMs (4 per patient) and their labels CSV."""
  rng = np.random.default_rng(seed)
  ds = dataset.Dataset()
  ds.file_meta = dataset.FileMetaDataset()
  ds.file_meta.MediaStorageSOPClassUID = _SECONDARY_CAPTURE
  ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
  ds.SOPClassUID = _SECONDARY_CAPTURE
  ds.Modality = 'OT'
  # Secondary Capture may show burned-in text: DicomExampleGen rejects it
  # unless the header says there is none.
  ds.BurnedInAnnotation = 'NO'
  ds.Rows = ds.Columns = _DICOM_SIDE
  ds.SamplesPerPixel = 1
  ds.PhotometricInterpretation = 'MONOCHROME2'
  ds.BitsAllocated = ds.BitsStored = 16
  ds.HighBit = 15
  ds.PixelRepresentation = 0
  pool = [rng.integers(0, 2**16, (_DICOM_SIDE, _DICOM_SIDE), dtype=np.uint16)
          .tobytes() for _ in range(_POOL_SIZE)]
  rows, total = [], 0
  for i in range(n):
    patient_id, image_id = 10000 + i // 4, 100000 + i
    ds.SOPInstanceUID = uid.generate_uid(entropy_srcs=[str(seed), str(i)])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID = str(patient_id)
    ds.PixelData = pool[i % _POOL_SIZE]
    folder = root / f'{i // _FILES_PER_FOLDER:03d}'
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f'{image_id}.dcm'
    ds.save_as(path, enforce_file_format=True)
    total += path.stat().st_size
    rows.append((patient_id, image_id, i % 2))
  with open(csv_path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(('patient_id', 'image_id', 'label'))
    writer.writerows(rows)
  return total


def _make_component(spec: Dict[str, Any], input_base: str):
  if spec['kind'] == 'images':
    return ImageFolderExampleGen(input_base=input_base,
                                 shard_size_mb=spec['shard_size_mb'])
  labels = spec['small_csv'] if input_base == spec.get(
      'small_input_base') else spec['metadata_file']
  return DicomExampleGen(input_base=input_base, metadata_file=labels,
                         group_column='patient_id',
                         shard_size_mb=spec['shard_size_mb'])


def _shards(run: _common.ComponentRun) -> str:
  parts = []
  for split, sizes in (run.shards or {}).items():
    parts.append(f'{split}: {len(sizes)} x {np.mean(sizes) / 2**20:.1f} MiB')
  return ', '.join(parts)


def _report(kind: str, runs: Dict[int, _common.ComponentRun]) -> List[str]:
  """Rows of one component's runs, and its target rows."""
  print(f'\n{kind}:')
  print(f'{"files":>7} {"s/file":>9} {"marginal":>9} {"CPU-s/file":>10} '
        f'{"launcher peak":>14} {"worker peak":>12}  Split files')
  for n, run in runs.items():
    marginal = run.marginal()
    print(f'{n:>7} {run.median().wall / n * 1e3:>7.3f}ms '
          f'{marginal.wall * 1e3 if marginal else float("nan"):>7.3f}ms '
          f'{run.median().cpu / n * 1e3:>8.3f}ms '
          f'{_common.mib(run.own_peak_rss):>14} '
          f'{_common.mib(run.worker_peak_rss):>12}  {_shards(run)}')
  small, large = runs.values()
  small_marginal, large_marginal = small.marginal(), large.marginal()
  name = f'{kind} {large.n} / {small.n}'
  return [
      _common.target_row(
          f'{name}: s/file', TIME_TARGET,
          large.median().wall / large.n / (small.median().wall / small.n),
          small_marginal and large_marginal and
          large_marginal.wall / small_marginal.wall,
          small_marginal and large_marginal and
          large_marginal.cpu / small_marginal.cpu, higher_is_better=False),
      _common.target_row(f'{name}: launcher peak RSS', MEMORY_TARGET,
                         large.own_peak_rss / small.own_peak_rss, None, None,
                         higher_is_better=False),
      _common.target_row(f'{name}: worker peak RSS', MEMORY_TARGET,
                         large.worker_peak_rss / small.worker_peak_rss, None,
                         None, higher_is_better=False),
  ]


def _run(args: argparse.Namespace, workdir: pathlib.Path) -> None:
  print('Growth benchmark, DirectRunner multi_processing, 2 workers, '
        f'shard_size_mb={args.shard_size_mb}')
  print(f'start: {_common.load_average()}')
  targets = []
  small = workdir / 'small_images'
  make_tiny_images(small, args.small_n, args.seed)
  image_runs = {}
  for n in (args.images, 10 * args.images):
    root = workdir / f'images_{n}'
    size = make_tiny_images(root, n, args.seed)
    print(f'data: {n} tiny images, {size / n / 1024:.1f} KiB on average')
    image_runs[n] = _common.run_child(__file__, {
        'kind': 'images', 'mode': 'mp2', 'repeats': 1, 'n': n,
        'input_base': str(root), 'small_input_base': str(small),
        'small_n': args.small_n, 'shard_size_mb': args.shard_size_mb,
        'out_dir': str(workdir / f'out_images_{n}')})
  targets += _report('ImageFolderExampleGen', image_runs)
  small = workdir / 'small_dicom'
  make_small_dicoms(small, workdir / 'small.csv', args.small_n, args.seed)
  dicom_runs = {}
  for n in (args.dicoms, 10 * args.dicoms):
    root = workdir / f'dicom_{n}'
    size = make_small_dicoms(root, workdir / f'dicom_{n}.csv', n, args.seed)
    print(f'data: {n} DICOMs, {size / n / 1024:.1f} KiB on average')
    dicom_runs[n] = _common.run_child(__file__, {
        'kind': 'dicom', 'mode': 'mp2', 'repeats': 1, 'n': n,
        'input_base': str(root),
        'metadata_file': str(workdir / f'dicom_{n}.csv'),
        'small_input_base': str(small), 'small_csv': str(workdir / 'small.csv'),
        'small_n': args.small_n, 'shard_size_mb': args.shard_size_mb,
        'out_dir': str(workdir / f'out_dicom_{n}')})
  targets += _report('DicomExampleGen', dicom_runs)
  print()
  print(_common.TARGET_HEADER)
  print('\n'.join(targets))
  print(f'end: {_common.load_average()}')


def main(argv: List[str]) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--images', type=int, default=10_000,
                      help='N of the image folder runs (and 10N)')
  parser.add_argument('--dicoms', type=int, default=1_000,
                      help='N of the DICOM runs (and 10N)')
  parser.add_argument('--small-n', type=int, default=100,
                      help='files of the run that measures the fixed cost')
  parser.add_argument('--shard-size-mb', type=float, default=128)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--workdir', help='scratch folder (default: a temp one)')
  parser.add_argument('--child', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    _common.child_main(json.loads(args.child), _make_component)
    return
  with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
    _run(args, pathlib.Path(tmp))


if __name__ == '__main__':
  main(sys.argv[1:])
