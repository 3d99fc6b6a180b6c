"""DicomExampleGen on every test file pydicom and pydicom-data ship.

Radiographs, CT, MR, US, multi-frame, colour, every transfer syntax, and
deliberately broken files: nothing may crash, every file must end as
Examples or one reject, and every file pydicom itself decodes must give
images.
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
from image_example_gen.dicom import decoders
from image_example_gen.dicom import display
from image_example_gen.executor_base import read_rejects


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
  props = artifact.mlmd_artifact.custom_properties
  assert props['num_input_files'].int_value == len(files)
  assert (props['num_converted_files'].int_value + len(rejected) ==
          len(files))
  assert all(r.reason and r.stage for r in rejected.values())

  decodable = [name for name in files
               if _pydicom_decodes(str(test_files / name))]
  assert len(decodable) > 100
  lost = {name: rejected[name] for name in decodable if name in rejected}
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
