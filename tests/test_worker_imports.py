"""Beam workers import neither TFX nor TensorFlow to unpickle their steps.

A worker imports the module of every DoFn, CombineFn and function a pipeline
step holds when it unpickles the step. Importing TFX (through an executor
module) cost each worker ~5 CPU-seconds before its first file, TensorFlow
~3 more (now only a PNG encode imports it, on first use). The test
builds each ExampleGen's real Beam pipeline (with a metadata table, so the
join is in it, and with labels from file names), records its portable
proto, and unpickles every step's payload in a fresh interpreter, as a
worker does, then looks for both.
"""

import json
import subprocess
import sys

import apache_beam as beam
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.direct import direct_runner
from tfx.dsl.components.base import base_beam_executor
from tfx.types import standard_artifacts

from image_example_gen import DicomExampleGen
from image_example_gen import ImageFolderExampleGen
from image_example_gen import sample_data
from image_example_gen.sample_data import ct

_COMBINES = (common_urns.composites.COMBINE_PER_KEY.urn,
             common_urns.composites.COMBINE_GLOBALLY.urn,
             common_urns.combine_components.COMBINE_PER_KEY_PRECOMBINE.urn,
             common_urns.combine_components.COMBINE_PER_KEY_MERGE_ACCUMULATORS
             .urn,
             common_urns.combine_components
             .COMBINE_PER_KEY_EXTRACT_OUTPUTS.urn)

# Unpickles each payload file as a worker would; prints the payloads after
# which TFX (or a module importing it) was loaded.
_PROBE = '''
import json, sys
from apache_beam.internal import pickler
offenders = []
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        pickler.loads(f.read())
    if ('tfx' in sys.modules or 'tensorflow' in sys.modules) and not offenders:
        offenders.append(path)
print(json.dumps({'tfx': 'tfx' in sys.modules, 'first': offenders,
                  'tensorflow': 'tensorflow' in sys.modules,
                  'converters': 'image_example_gen.conversion' in sys.modules}))
'''


class _RecordingRunner(direct_runner.DirectRunner):
  """Runs the pipeline as DirectRunner does, keeping its portable proto."""

  protos = []

  def run_pipeline(self, pipeline, options):
    type(self).protos.append(pipeline.to_runner_api())
    return super().run_pipeline(pipeline, options)


def _payloads(proto: beam_runner_api_pb2.Pipeline):
  """Step name -> the pickled user code it holds."""
  result = {}
  for transform in proto.components.transforms.values():
    spec = transform.spec
    if spec.urn == common_urns.primitives.PAR_DO.urn:
      fn = beam_runner_api_pb2.ParDoPayload.FromString(spec.payload).do_fn
    elif spec.urn in _COMBINES:
      fn = beam_runner_api_pb2.CombinePayload.FromString(
          spec.payload).combine_fn
    else:
      continue
    if fn.payload:
      result[transform.unique_name] = fn.payload
  return result


def _run_recorded(component, out_dir):
  out_dir.mkdir(parents=True)
  examples = standard_artifacts.Examples()
  examples.uri = str(out_dir)
  executor = component.EXECUTOR_SPEC.executor_class(
      base_beam_executor.BaseBeamExecutor.Context(
          make_beam_pipeline_fn=lambda: beam.Pipeline(
              runner=_RecordingRunner())))
  _RecordingRunner.protos.clear()
  executor.Do({}, {'examples': [examples]}, dict(component.exec_properties))
  (proto,) = _RecordingRunner.protos
  return examples, _payloads(proto)


def _imports_of(payloads, tmp_path):
  tmp_path.mkdir()
  paths = []
  for i, (name, payload) in enumerate(sorted(payloads.items())):
    path = tmp_path / f'{i:03d}.pickle'
    path.write_bytes(payload)
    paths.append((str(path), name))
  out = subprocess.run([sys.executable, '-c', _PROBE, *(p for p, _ in paths)],
                       capture_output=True, text=True, check=True).stdout
  result = json.loads(out.strip().splitlines()[-1])
  names = dict(paths)
  result['first'] = [names[p] for p in result['first']]
  return result


def test_no_pipeline_step_of_either_example_gen_imports_tfx_or_tensorflow(
    tmp_path, dicom_sample):
  images = sample_data.make_captioned_images(tmp_path / 'captioned', 12)
  volumes = ct.make_ct_sample(tmp_path / 'ct', n_studies=2, size=16, slices=6)
  components = {
      'series': (DicomExampleGen(
          input_base=str(volumes.input_base), unit='series',
          metadata_file=str(volumes.csv_path),
          key_column='StudyInstanceUID', key_source='StudyInstanceUID',
          max_reject_fraction=0.5), 'ParseRows'),
      'images': (ImageFolderExampleGen(input_base=str(images.root),
                                       extra_columns=['description']),
                 'ParseRows'),
      'names': (ImageFolderExampleGen(
          input_base=str(images.root / 'images'), label_pattern=r'(\d)\.png$'),
                'LabelByName'),
      'dicom': (DicomExampleGen(
          input_base=str(dicom_sample.root / 'train_images'),
          metadata_file=str(dicom_sample.csv_path), group_column='patient_id',
          max_reject_fraction=0.5), 'ParseRows'),
  }
  for name, (component, join_step) in components.items():
    examples, payloads = _run_recorded(component, tmp_path / name)
    assert examples.get_int_custom_property('num_examples') > 0
    # The steps that convert, join and write are all there.
    assert any('Convert' in step for step in payloads), sorted(payloads)
    for step in ('WriteShards', 'List', 'KeyByBatch', 'InOrder', 'WriteSkips',
                 join_step):
      assert any(step in name for name in payloads), (step, sorted(payloads))
    if name == 'series':
      assert any('ReadHeaders' in step for step in payloads)
      assert any('MakeSeries' in step for step in payloads)
    imports = _imports_of(payloads, tmp_path / f'{name}_payloads')

    assert imports['converters']  # The probe did unpickle the conversion.
    assert not imports['tfx'], (name, imports['first'])
    assert not imports['tensorflow'], (name, imports['first'])
