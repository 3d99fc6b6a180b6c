"""The keyed join of a metadata table to the input files, in Beam.

One transform for both ExampleGens (DicomExampleGen's labels CSV,
ImageFolderExampleGen's metadata file). The table is streamed row by row;
column types and the label vocabulary are combined over the whole table; rows
and files meet in a `CoGroupByKey` on the join key, so no worker ever holds
the table (a million-row CSV is spread over the workers by key like any
other data). Only paths and parsed rows are shuffled, never images.

Every file leaves the join with a `JoinResult`: its row, or the reason its
files are rejected:
  * `no_metadata_row`: no row has the file's key (or the file has no key);
  * `duplicate_metadata_row`: several rows have it;
  * `bad_metadata_value`: its row does not parse (`tables.parse_row`);
  * `unknown_class`: its label is not in `class_names`.
Rows whose key no file has are counted (`metadata_rows_without_file`, with
the first few keys when keys are file paths or names, never when they come
from DICOM attributes such as UIDs).
"""

import dataclasses
import heapq
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.transforms import window
from apache_beam.utils import windowed_value

from image_example_gen import listing
from image_example_gen import rejects
from image_example_gen import tables

Row = tables.Row
# How many keys of rows without a file the summary lists.
FIRST_KEYS = 5

TABLE_STATS = 'table_stats'
VOCABULARY = 'vocabulary'
_KEYED = 'keyed'
_UNKEYED = 'unkeyed'
_STATS = 'stats'


@dataclasses.dataclass(frozen=True)
class JoinResult:
  """A file's row, or why the file is rejected."""
  row: Optional[Row]
  reason: str = ''
  detail: str = ''

  def row_or_raise(self) -> Row:
    if self.reason:
      raise rejects.RejectError(self.reason, self.detail)
    return self.row


@dataclasses.dataclass
class TableStats:
  """Mergeable counts of the join."""
  rows: int = 0
  matched_rows: int = 0
  rows_without_file: int = 0
  rows_without_key: int = 0
  duplicate_keys: int = 0
  bad_rows: int = 0
  first_keys_without_file: List[str] = dataclasses.field(default_factory=list)
  # Extra column -> its feature type as inferred over the whole table.
  column_types: Dict[str, str] = dataclasses.field(default_factory=dict)

  def merge(self, other: 'TableStats') -> None:
    for field in ('rows', 'matched_rows', 'rows_without_file',
                  'rows_without_key', 'duplicate_keys', 'bad_rows'):
      setattr(self, field, getattr(self, field) + getattr(other, field))
    self.first_keys_without_file = heapq.nsmallest(
        FIRST_KEYS, set(self.first_keys_without_file) |
        set(other.first_keys_without_file))
    self.column_types.update(other.column_types)

  def to_json(self, list_keys: bool) -> Dict[str, Any]:
    result = {'metadata_rows': self.rows,
              'metadata_rows_matched': self.matched_rows,
              'metadata_rows_without_file': self.rows_without_file,
              'metadata_rows_without_key': self.rows_without_key,
              'metadata_duplicate_keys': self.duplicate_keys,
              'metadata_bad_rows': self.bad_rows,
              'metadata_column_types': dict(sorted(self.column_types.items()))}
    if list_keys:
      result['metadata_rows_without_file_first_keys'] = sorted(
          self.first_keys_without_file)
    return result


class _MergeStatsFn(beam.CombineFn):

  def create_accumulator(self):
    return TableStats()

  def add_input(self, accumulator, stats):
    accumulator.merge(stats)
    return accumulator

  def merge_accumulators(self, accumulators):
    merged = TableStats()
    for accumulator in accumulators:
      merged.merge(accumulator)
    return merged

  def extract_output(self, accumulator):
    return accumulator


class _ObserveTypesFn(beam.CombineFn):
  """Column -> (type order, is list) over every row (`tables.observe`)."""

  def __init__(self, columns: Sequence[str]):
    self._columns = tuple(columns)

  def create_accumulator(self):
    return {}

  def add_input(self, accumulator, numbered):
    _, record = numbered
    for column in self._columns:
      if column in record:
        tables.observe(accumulator, column, record[column])
    return accumulator

  def merge_accumulators(self, accumulators):
    merged = {}
    for accumulator in accumulators:
      for column, (order, is_list) in accumulator.items():
        old_order, old_list = merged.get(column, (-1, False))
        merged[column] = (max(order, old_order), is_list or old_list)
    return merged

  def extract_output(self, accumulator):
    return accumulator


class _LabelValuesFn(beam.CombineFn):
  """The set of label values of all parsed rows."""

  def create_accumulator(self):
    return set()

  def add_input(self, accumulator, keyed):
    parsed = keyed[1]
    if isinstance(parsed, tables.ParsedRow):
      accumulator.update(parsed.labels)
    return accumulator

  def merge_accumulators(self, accumulators):
    return set().union(*accumulators)

  def extract_output(self, accumulator):
    return sorted(accumulator)


def _in_global_window(value: Any) -> windowed_value.WindowedValue:
  return windowed_value.WindowedValue(
      value, window.GlobalWindow().max_timestamp(), (window.GlobalWindow(),))


class _ParseRowsFn(beam.DoFn):
  """(key, ParsedRow or RowError) per row; counts rows without a key."""

  def __init__(self, spec: tables.TableSpec):
    self._spec = spec

  def start_bundle(self):
    self._stats = TableStats()

  def process(self, numbered, observed) -> Iterator[Tuple[str, Any]]:
    line, record = numbered
    self._stats.rows += 1
    key = tables.table_key(record.get(self._spec.key_column),
                           self._spec.key_source)
    if key is None:
      self._stats.rows_without_key += 1
      return
    types = tables.column_types(observed, self._spec.extra_columns)
    self._stats.column_types = {c: str(t) for c, t in types.items()}
    try:
      yield key, tables.parse_row(self._spec, types, line, record)
    except tables.RowError as e:
      yield key, e

  def finish_bundle(self):
    yield beam.pvalue.TaggedOutput(_STATS, _in_global_window(self._stats))


class _KeyFilesFn(beam.DoFn):
  """(key, (split index, file)); files without a key or unreadable pass by."""

  def __init__(self, key_fns: Sequence[Callable[[listing.ListedFile],
                                                Optional[str]]]):
    self._key_fns = tuple(key_fns)

  def process(self, indexed):
    index, item = indexed
    if item.problem:  # Rejected `unreadable` by the conversion.
      yield beam.pvalue.TaggedOutput(_UNKEYED, (index, item, None))
      return
    try:
      key = self._key_fns[index](item)
    except rejects.RejectError as e:
      yield beam.pvalue.TaggedOutput(
          _UNKEYED, (index, item, JoinResult(None, e.reason, e.detail)))
      return
    if key is None:
      yield beam.pvalue.TaggedOutput(_UNKEYED, (index, item, JoinResult(
          None, rejects.NO_METADATA_ROW, 'the file has no join key')))
      return
    yield key, (index, item)


class _ResolveFn(beam.DoFn):
  """Files and rows of one key -> (split index, file, JoinResult)."""

  def __init__(self, spec: tables.TableSpec, show_keys: bool):
    self._spec = spec
    self._show_keys = show_keys

  def start_bundle(self):
    self._stats = TableStats()

  def process(self, grouped, vocabulary: tables.Vocabulary):
    key, groups = grouped
    files, rows = list(groups['files']), list(groups['rows'])
    if not files:
      self._stats.rows_without_file += len(rows)
      if self._show_keys:
        self._stats.first_keys_without_file = heapq.nsmallest(
            FIRST_KEYS, set(self._stats.first_keys_without_file) | {key})
      return
    self._stats.matched_rows += len(rows)
    result = self._result(key, rows, vocabulary)
    for index, item in files:
      yield index, item, result

  def _result(self, key: str, rows: List[Any],
              vocabulary: tables.Vocabulary) -> JoinResult:
    named = f' {key!r}' if self._show_keys else ''
    if not rows:
      return JoinResult(None, rejects.NO_METADATA_ROW,
                        f'no row has the {self._spec.key_column}{named}')
    if len(rows) > 1:
      self._stats.duplicate_keys += 1
      lines = sorted(getattr(r, 'line', 0) for r in rows)
      return JoinResult(
          None, rejects.DUPLICATE_METADATA_ROW,
          f'{len(rows)} rows have the {self._spec.key_column}{named}'
          + (f' (lines {", ".join(map(str, lines))})' if all(lines) else ''))
    (parsed,) = rows
    try:
      if isinstance(parsed, tables.RowError):
        raise parsed
      labels, names = tables.resolve_labels(
          vocabulary, vocabulary.index, parsed, self._spec.label_column or '')
    except tables.RowError as e:
      self._stats.bad_rows += 1
      return JoinResult(None, e.reason, e.detail)
    return JoinResult(Row(labels, names, parsed.group, dict(parsed.extras)))

  def finish_bundle(self):
    yield beam.pvalue.TaggedOutput(_STATS, _in_global_window(self._stats))


class _Lines(beam.DoFn):
  """Streams the table's rows (one worker reads it, rows go on by key)."""

  def __init__(self, spec: tables.TableSpec, open_fn: tables.OpenFn):
    self._spec = spec
    self._open_fn = open_fn

  def process(self, path: str):
    del path
    yield from tables.iter_records(self._spec, self._open_fn)


@beam.ptransform_fn
def JoinTable(  # pylint: disable=invalid-name
    files: beam.PCollection, spec: tables.TableSpec,
    key_fns: Sequence[Callable[[listing.ListedFile], Optional[str]]],
    open_fn: tables.OpenFn, class_names: Optional[Sequence[str]] = None
) -> Dict[str, beam.PCollection]:
  """Joins (split index, ListedFile) to the table's rows.

  Args:
    files: (input split index, file) for every listed file.
    spec: the table and its columns.
    key_fns: per input split, the join key of a file (None: no key; may
      raise rejects.RejectError).
    open_fn: opens the table for binary reading (`open_fn(path)`).
    class_names: the label vocabulary in label order, if fixed.

  Returns:
    'items': (split index, file, JoinResult or None for unreadable files);
    TABLE_STATS: one TableStats; VOCABULARY: one tables.Vocabulary.
  """
  pipeline = files.pipeline
  keyed = files | 'KeyFiles' >> beam.ParDo(_KeyFilesFn(key_fns)).with_outputs(
      _UNKEYED, main=_KEYED)
  records = (pipeline
             | 'TablePath' >> beam.Create([spec.path])
             | 'ReadTable' >> beam.ParDo(_Lines(spec, open_fn)))
  observed = records | 'ColumnTypes' >> beam.CombineGlobally(
      _ObserveTypesFn(spec.extra_columns))
  parsed = records | 'ParseRows' >> beam.ParDo(
      _ParseRowsFn(spec),
      observed=beam.pvalue.AsSingleton(observed)).with_outputs(
          _STATS, main='rows')
  vocabulary = (parsed.rows
                | 'LabelValues' >> beam.CombineGlobally(_LabelValuesFn())
                | 'Vocabulary' >> beam.Map(
                    tables.make_vocabulary, class_names, spec.integer_labels))
  show_keys = spec.key_source in (tables.RELATIVE_PATH, tables.FILE_STEM)
  joined = (
      {'files': keyed[_KEYED], 'rows': parsed.rows}
      | 'CoGroup' >> beam.CoGroupByKey()
      | 'Resolve' >> beam.ParDo(
          _ResolveFn(spec, show_keys),
          vocabulary=beam.pvalue.AsSingleton(vocabulary)).with_outputs(
              _STATS, main='items'))
  stats = ((parsed[_STATS], joined[_STATS])
           | 'FlattenStats' >> beam.Flatten()
           | 'MergeStats' >> beam.CombineGlobally(_MergeStatsFn()))
  items = ((joined.items, keyed[_UNKEYED])
           | 'FlattenItems' >> beam.Flatten())
  return {'items': items, TABLE_STATS: stats, VOCABULARY: vocabulary}
