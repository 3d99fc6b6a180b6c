"""Shared fixtures: sample data built once per session, executor runs."""

import contextlib
import os
import pathlib
import sys
from typing import Callable, Dict, Iterator, Optional, Sequence, Union

import pytest

# Tests hash with a known salt; one test checks the no-salt warning itself.
TEST_SALT = 'test-salt-not-secret'
os.environ['IMAGE_EXAMPLE_GEN_SALT'] = TEST_SALT
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


@pytest.fixture(scope='session')
def dicom_sample(tmp_path_factory):
  """A small RSNA-like tree (every pixel variant and broken file present)."""
  from image_example_gen import sample_data  # pylint: disable=g-import-not-at-top
  return sample_data.make_dicom_sample(
      tmp_path_factory.mktemp('dicom_sample'), n_images=48, size=32)


@pytest.fixture(scope='session')
def image_folder_sample(tmp_path_factory):
  """A small PetImages-like folder (every format and broken file present)."""
  from image_example_gen import sample_data  # pylint: disable=g-import-not-at-top
  return sample_data.make_image_folder(
      tmp_path_factory.mktemp('image_folder_sample'), n_images=60, size=32)


def read_examples(uri: str) -> Dict[str, list]:
  """Split name -> Examples of an Examples artifact directory."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  result = {}
  for split_dir in sorted(pathlib.Path(uri).glob('Split-*')):
    examples = []
    for path in sorted(split_dir.glob('*.gz')):
      for record in tf.data.TFRecordDataset(str(path), compression_type='GZIP'):
        examples.append(tf.train.Example.FromString(record.numpy()))
    result[split_dir.name[len('Split-'):]] = examples
  return result


def run_executor(component, out_dir: Union[pathlib.Path, str],
                 beam_pipeline_args: Optional[Sequence[str]] = None):
  """Runs a component's executor directly, as TFX's executor tests do.

  Returns the output Examples artifact (with the custom properties the
  executor set), written to `out_dir`: a local folder, or a URI.
  """
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  if isinstance(out_dir, pathlib.Path):
    out_dir.mkdir(parents=True, exist_ok=True)
  examples = standard_artifacts.Examples()
  examples.uri = str(out_dir)
  executor = component.EXECUTOR_SPEC.executor_class(
      base_beam_executor.BaseBeamExecutor.Context(
          beam_pipeline_args=list(beam_pipeline_args or [])))
  executor.Do({}, {'examples': [examples]}, dict(component.exec_properties))
  return examples


def execution_states(root: pathlib.Path) -> Dict[str, list]:
  """Node id -> its execution states, oldest first, from the SQLite MLMD of a
  pipeline whose `metadata.sqlite` is in `root`."""
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  with metadata.Metadata(metadata.sqlite_metadata_connection_config(
      str(root / 'metadata.sqlite'))) as m:
    result = {}
    for context in m.store.get_contexts_by_type('node'):
      executions = sorted(m.store.get_executions_by_context(context.id),
                          key=lambda e: e.id)
      result[context.name.split('.', 1)[1]] = [
          metadata_store_pb2.Execution.State.Name(e.last_known_state)
          for e in executions]
    return result


@pytest.fixture(scope='session')
def states_reader() -> Callable[[pathlib.Path], Dict[str, list]]:
  return execution_states


@pytest.fixture(scope='session')
def examples_reader() -> Callable[[str], Dict[str, list]]:
  return read_examples


@pytest.fixture(scope='session')
def executor_runner():
  return run_executor



@pytest.fixture(scope='session')
def split_keys():
  """Split -> sorted `image/key`s: which image went to which split."""
  return lambda examples: {
      split: sorted(e.features.feature['image/key'].bytes_list.value[0]
                    for e in split_examples)
      for split, split_examples in examples.items()}


@pytest.fixture(scope='session')
def serialized():
  """Split -> sorted deterministic serializations: equal Examples, any order."""
  return lambda examples: {
      split: sorted(e.SerializeToString(deterministic=True)
                    for e in split_examples)
      for split, split_examples in examples.items()}


class GcsBucket:
  """A bucket on the local Cloud Storage test server (tests/gcs_server.py)."""

  def __init__(self, server, env: Dict[str, str]):
    from google.auth import credentials as auth_credentials  # pylint: disable=g-import-not-at-top
    from google.cloud import storage  # pylint: disable=g-import-not-at-top
    self.server = server
    self.name = server.bucket
    self.env = env
    self.client = storage.Client(
        project='test-project',
        credentials=auth_credentials.AnonymousCredentials(),
        client_options={'api_endpoint': server.endpoint})
    self.bucket = self.client.bucket(self.name)

  def uri(self, name: str = '') -> str:
    return f'gs://{self.name}/{name}'

  def upload(self, folder: pathlib.Path, prefix: str) -> None:
    """Uploads every file below `folder` as `prefix/<relative path>`."""
    for path in sorted(folder.rglob('*')):
      if path.is_file():
        self.put(f'{prefix}/{path.relative_to(folder).as_posix()}',
                 path.read_bytes())

  def put(self, name: str, data: bytes = b'') -> None:
    self.bucket.blob(name).upload_from_string(data)

  def download(self, prefix: str, folder: pathlib.Path) -> pathlib.Path:
    """Copies every object below `prefix/` into `folder`."""
    for blob in self.client.list_blobs(self.name, prefix=f'{prefix}/'):
      if not blob.name.endswith('/'):
        path = folder / blob.name[len(prefix) + 1:]
        path.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(path))
    return folder

  @contextlib.contextmanager
  def environment(self) -> Iterator[None]:
    """Beam's gs:// filesystem reaches this server while inside."""
    with pytest.MonkeyPatch.context() as patch:
      for key, value in self.env.items():
        patch.setenv(key, value)
      yield


@pytest.fixture(scope='session')
def gcs_bucket(tmp_path_factory) -> Iterator[GcsBucket]:
  """A bucket on a local Cloud Storage JSON API server, for the session."""
  sys.path.insert(0, str(pathlib.Path(__file__).parent))
  try:
    import gcs_server  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  server = gcs_server.start('test-bucket')
  try:
    yield GcsBucket(server, gcs_server.client_environment(
        server.endpoint,
        tmp_path_factory.mktemp('gcs') / 'credentials.json'))
  finally:
    server.stop()
