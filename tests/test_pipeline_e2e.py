"""End to end: pipeline.py on generated data, LocalDagRunner, SQLite MLMD.

For each source, the whole pipeline runs twice on a sample big enough for a
meaningful eval accuracy; the tests assert on what MLMD recorded, on the
Evaluator's metrics and on the pushed SavedModel classifying raw Examples.
"""

import json
import pathlib
import sys
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest
import tensorflow as tf

from image_example_gen import sample_data
from image_example_gen.report import mlmd
from image_example_gen.training import model
from image_example_gen.training import runs

_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:
  sys.path.insert(0, str(_REPO_ROOT))  # pipeline.py is not in the package.
import pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position

pytestmark = pytest.mark.e2e

# 1500 images a source: 1000 to train on, 500 to evaluate (2:1 split), so
# that one eval error is 0.2% of accuracy (conftest's session samples, with
# a few dozen images, are too small for that); ct: the demo's 150 studies,
# 300 series. Small images, few epochs: the whole module runs in 4-6
# minutes on 2 cores (ct ~45 s).
_N_IMAGES = 1500
_SAMPLE_SIZE = 32
_EPOCHS = 12
# The captioned sample's images are noisy on purpose and its descriptions
# name some digits only: its model scores 0.976 with both (0.764 on images
# alone, 0.770 on text alone; pipeline.py).
_MIN_ACCURACY = {pipeline.DICOM: 0.95, pipeline.IMAGES: 0.95,
                 pipeline.CAPTIONED: 0.95, pipeline.CT: 0.95}
# How much better the captioned model is with the real descriptions than with
# empty ones, at least.
_MIN_TEXT_GAIN = 0.08
_COMPONENTS = {
    pipeline.DICOM: 'DicomExampleGen',
    pipeline.IMAGES: 'ImageFolderExampleGen',
    pipeline.CAPTIONED: 'ImageFolderExampleGen',
    pipeline.CT: 'DicomExampleGen',
}


def _write_sample(source: str,
                  root: pathlib.Path) -> Tuple[str, Dict[str, Any]]:
  """(input_base, example_gen_args) of a generated sample."""
  if source == pipeline.DICOM:
    sample = sample_data.make_dicom_sample(root, _N_IMAGES,
                                           size=_SAMPLE_SIZE)
    return str(root / 'train_images'), dict(
        pipeline.DEMO_DICOM_ARGS, metadata_file=str(sample.csv_path))
  if source == pipeline.CT:  # The demo's volumes: 300 series, 2,850 files.
    sample = sample_data.make_ct_sample(
        root, pipeline.DEMO_CT_STUDIES, size=_SAMPLE_SIZE,
        slices=pipeline.DEMO_CT_SLICES)
    return str(sample.input_base), dict(pipeline.DEMO_CT_ARGS,
                                        metadata_file=str(sample.csv_path))
  if source == pipeline.CAPTIONED:
    sample_data.make_captioned_images(root, _N_IMAGES, size=_SAMPLE_SIZE)
  else:
    sample_data.make_image_folder(root, _N_IMAGES, size=_SAMPLE_SIZE)
  return str(root), {}


class _Runs:
  """Two runs of one source's pipeline and where they wrote."""

  def __init__(self, source: str, root: pathlib.Path):
    self.source = source
    self.metadata_path = str(root / 'metadata.sqlite')
    self.serving_model_dir = str(root / 'serving_model')
    input_base, example_gen_args = _write_sample(source, root / 'data')
    self.pipeline = pipeline.create_pipeline(
        pipeline_name=f'e2e-{source}',
        pipeline_root=str(root / 'pipeline_root'),
        source=source,
        input_base=input_base,
        serving_model_dir=self.serving_model_dir,
        example_gen_args=example_gen_args,
        epochs=_EPOCHS,
        metadata_connection_config=pipeline.sqlite_config(
            self.metadata_path))
    self.first = self._run()
    self.second = self._run()

  def _run(self) -> Dict[str, runs.ComponentRun]:
    pipeline.run_local(self.pipeline)
    store = mlmd.open_store(self.metadata_path)
    return {r.component_id: r for r in runs.latest_run(
        store, self.pipeline.pipeline_info.pipeline_name)}

  def eval_records(self) -> List[bytes]:
    """The serialized eval Examples, as the ExampleGen wrote them."""
    examples_uri = self.first[_COMPONENTS[self.source]].uri('examples')
    files = tf.io.gfile.glob(f'{examples_uri}/Split-eval/*')
    return [r.numpy() for r in tf.data.TFRecordDataset(
        files, compression_type='GZIP')]


@pytest.fixture(scope='module', params=pipeline.SOURCES)
def pipeline_runs(request, tmp_path_factory) -> _Runs:
  return _Runs(request.param, tmp_path_factory.mktemp(request.param))


def _property(artifact, name):
  value = artifact.custom_properties[name]
  return getattr(value, value.WhichOneof('value'))


def test_every_component_executed(pipeline_runs):
  assert set(pipeline_runs.first) == {
      _COMPONENTS[pipeline_runs.source], 'ImportSchemaGen', 'StatisticsGen',
      'ExampleValidator', 'Transform', 'Trainer', 'Evaluator', 'Pusher'}
  assert {r.state for r in pipeline_runs.first.values()} == {'COMPLETE'}


def test_eval_accuracy(pipeline_runs):
  accuracy = runs.eval_accuracy(
      pipeline_runs.first['Evaluator'].uri('evaluation'))
  assert accuracy >= _MIN_ACCURACY[pipeline_runs.source]


def test_model_blessed_and_pushed(pipeline_runs):
  (blessing,) = pipeline_runs.first['Evaluator'].outputs['blessing']
  assert _property(blessing, 'blessed') == 1
  (pushed,) = pipeline_runs.first['Pusher'].outputs['pushed_model']
  assert _property(pushed, 'pushed') == 1
  destination = _property(pushed, 'pushed_destination')
  assert pathlib.Path(destination).parent == pathlib.Path(
      pipeline_runs.serving_model_dir)
  assert (pathlib.Path(destination) / 'saved_model.pb').is_file()


def _pushed_accuracy(pipeline_runs: _Runs, records: List[bytes]) -> float:
  """The pushed model's accuracy on serialized Examples, served raw."""
  (pushed,) = pipeline_runs.first['Pusher'].outputs['pushed_model']
  serve = tf.saved_model.load(
      _property(pushed, 'pushed_destination')).signatures[
          model.SERVING_SIGNATURE]
  labels = [tf.train.Example.FromString(r).features.feature['label']
            .int64_list.value[0] for r in records]
  probabilities = serve(**{model.SERVING_INPUT: tf.constant(records)})[
      model.SERVING_OUTPUT].numpy()
  return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def test_pushed_model_classifies_raw_examples(pipeline_runs):
  accuracy = _pushed_accuracy(pipeline_runs, pipeline_runs.eval_records())
  # The Evaluator computed the same on the same Examples.
  assert accuracy == pytest.approx(runs.eval_accuracy(
      pipeline_runs.first['Evaluator'].uri('evaluation')), abs=1e-6)
  assert accuracy >= _MIN_ACCURACY[pipeline_runs.source]


def _without_text(record: bytes) -> bytes:
  """The Example with its description replaced by an empty string."""
  parsed = tf.train.Example.FromString(record)
  parsed.features.feature[pipeline.CAPTION_FEATURE].bytes_list.value[:] = [
      b'']
  return parsed.SerializeToString()


def test_captioned_model_reads_the_descriptions(pipeline_runs):
  if pipeline_runs.source != pipeline.CAPTIONED:
    pytest.skip('only the captioned source has text')
  records = pipeline_runs.eval_records()
  with_text = _pushed_accuracy(pipeline_runs, records)
  without = _pushed_accuracy(pipeline_runs, [_without_text(r) for r in records])
  assert with_text >= without + _MIN_TEXT_GAIN, (with_text, without)


def test_ct_volumes_rejects_and_skips(pipeline_runs):
  if pipeline_runs.source != pipeline.CT:
    pytest.skip('only the ct source has volumes')
  (examples,) = pipeline_runs.first['DicomExampleGen'].outputs['examples']
  assert json.loads(_property(examples, 'reject_counts')) == {
      'validate/irregular_spacing': pipeline.DEMO_CT_SLICES - 1}
  assert json.loads(_property(examples, 'skip_counts')) == {
      'localizer': pipeline.DEMO_CT_STUDIES}
  # Every study's thin and thick series but the irregular one.
  assert _property(examples, 'num_series') == 2 * pipeline.DEMO_CT_STUDIES - 1
  record = tf.train.Example.FromString(pipeline_runs.eval_records()[0])
  depth = record.features.feature['image/depth'].int64_list.value[0]
  assert len(record.features.feature['image/encoded'].bytes_list.value) == (
      depth)


def test_second_run_hits_the_cache(pipeline_runs):
  example_gen = _COMPONENTS[pipeline_runs.source]
  first, second = pipeline_runs.first, pipeline_runs.second
  assert second[example_gen].state == 'CACHED'
  assert ([a.id for a in second[example_gen].outputs['examples']] ==
          [a.id for a in first[example_gen].outputs['examples']])
  assert {r.state for r in second.values()} == {'CACHED'}


def test_wall_time_table(pipeline_runs):
  lines = runs.format_wall_times(list(pipeline_runs.first.values()))
  assert [line.split()[0] for line in lines[1:-1]] == list(pipeline_runs.first)
  assert lines[-1].split()[0] == 'total'
  assert pipeline_runs.first['Trainer'].wall_time_s > 1.0
