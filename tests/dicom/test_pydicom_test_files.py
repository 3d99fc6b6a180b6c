"""DicomExampleGen on every test file pydicom and pydicom-data ship.

Radiographs, CT, MR, US, multi-frame, colour, every transfer syntax, and
deliberately broken files: nothing may crash, every file must end as
Examples or one reject, and every file pydicom itself decodes must give
images, unless a burned-in PHI rule rejects it (most of pydicom's files are
secondary captures and ultrasound); with `burned_in_annotation='keep'` those
give images too.
"""

import json
import logging
import os
import shutil

import numpy as np
import pydicom
from pydicom import data as pydicom_data
import pytest
import tensorflow as tf

from image_example_gen import codecs
from image_example_gen import DicomExampleGen
from image_example_gen import executor_base
from image_example_gen import keys
from image_example_gen import limits
from image_example_gen import listing
from image_example_gen import rejects
from image_example_gen.dicom import burned_in
from image_example_gen.dicom import converter
from image_example_gen.dicom import decoders
from image_example_gen.dicom import display
from image_example_gen.executor_base import read_rejects
from image_example_gen.executor_base import read_skips


def _pydicom_decodes(path: str) -> bool:
  try:
    ds = pydicom.dcmread(path)
    return ds.pixel_array.size > 0
  except Exception:  # pylint: disable=broad-except
    return False


@pytest.fixture(scope='module')
def test_files(tmp_path_factory):
  root = tmp_path_factory.mktemp('pydicom_test_files')
  for path in pydicom_data.get_testdata_files():
    if os.path.isfile(path):
      shutil.copy(path, root / os.path.basename(path))
  return root


@pytest.fixture(scope='module')
def run(test_files, tmp_path_factory, executor_runner, examples_reader):
  """One run over every test file, with the log records it emitted."""
  out = tmp_path_factory.mktemp('pydicom_run')
  records = []
  handler = logging.Handler(logging.DEBUG)
  handler.emit = records.append
  root = logging.getLogger()
  level = root.level
  root.addHandler(handler)
  root.setLevel(logging.INFO)
  try:
    component = DicomExampleGen(input_base=str(test_files),
                                max_reject_fraction=1.0)
    artifact = executor_runner(component, out)
  finally:
    root.removeHandler(handler)
    root.setLevel(level)
  return artifact, examples_reader(str(out)), records


def test_every_file_is_examples_or_a_reject(test_files, run):
  files = sorted(p.name for p in test_files.iterdir())
  assert len(files) > 100
  artifact, examples, _ = run

  rejected = {r.path: r for r in read_rejects(artifact.uri)}
  # pydicom's READMEs, JSON files and a gzipped file are no DICOM: skipped.
  skipped = {s.path: s.reason for s in read_skips(artifact.uri)}
  assert set(skipped.values()) == {rejects.NON_IMAGE_FILE}
  assert all(path.startswith('README') or path.endswith(('.json', '.gz'))
             for path in skipped)
  props = artifact.mlmd_artifact.custom_properties
  assert props['num_input_files'].int_value + len(skipped) == len(files)
  assert (props['num_converted_files'].int_value + len(rejected) +
          len(skipped) == len(files))
  assert all(r.reason and r.stage for r in rejected.values())

  decodable = [name for name in files
               if _pydicom_decodes(str(test_files / name))]
  assert len(decodable) > 100
  lost = {name: rejected[name] for name in decodable if name in rejected and
          rejected[name].reason != rejects.BURNED_IN_ANNOTATION}
  assert not lost

  assert sum(len(e) for e in examples.values()) >= len(decodable)


def _frames_of_uid(examples, name):
  """The encoded frames of every file sharing the test file's SOP UID."""
  ds = pydicom.dcmread(pydicom_data.get_testdata_file(name),
                       stop_before_pixels=True)
  key = keys.keyed_hash(str(ds.SOPInstanceUID),
                        os.environ['IMAGE_EXAMPLE_GEN_SALT'], 'image').encode()
  return [e.features.feature['image/encoded'].bytes_list.value[0]
          for split in examples.values() for e in split
          if e.features.feature['image/key'].bytes_list.value[0] == key]


@pytest.mark.parametrize('little, big', [
    ('OBXXXX1A.dcm', 'OBXXXX1A_expb.dcm'),
    ('OBXXXX1A_2frame.dcm', 'OBXXXX1A_expb_2frame.dcm'),
])
def test_big_endian_palettes_equal_their_little_endian_twins(little, big):
  def encoded(name):
    path = pydicom_data.get_testdata_file(name)
    header = pydicom.dcmread(path, stop_before_pixels=True)
    return [codecs.encode_png(frame.pixels) for frame in
            decoders.iter_frames(path, header, display.PixelOptions())]

  assert encoded(little) == encoded(big)


def test_no_palette_frame_is_black(run):
  # The OBXXXX1A files (little and big endian, RLE) share one SOP UID.
  _, examples, _ = run
  frames = _frames_of_uid(examples, 'OBXXXX1A_expb.dcm')

  assert len(frames) >= 6
  for encoded in frames:
    decoded = tf.io.decode_png(encoded).numpy()
    assert decoded.shape[-1] == 3 and np.unique(decoded).size > 16


# What the default does with pydicom's secondary captures and ultrasound.
_BURNED_IN_REJECTS = {
    'SC_rgb.dcm': burned_in.SECONDARY_CAPTURE,
    'JPEG2000.dcm': burned_in.SECONDARY_CAPTURE,  # NM stored as SC.
    'US1_J2KR.dcm': burned_in.ULTRASOUND_WITHOUT_REGIONS,
    'color-px.dcm': burned_in.ULTRASOUND_WITHOUT_REGIONS,
    # Its second region lies below its 350 rows: the regions describe other
    # pixels (a resampled copy of OBXXXX1A).
    'examples_palette.dcm': burned_in.ULTRASOUND_REGIONS,
}
# Rows and columns of the regions' bounding box, clipped to the frame.
_CROPPED = {
    'OBXXXX1A.dcm': (517, 680),  # Two regions; Max X1 = Columns.
    'JPGLosslessP14SV1_1s_1f_8b.dcm': (721, 997),  # Marked NO all the same.
    'color3d_jpeg_baseline.dcm': (384, 512),  # 120 frames.
    'examples_ybr_color.dcm': (209, 236),  # Regions past the 240x320 frame.
    'gdcm-US-ALOKA-16.dcm': (392, 608),  # Three regions.
}


def test_burned_in_rules_under_the_default(run):
  artifact, examples, _ = run
  rejected = {r.path: r for r in read_rejects(artifact.uri)}

  for name, rule in _BURNED_IN_REJECTS.items():
    assert rejected[name].reason == rejects.BURNED_IN_ANNOTATION
    assert rejected[name].detail.startswith(f'{rule}: ')
  assert 'outside the 800x350 image' in rejected['examples_palette.dcm'].detail
  for name, shape in _CROPPED.items():
    # Files sharing a SOP Instance UID (resampled copies) share the key.
    shapes = [tf.io.decode_png(encoded).numpy().shape[:2]
              for encoded in _frames_of_uid(examples, name)]
    assert shape in shapes, name
    assert set(shapes) <= set(_CROPPED.values()), name
  assert [tf.io.decode_png(encoded).numpy().shape[:2] for encoded in
          _frames_of_uid(examples, 'color3d_jpeg_baseline.dcm')].count(
              _CROPPED['color3d_jpeg_baseline.dcm']) == 120
  props = artifact.mlmd_artifact.custom_properties
  assert props['cropped_to_regions'].int_value >= len(_CROPPED)


def test_burned_in_rejects_give_images_when_kept(test_files, run):
  artifact, _, _ = run
  burned = {r.path for r in read_rejects(artifact.uri)
            if r.reason == rejects.BURNED_IN_ANNOTATION}
  keep = converter.DicomFileConverter(
      None, (), display.PixelOptions(), 'first', limits.SizeLimits(), 'salt',
      burned_in.KEEP)
  kept = 0
  for item in listing.list_files(str(test_files), '**'):
    if item.rel_path in burned and _pydicom_decodes(item.path):
      converted = keep.convert(item, None)
      assert converted.examples, item.rel_path
      assert converted.tallies[0].startswith(f'{burned_in.KEPT}/')
      kept += 1
  assert kept > 50


def test_a_missing_sequence_delimiter_is_counted_as_repaired(run):
  artifact, _, _ = run
  summary = json.load(open(os.path.join(artifact.uri,
                                        executor_base.SUMMARY_FILE)))

  assert summary['repaired_files'] == {
      'count': 1, 'reasons': {'missing_sequence_delimiter': 1}}
  assert 'emri_small_jpeg_2k_lossless_too_short.dcm' not in {
      r.path for r in read_rejects(artifact.uri)}
  props = artifact.mlmd_artifact.custom_properties
  assert props['num_repaired_files'].int_value == 1


def test_expected_rejects_do_not_flood_the_log(run):
  artifact, _, records = run
  rejected = read_rejects(artifact.uri)
  loud = [r for r in records if r.levelno >= logging.WARNING]
  per_file = [r for r in records if r.getMessage().startswith('Rejected ')]

  assert rejected
  assert not [r for r in loud if r.levelno >= logging.ERROR]
  assert not [r for r in records if r.exc_info and r.levelno > logging.DEBUG]
  assert len(per_file) == len(rejected)
  assert len(loud) <= len(rejected)
