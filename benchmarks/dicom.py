"""Ingestion benchmark of DicomExampleGen against its floor and the seeds.

Generates N mammography-sized DICOMs (2048x1664, 12-bit, MONOCHROME1,
JPEG 2000 lossless, a window; 4 images per patient) with an RSNA-like
`train.csv`, then reports in one run:
  * the component's images/s (executor `Do` only) on Beam's DirectRunner
    in-memory (one core) and multi-processing with 1 and 2 workers, at its
    defaults (full size, 16-bit PNG) and, on 2 workers, with the seeds'
    output (`resize=512`, `bit_depth=8`);
  * the floor: a single-process loop doing only decode (the component's
    plugin) + VOI (pydicom) + PNG encode (the component's codec);
  * the seeds' recipe on the same files: pydicom `pixel_array`, min-max to
    8 bits, Pillow resize to 512x512, PNG, `tf.io.TFRecordWriter` one record
    at a time, with a pandas `df[df.image_id == id]` lookup per image;
  * with `resize` set: the seeds' recipe resizing to 512 and 1024 px against
    the component on 2 workers (`resize=512|1024`, `bit_depth=8`), on
    `--resize-n` mammograms in JPEG 2000 lossless and in JPEG lossless
    (process 14 SV1, .70, encoded with GDCM): the component decodes JPEG 2000
    at a reduced resolution level and JPEG lossless with dicomsdl;
  * ratios and peak memory against the issue's targets.

Usage (from the repository root):

    .venv/bin/python benchmarks/dicom.py [--n 128] [--repeats 1]
        [--resize-n 64] [--only-resize] [--scale-check] [--workdir DIR]
    .venv/bin/python benchmarks/dicom.py --decoders
    .venv/bin/python benchmarks/dicom.py --steps [--n 16]

`--scale-check` also runs 10N files once in each of `--scale-modes` to
compare peak memory at N and 10N. `--decoders` times every installed pydicom
decoding plugin on one mammogram per transfer syntax (JPEG 2000, JPEG-LS and
RLE lossless), compares the fastest with the component's preferred plugin,
and times the component's PNG encoder against TensorFlow's and Pillow's on
the frame as the component renders it. `--steps` gives the CPU per image
of each step of the conversion (read, header, pixel-data check, decode,
display steps, resize, PNG, Example, write) at full size, 1024 and 512, on
JPEG 2000 and JPEG Lossless mammograms.
"""

import argparse
import csv
import dataclasses
import gzip
import io
import json
import os
import pathlib
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Sequence

import _common  # First: quiets TensorFlow before it loads.

import gdcm
import numpy as np
import pandas as pd
from PIL import Image
import pydicom
from pydicom import dataset
from pydicom import uid
from pydicom.pixels import get_decoder
from pydicom.pixels import pixel_array
from pydicom.pixels import processing
import tensorflow as tf

from image_example_gen import codecs
from image_example_gen import example as example_lib
from image_example_gen import limits
from image_example_gen import listing
from image_example_gen import records
from image_example_gen import DicomExampleGen
from image_example_gen.dicom import converter as converter_lib
from image_example_gen.dicom import decoders
from image_example_gen.dicom import display
from image_example_gen.dicom import integrity
from image_example_gen.dicom import metadata

ROWS, COLUMNS = 2048, 1664
BITS_STORED = 12
IMAGES_PER_PATIENT = 4
DISTINCT_IMAGES = 4
SEEDS_SIZE = 512
RESIZE_SIZES = (512, 1024)
PER_CORE_TARGET = 0.9
SPEEDUP_TARGET = 1.7
# 2 workers at the defaults / the single-process floor, at the margin.
TWO_WORKERS_TARGET = 1.8
# 2 workers with `resize` and `bit_depth=8` / the seeds' recipe at the same
# size, at the margin, per transfer syntax.
RESIZE_TARGETS = {uid.JPEG2000Lossless: 5.0, uid.JPEGLosslessSV1: 3.0}
FLAT_MEMORY_TARGET = 1.5

_MAX_STORED = 2**BITS_STORED - 1
_WINDOW = (1900.0, 3000.0)  # (center, width) over the tissue's values
_DIGITAL_MAMMOGRAPHY = '1.2.840.10008.5.1.4.1.1.1.2'


def mammogram(index: int, seed: int = 0) -> np.ndarray:
  """Stored values of a synthetic MONOCHROME1 mammogram (uint16, 12 bits).

  A breast-shaped half ellipse against the chest wall (left or right by
  `index`), with a smooth tissue profile, mottled fibroglandular texture and
  quantum noise; the background is air (stored white, as MONOCHROME1 shows
  it black). Realistic entropy keeps the codecs' work realistic.
  """
  rng = np.random.default_rng([seed, index])
  rows = np.linspace(-1.0, 1.0, ROWS, dtype=np.float32)[:, None]
  cols = np.linspace(0.0, 1.0, COLUMNS, dtype=np.float32)[None, :]
  if index % 2:
    cols = cols[:, ::-1]
  extent = rng.uniform(0.7, 0.9)
  radius = (cols / extent)**2 + (rows / rng.uniform(0.85, 0.95))**2
  breast = radius < 1.0
  thickness = np.sqrt(np.clip(1.0 - radius, 0.0, 1.0))
  coarse = rng.random((ROWS // 64, COLUMNS // 64), dtype=np.float32)
  mottle = np.asarray(Image.fromarray(coarse, 'F').resize(
      (COLUMNS, ROWS), Image.Resampling.BICUBIC))
  tissue = 600.0 + 2000.0 * thickness + 500.0 * mottle * thickness
  tissue += rng.normal(0.0, 12.0, tissue.shape).astype(np.float32)
  intensity = np.where(breast, tissue, 0.0)
  stored = _MAX_STORED - np.clip(np.rint(intensity), 0, _MAX_STORED)
  return stored.astype(np.uint16)


def _dataset(stored: np.ndarray, transfer_syntax: str, plugin: str):
  """An MG image dataset holding `stored`, encoded in `transfer_syntax`."""
  ds = dataset.Dataset()
  ds.file_meta = dataset.FileMetaDataset()
  ds.file_meta.MediaStorageSOPClassUID = _DIGITAL_MAMMOGRAPHY
  ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
  ds.SOPClassUID = _DIGITAL_MAMMOGRAPHY
  ds.Modality = 'MG'
  ds.Rows, ds.Columns = stored.shape
  ds.SamplesPerPixel = 1
  ds.PhotometricInterpretation = 'MONOCHROME1'
  ds.BitsAllocated = 16
  ds.BitsStored = BITS_STORED
  ds.HighBit = BITS_STORED - 1
  ds.PixelRepresentation = 0
  ds.WindowCenter, ds.WindowWidth = _WINDOW
  if transfer_syntax == uid.JPEGLosslessSV1:
    return _gdcm_jpeg_lossless(ds, stored)
  ds.compress(transfer_syntax, stored, encoding_plugin=plugin)
  return ds


def _gdcm_jpeg_lossless(ds: dataset.Dataset,
                        stored: np.ndarray) -> dataset.Dataset:
  """`ds` with `stored` encoded by GDCM in JPEG lossless SV1 (.70).

  pydicom has no encoder for it; GDCM's is the one installed.
  """
  ds.SOPInstanceUID = uid.generate_uid()
  ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
  ds.PixelData = stored.tobytes()
  with tempfile.TemporaryDirectory() as tmp:
    native, encoded = f'{tmp}/native.dcm', f'{tmp}/encoded.dcm'
    ds.save_as(native, enforce_file_format=True)
    reader = gdcm.ImageReader()
    reader.SetFileName(native)
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(
        gdcm.TransferSyntax.JPEGLosslessProcess14_1))
    writer = gdcm.ImageWriter()
    writer.SetFileName(encoded)
    if not reader.Read():
      raise RuntimeError('GDCM cannot read the native mammogram.')
    change.SetInput(reader.GetImage())
    if not change.Change():
      raise RuntimeError('GDCM cannot encode JPEG lossless.')
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    if not writer.Write():
      raise RuntimeError('GDCM cannot write the JPEG lossless mammogram.')
    result = pydicom.dcmread(encoded)
  if not np.array_equal(pixel_array(result), stored):
    raise AssertionError('GDCM JPEG lossless round trip differs.')
  return result


def make_dicom_tree(root: pathlib.Path, csv_path: pathlib.Path, n: int,
                    seed: int = 0,
                    transfer_syntax: str = uid.JPEG2000Lossless) -> List[str]:
  """Writes `root/<patient_id>/<image_id>.dcm`, i < n, and the labels CSV.

  `DISTINCT_IMAGES` mammograms are encoded once (encoding is slow);
  file i holds mammogram i % DISTINCT_IMAGES with its own SOP Instance UID,
  patient and laterality, its pixel data copied, not re-encoded.

  Returns:
    The paths written, in image order.
  """
  templates = [
      _dataset(mammogram(i, seed), transfer_syntax, 'pylibjpeg')
      for i in range(min(n, DISTINCT_IMAGES))
  ]
  rng = np.random.default_rng([seed, 1])
  paths, rows = [], []
  for i in range(n):
    ds = templates[i % len(templates)]
    patient_id, image_id = 10000 + i // IMAGES_PER_PATIENT, 100000 + i
    laterality = 'LR'[i % 2]
    view = ('CC', 'MLO')[i // 2 % 2]
    ds.SOPInstanceUID = uid.generate_uid(entropy_srcs=[str(seed), str(i)])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID = str(patient_id)
    ds.ImageLaterality, ds.ViewPosition = laterality, view
    path = root / str(patient_id) / f'{image_id}.dcm'
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    paths.append(str(path))
    rows.append((patient_id, image_id, laterality, view,
                 int(rng.integers(40, 80)), int(rng.random() < 0.3)))
  with open(csv_path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(('patient_id', 'image_id', 'laterality', 'view', 'age',
                     'label'))
    writer.writerows(rows)
  return paths


def preferred_plugin(transfer_syntax: str) -> str:
  """The plugin the component tries first ('' for pydicom's order)."""
  return decoders._PREFERRED_PLUGINS.get(transfer_syntax, '')  # pylint: disable=protected-access


def render_floor(stored: np.ndarray, ds: dataset.Dataset) -> np.ndarray:
  """The floor's VOI: pydicom's windowing, scaled to 16 bits, inverted."""
  values = processing.apply_windowing(stored, ds)
  top = 2**16 - 1
  scaled = np.rint(np.clip(values, 0, _MAX_STORED) * (top / _MAX_STORED))
  return top - scaled.astype(np.uint16)


def floor_loop(paths: Sequence[str]) -> None:
  """Decode + VOI + PNG encode only, with the component's libraries."""
  for path in paths:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    stored = pixel_array(path, decoding_plugin=preferred_plugin(
        ds.file_meta.TransferSyntaxUID))
    codecs.encode_png(render_floor(stored, ds))


def seeds_recipe(paths: Sequence[str], csv_path: str, out_path: str,
                 size: int = SEEDS_SIZE) -> None:
  """What the seed notebooks do, one image at a time, resizing to `size`."""
  df = pd.read_csv(csv_path)
  with tf.io.TFRecordWriter(out_path) as writer:
    for path in paths:
      ds = pydicom.dcmread(path)
      img = ds.pixel_array.astype(np.float32)
      img = (img - img.min()) / (img.max() - img.min())
      if ds.PhotometricInterpretation == 'MONOCHROME1':
        img = 1.0 - img
      img = Image.fromarray((img * 255).astype(np.uint8)).resize(
          (size, size), Image.Resampling.BILINEAR)
      buffer = io.BytesIO()
      img.save(buffer, format='PNG')
      image_id = int(pathlib.Path(path).stem)
      row = df[df.image_id == image_id]
      feature = {
          'image': tf.train.Feature(
              bytes_list=tf.train.BytesList(value=[buffer.getvalue()])),
          'label': tf.train.Feature(
              int64_list=tf.train.Int64List(value=[int(row.label.iloc[0])])),
          'patient_id': tf.train.Feature(int64_list=tf.train.Int64List(
              value=[int(row.patient_id.iloc[0])])),
      }
      writer.write(tf.train.Example(features=tf.train.Features(
          feature=feature)).SerializeToString())


def _make_component(spec: Dict[str, Any], input_base: str):
  return DicomExampleGen(input_base=input_base,
                         metadata_file=spec['metadata_file'],
                         group_column='patient_id',
                         resize=spec.get('resize'),
                         bit_depth=spec.get('bit_depth'))



def _run_resize(args: argparse.Namespace, workdir: pathlib.Path) -> None:
  """Seeds' recipe vs the component on 2 workers, both resizing."""
  n = args.resize_n
  print(f'\nWith resize: N={n} mammograms per transfer syntax, the seeds\' '
        'recipe (1 process) vs the component on 2 workers (mp2, bit_depth=8)')
  print(f'start: {_common.load_average()}')
  rows, targets = [], []
  for transfer_syntax, goal in RESIZE_TARGETS.items():
    name = 'J2K lossless' if transfer_syntax == uid.JPEG2000Lossless else (
        'JPEG lossless .70')
    folder = workdir / f'resize_{transfer_syntax}'
    csv_path = folder / 'train.csv'
    paths = make_dicom_tree(folder / 'dicom', csv_path, n, args.seed,
                            transfer_syntax)
    make_dicom_tree(folder / 'small', folder / 'small.csv', args.small_n,
                    args.seed, transfer_syntax)
    for size in RESIZE_SIZES:
      seeds = [_common.timed(lambda: seeds_recipe(
          paths, str(csv_path), str(folder / 'seeds.tfrecord'), size))
               for _ in range(args.repeats)]
      run = _common.run_child(__file__, {
          'repeats': args.repeats, 'n': n, 'mode': 'mp2',
          'input_base': str(folder / 'dicom'),
          'metadata_file': str(csv_path),
          'small_input_base': str(folder / 'small'),
          'small_n': args.small_n, 'resize': size, 'bit_depth': 8,
          'out_dir': str(folder / f'out_{size}')})
      rows.append(_common.rate_row(f'{name} {size}: seeds', n, seeds))
      rows.append(_common.rate_row(f'{name} {size}: component mp2', n,
                                   run.runs))
      seeds_timing = _common.median_timing(seeds)
      marginal = run.marginal()
      targets.append(_common.target_row(
          f'{name} {size}: mp2 / seeds', goal,
          run.rate() * seeds_timing.wall / n,
          marginal and seeds_timing.wall / n / marginal.wall, None))
  print(_common.RATE_HEADER)
  print('\n'.join(rows))
  print()
  print(_common.TARGET_HEADER)
  print('\n'.join(targets))
  print(f'end: {_common.load_average()}')


def _run(args: argparse.Namespace, workdir: pathlib.Path) -> None:
  if args.only_resize:
    _run_resize(args, workdir)
    return
  n = args.n
  print(f'DicomExampleGen benchmark, N={n}, repeats={args.repeats}')
  print(f'start: {_common.load_average()}')
  csv_path = workdir / 'train.csv'
  paths = make_dicom_tree(workdir / 'dicom', csv_path, n, args.seed)
  make_dicom_tree(workdir / 'small', workdir / 'small.csv', args.small_n,
                  args.seed)
  sizes = [os.path.getsize(p) for p in paths]
  print(f'data: {n} DICOMs {ROWS}x{COLUMNS}, {BITS_STORED}-bit MONOCHROME1, '
        f'JPEG 2000 lossless, {np.mean(sizes) / 2**20:.1f} MiB on average')
  floor = [_common.timed(lambda: floor_loop(paths))
           for _ in range(args.repeats)]
  seeds = [_common.timed(lambda: seeds_recipe(
      paths, str(csv_path), str(workdir / 'seeds.tfrecord')))
           for _ in range(args.repeats)]
  spec = {'repeats': args.repeats, 'n': n,
          'input_base': str(workdir / 'dicom'),
          'metadata_file': str(csv_path),
          'small_input_base': str(workdir / 'small'), 'small_n': args.small_n}
  runs = _common.component_runs(__file__, list(_common.BEAM_MODES), spec,
                                 workdir)
  seeds_like = _common.run_child(__file__, dict(
      spec, mode='mp2', out_dir=str(workdir / 'out_seeds_like'),
      resize=SEEDS_SIZE, bit_depth=8))
  print('\nEnd to end (median of the repeats):')
  print(_common.RATE_HEADER)
  print(_common.rate_row('floor: decode+VOI+PNG16, 1 process', n, floor))
  print(_common.rate_row('seeds: pydicom+resize+PNG8+pandas', n, seeds))
  for mode, run in runs.items():
    print(_common.rate_row(f'component, DirectRunner {mode}', n, run.runs))
  print(_common.rate_row('component mp2, resize=512 bit_depth=8', n,
                         seeds_like.runs))
  print(f'\nFixed cost (a run over {args.small_n} images) and marginal rate:')
  print(_common.MARGINAL_HEADER)
  for run in runs.values():
    print(_common.marginal_row(run))
  print(_common.marginal_row(seeds_like) + '  (resize=512 bit_depth=8)')
  print('\nPeak RSS of the process tree:')
  for run in runs.values():
    print(_common.memory_row(run))
  scaled = {}
  if args.scale_check:
    make_dicom_tree(workdir / 'dicom10', workdir / 'train10.csv', 10 * n,
                    args.seed)
    scaled = _common.component_runs(__file__, args.scale_modes.split(','), {
        'repeats': 1, 'n': 10 * n, 'input_base': str(workdir / 'dicom10'),
        'metadata_file': str(workdir / 'train10.csv')}, workdir)
    _common.print_scaled(scaled, 10 * n)
  print()
  _common.print_targets(_common.median_timing(floor), n, runs, scaled,
                        PER_CORE_TARGET, SPEEDUP_TARGET, FLAT_MEMORY_TARGET)
  _common.print_two_workers(_common.median_timing(floor), n, runs['mp2'],
                            TWO_WORKERS_TARGET)
  seeds_timing = _common.median_timing(seeds)
  marginal = seeds_like.marginal()
  print(_common.target_row(
      'mp2 (seeds output) / seeds recipe', RESIZE_TARGETS[uid.JPEG2000Lossless],
      seeds_like.rate() * seeds_timing.wall / n,
      marginal and seeds_timing.wall / n / marginal.wall, None))
  print(f'end: {_common.load_average()}')
  if args.resize_n:
    _run_resize(args, workdir)


def _best_of(fn: Callable[[], Any], repeats: int) -> _common.Timing:
  """The fastest of `repeats` timed calls (the least disturbed by load)."""
  return min((_common.timed(fn) for _ in range(repeats)),
             key=lambda t: t.wall)


def _pillow_png(pixels: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format='PNG',
                               compress_level=codecs.PNG_COMPRESSION)
  return buffer.getvalue()


def _decoders(repeats: int) -> None:
  """Times each installed decoding plugin per lossless transfer syntax."""
  print(f'Decoding plugins on one {ROWS}x{COLUMNS} {BITS_STORED}-bit '
        f'mammogram, best of {repeats}')
  print(f'start: {_common.load_average()}')
  stored = mammogram(0)
  encoders = ((uid.JPEG2000Lossless, 'pylibjpeg'),
              (uid.JPEGLSLossless, 'pyjpegls'), (uid.RLELossless, 'pylibjpeg'),
              (uid.JPEGLosslessSV1, 'gdcm'))
  print(f'{"transfer syntax":<28} {"plugin":<10} {"wall ms":>8} '
        f'{"CPU ms":>7}  note')
  for transfer_syntax, encoder in encoders:
    ds = _dataset(stored, transfer_syntax, encoder)
    decoder = get_decoder(transfer_syntax)
    timings = {}
    for plugin in decoder.available_plugins:
      if not np.array_equal(pixel_array(ds, decoding_plugin=plugin), stored):
        raise AssertionError(f'{plugin} decodes {transfer_syntax.name} wrong.')
      timings[plugin] = _best_of(
          lambda p=plugin: pixel_array(ds, decoding_plugin=p), repeats)
    fastest = min(timings, key=lambda p: timings[p].cpu)
    preferred = preferred_plugin(transfer_syntax)
    default = next(iter(decoder._available))  # pylint: disable=protected-access
    for plugin, timing in sorted(timings.items(), key=lambda kv: kv[1].cpu):
      notes = [note for note, name in (('fastest (CPU)', fastest),
                                       ('component preferred', preferred),
                                       ("pydicom's first", default))
               if name == plugin]
      print(f'{transfer_syntax.name[:28]:<28} {plugin:<10} '
            f'{timing.wall * 1000:>8.0f} {timing.cpu * 1000:>7.0f}  '
            f'{", ".join(notes)}')
    chosen = preferred or default
    print(f'  -> component uses {chosen}: '
          f'{"fastest" if chosen == fastest else "NOT the fastest"}'
          f' ({len(ds.PixelData) / 2**20:.1f} MiB encoded)')
  print('\nThe component\'s fast paths (decoders.iter_frames, decode + render):')
  for transfer_syntax, encoder in ((uid.JPEG2000Lossless, 'pylibjpeg'),
                                   (uid.JPEGLosslessSV1, 'gdcm')):
    with tempfile.TemporaryDirectory() as tmp:
      path = f'{tmp}/frame.dcm'
      _dataset(stored, transfer_syntax, encoder).save_as(
          path, enforce_file_format=True)
      header = pydicom.dcmread(path, stop_before_pixels=True)
      for resize in (None, 1024, 512):
        options = display.PixelOptions(resize=resize,
                                      bit_depth=8 if resize else None)
        timing = _best_of(lambda o=options: list(decoders.iter_frames(
            path, header, o)), repeats)
        print(f'  {transfer_syntax.name[:28]:<28} resize={str(resize):<5} '
              f'{timing.wall * 1000:>6.0f} ms wall {timing.cpu * 1000:>6.0f} '
              'ms CPU')
  ds = _dataset(stored, uid.JPEG2000Lossless, 'pylibjpeg')
  print(f'\nPNG encoders on the frame as the component renders it, zlib level '
        f'{codecs.PNG_COMPRESSION}: the component\'s (numpy + zlib, Sub '
        'filter), TensorFlow\'s and Pillow\'s; each output decoded by '
        'TensorFlow must equal the input:')
  encoders = {
      'component': codecs.encode_png,
      'tensorflow': lambda a: tf.io.encode_png(
          a[..., np.newaxis] if a.ndim == 2 else a,
          compression=codecs.PNG_COMPRESSION).numpy(),
      'pillow': _pillow_png,
  }
  for name, options in (('defaults (window, 16-bit)', display.PixelOptions()),
                        ('apply_voi=False (16-bit)',
                         display.PixelOptions(apply_voi=False)),
                        ('bit_depth=8 (window)',
                         display.PixelOptions(bit_depth=8)),
                        ('resize=512, bit_depth=8',
                         display.PixelOptions(resize=512, bit_depth=8))):
    rendered = display.render(stored, ds, options)[0]
    timings = {}
    for encoder_name, encode in encoders.items():
      encoded = encode(rendered)
      decoded = tf.io.decode_png(encoded, dtype=tf.as_dtype(
          rendered.dtype)).numpy()[..., 0]
      if not np.array_equal(decoded, rendered):
        raise AssertionError(f'{encoder_name} PNG decodes to other pixels.')
      timings[encoder_name] = _best_of(lambda e=encode, r=rendered: e(r),
                                       repeats)
      print(f'  {name:<26} {encoder_name:<10} '
            f'{timings[encoder_name].wall * 1000:>6.1f} ms wall '
            f'{timings[encoder_name].cpu * 1000:>6.1f} ms CPU, '
            f'{len(encoded) / 2**20:.2f} MiB')
    print(f'  {name:<26} component / tensorflow CPU: '
          f'{timings["component"].cpu / timings["tensorflow"].cpu:.2f}')
  print(f'end: {_common.load_average()}')


def _step_times(path: str, options: display.PixelOptions,
                converter: converter_lib.DicomFileConverter
               ) -> Dict[str, float]:
  """Seconds of each step of converting one file, as the component does it."""
  times = {}

  def timed(step: str, fn: Callable[[], Any]) -> Any:
    start = time.process_time()
    result = fn()
    times[step] = time.process_time() - start
    return result

  data = timed('read', lambda: open(path, 'rb').read())
  f = io.BytesIO(data)
  ds = timed('header', lambda: pydicom.dcmread(f, stop_before_pixels=True))
  offset = f.tell()
  timed('pixel-data check', lambda: integrity.check_pixel_data(f, ds, offset))
  syntax = ds.file_meta.TransferSyntaxUID
  if options.resize and syntax in decoders._REDUCIBLE_SYNTAXES:  # pylint: disable=protected-access
    stored_frames = decoders._iter_reduced(f, ds, [0], options.resize)  # pylint: disable=protected-access
  elif syntax in decoders._DICOMSDL_SYNTAXES:  # pylint: disable=protected-access
    stored_frames = decoders._iter_dicomsdl(f, [0])  # pylint: disable=protected-access
  else:
    stored_frames = decoders._iter_stored(f, syntax, None, [0])  # pylint: disable=protected-access
  stored = timed('decode', lambda: next(stored_frames))
  pixels, bit_depth = timed('display (steps 2-6)', lambda: display.render(
      stored, ds, dataclasses.replace(options, resize=None))
      if stored.shape == (ds.Rows, ds.Columns) else display.render(
          stored, ds, options))
  if options.resize and pixels.shape[0] != options.resize:
    pixels = timed('resize', lambda: display.resize_square(pixels,
                                                           options.resize))
  encoded = timed('PNG', lambda: codecs.encode_png(pixels))
  serialized = timed('Example', lambda: example_lib.make_example(
      dict(example_lib.image_features(encoded, 'png', *pixels.shape[:2], 1,
                                      'key'), **{'image/bit_depth': bit_depth})
  ).SerializeToString(deterministic=True))
  writer = gzip.GzipFile(fileobj=io.BytesIO(), mode='wb',
                         compresslevel=records.GZIP_LEVEL)
  timed('write', lambda: writer.write(records.frame(serialized)))
  item = listing.ListedFile(path, pathlib.Path(path).name, len(data), 0.0)
  timed('converter total', lambda: converter.convert(item, None))
  return times


def _steps(workdir: pathlib.Path, n: int) -> None:
  """CPU per image of each step, per transfer syntax and output size."""
  print(f'CPU ms per image of each step (median of {n} mammograms, one '
        f'process, {ROWS}x{COLUMNS} {BITS_STORED}-bit); "converter total" '
        'is DicomFileConverter.convert doing all of them')
  print(f'start: {_common.load_average()}')
  for transfer_syntax in RESIZE_TARGETS:
    folder = workdir / f'steps_{transfer_syntax}'
    paths = make_dicom_tree(folder / 'dicom', folder / 'train.csv', n,
                            transfer_syntax=transfer_syntax)
    for resize in (None, 1024, 512):
      options = display.PixelOptions(resize=resize,
                                     bit_depth=8 if resize else None)
      converter = converter_lib.DicomFileConverter(
          None, metadata.resolve_attributes(()), options, 'all',
          limits.SizeLimits(), 'salt')
      _step_times(paths[0], options, converter)  # Warm caches and imports.
      runs = [_step_times(path, options, converter) for path in paths]
      steps = {step: np.median([run[step] for run in runs]) * 1000
               for step in runs[0]}
      parts = sum(v for step, v in steps.items() if step != 'converter total')
      print(f'{transfer_syntax.name[:22]:<22} resize={str(resize):<5} ' +
            '  '.join(f'{step} {ms:.1f}' for step, ms in steps.items()) +
            f'  (sum of steps {parts:.1f})')
  print(f'end: {_common.load_average()}')


def main(argv: List[str]) -> None:
  parser = _common.argument_parser(__doc__.split('\n')[0], 'DICOM files',
                                   n=128, small_n=4, repeats=1,
                                   scale_modes='mp2')
  parser.add_argument('--decoders', action='store_true',
                      help='time the decoding plugins and PNG encoders only')
  parser.add_argument('--resize-n', type=int, default=64,
                      help='mammograms per transfer syntax of the resize '
                      'comparison (0: skip it)')
  parser.add_argument('--only-resize', action='store_true',
                      help='run the resize comparison only')
  parser.add_argument('--steps', action='store_true',
                      help='CPU per image of each step (read, header, pixel '
                      'data check, decode, display, resize, PNG, Example, '
                      'write) at full size, 1024 and 512, per transfer syntax')
  args = parser.parse_args(argv)
  if args.child:
    _common.child_main(json.loads(args.child), _make_component)
  elif args.decoders:
    _decoders(max(args.repeats, 3))
  elif args.steps:
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
      _steps(pathlib.Path(tmp), min(args.n, 16))
  else:
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
      _run(args, pathlib.Path(tmp))


if __name__ == '__main__':
  main(sys.argv[1:])
