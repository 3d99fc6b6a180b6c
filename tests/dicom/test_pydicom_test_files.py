"""DicomExampleGen on every test file pydicom and pydicom-data ship.

Radiographs, CT, MR, US, multi-frame, colour, every transfer syntax, and
deliberately broken files: nothing may crash, every file must end as
Examples or one reject, and every file pydicom itself decodes must give
images.
"""

import os
import shutil

import pydicom
from pydicom import data as pydicom_data
import pytest

from image_example_gen import DicomExampleGen
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


def test_every_file_is_examples_or_a_reject(test_files, tmp_path,
                                            executor_runner, examples_reader):
  files = sorted(p.name for p in test_files.iterdir())
  assert len(files) > 100
  component = DicomExampleGen(input_base=str(test_files),
                              max_reject_fraction=1.0)
  artifact = executor_runner(component, tmp_path)

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

  examples = examples_reader(artifact.uri)
  assert sum(len(e) for e in examples.values()) >= len(decodable)
