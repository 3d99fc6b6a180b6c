"""DicomExampleGen(unit='series') against unit='image' on the same CT files.

Two generated data sets (native 16-bit CT slices with a rescale and a window,
random file names, InstanceNumbers from the head down):
  * large: one series of 300 slices of 512x512 (150 MiB decoded);
  * many: 200 series of 64 slices of 128x128 (12,800 files).

Targets (docs/design.md §14):
  * per-slice throughput of unit='series' within 1.25x of unit='image' on
    the same files: the ratio of seconds per slice, series / image, at most
    1.25, once the fixed cost of a run (a run over a few series) is taken
    off. Measured in one process (`in_memory`): a series is one unit of work,
    so on several workers one large series cannot spread as its files do;
  * the worker's peak RSS over idle below 2x the largest series' decoded
    size: one Beam worker (`mp1`) converting the large series, its peak RSS
    minus the worker's peak on a 3-slice series of the same slices (the
    idle worker with every library loaded), over 300 x 512 x 512 x 2 bytes.

    .venv/bin/python benchmarks/series.py    # ~6 min at load 1
"""

import argparse
import json
import pathlib
import sys
import tempfile
from typing import Any, Dict, List

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _common  # pylint: disable=g-import-not-at-top,wrong-import-position

# pylint: disable=g-import-not-at-top,wrong-import-position
from pydicom import dataset
from pydicom import uid as uids

from image_example_gen import DicomExampleGen
# pylint: enable=g-import-not-at-top,wrong-import-position

THROUGHPUT_TARGET = 1.25
MEMORY_TARGET = 2.0
_CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2'


def make_series(root: pathlib.Path, n_series: int, slices: int, size: int,
                seed: int = 0) -> int:
  """Writes `n_series` axial series; returns the bytes their slices decode to.

  Each slice: a sphere of +400 HU in 40 HU tissue with 15 HU of noise,
  stored as signed 16-bit, 1 mm slices numbered from the head down, under a
  random name in the patient's folder.
  """
  rng = np.random.default_rng(seed)
  grid = np.indices((size, size)).astype(np.float32) - size / 2
  for s in range(n_series):
    patient, series_uid = f'P{s % 50:03d}', uids.generate_uid(
        entropy_srcs=['series-benchmark', str(seed), str(s)])
    folder = root / patient
    folder.mkdir(parents=True, exist_ok=True)
    radius = size * rng.uniform(0.2, 0.3)
    for k in range(slices):
      z = k - slices / 2
      disc = (grid[0]**2 + grid[1]**2 + (z * size / slices)**2 <= radius**2)
      hounsfield = 40 + 360 * disc + rng.normal(0, 15, (size, size))
      ds = dataset.Dataset()
      ds.file_meta = dataset.FileMetaDataset()
      ds.file_meta.MediaStorageSOPClassUID = _CT_IMAGE
      ds.file_meta.MediaStorageSOPInstanceUID = uids.generate_uid()
      ds.file_meta.TransferSyntaxUID = uids.ExplicitVRLittleEndian
      ds.SOPClassUID = _CT_IMAGE
      ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
      ds.Modality, ds.PatientID = 'CT', patient
      ds.StudyInstanceUID = uids.generate_uid(
          entropy_srcs=['series-benchmark', patient])
      ds.SeriesInstanceUID = series_uid
      ds.InstanceNumber = slices - k
      ds.ImagePositionPatient = [-size / 2, -size / 2, float(z)]
      ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
      ds.PixelSpacing = [1.0, 1.0]
      ds.Rows = ds.Columns = size
      ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
      ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
      ds.PixelRepresentation = 1
      ds.RescaleIntercept, ds.RescaleSlope = 0.0, 1.0
      ds.WindowCenter, ds.WindowWidth = 150.0, 500.0
      ds.PixelData = np.rint(hounsfield).astype(np.int16).tobytes()
      ds.save_as(folder / f'{rng.integers(10**9, 10**10)}.dcm',
                 enforce_file_format=True)
  return n_series * slices * size * size * 2


def _make_component(spec: Dict[str, Any], input_base: str):
  return DicomExampleGen(input_base=input_base, unit=spec['unit'])


def _run(spec: Dict[str, Any], workdir: pathlib.Path,
         name: str) -> _common.ComponentRun:
  return _common.run_child(__file__, dict(
      spec, repeats=spec.get('repeats', 1),
      out_dir=str(workdir / f'out_{name}')))


def _throughput(workdir: pathlib.Path, data: str, small: str, slices: int,
                small_slices: int) -> List[str]:
  """Rows of both units on one data set; the ratio row."""
  runs = {}
  for unit in ('image', 'series'):
    runs[unit] = _run({'unit': unit, 'mode': 'in_memory', 'n': slices,
                       'input_base': data, 'small_input_base': small,
                       'small_n': small_slices}, workdir,
                      f'{pathlib.Path(data).name}_{unit}')
  print(f'{"unit":<8} {"slices":>7} {"ms/slice":>9} {"marginal":>9} '
        f'{"CPU ms/slice":>12} {"marginal CPU":>12} {"fixed s":>8}')
  for unit, run in runs.items():
    marginal = run.marginal()
    print(f'{unit:<8} {slices:>7} {run.median().wall / slices * 1e3:>9.2f} '
          f'{marginal.wall * 1e3 if marginal else float("nan"):>9.2f} '
          f'{run.median().cpu / slices * 1e3:>12.2f} '
          f'{marginal.cpu * 1e3 if marginal else float("nan"):>12.2f} '
          f'{run.small.wall if run.small else float("nan"):>8.1f}')
  image, series = runs['image'], runs['series']
  image_marginal, series_marginal = image.marginal(), series.marginal()
  return [_common.target_row(
      f'{pathlib.Path(data).name}: series / image s/slice', THROUGHPUT_TARGET,
      series.median().wall / image.median().wall,
      image_marginal and series_marginal and
      series_marginal.wall / image_marginal.wall,
      image_marginal and series_marginal and
      series_marginal.cpu / image_marginal.cpu, higher_is_better=False)]


def _run_all(args: argparse.Namespace, workdir: pathlib.Path) -> None:
  print(f'Series benchmark; start: {_common.load_average()}')
  large, tiny = workdir / 'large', workdir / 'large_small'
  decoded = make_series(large, 1, args.large_slices, args.large_size,
                        args.seed)
  make_series(tiny, 1, 3, args.large_size, args.seed + 1)
  many, few = workdir / 'many', workdir / 'many_small'
  make_series(many, args.series, args.slices, args.size, args.seed)
  make_series(few, 4, args.slices, args.size, args.seed + 1)
  print(f'data: 1 series of {args.large_slices} x {args.large_size}^2 '
        f'({_common.mib(decoded)} decoded); {args.series} series of '
        f'{args.slices} x {args.size}^2')
  targets = []
  print('\nlarge, in_memory:')
  targets += _throughput(workdir, str(large), str(tiny), args.large_slices, 3)
  print('\nmany, in_memory:')
  targets += _throughput(workdir, str(many), str(few),
                         args.series * args.slices, 4 * args.slices)
  print('\nlarge, one worker (mp1), unit=series:')
  idle = _run({'unit': 'series', 'mode': 'mp1', 'n': 3,
               'input_base': str(tiny)}, workdir, 'idle')
  busy = _run({'unit': 'series', 'mode': 'mp1', 'n': args.large_slices,
               'input_base': str(large)}, workdir, 'busy')
  for name, run in (('3 slices', idle), (f'{args.large_slices} slices', busy)):
    print(f'{name:<12} worker peak {_common.mib(run.worker_peak_rss):>10}, '
          f'launcher peak {_common.mib(run.own_peak_rss):>10}, '
          f'{run.median().wall:.1f} s')
  over_idle = busy.worker_peak_rss - idle.worker_peak_rss
  print(f'worker peak over idle: {_common.mib(over_idle)}, '
        f'{over_idle / decoded:.2f}x the series\' decoded size')
  targets.append(_common.target_row(
      'worker peak RSS over idle / decoded', MEMORY_TARGET,
      over_idle / decoded, None, None, higher_is_better=False))
  print()
  print(_common.TARGET_HEADER)
  print('\n'.join(targets))
  print(f'end: {_common.load_average()}')


def main(argv: List[str]) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--large-slices', type=int, default=300)
  parser.add_argument('--large-size', type=int, default=512)
  parser.add_argument('--series', type=int, default=200)
  parser.add_argument('--slices', type=int, default=64)
  parser.add_argument('--size', type=int, default=128)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--workdir', help='scratch folder (default: a temp one)')
  parser.add_argument('--child', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    _common.child_main(json.loads(args.child), _make_component)
    return
  with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
    _run_all(args, pathlib.Path(tmp))


if __name__ == '__main__':
  main(sys.argv[1:])
