"""DicomExampleGen(unit='series') on generated CT and MR series.

One LocalDagRunner pipeline (SQLite MLMD) runs three real components on one
generated sample (`sample_data.make_ct_sample(variants=True)`: shuffled file
names, InstanceNumbers reversed, absent and shuffled, several series per
folder, oblique and sagittal series, an enhanced multi-frame file with its
frames out of order, compressed pixels, an MR-like series, and every reject
and skip reason of series mode):

  * `Series`: unit='series', study-level labels joined on StudyInstanceUID;
  * `Filtered`: unit='series' with a series_filter and min_slices, no table;
  * `Images`: unit='image' on the same files (series/key, slice/position).

The tests then read what each wrote. The converter's own checks that need no
pipeline (a series whose files disagree on the table key) run without Beam.
"""

import json
import os
import pathlib
import re

import numpy as np
import pydicom
import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.orchestration import metadata

from image_example_gen import DicomExampleGen
from image_example_gen import keys
from image_example_gen import listing
from image_example_gen import rejects
from image_example_gen import report
from image_example_gen.executor_base import read_rejects
from image_example_gen.executor_base import read_skips
from image_example_gen.sample_data import ct

pytestmark = pytest.mark.e2e

SALT = os.environ['IMAGE_EXAMPLE_GEN_SALT']
_PIPELINE = 'series'
_FILTER = {'SeriesDescription': 'SOFT|THICK', 'Modality': '^CT$'}
_MIN_SLICES = 7


@pytest.fixture(scope='module')
def sample(tmp_path_factory) -> ct.CtSample:
  return ct.make_ct_sample(tmp_path_factory.mktemp('ct'), n_studies=5,
                           size=32, slices=12, variants=True)


def _components(sample):
  common = dict(input_base=str(sample.input_base), max_reject_fraction=0.9)
  return [
      DicomExampleGen(
          unit='series', metadata_file=str(sample.csv_path),
          key_column='StudyInstanceUID',
          key_source='StudyInstanceUID', group_column='patient_id',
          **common).with_id('Series'),
      DicomExampleGen(unit='series', series_filter=_FILTER,
                      min_slices=_MIN_SLICES, **common).with_id('Filtered'),
      DicomExampleGen(**common).with_id('Images'),
  ]


class _Run:
  """Where each component of the one pipeline run wrote."""

  def __init__(self, sample, root: pathlib.Path):
    connection = metadata.sqlite_metadata_connection_config(
        str(root / 'metadata.sqlite'))
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name=_PIPELINE, pipeline_root=str(root / 'pipeline'),
        components=_components(sample), enable_cache=False,
        metadata_connection_config=connection))
    self.artifacts = {}
    with metadata.Metadata(connection) as m:
      for node in ('Series', 'Filtered', 'Images'):
        context = m.store.get_context_by_type_and_name(
            'node', f'{_PIPELINE}.{node}')
        (artifact,) = [a for a in m.store.get_artifacts_by_context(context.id)
                       if a.type == 'Examples']
        self.artifacts[node] = artifact

  def uri(self, node: str) -> str:
    return self.artifacts[node].uri

  def examples(self, node: str):
    result = {}
    for split_dir in sorted(pathlib.Path(self.uri(node)).glob('Split-*')):
      files = sorted(str(p) for p in split_dir.glob('*.gz'))
      result[split_dir.name[len('Split-'):]] = [
          tf.train.Example.FromString(r.numpy())
          for r in tf.data.TFRecordDataset(files, compression_type='GZIP')]
    return result

  def summary(self, node: str):
    return json.loads(
        (pathlib.Path(self.uri(node)) / 'ingest_summary.json').read_text())

  def outcomes(self, node: str):
    """Path -> reason of every reject and skip record."""
    uri = self.uri(node)
    return {r.path: r.reason for r in (*read_rejects(uri), *read_skips(uri))}


@pytest.fixture(scope='module')
def run(sample, tmp_path_factory) -> _Run:
  return _Run(sample, tmp_path_factory.mktemp('series_pipeline'))


def _values(example, name):
  feature = example.features.feature[name]
  return list(getattr(feature, feature.WhichOneof('kind')).value)


def _by_series(examples):
  """series/key -> (split, Example) of one component's output."""
  return {_values(e, 'series/key')[0].decode(): (split, e)
          for split, split_examples in examples.items()
          for e in split_examples}


def _key(series: ct.CtSeries) -> str:
  return keys.keyed_hash(series.series_uid, SALT, 'series')


def _stored(sample, rel_path: str, frame: int) -> np.ndarray:
  pixels = pydicom.dcmread(sample.input_base / rel_path).pixel_array
  return (pixels[frame] if pixels.ndim == 3 else pixels).astype(np.float64)


def _slices(example) -> list:
  return [tf.io.decode_png(png, dtype=tf.uint16).numpy()[..., 0].astype(
      np.float64) for png in _values(example, 'image/encoded')]


def test_every_file_is_in_an_example_or_rejected_or_skipped(sample, run):
  expected = sample.expected_outcomes()
  outcomes = run.outcomes('Series')
  assert outcomes == {p: r for p, r in expected.items() if r}
  summary = run.summary('Series')
  members = sum(len(s.files) for s in sample.series if not s.expected)
  assert summary['converted_files'] == members
  assert summary['input_files'] + summary['skipped_files'] == len(
      expected) == sum(1 for _ in listing.list_files(str(sample.input_base),
                                                     '**'))
  skips = {r for r in expected.values() if r and rejects.is_skip(r)}
  assert summary['skipped_files'] == sum(
      1 for r in expected.values() if r in skips)
  assert set(summary['skips']) == skips
  assert set(summary['rejects']) == {
      f'validate/{r}' for r in set(expected.values()) - skips - {''}}


def test_one_example_per_series_with_the_contracted_features(sample, run):
  by_series = _by_series(run.examples('Series'))
  stacked = [s for s in sample.series if not s.expected]
  assert sorted(by_series) == sorted(_key(s) for s in stacked)
  for series in stacked:
    _, example = by_series[_key(series)]
    depth = len(series.slices)
    assert _values(example, 'image/depth') == [depth]
    assert len(_values(example, 'image/encoded')) == depth
    assert _values(example, 'image/format') == [b'png']
    assert _values(example, 'image/height') == _values(
        example, 'image/width') == [32]
    assert _values(example, 'image/channels') == [1]
    assert _values(example, 'image/bit_depth') == [16]
    assert set(example.features.feature) >= {
        'volume/spacing', 'volume/origin', 'volume/direction', 'study/key',
        'patient/key', 'label', 'dicom/modality'}
    assert 'image/key' not in example.features.feature


def test_slices_in_true_order_whatever_names_and_instance_numbers(sample, run):
  by_series = _by_series(run.examples('Series'))
  for series in (s for s in sample.series if not s.expected):
    slices = _slices(by_series[_key(series)][1])
    references = [_stored(sample, path, frame)
                  for path, frame in series.slices]
    for i, pixels in enumerate(slices):
      r = [np.corrcoef(pixels.ravel(), ref.ravel())[0, 1]
           for ref in references]
      assert r[i] > 0.99, (series.kind, i, r[i])
      assert int(np.argmax(r)) == i, (series.kind, i)


def test_spacing_origin_and_direction(sample, run):
  by_series = _by_series(run.examples('Series'))
  for series in (s for s in sample.series if not s.expected):
    _, example = by_series[_key(series)]
    np.testing.assert_allclose(_values(example, 'volume/spacing'),
                               series.spacing, atol=1e-3, err_msg=series.kind)
    np.testing.assert_allclose(_values(example, 'volume/origin'),
                               series.origin, atol=1e-3, err_msg=series.kind)
    np.testing.assert_allclose(_values(example, 'volume/direction'),
                               series.direction, atol=1e-5,
                               err_msg=series.kind)


def test_study_labels_joined_and_patients_split_together(sample, run):
  examples = run.examples('Series')
  by_series = _by_series(examples)
  split_of_patient = {}
  for series in (s for s in sample.series if not s.expected):
    split, example = by_series[_key(series)]
    assert _values(example, 'label') == [series.label]
    assert _values(example, 'study/key') == [
        keys.keyed_hash(series.study_uid, SALT, 'study').encode()]
    patient = _values(example, 'patient/key')[0]
    assert patient == keys.keyed_hash(series.patient_id, SALT,
                                      'patient').encode()
    assert split_of_patient.setdefault(patient, split) == split
  summary = run.summary('Series')
  assert summary['series'] == len(by_series)
  assert {s: c['series'] for s, c in summary['splits'].items()} == {
      s: len(e) for s, e in examples.items()}
  properties = run.artifacts['Series'].custom_properties
  assert properties['num_series'].int_value == len(by_series)
  assert json.loads(properties['skip_counts'].string_value) == (
      summary['skips'])


def test_no_uid_or_phi_in_examples_properties_or_records(sample, run):
  for node in ('Series', 'Filtered', 'Images'):
    blobs = [e.SerializeToString() for split in run.examples(node).values()
             for e in split]
    uri = pathlib.Path(run.uri(node))
    blobs += [p.read_bytes() for p in uri.rglob('*')
              if p.is_file() and 'Split-' not in str(p)]
    blobs.append(str(run.artifacts[node]).encode())
    for value in sample.phi_values:
      assert not any(value.encode() in blob for blob in blobs), (node, value)


def test_series_filter_and_min_slices_skip_not_reject(sample, run):
  by_series = _by_series(run.examples('Filtered'))
  outcomes = run.outcomes('Filtered')
  for series in sample.series:
    selected = (series.kind in ('thin', 'thick', 'irregular') and
                series.expected != rejects.LOCALIZER)
    if not selected:
      assert {outcomes[f] for f in series.files} == {
          rejects.SERIES_FILTERED}, series.kind
    elif series.kind == 'thick':
      assert {outcomes[f] for f in series.files} == {rejects.TOO_FEW_SLICES}
    elif series.expected:
      assert {outcomes[f] for f in series.files} == {series.expected}
    else:
      assert _key(series) in by_series
      assert 'label' not in by_series[_key(series)][1].features.feature
  summary = run.summary('Filtered')
  assert summary['rejected_files'] == sum(
      len(s.files) for s in sample.series if s.kind == 'irregular')
  assert summary['input_files'] + summary['skipped_files'] == len(
      sample.expected_outcomes())
  # The skip records say which pattern failed, never the value.
  details = {r.detail for r in read_rejects(run.uri('Filtered'))
             if r.reason == rejects.SERIES_FILTERED}
  assert details <= {f'{k} does not match {v!r}' for k, v in _FILTER.items()}


def test_image_unit_gains_series_key_and_slice_position(sample, run):
  examples = [e for split in run.examples('Images').values() for e in split]
  positions = {}
  for e in examples:
    if 'slice/position' in e.features.feature:
      positions.setdefault(_values(e, 'series/key')[0].decode(), []).append(
          (_values(e, 'slice/position')[0], _values(e, 'dicom/frame_index')[0]))
  assert run.summary('Images')['series'] == len(positions)
  no_geometry = [e for e in examples
                 if 'slice/position' not in e.features.feature]
  assert len(no_geometry) == sum(
      1 for s in sample.series if s.expected == rejects.NO_GEOMETRY)
  assert all('series/key' not in e.features.feature for e in no_geometry)
  for series in (s for s in sample.series if not s.expected):
    normal = np.asarray(series.direction[6:])
    if series.kind == 'enhanced':  # One file, a position per frame.
      truth = [float(np.dot(series.origin, normal)) + k * series.spacing[0]
               for k in range(len(series.slices))]
    else:  # Every file (a copy too) at its own IPP . n.
      truth = sorted(float(np.dot(pydicom.dcmread(
          sample.input_base / path).ImagePositionPatient, normal))
                     for path in series.files)
    got = sorted(p for p, _ in positions[_key(series)])
    np.testing.assert_allclose(got, truth, atol=1e-3, err_msg=series.kind)


def test_image_unit_examples_without_geometry_are_unchanged(dicom_sample,
                                                            tmp_path,
                                                            executor_runner,
                                                            examples_reader):
  # The mammography sample has no Image Plane module: nothing is added.
  out = executor_runner(DicomExampleGen(
      input_base=str(dicom_sample.root / 'train_images'),
      max_reject_fraction=0.5), tmp_path / 'out')
  for split in examples_reader(out.uri).values():
    for e in split:
      assert not {'series/key', 'slice/position'} & set(e.features.feature)


def test_report_shows_a_volume_as_a_strip_with_its_spacing(sample, run,
                                                           tmp_path):
  paths = report.write_report(run.uri('Series'), str(tmp_path / 'report'))
  page = pathlib.Path(paths.html).read_text()
  strips = re.findall(r'<figure class="thumb strip"><img src="([^"]+)" '
                      r'width="(\d+)" height="(\d+)"', page)
  assert strips
  for _, width, height in strips:
    assert int(width) > 3 * int(height)  # Several slices side by side.
  assert re.search(r'12 slices, 2 x 1 x 1 mm', page)
  assert re.search(r'6 slices, 4 x 1 x 1 mm', page)
  assert pathlib.Path(paths.contact_sheet).stat().st_size > 0
