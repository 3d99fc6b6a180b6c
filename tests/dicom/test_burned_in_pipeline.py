"""Burned-in PHI under a real LocalDagRunner (SQLite MLMD), one pipeline run.

Three DicomExampleGens, `burned_in_annotation` 'crop' (the default),
'reject' and 'keep', read the generated sample (`sample_data.ultrasound`):
grey and colour ultrasound, single frame and cine, the patient's name, id,
birth date, institution and study date burned into a band beside the
regions; secondary captures, photographs, a CT marked YES. No pixel of the
band may reach an Example, every file must be accounted for, and each
artifact in MLMD must say how it was de-identified.
"""

import json
import logging

import numpy as np
import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.orchestration import metadata as tfx_metadata

from image_example_gen import DicomExampleGen
from image_example_gen import executor_base
from image_example_gen import keys
from image_example_gen import rejects
from image_example_gen import sample_data
from image_example_gen.dicom import burned_in
from image_example_gen.dicom import deidentification
from image_example_gen.sample_data import ultrasound

from ml_metadata.proto import metadata_store_pb2

pytestmark = pytest.mark.e2e

SALT = 'test-salt-not-secret'
_POLICIES = {'Crop': 'crop', 'Reject': 'reject', 'Keep': 'keep'}


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """The sample, and node -> (its Examples artifact, the run's warnings)."""
  root = tmp_path_factory.mktemp('burned_in_pipeline')
  sample = sample_data.make_burned_in_sample(root / 'in')
  components = [
      DicomExampleGen(input_base=str(sample.root), max_reject_fraction=1.0,
                      **({} if policy == 'crop' else
                         {'burned_in_annotation': policy})).with_id(node)
      for node, policy in _POLICIES.items()]
  connection = tfx_metadata.sqlite_metadata_connection_config(
      str(root / 'metadata.sqlite'))
  warnings = []
  handler = logging.Handler(logging.WARNING)
  handler.emit = warnings.append
  logging.getLogger().addHandler(handler)
  try:
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name='burned_in', pipeline_root=str(root / 'pipeline'),
        components=components, metadata_connection_config=connection))
  finally:
    logging.getLogger().removeHandler(handler)
  artifacts = {}
  with tfx_metadata.Metadata(connection) as m:
    for node in _POLICIES:
      context = m.store.get_context_by_type_and_name('node',
                                                     f'burned_in.{node}')
      executions = m.store.get_executions_by_context(context.id)
      assert [e.last_known_state for e in executions] == [
          metadata_store_pb2.Execution.COMPLETE], node
      (artifacts[node],) = [a for a in m.store.get_artifacts_by_context(
          context.id) if a.type == 'Examples']
  return sample, artifacts, [w.getMessage() for w in warnings]


def _examples_by_file(sample, uri, examples_reader):
  """rel_path -> its Examples, in frame order."""
  by_key = {keys.keyed_hash(f.sop_instance_uid, SALT, 'image'): f.rel_path
            for f in sample.files}
  found = {}
  for examples in examples_reader(uri).values():
    for example in examples:
      key = example.features.feature['image/key'].bytes_list.value[0]
      found.setdefault(by_key[key.decode()], []).append(example)
  return {path: sorted(examples, key=lambda e: e.features.feature[
      'dicom/frame_index'].int64_list.value[0])
          for path, examples in found.items()}


def _pixels(example) -> np.ndarray:
  png = example.features.feature['image/encoded'].bytes_list.value[0]
  return tf.io.decode_png(png).numpy()


def _expected_crop(file, frame: int) -> np.ndarray:
  """The frame's regions in their bounding box, 0 elsewhere (written here
  without the code under test)."""
  pixels = file.pixels[frame]
  x0 = min(b[0] for b in file.regions)
  y0 = min(b[1] for b in file.regions)
  x1 = max(b[2] for b in file.regions)
  y1 = max(b[3] for b in file.regions)
  inside = np.zeros(pixels.shape[:2], bool)
  for bx0, by0, bx1, by1 in file.regions:
    inside[by0:by1, bx0:bx1] = True
  kept = np.where(inside[(...,) + (np.newaxis,) * (pixels.ndim - 2)],
                  pixels, 0)
  return kept[y0:y1, x0:x1].reshape(y1 - y0, x1 - x0, -1)


def _rejects(artifact):
  return {r.path: r for r in executor_base.read_rejects(artifact.uri)}


def _expected_outcome(file, policy):
  """'cropped', 'converted' (as stored) or 'rejected', from the file's rule."""
  if not file.rule or policy == 'keep':
    return 'converted'
  if file.rule == ultrasound.ULTRASOUND_REGIONS and file.regions:
    return 'cropped' if policy == 'crop' else 'rejected'
  return 'rejected'


@pytest.mark.parametrize('node', list(_POLICIES))
def test_every_file_is_accounted_for(run, examples_reader, node):
  sample, artifacts, _ = run
  policy = _POLICIES[node]
  by_file = _examples_by_file(sample, artifacts[node].uri, examples_reader)
  got_rejects = _rejects(artifacts[node])

  for file in sample.files:
    outcome = _expected_outcome(file, policy)
    if outcome == 'rejected':
      assert file.rel_path not in by_file, file.rel_path
      reject = got_rejects[file.rel_path]
      assert reject.reason == rejects.BURNED_IN_ANNOTATION
      assert reject.stage == rejects.VALIDATE
      assert reject.detail.startswith(f'{file.rule}: '), reject
    else:
      assert file.rel_path not in got_rejects, got_rejects[file.rel_path]
      # Every frame of a cine becomes an Example.
      assert len(by_file[file.rel_path]) == len(file.pixels), file.rel_path
  assert len(by_file) + len(got_rejects) == len(sample.files)


def test_no_pixel_from_outside_the_regions_reaches_an_example(
    run, examples_reader):
  sample, artifacts, _ = run
  by_file = _examples_by_file(sample, artifacts['Crop'].uri, examples_reader)
  cropped = [f for f in sample.files
             if _expected_outcome(f, 'crop') == 'cropped']

  assert {f.rel_path for f in cropped} == {
      'us/grey_single.dcm', 'us/rgb_cine_two_regions.dcm',
      'us/ybr_cine_edge.dcm', 'us/grey_cine_j2k.dcm'}
  for file in cropped:
    for frame, example in enumerate(by_file[file.rel_path]):
      pixels = _pixels(example)
      # The band and its text are BAND_MIN or more in some channel.
      assert pixels.max() <= ultrasound.REGION_MAX + 1, file.rel_path
      want = _expected_crop(file, frame)
      assert pixels.shape == want.shape, file.rel_path
      # YBR_FULL decodes back to within 1 of the RGB it was made from.
      assert np.abs(pixels.astype(int) - want).max() <= 1, file.rel_path
      feature = example.features.feature
      assert feature['image/height'].int64_list.value == [want.shape[0]]
      assert feature['image/width'].int64_list.value == [want.shape[1]]
      # The stored size stays what the header says.
      assert feature['dicom/rows'].int64_list.value == [96]


def test_kept_files_keep_their_band(run, examples_reader):
  sample, artifacts, warnings = run
  by_file = _examples_by_file(sample, artifacts['Keep'].uri, examples_reader)
  grey = _pixels(by_file['us/grey_single.dcm'][0])[..., 0]

  np.testing.assert_array_equal(grey, sample.file('us/grey_single.dcm')
                                .pixels[0])
  assert grey.max() >= ultrasound.BAND_MIN
  # One warning for the run, none per file.
  keep_warnings = [w for w in warnings if "burned_in_annotation='keep'" in w]
  assert len(keep_warnings) == 1


@pytest.mark.parametrize('node', list(_POLICIES))
def test_the_artifact_records_how_it_was_deidentified(run, node):
  sample, artifacts, _ = run
  policy = _POLICIES[node]
  props = artifacts[node].custom_properties
  record = json.loads(props['deidentification'].string_value)
  with open(f'{artifacts[node].uri}/{executor_base.SUMMARY_FILE}') as f:
    summary = json.load(f)

  assert summary['deidentification'] == record
  assert record['burned_in_annotation'] == policy
  assert record['allow_list_version'] == deidentification.allow_list_version()
  assert record['attributes'][:2] == ['Modality', 'BodyPartExamined']
  assert record['options']['retain_safe_private'] is False
  assert record['salt'].startswith('secret')
  assert 'Basic Application Level Confidentiality Profile' in record['profile']
  expected = {rule: {outcome: 0 for outcome in burned_in.OUTCOMES}
              for rule in burned_in.RULES}
  for file in sample.files:
    outcome = {'cropped': burned_in.CROPPED,
               'rejected': burned_in.REJECTED}.get(
                   _expected_outcome(file, policy), burned_in.KEPT)
    if file.rule:
      expected[file.rule][outcome] += 1
  assert record['burned_in_rules'] == expected
  for outcome in (burned_in.CROPPED, burned_in.KEPT):
    total = sum(counts[outcome] for counts in expected.values())
    assert props[outcome].int_value == total == summary[outcome]
  assert 'tallies' not in summary
  reject_counts = json.loads(props['reject_counts'].string_value)
  assert reject_counts.get('validate/burned_in_annotation', 0) == sum(
      counts[burned_in.REJECTED] for counts in expected.values())


def test_numbers_of_the_default_run(run):
  _, artifacts, _ = run
  props = artifacts['Crop'].custom_properties

  assert props['cropped_to_regions'].int_value == 4
  assert props['burned_in_kept'].int_value == 0
  assert props['num_rejected_files'].int_value == 6
  assert artifacts['Keep'].custom_properties[
      'burned_in_kept'].int_value == 10


def test_no_header_phi_in_features_properties_or_side_files(
    run, examples_reader):
  sample, artifacts, _ = run
  for node, artifact in artifacts.items():
    texts = [str(artifact)]
    for examples in examples_reader(artifact.uri).values():
      for example in examples:
        texts.extend(f'{name}={feature}' for name, feature in
                     example.features.feature.items()
                     if name != 'image/encoded')
    with open(f'{artifact.uri}/{executor_base.SUMMARY_FILE}') as f:
      texts.append(f.read())
    texts.extend(r.to_json() for r in executor_base.read_rejects(
        artifact.uri))
    text = '\n'.join(texts)
    assert not [v for v in sample.phi_values if v in text], node
