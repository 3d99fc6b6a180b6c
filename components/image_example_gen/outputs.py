"""The Beam steps after conversion: Split shards, rejects, skips, summary parts.

Free of TFX and TensorFlow imports on purpose: Beam workers unpickle every
function and class used in a pipeline step, importing the module that
defines it, and importing TFX (through an executor module) cost each worker
~8 CPU-seconds before its first file (benchmarks/worker_startup.py;
tests/test_worker_imports.py keeps it so).
"""

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from image_example_gen import conversion
from image_example_gen import records
from image_example_gen import rejects as rejects_lib
from image_example_gen import summary as summary_lib
from image_example_gen import table_join
from image_example_gen import table_values

STATS_PART = 'stats.json'
TABLE_PART = 'table.json'
DUPLICATES_PART = 'duplicates.json'
VOCABULARY_FILE = 'label_vocabulary.txt'
SUMMARY_FILE = 'ingest_summary.json'


def write_text(path: str, text: str) -> None:
  """Writes `text` (UTF-8) to `path` on any Beam filesystem."""
  with FileSystems.create(path) as f:
    f.write(text.encode('utf-8'))


def write_json(value: Any, path: str) -> None:
  write_text(path, json.dumps(value, sort_keys=True))


def write_vocabulary(names: Sequence[str], output_uri: str) -> None:
  """`label_vocabulary.txt`: line i is the class name of label i."""
  if names:
    write_text(os.path.join(output_uri, VOCABULARY_FILE),
               ''.join(f'{name}\n' for name in names))


class _MergeIngestStatsFn(beam.CombineFn):

  def create_accumulator(self):
    return summary_lib.IngestStats()

  def add_input(self, accumulator, stats):
    accumulator.merge(stats)
    return accumulator

  def merge_accumulators(self, accumulators):
    return summary_lib.merge_all(accumulators)

  def extract_output(self, accumulator):
    return accumulator


class _SplitsPerDigestFn(beam.CombineFn):
  """split -> files, for one content digest."""

  def create_accumulator(self):
    return {}

  def add_input(self, accumulator, split):
    accumulator[split] = accumulator.get(split, 0) + 1
    return accumulator

  def merge_accumulators(self, accumulators):
    merged = {}
    for accumulator in accumulators:
      for split, n in accumulator.items():
        merged[split] = merged.get(split, 0) + n
    return merged

  def extract_output(self, accumulator):
    return accumulator


class _DuplicateCountsFn(beam.CombineFn):
  """Counts byte-identical files from (digest, {split: files}) groups."""

  def create_accumulator(self):
    return [0, 0, 0]

  def add_input(self, accumulator, group):
    _, by_split = group
    files = sum(by_split.values())
    if files > 1:
      accumulator[0] += files
      accumulator[1] += 1
      if len(by_split) > 1:
        accumulator[2] += files
    return accumulator

  def merge_accumulators(self, accumulators):
    return [sum(values) for values in zip(*accumulators)]

  def extract_output(self, accumulator):
    return {'duplicate_images': accumulator[0],
            'duplicate_groups': accumulator[1],
            'duplicate_images_across_splits': accumulator[2]}


def _record_to_json(record) -> str:
  """A Reject or Skip record as one JSON line."""
  return record.to_json()


def _pairs(pairs: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
  return pairs


def _stats_to_json(stats: summary_lib.IngestStats,
                   split_names: Sequence[str]) -> Dict[str, Any]:
  return stats.to_json(split_names)


def _table_to_json(stats: table_join.TableStats,
                   list_keys: bool) -> Dict[str, Any]:
  return stats.to_json(list_keys)


def _write_names(vocabulary: table_values.Vocabulary,
                 output_uri: str) -> None:
  write_vocabulary(list(vocabulary.names), output_uri)


@beam.ptransform_fn
def WriteOutputs(  # pylint: disable=invalid-name
    outputs: Mapping[str, beam.PCollection], split_uris: Mapping[str, str],
    output_uri: str, parts_dir: str, temp_dir: str, shard_bytes: int,
    list_table_keys: bool, vocabulary_uri: Optional[str] = None) -> None:
  """Writes what `conversion.ConvertFiles` returned.

  Args:
    outputs: ConvertFiles' outputs.
    split_uris: output split name -> its `Split-<name>` folder.
    output_uri: the Examples artifact's folder (rejects and skips go below
      it).
    parts_dir: where the summary parts go (STATS_PART, DUPLICATES_PART,
      TABLE_PART), for the executor to read after the run.
    temp_dir: scratch folder of the shards (`records.WriteExamples`).
    shard_bytes: the size at which a shard is closed.
    list_table_keys: whether the table summary lists keys of rows without
      a file.
    vocabulary_uri: where the join's label vocabulary is written, if any.
  """
  for name, split_uri in split_uris.items():
    _ = (outputs[conversion.SPLIT_TAG_PREFIX + name]
         | f'WriteSplit[{name}]' >> records.WriteExamples(
             split_uri, os.path.join(temp_dir, name), shard_bytes))
  for tag, folder, name in (
      (conversion.REJECTS, rejects_lib.REJECTS_DIR, 'Rejects'),
      (conversion.SKIPS, rejects_lib.SKIPPED_DIR, 'Skips')):
    _ = (outputs[tag]
         | f'{name}ToJson' >> beam.Map(_record_to_json)
         | f'Write{name}' >> beam.io.WriteToText(
             os.path.join(output_uri, folder, folder),
             file_name_suffix='.jsonl'))
  _ = (outputs[conversion.STATS]
       | 'MergeStats' >> beam.CombineGlobally(_MergeIngestStatsFn())
       | 'StatsToJson' >> beam.Map(_stats_to_json, list(split_uris))
       | 'WriteStats' >> beam.Map(write_json,
                                  os.path.join(parts_dir, STATS_PART)))
  _ = (outputs[conversion.DIGESTS]
       | 'Digests' >> beam.FlatMap(_pairs)
       | 'SplitsPerDigest' >> beam.CombinePerKey(_SplitsPerDigestFn())
       | 'CountDuplicates' >> beam.CombineGlobally(_DuplicateCountsFn())
       | 'WriteDuplicates' >> beam.Map(
           write_json, os.path.join(parts_dir, DUPLICATES_PART)))
  if table_join.TABLE_STATS in outputs:
    _ = (outputs[table_join.TABLE_STATS]
         | 'TableToJson' >> beam.Map(_table_to_json, list_table_keys)
         | 'WriteTable' >> beam.Map(write_json,
                                    os.path.join(parts_dir, TABLE_PART)))
  if vocabulary_uri is not None and table_join.VOCABULARY in outputs:
    _ = (outputs[table_join.VOCABULARY]
         | 'WriteVocabulary' >> beam.Map(_write_names, vocabulary_uri))
