"""What both ExampleGen executors share around TFX's BaseExampleGenExecutor.

TFX's base class owns splitting (`output_config` hash buckets or input
splits). This layer writes the Split-* TFRecords in TFX's layout (without
TFX's pre-write shuffle, see `Do`), adds, inside the same Beam pipeline, the
reject records and per-split summaries, and afterwards
turns them into the log table, the artifact's custom properties,
`ingest_summary.json`, and the `max_reject_fraction` check (DESIGN.md §5, §9).

Layout of the Examples artifact:
  Split-<name>/data_tfrecord-*.gz   the Examples (TFX's own layout)
  rejects/rejects-*.jsonl           one JSON reject record per line
  ingest_summary.json               counts by split, label and reject reason
"""

import abc
import collections
import json
import logging
import os
from typing import Any, Dict, List, Mapping, Tuple

import apache_beam as beam
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from image_example_gen import conversion
from image_example_gen import example as example_lib
from image_example_gen import records
from image_example_gen import rejects as rejects_lib

MAX_REJECT_FRACTION_KEY = 'max_reject_fraction'
SUMMARY_FILE = 'ingest_summary.json'
_PARTS_DIR = '.ingest_parts'


class _SplitSummaryFn(beam.CombineFn):
  """Examples, distinct images and patients, and label counts of a split."""

  def create_accumulator(self):
    return [0, set(), set(), collections.Counter()]

  def add_input(self, acc, example):
    features = example.features.feature
    acc[0] += 1
    acc[1].add(features[example_lib.IMAGE_KEY].bytes_list.value[0])
    if example_lib.PATIENT_KEY in features:
      acc[2].add(features[example_lib.PATIENT_KEY].bytes_list.value[0])
    if example_lib.LABEL in features:
      acc[3].update(features[example_lib.LABEL].int64_list.value)
    return acc

  def merge_accumulators(self, accumulators):
    merged = self.create_accumulator()
    for acc in accumulators:
      merged[0] += acc[0]
      merged[1] |= acc[1]
      merged[2] |= acc[2]
      merged[3].update(acc[3])
    return merged

  def extract_output(self, acc):
    return {'examples': acc[0], 'images': len(acc[1]), 'patients': len(acc[2]),
            'labels': {str(k): v for k, v in sorted(acc[3].items())}}


def _write_single(pcoll, label: str, path: str):
  return pcoll | label >> beam.io.WriteToText(path, num_shards=1,
                                              shard_name_template='')


class ImageExampleGenExecutor(base_example_gen_executor.BaseExampleGenExecutor,
                              abc.ABC):
  """Base executor: subclasses only say how to convert one file."""

  def prepare(self, exec_properties: Dict[str, Any], output_uri: str) -> None:
    """Runs once before the Beam pipeline (e.g. to write side files)."""

  @abc.abstractmethod
  def make_converter(self, exec_properties: Dict[str, Any],
                     split_pattern: str) -> conversion.FileConverter:
    """The converter for the files of one input split pattern."""

  def summarize_markers(self, markers: List[str],
                        exec_properties: Dict[str, Any]) -> Dict[str, Any]:
    """Extra summary entries computed from the converters' markers."""
    del markers, exec_properties
    return {}

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    input_base = self._input_base
    rejects_dir = os.path.join(self._output_uri, rejects_lib.REJECTS_DIR)
    parts_dir = os.path.join(self._output_uri, _PARTS_DIR)

    @beam.ptransform_fn
    def FilesToExamples(pipeline, exec_properties, split_pattern):  # pylint: disable=invalid-name
      converter = self.make_converter(exec_properties, split_pattern)
      outputs = pipeline | 'ConvertFiles' >> conversion.ConvertFiles(
          input_base, split_pattern, converter)
      tag = conversion.split_tag(split_pattern)
      _ = (outputs[conversion.REJECTS]
           | 'RejectToJson' >> beam.Map(lambda r: r.to_json())
           | 'WriteRejects' >> beam.io.WriteToText(
               os.path.join(rejects_dir, f'rejects-{tag}'),
               file_name_suffix='.jsonl'))
      _ = _write_single(outputs[conversion.CONVERTED], 'WriteConverted',
                        os.path.join(parts_dir, f'converted-{tag}.txt'))
      return outputs[conversion.EXAMPLES]

    return FilesToExamples

  def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                             exec_properties: Dict[str, Any]):
    splits = super().GenerateExamplesByBeam(pipeline, exec_properties)
    parts_dir = os.path.join(self._output_uri, _PARTS_DIR)
    for name, examples in splits.items():
      _ = _write_single(
          examples
          | f'Summarize[{name}]' >> beam.CombineGlobally(_SplitSummaryFn())
          | f'SummaryToJson[{name}]' >> beam.Map(json.dumps),
          f'WriteSummary[{name}]', os.path.join(parts_dir, f'split-{name}.json'))
    return splits

  def Do(self, input_dict: Dict[str, List[artifact.Artifact]],
         output_dict: Dict[str, List[artifact.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """BaseExampleGenExecutor.Do, writing each split without a shuffle.

    TFX's WriteSplit reshuffles the serialized Examples before writing; on
    the DirectRunner that shuffle holds every encoded image in memory at
    once. Written straight from the conversion, a worker holds only the
    images it is converting; the Trainer shuffles anyway. The files are
    gzip without recompressing the images (see `records`).
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    examples = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EXAMPLES_KEY])
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY],
        input_config)
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY],
        output_config)
    examples.split_names = artifact_utils.encode_split_names(
        example_gen_utils.generate_output_split_names(input_config,
                                                      output_config))
    self._output_uri = examples.uri
    self._input_base = normalize_input_base(
        exec_properties[standard_component_specs.INPUT_BASE_KEY])
    fileio.makedirs(examples.uri)  # Not every launcher creates it.
    self.prepare(exec_properties, examples.uri)
    with self._make_beam_pipeline() as pipeline:
      for name, split in self.GenerateExamplesByBeam(
          pipeline, exec_properties).items():
        _ = split | f'WriteSplit[{name}]' >> records.WriteExamples(
            artifact_utils.get_split_uri([examples], name))
    examples_utils.set_payload_format(examples,
                                      example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(examples, 'tfrecords_gzip')
    summary, reject_counts = self._summarize(exec_properties)
    for line in format_summary(summary, reject_counts):
      logging.info('%s', line)
    _record(examples, summary)
    rejects_lib.check_reject_fraction(
        reject_counts, summary['converted_files'],
        float(exec_properties[MAX_REJECT_FRACTION_KEY]))

  def _summarize(
      self, exec_properties: Dict[str, Any]
  ) -> Tuple[Dict[str, Any], Dict[Tuple[str, str], int]]:
    """The run's summary, and the reject counts by (stage, reason)."""
    parts_dir = os.path.join(self._output_uri, _PARTS_DIR)
    markers = []
    for path in fileio.glob(os.path.join(parts_dir, 'converted-*.txt')):
      with fileio.open(path, 'r') as f:
        markers.extend(line.rstrip('\n') for line in f)
    splits = {}
    for path in sorted(fileio.glob(os.path.join(parts_dir, 'split-*.json'))):
      name = os.path.basename(path)[len('split-'):-len('.json')]
      with fileio.open(path, 'r') as f:
        splits[name] = json.loads(f.read())
    fileio.rmtree(parts_dir)
    reject_counts = rejects_lib.count_by_reason(read_rejects(self._output_uri))
    summary = {
        'input_files': len(markers) + sum(reject_counts.values()),
        'converted_files': len(markers),
        'rejected_files': sum(reject_counts.values()),
        'examples': sum(s['examples'] for s in splits.values()),
        'splits': splits,
        'rejects': {f'{stage}/{reason}': n
                    for (stage, reason), n in sorted(reject_counts.items())},
    }
    summary.update(self.summarize_markers(
        [m for m in markers if m], exec_properties))
    return summary, reject_counts


def list_property(exec_properties: Dict[str, Any], key: str) -> List[str]:
  """A List[str] exec property: orchestrators pass it JSON-encoded."""
  value = exec_properties.get(key)
  if isinstance(value, str):
    value = json.loads(value)
  return list(value or [])


def normalize_input_base(input_base: str) -> str:
  """Absolute local paths (so matched paths share the prefix); URIs as is."""
  if '://' in input_base:
    return input_base.rstrip('/')
  return os.path.abspath(input_base)


def read_rejects(examples_uri: str) -> List[rejects_lib.Reject]:
  """All reject records written into an Examples artifact."""
  found = []
  pattern = os.path.join(examples_uri, rejects_lib.REJECTS_DIR, '*.jsonl')
  for path in sorted(fileio.glob(pattern)):
    with fileio.open(path, 'r') as f:
      found.extend(rejects_lib.Reject.from_json(line) for line in f
                   if line.strip())
  return found


def format_summary(summary: Mapping[str, Any],
                   reject_counts: Mapping[Tuple[str, str], int]) -> List[str]:
  """The end-of-run table: files, splits with labels and patients, rejects."""
  lines = [f'Ingestion summary: {summary["input_files"]} input files, '
           f'{summary["converted_files"]} converted into '
           f'{summary["examples"]} Examples, {summary["rejected_files"]} '
           'rejected.']
  lines.append(f'{"split":<10} {"examples":>9} {"images":>8} {"patients":>9}'
               '  labels')
  for name, split in summary['splits'].items():
    labels = ' '.join(f'{k}:{v}' for k, v in split['labels'].items())
    lines.append(f'{name:<10} {split["examples"]:>9} {split["images"]:>8} '
                 f'{split["patients"]:>9}  {labels}')
  lines.extend(rejects_lib.format_summary(reject_counts))
  for key in sorted(set(summary) - {'input_files', 'converted_files',
                                    'rejected_files', 'examples', 'splits',
                                    'rejects'}):
    lines.append(f'{key}: {json.dumps(summary[key], sort_keys=True)}')
  return lines


def _record(examples: artifact.Artifact, summary: Dict[str, Any]) -> None:
  """Writes ingest_summary.json and the counts as custom properties."""
  with fileio.open(os.path.join(examples.uri, SUMMARY_FILE), 'w') as f:
    f.write(json.dumps(summary, indent=2, sort_keys=True))
  for key in ('input_files', 'converted_files', 'rejected_files', 'examples'):
    examples.set_int_custom_property(f'num_{key}', summary[key])
  examples.set_string_custom_property(
      'reject_counts', json.dumps(summary['rejects'], sort_keys=True))
  examples.set_string_custom_property(
      'split_counts', json.dumps(summary['splits'], sort_keys=True))

