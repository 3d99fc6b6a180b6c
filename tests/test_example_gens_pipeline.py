"""Both ExampleGens in a real LocalDagRunner pipeline with SQLite MLMD.

StatisticsGen and SchemaGen consume their output; a second run is served
from the MLMD cache; a file added deep in the tree invalidates that cache, and
so does a new salt.
"""

import json
import shutil

from google.protobuf import json_format
import pytest
from tfx import v1 as tfx
from tfx.orchestration import metadata

from image_example_gen import DicomExampleGen
from image_example_gen import ImageFolderExampleGen
from image_example_gen import keys


pytestmark = pytest.mark.e2e


def _pipeline(root, dicom_sample, images_root):
  dicom = DicomExampleGen(
      input_base=str(dicom_sample.root / 'train_images'),
      metadata_file=str(dicom_sample.csv_path), group_column='patient_id',
      extra_columns=['laterality', 'view', 'age'],
      max_reject_fraction=0.5).with_id('DicomExampleGen')
  images = ImageFolderExampleGen(
      input_base=str(images_root),
      max_reject_fraction=0.5).with_id('ImageFolderExampleGen')
  components = [dicom, images]
  for gen, name in ((dicom, 'Dicom'), (images, 'ImageFolder')):
    stats = tfx.components.StatisticsGen(
        examples=gen.outputs['examples']).with_id(f'{name}StatisticsGen')
    schema = tfx.components.SchemaGen(
        statistics=stats.outputs['statistics']).with_id(f'{name}SchemaGen')
    components += [stats, schema]
  return tfx.dsl.Pipeline(
      pipeline_name='example_gens', pipeline_root=str(root / 'pipeline'),
      components=components, enable_cache=True,
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              str(root / 'metadata.sqlite'))))


def _store(root) -> metadata.Metadata:
  return metadata.Metadata(metadata.sqlite_metadata_connection_config(
      str(root / 'metadata.sqlite')))


def _latest_examples(root, node_id):
  with _store(root) as m:
    context = m.store.get_context_by_type_and_name(
        'node', f'example_gens.{node_id}')
    artifacts = m.store.get_artifacts_by_context(context.id)
    return max((a for a in artifacts if a.type == 'Examples'),
               key=lambda a: a.id)


def test_statistics_and_schema_consume_both_and_cache_works(
    tmp_path, dicom_sample, image_folder_sample, monkeypatch, states_reader):
  images_root = tmp_path / 'images'
  shutil.copytree(image_folder_sample.root, images_root)
  pipeline = lambda: _pipeline(tmp_path, dicom_sample, images_root)  # pylint: disable=unnecessary-lambda-assignment

  tfx.orchestration.LocalDagRunner().run(pipeline())
  states = states_reader(tmp_path)
  assert set(states) >= {'DicomExampleGen', 'ImageFolderExampleGen',
                         'DicomStatisticsGen', 'ImageFolderStatisticsGen',
                         'DicomSchemaGen', 'ImageFolderSchemaGen'}
  assert all(s == ['COMPLETE'] for s in states.values()), states
  for node in ('DicomExampleGen', 'ImageFolderExampleGen'):
    examples = _latest_examples(tmp_path, node)
    props = examples.custom_properties
    assert props['num_examples'].int_value > 0
    assert json.loads(props['split_counts'].string_value).keys() == {
        'train', 'eval'}
  schema_files = list((tmp_path / 'pipeline' / 'DicomSchemaGen').rglob(
      'schema.pbtxt'))
  assert 'image/encoded' in schema_files[0].read_text()

  tfx.orchestration.LocalDagRunner().run(pipeline())
  states = states_reader(tmp_path)
  assert states['DicomExampleGen'] == ['COMPLETE', 'CACHED']
  assert states['ImageFolderExampleGen'] == ['COMPLETE', 'CACHED']

  nested = images_root / image_folder_sample.class_names[0] / 'deep' / 'er'
  nested.mkdir(parents=True)
  shutil.copy(images_root / image_folder_sample.images[0].rel_path,
              nested / 'new.png')
  tfx.orchestration.LocalDagRunner().run(pipeline())
  states = states_reader(tmp_path)
  assert states['DicomExampleGen'] == ['COMPLETE', 'CACHED', 'CACHED']
  assert states['ImageFolderExampleGen'] == ['COMPLETE', 'CACHED', 'COMPLETE']

  monkeypatch.setenv(keys.SALT_ENV_VAR, 'another-salt')
  tfx.orchestration.LocalDagRunner().run(pipeline())
  states = states_reader(tmp_path)
  assert states['DicomExampleGen'][-1] == 'COMPLETE'
  assert states['ImageFolderExampleGen'][-1] == 'COMPLETE'
  with _store(tmp_path) as m:
    properties = json.dumps([
        json_format.MessageToDict(e) for e in m.store.get_executions()])
  assert 'another-salt' not in properties
