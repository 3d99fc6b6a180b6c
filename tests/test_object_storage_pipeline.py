"""Both ExampleGens reading gs:// under LocalDagRunner, as from local disk.

One pipeline holds each ExampleGen twice, on a bucket of a local Cloud
Storage API server (tests/gcs_server.py) and on the same files on disk: an
image folder with split folders, junk and broken files; captioned images
with their table outside the image prefix (and one image without a row);
the DICOM sample with its labels CSV outside the image prefix. The bucket
also holds the placeholder objects that the Cloud Console's "Create folder"
makes, one of them for each input_base itself. The pipeline object is built
while Cloud Storage cannot be reached (as when compiling for Kubeflow on a
laptop), then run twice (the second run is served from the MLMD cache, so
the driver's fingerprint read the bucket alike twice) and once more after a
file is added deep on the bucket. The image folder's executor also writes
its Examples artifact to the bucket (LocalDagRunner cannot: docs/design.md,
"Object storage").
"""

import json
import pathlib
import shutil
import socket

import pytest
from tfx import v1 as tfx
from tfx.orchestration import metadata

from image_example_gen import DicomExampleGen
from image_example_gen import ImageFolderExampleGen
from image_example_gen import executor_base
from image_example_gen import outputs
from image_example_gen import sample_data


pytestmark = pytest.mark.e2e

_PIPELINE = 'object_storage'
_SOURCES = ('Images', 'Captioned', 'Dicom')
_COUNTS = ('num_input_files', 'num_converted_files', 'num_rejected_files',
           'num_examples')


def _example_gens(base):
  """The three ExampleGens on one storage; `base(name)` is a path there."""
  return [
      ImageFolderExampleGen(input_base=base('images'),
                            max_reject_fraction=0.5),
      ImageFolderExampleGen(input_base=base('captioned'),
                            metadata_file=base('tables/captions.jsonl'),
                            extra_columns=['description'],
                            max_reject_fraction=0.5),
      DicomExampleGen(input_base=base('dicom/train_images'),
                      metadata_file=base('dicom/train.csv'),
                      group_column='patient_id',
                      extra_columns=['laterality', 'view', 'age'],
                      max_reject_fraction=0.5),
  ]


def _closed_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _store(root) -> metadata.Metadata:
  return metadata.Metadata(metadata.sqlite_metadata_connection_config(
      str(root / 'metadata.sqlite')))


def _first_examples(root):
  """Node id -> its first Examples artifact."""
  with _store(root) as m:
    result = {}
    for context in m.store.get_contexts_by_type('node'):
      artifacts = [a for a in m.store.get_artifacts_by_context(context.id)
                   if a.type == 'Examples']
      result[context.name.split('.', 1)[1]] = min(artifacts,
                                                   key=lambda a: a.id)
    return result


@pytest.fixture(scope='module')
def runs(tmp_path_factory, gcs_bucket, dicom_sample, executor_runner,
         states_reader):
  root = tmp_path_factory.mktemp('object_storage')
  local = root / 'local'
  images = sample_data.make_image_folder(local / 'images', n_images=24,
                                         size=16, split_folders=True)
  first_class = f'train/{images.class_names[0]}'
  (images.root / first_class / 'empty').mkdir()
  captioned = sample_data.make_captioned_images(local / 'captioned', 12,
                                                size=16)
  (local / 'tables').mkdir()
  captioned.metadata_path.rename(local / 'tables' / 'captions.jsonl')
  (captioned.root / 'images' / 'no_row.png').write_bytes(
      (captioned.root / 'images' / '00000.png').read_bytes()[:50])
  shutil.copytree(dicom_sample.root, local / 'dicom')
  for folder in ('images', 'captioned', 'tables', 'dicom'):
    gcs_bucket.upload(local / folder, folder)
  patient = dicom_sample.images[0].rel_path.split('/')[0]
  for name in ('images/', 'images/train/', f'images/{first_class}/',
               f'images/{first_class}/empty/', 'images/val/', 'captioned/',
               'tables/', 'dicom/', 'dicom/train_images/',
               f'dicom/train_images/{patient}/'):
    gcs_bucket.put(name)

  def pipeline():
    components = []
    for where, base in (('Gcs', gcs_bucket.uri),
                        ('Local', lambda name: str(local / name))):
      components += [gen.with_id(f'{where}{source}') for gen, source in
                     zip(_example_gens(base), _SOURCES)]
    return tfx.dsl.Pipeline(
        pipeline_name=_PIPELINE, pipeline_root=str(root / 'pipeline'),
        components=components, enable_cache=True,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(
                str(root / 'metadata.sqlite'))))

  # Built where Cloud Storage cannot be reached: nothing may read it yet.
  with gcs_bucket.environment(), pytest.MonkeyPatch.context() as patch:
    patch.setenv('STORAGE_EMULATOR_HOST', f'http://127.0.0.1:{_closed_port()}')
    built = pipeline()
  with gcs_bucket.environment():
    tfx.orchestration.LocalDagRunner().run(built)
    first = _first_examples(root)
    on_gcs = executor_runner(_example_gens(gcs_bucket.uri)[0],
                             gcs_bucket.uri('output/examples'))
    rejects = executor_base.read_rejects(on_gcs.uri)
    tfx.orchestration.LocalDagRunner().run(pipeline())
    gcs_bucket.put(f'images/{first_class}/deep/er/new.png',
                   (images.root / images.images[0].rel_path).read_bytes())
    tfx.orchestration.LocalDagRunner().run(pipeline())
  return {'root': root, 'first': first, 'states': states_reader(root),
          'images': images, 'output': on_gcs, 'output_rejects': rejects,
          'output_files': gcs_bucket.download('output/examples',
                                              root / 'output')}


def _uri(runs, node):
  return runs['first'][node].uri


@pytest.mark.parametrize('source', _SOURCES)
def test_examples_are_those_from_local_disk(runs, source, examples_reader,
                                            serialized):
  on_gcs = examples_reader(_uri(runs, f'Gcs{source}'))
  on_disk = examples_reader(_uri(runs, f'Local{source}'))
  assert sum(len(e) for e in on_gcs.values()) > 0
  assert serialized(on_gcs) == serialized(on_disk)


@pytest.mark.parametrize('source', _SOURCES)
def test_rejects_and_summary_are_those_from_local_disk(runs, source):
  gcs, local = runs['first'][f'Gcs{source}'], runs['first'][f'Local{source}']
  as_json = lambda uri: sorted(  # pylint: disable=unnecessary-lambda-assignment
      r.to_json() for r in executor_base.read_rejects(uri))
  assert as_json(gcs.uri) == as_json(local.uri)
  assert as_json(gcs.uri)
  summaries = [
      json.loads((pathlib.Path(a.uri) / executor_base.SUMMARY_FILE).read_text())
      for a in (gcs, local)]
  assert summaries[0] == summaries[1]
  for key in _COUNTS + ('split_counts', 'reject_counts'):
    assert gcs.custom_properties[key] == local.custom_properties[key], key


def test_placeholder_objects_are_not_files(runs):
  for source in _SOURCES:
    gcs = runs['first'][f'Gcs{source}']
    paths = [r.path for r in executor_base.read_rejects(gcs.uri)]
    assert not [p for p in paths if not p or p.endswith('/')], paths
  images = runs['images']
  counted = runs['first']['GcsImages'].custom_properties[
      'num_input_files'].int_value
  assert counted == len(images.images) + len(images.rejects)


def test_split_folders_are_splits_though_built_without_access(runs):
  images = runs['first']['GcsImages']
  vocabulary = (pathlib.Path(images.uri) /
                outputs.VOCABULARY_FILE).read_text().split()
  assert vocabulary == runs['images'].class_names
  splits = json.loads(images.custom_properties['split_counts'].string_value)
  assert set(splits) == {'train', 'eval', 'test'}
  assert images.properties['split_names'].string_value == (
      runs['first']['LocalImages'].properties['split_names'].string_value)


def test_the_fingerprint_reads_the_bucket(runs):
  states = runs['states']
  assert states['GcsImages'] == ['COMPLETE', 'CACHED', 'COMPLETE']
  for node in states:
    if node != 'GcsImages':
      assert states[node] == ['COMPLETE', 'CACHED', 'CACHED'], node


def test_examples_written_to_the_bucket_are_those_written_locally(
    runs, examples_reader, serialized):
  output, local = runs['output_files'], runs['first']['LocalImages']
  assert serialized(examples_reader(str(output))) == serialized(
      examples_reader(local.uri))
  assert sorted(r.to_json() for r in runs['output_rejects']) == sorted(
      r.to_json() for r in executor_base.read_rejects(local.uri))
  for name in (executor_base.SUMMARY_FILE, outputs.VOCABULARY_FILE):
    assert (output / name).read_text() == (
        pathlib.Path(local.uri) / name).read_text()
  assert sorted(p.relative_to(output).parts[0] for p in output.iterdir()) == [
      'Split-eval', 'Split-test', 'Split-train', executor_base.SUMMARY_FILE,
      outputs.VOCABULARY_FILE, 'rejects', 'skipped']
  for key in _COUNTS:
    assert (runs['output'].get_int_custom_property(key) ==
            local.custom_properties[key].int_value)
