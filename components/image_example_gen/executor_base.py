"""What both ExampleGen executors share around TFX's BaseExampleGenExecutor.

The executor runs one Beam pipeline: list, (join,) convert, write the Split-*
shards (`records`), the reject and skip records and the summary parts, while
a thread prints progress on long runs; afterwards it turns the summary into
the console lines (`console`), the artifact's custom properties,
`ingest_summary.json`, and the `max_reject_fraction` check (docs/design.md).

Layout of the Examples artifact:
  Split-<name>/data_tfrecord-*.gz   the Examples (TFX's own layout)
  rejects/rejects-*.jsonl           one JSON reject record per line
  skipped/skipped-*.jsonl           one JSON skip record per line (junk)
  ingest_summary.json               counts by split, label, reject and skip reason

TFX deletes the output folder of a failed execution. When the component
fails (too many rejects, or no input at all), `rejects/`, `skipped/` and
`ingest_summary.json` are moved first to `<uri>-failed/` beside it (e.g.
`<pipeline_root>/<component>/examples/<execution id>-failed/`), which the
error names.
"""

import abc
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from image_example_gen import console
from image_example_gen import conversion
from image_example_gen import keys
from image_example_gen import listing
from image_example_gen import outputs as outputs_lib
from image_example_gen import records
from image_example_gen import rejects as rejects_lib
from image_example_gen import selection as selection_lib
from image_example_gen import splits as splits_lib
from image_example_gen import storage
from image_example_gen import table_join
from image_example_gen import table_keys
from image_example_gen import tables as tables_lib
from image_example_gen import summary as summary_lib

MAX_REJECT_FRACTION_KEY = 'max_reject_fraction'
SHARD_SIZE_MB_KEY = 'shard_size_mb'
MAX_PIXELS_KEY = 'max_pixels'
IGNORE_PATTERNS_KEY = 'ignore_patterns'
ALLOWED_EXTENSIONS_KEY = 'allowed_extensions'
SUMMARY_FILE = outputs_lib.SUMMARY_FILE
# Where a failed run's rejects, skips and summary are kept: <uri> + this.
FAILED_SUFFIX = '-failed'
_PARTS_DIR = '.ingest_parts'
_PROGRESS_DIR = 'progress'
_TEMP_DIR = '.temp_shards'


def _read_json(path: str) -> Optional[Dict[str, Any]]:
  if not storage.exists(path):
    return None
  with conversion.open_file(path) as f:
    return json.loads(f.read())


class ImageExampleGenExecutor(base_beam_executor.BaseBeamExecutor, abc.ABC):
  """Base executor: subclasses only say how to convert (and join) one file.

  TFX's BaseExampleGenExecutor converts records, assigns splits and writes
  in separate Beam steps, shuffling every serialized Example before writing;
  for images that shuffle held the whole data set in memory and the steps
  cost more than decoding. This executor keeps TFX's contract (the same
  exec properties, `input_config`/`output_config` semantics and hash-bucket
  split rule, `Split-*/data_tfrecord-*.gz`, payload and file format
  properties) and does the conversion, split assignment and counting in one
  step per batch of files (`conversion.ConvertFiles`).
  """

  component_name = 'ExampleGen'  # Names it on the console outside a pipeline.
  group_key = ''  # The feature counted as `patients` in the summary.
  writes_vocabulary = False  # Writes the join's label vocabulary file.
  # Set by `prepare`: per input split, its metadata table (None: none);
  # whether labels come from file names; the fixed label vocabulary.
  tables: Sequence[Optional[tables_lib.TableSpec]] = ()
  labels_from_names = False
  class_names: Optional[Sequence[str]] = None

  def prepare(self, exec_properties: Dict[str, Any], output_uri: str) -> None:
    """Runs once before the Beam pipeline (e.g. to write side files)."""

  @abc.abstractmethod
  def make_converter(self, exec_properties: Dict[str, Any],
                     split_pattern: str) -> conversion.FileConverter:
    """The converter for the files of one input split pattern."""

  def resolve_splits(
      self, exec_properties: Dict[str, Any],
      input_config: example_gen_pb2.Input,
      output_config: example_gen_pb2.Output
  ) -> Tuple[example_gen_pb2.Input, example_gen_pb2.Output]:
    """The input and output splits to use, decided where the data is read."""
    del exec_properties
    return input_config, output_config

  def make_join(self, exec_properties: Dict[str, Any],
                converters: Sequence[conversion.FileConverter]
               ) -> Optional[beam.PTransform]:
    """The join of `tables` and name labels (`table_join.JoinTable`) or None."""
    del exec_properties
    if not any(self.tables) and not self.labels_from_names:
      return None
    return table_join.JoinTable(  # pylint: disable=no-value-for-parameter
        list(self.tables) or [None] * len(converters),
        [c.join_key for c in converters], [c.name_label for c in converters],
        conversion.open_file, self.class_names)

  def excluded_paths(self) -> Sequence[str]:
    """Paths below input_base that are not inputs: the tables inside it."""
    return sorted({below(spec.path, self._input_base) for spec in self.tables
                   if spec} - {None})


  def make_group(self, exec_properties: Dict[str, Any],
                 converters: Sequence[conversion.FileConverter]
                ) -> Optional[beam.PTransform]:
    """Groups files into units converted together (`conversion.FileGroup`,
    one unit per DoFn call), or None to convert file by file."""
    del exec_properties, converters
    return None

  def Do(self, input_dict: Dict[str, List[artifact.Artifact]],
         output_dict: Dict[str, List[artifact.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Converts every input file into Examples, a reject or a skip record."""
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
    self._output_uri = examples.uri
    self._input_base = normalize_input_base(
        exec_properties[standard_component_specs.INPUT_BASE_KEY])
    self._salt = keys.resolve_salt()
    input_config, output_config = self.resolve_splits(
        exec_properties, input_config, output_config)
    exec_properties = {
        **exec_properties,
        standard_component_specs.INPUT_CONFIG_KEY:
            proto_utils.proto_to_json(input_config),
        standard_component_specs.OUTPUT_CONFIG_KEY:
            proto_utils.proto_to_json(output_config)}
    split_names = example_gen_utils.generate_output_split_names(
        input_config, output_config)
    examples.split_names = artifact_utils.encode_split_names(split_names)
    storage.makedirs(examples.uri)  # Not every launcher creates it.
    self.prepare(exec_properties, examples.uri)
    patterns = [split.pattern for split in input_config.splits]
    converters = [self.make_converter(exec_properties, pattern)
                  for pattern in patterns]
    assigners = _assigners(input_config, output_config, split_names)
    parts_dir = os.path.join(examples.uri, _PARTS_DIR)
    progress_dir = os.path.join(parts_dir, _PROGRESS_DIR)
    temp_dir = os.path.join(examples.uri, _TEMP_DIR)
    storage.makedirs(parts_dir)
    storage.makedirs(progress_dir)
    shard_bytes = int(float(exec_properties.get(SHARD_SIZE_MB_KEY) or
                            records.DEFAULT_SHARD_SIZE_MB) * 2**20)
    split_uris = {name: artifact_utils.get_split_uri([examples], name)
                  for name in split_names}
    group = self.make_group(exec_properties, converters)
    component = self._component_id()
    try:
      with console.Progress(component, lambda: read_progress(progress_dir)):
        with self._make_beam_pipeline() as pipeline:
          outputs = pipeline | 'ConvertFiles' >> conversion.ConvertFiles(
              self._input_base, patterns, converters, assigners, self._salt,
              progress_dir, self.make_join(exec_properties, converters),
              self.excluded_paths(), selection(exec_properties),
              group_key=self.group_key, group=group,
              **({'batch_size': 1} if group is not None else {}))
          _ = outputs | 'WriteOutputs' >> outputs_lib.WriteOutputs(  # pylint: disable=no-value-for-parameter
              split_uris, examples.uri, parts_dir, temp_dir, shard_bytes,
              self.list_table_keys(),
              examples.uri if self.writes_vocabulary else None)
    except Exception as e:
      raise RuntimeError(
          f'The Beam pipeline converting {self._input_base} failed: '
          f'{type(e).__name__}: {e}. If a worker died (killed, out of '
          'memory), rerun the pipeline: nothing of this run is published, '
          'and the rerun writes what an undisturbed run writes.') from e
    examples_utils.set_payload_format(examples,
                                      example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(examples, 'tfrecords_gzip')
    summary = self._summarize(parts_dir)
    storage.remove_tree(parts_dir)
    if storage.exists(temp_dir):
      storage.remove_tree(temp_dir)  # Each split removed its own folder in it.
    entries = self.summary_entries(exec_properties, summary.pop('tallies'))
    summary.update(entries)
    for line in console.summary_lines(component, self._input_base,
                                      examples.uri, summary,
                                      read_vocabulary(examples.uri)):
      console.logger().info('%s', line)
    _record(examples, summary, entries)
    error = _limit_error(summary, patterns, self._input_base, examples.uri,
                         float(exec_properties[MAX_REJECT_FRACTION_KEY]))
    if error:
      keep_failed_run(examples.uri)
      raise RuntimeError(error)

  def _component_id(self) -> str:
    """The node id in the pipeline (e.g. 'ImageFolderExampleGen')."""
    node = getattr(self._context, 'pipeline_node', None)
    if node is not None and node.node_info.id:
      return node.node_info.id
    return self.component_name

  def list_table_keys(self) -> bool:
    """Whether the summary may list keys of rows without a file.

    Only keys that are file paths or names: never DICOM attributes (UIDs)
    or pattern keys (patient folders).
    """
    return any(spec.key_source in table_keys.NAMED_SOURCES
               for spec in self.tables if spec)

  def summary_entries(self, exec_properties: Dict[str, Any],
                      tallies: Mapping[str, int]) -> Dict[str, Any]:
    """More entries of the summary, also custom properties of the artifact.

    Args:
      exec_properties: the component's parameters.
      tallies: name -> files, of what the converters reported
        (`conversion.Converted.tallies`).
    """
    del exec_properties, tallies
    return {}

  def _summarize(self, parts_dir: str) -> Dict[str, Any]:
    """The run's summary, from the parts the pipeline wrote."""
    summary = _read_json(os.path.join(parts_dir, outputs_lib.STATS_PART))
    duplicates = _read_json(
        os.path.join(parts_dir, outputs_lib.DUPLICATES_PART))
    if duplicates and self.counts_duplicates():
      summary['duplicates'] = duplicates
    table = _read_json(os.path.join(parts_dir, outputs_lib.TABLE_PART))
    if table:
      summary['metadata'] = table
      for line in table_join.summary_warnings(table):
        console.logger().warning('%s', line)
    return summary

  def counts_duplicates(self) -> bool:
    """Whether converters report content digests (byte-identical files)."""
    return False


def _assigners(input_config: example_gen_pb2.Input,
               output_config: example_gen_pb2.Output,
               split_names: Sequence[str]) -> List[splits_lib.SplitAssigner]:
  """Per input split, how its Examples are assigned to output splits."""
  split_config = output_config.split_config
  if split_config.splits:
    if len(input_config.splits) != 1:
      raise ValueError('Output hash-bucket splits need exactly one input '
                       f'split, got {len(input_config.splits)}.')
    return [splits_lib.SplitAssigner.hash_buckets(
        [s.name for s in split_config.splits],
        [s.hash_buckets for s in split_config.splits],
        split_config.partition_feature_name)]
  return [splits_lib.SplitAssigner.fixed(name) for name in split_names]


def input_patterns(exec_properties: Dict[str, Any]) -> List[str]:
  """The input splits' patterns, in input_config's order."""
  input_config = example_gen_pb2.Input()
  proto_utils.json_to_proto(
      exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
  return [split.pattern for split in input_config.splits]


def table_folder(path: str, input_base: str, key_source: str) -> str:
  """Where the relative paths of the one table at `path` start.

  Its own folder when it is inside `input_base` and holds relative paths
  (Hugging Face's convention), else `input_base` ('').
  """
  rel_path = below(path, input_base)
  if rel_path is None or key_source != table_keys.RELATIVE_PATH:
    return ''
  return listing.fixed_prefix(rel_path)


def below(path: str, input_base: str) -> Optional[str]:
  """`path` relative to `input_base`, or None when it is not inside it."""
  if listing.is_local(path):
    path = os.path.abspath(path)
  base = input_base.rstrip('/') + '/'
  return path[len(base):] if path.startswith(base) else None


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


def _read_records(folder: str, record_class) -> list:
  found = []
  for path in storage.glob(os.path.join(folder, '*.jsonl')):
    with conversion.open_file(path) as f:
      found.extend(record_class.from_json(line) for line in
                   f.read().decode('utf-8').splitlines() if line.strip())
  return found


def read_rejects(examples_uri: str) -> List[rejects_lib.Reject]:
  """All reject records of an Examples artifact (or of a kept failed run)."""
  return _read_records(os.path.join(examples_uri, rejects_lib.REJECTS_DIR),
                       rejects_lib.Reject)


def read_skips(examples_uri: str) -> List[rejects_lib.Skip]:
  """All skip records of an Examples artifact (or of a kept failed run)."""
  return _read_records(os.path.join(examples_uri, rejects_lib.SKIPPED_DIR),
                       rejects_lib.Skip)


def selection(exec_properties: Dict[str, Any]) -> selection_lib.Selection:
  """The junk rules of the component's `ignore_patterns` (and extensions)."""
  return selection_lib.Selection(
      allowed_extensions=list_property(exec_properties,
                                       ALLOWED_EXTENSIONS_KEY),
      ignore_patterns=list_property(exec_properties, IGNORE_PATTERNS_KEY))


def read_progress(progress_dir: str) -> Tuple[int, Optional[int]]:
  """(files converted, rejected or skipped so far; files listed or None)."""
  done, listed, lists = 0, 0, 0
  (match,) = FileSystems.match([os.path.join(progress_dir, '*.json')])
  for metadata in match.metadata_list:
    with conversion.open_file(metadata.path) as f:
      counts = json.loads(f.read() or '{}')
    if os.path.basename(metadata.path).startswith(conversion.LISTED_PREFIX):
      listed += counts.get('files', 0)
      lists += 1
    else:
      done += sum(counts.values())
  return done, (listed if lists else None)


def read_vocabulary(examples_uri: str) -> List[str]:
  """The artifact's class names in label order ([] without a vocabulary)."""
  path = os.path.join(examples_uri, outputs_lib.VOCABULARY_FILE)
  if not storage.exists(path):
    return []
  with conversion.open_file(path) as f:
    return f.read().decode('utf-8').splitlines()


def failed_run_dir(examples_uri: str) -> str:
  """Where a failed run's records and summary are kept (see module doc)."""
  return examples_uri.rstrip('/') + FAILED_SUFFIX


def keep_failed_run(examples_uri: str) -> str:
  """Moves rejects/, skipped/ and the summary where TFX does not delete them."""
  kept = failed_run_dir(examples_uri)
  sources, targets = [], []
  for name in (rejects_lib.REJECTS_DIR, rejects_lib.SKIPPED_DIR):
    (match,) = FileSystems.match([os.path.join(examples_uri, name, '*')])
    if match.metadata_list:
      FileSystems.mkdirs(os.path.join(kept, name))
    for metadata in match.metadata_list:
      sources.append(metadata.path)
      targets.append(os.path.join(kept, name,
                                  os.path.basename(metadata.path)))
  summary = os.path.join(examples_uri, SUMMARY_FILE)
  if FileSystems.exists(summary):
    if not FileSystems.exists(kept):
      FileSystems.mkdirs(kept)
    sources.append(summary)
    targets.append(os.path.join(kept, SUMMARY_FILE))
  if sources:
    FileSystems.rename(sources, targets)
  return kept


def _limit_error(summary: Mapping[str, Any], patterns: Sequence[str],
                 input_base: str, examples_uri: str,
                 max_fraction: float) -> Optional[str]:
  """Why the run fails: no input at all, or over max_reject_fraction."""
  kept = failed_run_dir(examples_uri)
  if not summary['input_files']:
    skipped = summary.get('skipped_files', 0)
    return (f'No input files in {input_base} (patterns {list(patterns)})'
            + (f': all {skipped} matched files were skipped, '
               f'{rejects_lib.top_reasons(summary["skips"], summary["first_paths"])}'
               f' (the skip records are kept in {kept})' if skipped else '')
            + '.')
  return rejects_lib.reject_limit_error(
      summary_lib.reasons(summary['rejects']), summary['converted_files'],
      max_fraction, summary.get('first_paths', {}), kept)


def _record(examples: artifact.Artifact, summary: Dict[str, Any],
            entries: Mapping[str, Any]) -> None:
  """Writes ingest_summary.json and the counts as custom properties."""
  outputs_lib.write_text(os.path.join(examples.uri, SUMMARY_FILE),
                         json.dumps(summary, indent=2, sort_keys=True))
  for key in ('input_files', 'converted_files', 'rejected_files',
              'skipped_files', 'examples', 'series', 'reencoded_files'):
    examples.set_int_custom_property(f'num_{key}', summary[key])
  examples.set_string_custom_property(
      'reject_counts', json.dumps(summary['rejects'], sort_keys=True))
  examples.set_string_custom_property(
      'skip_counts', json.dumps(summary['skips'], sort_keys=True))
  examples.set_string_custom_property(
      'split_counts', json.dumps(summary['splits'], sort_keys=True))
  examples.set_int_custom_property('num_repaired_files',
                                   summary['repaired_files']['count'])
  for key, value in sorted({**summary.get('duplicates', {}),
                            **summary.get('metadata', {}),
                            **entries}.items()):
    if isinstance(value, int):
      examples.set_int_custom_property(key, value)
    elif isinstance(value, dict):
      examples.set_string_custom_property(key, json.dumps(value))

