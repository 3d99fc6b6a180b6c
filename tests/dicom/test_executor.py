"""DicomExampleGen's executor on the generated RSNA-like tree (real Beam runs)."""

import json
import os
import pathlib

import numpy as np
import pydicom
import pytest
import tensorflow as tf

from image_example_gen import DicomExampleGen
from image_example_gen import keys
from image_example_gen import sample_data
from image_example_gen.executor_base import read_rejects

SALT = os.environ['IMAGE_EXAMPLE_GEN_SALT']


def _component(sample, **kwargs):
  return DicomExampleGen(
      input_base=str(sample.root / 'train_images'),
      metadata_file=str(sample.csv_path), group_column='patient_id',
      extra_columns=['laterality', 'view', 'age'], max_reject_fraction=0.5,
      **kwargs)


@pytest.fixture(scope='module')
def run(dicom_sample, tmp_path_factory, executor_runner, examples_reader):
  out = tmp_path_factory.mktemp('dicom_run')
  artifact = executor_runner(_component(dicom_sample), out)
  return artifact, examples_reader(str(out))


def _by_key(sample, examples):
  """SOPInstanceUID-keyed sample images -> their Example."""
  by_hash = {keys.keyed_hash(img.sop_instance_uid, SALT, 'image'): img
             for img in sample.images}
  result = {}
  for split, split_examples in examples.items():
    for ex in split_examples:
      key = ex.features.feature['image/key'].bytes_list.value[0].decode()
      result[key] = (by_hash[key], ex, split)
  return result


def _decode(ex) -> np.ndarray:
  encoded = ex.features.feature['image/encoded'].bytes_list.value[0]
  bit_depth = ex.features.feature['image/bit_depth'].int64_list.value[0]
  dtype = tf.uint16 if bit_depth == 16 else tf.uint8
  return tf.io.decode_png(encoded, dtype=dtype).numpy()[..., 0]


def _reference(path: pathlib.Path, bit_depth: int) -> np.ndarray:
  """Independent display pipeline: PS3.3 C.11.1, C.11.2 and MONOCHROME1."""
  ds = pydicom.dcmread(path)
  stored = ds.pixel_array.astype(np.float64)
  slope = float(ds.get('RescaleSlope', 1.0))
  intercept = float(ds.get('RescaleIntercept', 0.0))
  values = stored * slope + intercept
  if 'WindowCenter' in ds:
    center = float(np.atleast_1d(ds.WindowCenter)[0])
    width = float(np.atleast_1d(ds.WindowWidth)[0])
    function = str(ds.get('VOILUTFunction', 'LINEAR')).upper()
    if function == 'SIGMOID':
      out = 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    elif function == 'LINEAR_EXACT':
      out = np.clip((values - center) / width + 0.5, 0.0, 1.0)
    else:
      out = np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
  else:
    bits = ds.BitsStored
    low, high = ((-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
                 if ds.PixelRepresentation else (0, 2 ** bits - 1))
    low, high = low * slope + intercept, high * slope + intercept
    out = (values - low) / (high - low)
  if ds.PhotometricInterpretation == 'MONOCHROME1':
    out = 1.0 - out
  return np.round(out * (2 ** bit_depth - 1))


def test_every_file_is_one_example_or_one_reject(dicom_sample, run):
  artifact, examples = run
  found = _by_key(dicom_sample, examples)
  assert sorted(img.rel_path for img, _, _ in found.values()) == sorted(
      img.rel_path for img in dicom_sample.images)
  assert sum(len(e) for e in examples.values()) == len(dicom_sample.images)
  got = {r.path: r.reason for r in read_rejects(artifact.uri)}
  expected = {p[len('train_images/'):]: reason
              for p, reason in dicom_sample.rejects.items()}
  assert got == expected
  n_files = sum(1 for p in (dicom_sample.root / 'train_images').rglob('*')
                if p.is_file())
  props = artifact.mlmd_artifact.custom_properties
  assert props['num_input_files'].int_value == n_files
  assert props['num_converted_files'].int_value == len(dicom_sample.images)
  assert props['num_rejected_files'].int_value == len(expected)
  assert sum(json.loads(props['reject_counts'].string_value).values()) == len(
      expected)


def test_pixels_match_independent_reference(dicom_sample, run):
  _, examples = run
  seen_depths = set()
  for img, ex, _ in _by_key(dicom_sample, examples).values():
    bit_depth = ex.features.feature['image/bit_depth'].int64_list.value[0]
    seen_depths.add(bit_depth)
    assert bit_depth == (16 if img.bits_stored > 8 else 8), img
    got = _decode(ex).astype(np.float64)
    want = _reference(dicom_sample.root / img.rel_path, bit_depth)
    tolerance = 2 ** (bit_depth - 8)  # one 8-bit step: rounding of LUTs
    assert np.abs(got - want).max() <= tolerance, img
  assert seen_depths == {8, 16}


def test_monochrome1_comes_out_bright_where_dense(dicom_sample, run):
  _, examples = run
  checked = 0
  for img, ex, _ in _by_key(dicom_sample, examples).values():
    intensity, _ = sample_data.render_digit(img.index, size=32)
    pixels = _decode(ex).astype(np.float64)
    digit, background = intensity > 0.5, intensity < 0.1
    assert pixels[digit].mean() > pixels[background].mean() + 0.3 * (
        pixels.max() - pixels.min()), img
    checked += img.photometric == 'MONOCHROME1'
  assert checked > 0


def test_labels_extras_and_patients(dicom_sample, run):
  _, examples = run
  patients_by_split = {}
  for img, ex, split in _by_key(dicom_sample, examples).values():
    feature = ex.features.feature
    assert feature['label'].int64_list.value == [img.label]
    assert feature['laterality'].bytes_list.value == [img.laterality.encode()]
    assert feature['view'].bytes_list.value == [img.view.encode()]
    assert feature['patient/key'].bytes_list.value[0].decode() == (
        keys.keyed_hash(img.patient_id, SALT, 'patient'))
    assert feature['dicom/photometric_interpretation'].bytes_list.value == [
        img.photometric.encode()]
    patients_by_split.setdefault(split, set()).add(img.patient_id)
  assert set(patients_by_split) == {'train', 'eval'}
  assert not patients_by_split['train'] & patients_by_split['eval']


def test_no_phi_in_features_properties_or_side_files(dicom_sample, run):
  artifact, examples = run
  phi = [v for v in dicom_sample.phi_values if len(v) >= 4]
  assert phi
  haystacks = []
  for split_examples in examples.values():
    for ex in split_examples:
      for name, feature in ex.features.feature.items():
        if name != 'image/encoded':
          haystacks.append(f'{name}={feature}')
  haystacks.append(str(artifact.mlmd_artifact))
  for path in pathlib.Path(artifact.uri).rglob('*'):
    if path.is_file() and 'Split-' not in str(path):
      haystacks.append(path.read_text())
  text = '\n'.join(haystacks)
  leaked = [v for v in phi if v in text]
  assert not leaked


def test_same_input_and_salt_give_same_splits(dicom_sample, run,
                                              tmp_path, executor_runner,
                                              examples_reader, split_keys):
  _, first = run
  executor_runner(_component(dicom_sample), tmp_path)
  second = examples_reader(str(tmp_path))
  assert split_keys(first) == split_keys(second)


def test_multi_processing_gives_the_same_examples(dicom_sample, run,
                                                  tmp_path, executor_runner,
                                                  examples_reader, serialized):
  _, in_memory = run
  executor_runner(_component(dicom_sample), tmp_path, [
      '--direct_running_mode=multi_processing', '--direct_num_workers=2'])
  parallel = examples_reader(str(tmp_path))
  assert serialized(parallel) == serialized(in_memory)


def test_too_many_rejects_fail_naming_the_reasons(dicom_sample, tmp_path,
                                                  executor_runner):
  component = DicomExampleGen(
      input_base=str(dicom_sample.root / 'train_images'),
      metadata_file=str(dicom_sample.csv_path), group_column='patient_id',
      max_reject_fraction=0.01)
  with pytest.raises(RuntimeError, match='top reasons: '):
    executor_runner(component, tmp_path)


@pytest.mark.parametrize('kwargs, message', [
    ({'extra_attributes': ['PatientName']}, 'PatientName'),
    ({'extra_attributes': ['StudyDate']}, 'StudyDate'),
    ({'extra_attributes': ['SOPInstanceUID']}, 'SOPInstanceUID'),
    ({'bit_depth': 12}, 'bit_depth'),
    ({'multi_frame': 'every'}, 'multi_frame'),
    ({'burned_in_annotation': 'blur'}, 'burned_in_annotation'),
    ({'burned_in_annotation': None}, 'burned_in_annotation'),
    ({'max_reject_fraction': 1.5}, 'max_reject_fraction'),
    ({'key_source': 'PixelData'}, 'cannot be joined on'),
    ({'key_source': 'NoSuchKeyword'}, 'no DICOM keyword'),
    ({'key_source': r'^[^/]+/'}, 'one group'),
    ({'extra_columns': ['age']}, 'needs metadata_file'),
    ({'metadata_file': 'a.csv', 'column_types': {'age': 'int'}},
     'not exported'),
    ({'metadata_file': 'a.csv', 'labels_csv': 'b.csv'},
     'labels_csv is the deprecated name of metadata_file'),
    ({'group_column': 'pid', 'patient_column': 'pid'}, 'pass only'),
])
def test_bad_parameters_fail_at_construction(kwargs, message):
  with pytest.raises(ValueError, match=message):
    DicomExampleGen(input_base='gs://bucket/data', **kwargs)


@pytest.mark.parametrize('key_source', [
    'file_stem', 'relative_path', r'^([^/]+)/', 'SOPInstanceUID',
    'SeriesInstanceUID', 'AccessionNumber'])
def test_key_sources(key_source):
  component = DicomExampleGen(input_base='gs://bucket/data',
                              metadata_file='a.csv', key_source=key_source)
  assert component.exec_properties['key_source'] == key_source
