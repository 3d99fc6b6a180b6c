"""Shared fixtures: sample data built once per session, executor runs."""

import os
import pathlib
from typing import Callable, Dict, Optional, Sequence

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


def run_executor(component, out_dir: pathlib.Path,
                 beam_pipeline_args: Optional[Sequence[str]] = None):
  """Runs a component's executor directly, as TFX's executor tests do.

  Returns the output Examples artifact (with the custom properties the
  executor set).
  """
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  out_dir.mkdir(parents=True, exist_ok=True)
  examples = standard_artifacts.Examples()
  examples.uri = str(out_dir)
  executor = component.EXECUTOR_SPEC.executor_class(
      base_beam_executor.BaseBeamExecutor.Context(
          beam_pipeline_args=list(beam_pipeline_args or [])))
  executor.Do({}, {'examples': [examples]}, dict(component.exec_properties))
  return examples


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
