"""The keyed join of metadata tables, and labels from file names, in Beam.

One transform for both ExampleGens (DicomExampleGen's and
ImageFolderExampleGen's tables, and ImageFolderExampleGen's `label_pattern`).
Each input split has its table (one table for all, or one per split folder)
or none. The tables are streamed row by row; column types, missing values
and the label vocabulary are combined over every row (and every label taken
from a file name); rows and files meet in a `CoGroupByKey` on the join key,
so no worker ever holds a table (a million-row CSV is spread over the
workers by key like any other data). Only paths and parsed rows are
shuffled, never images.

Every file leaves the join with a `JoinResult`: its row (with the labels of
its name, when labels come from names), or the reason it is rejected:
  * `no_metadata_row`: no row has the file's key (or the file has no key);
  * `duplicate_metadata_row`: several rows have it;
  * `bad_metadata_value`: its row does not parse (`table_values.parse_row`);
  * `unknown_class`: its label is not in `class_names`;
  * whatever its converter's key or label function raises
    (`no_label_in_name`).
Rows whose key no file has are counted (`metadata_rows_without_file`, with
the first few keys when keys are file paths or names, never when they come
from DICOM attributes or patterns such as patient folders), and so are rows
whose relative path leaves the table's folder (`..`, absolute, a URL), with
the key as written.
"""

import dataclasses
import heapq
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional,
                    Sequence, Tuple)

import apache_beam as beam
from apache_beam.transforms import window
from apache_beam.utils import windowed_value

from image_example_gen import listing
from image_example_gen import rejects
from image_example_gen import table_keys
from image_example_gen import table_values
from image_example_gen import tables

Row = table_values.Row
KeyFn = Callable[[listing.ListedFile], Optional[str]]
# A file's class from its name, or None when labels do not come from names.
LabelFn = Callable[[listing.ListedFile], Optional[str]]
# How many keys of rows without a file the summary lists.
FIRST_KEYS = 5

TABLE_STATS = 'table_stats'
VOCABULARY = 'vocabulary'
_KEYED = 'keyed'
_NAMED = 'named'
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
  """Mergeable counts of the join, and what became of each column."""
  rows: int = 0
  matched_rows: int = 0
  rows_without_file: int = 0
  rows_without_key: int = 0
  duplicate_keys: int = 0
  bad_rows: int = 0
  first_keys_without_file: List[str] = dataclasses.field(default_factory=list)
  # Exported column -> its feature type, decided over every row.
  column_types: Dict[str, str] = dataclasses.field(default_factory=dict)
  # Exported column -> rows without a value.
  missing_values: Dict[str, int] = dataclasses.field(default_factory=dict)
  # Column -> why it is not exported.
  columns_left_out: Dict[str, str] = dataclasses.field(default_factory=dict)
  # Text column of mostly numbers -> the first text value and counts.
  numbers_made_text: Dict[str, Dict[str, Any]] = dataclasses.field(
      default_factory=dict)

  def merge(self, other: 'TableStats') -> None:
    for field in ('rows', 'matched_rows', 'rows_without_file',
                  'rows_without_key', 'duplicate_keys', 'bad_rows'):
      setattr(self, field, getattr(self, field) + getattr(other, field))
    self.add_keys(other.first_keys_without_file)

  def add_keys(self, keys: Sequence[str]) -> None:
    self.first_keys_without_file = heapq.nsmallest(
        FIRST_KEYS, set(self.first_keys_without_file) | set(keys))

  def to_json(self, list_keys: bool) -> Dict[str, Any]:
    result = {'metadata_rows': self.rows,
              'metadata_rows_matched': self.matched_rows,
              'metadata_rows_without_file': self.rows_without_file,
              'metadata_rows_without_key': self.rows_without_key,
              'metadata_duplicate_keys': self.duplicate_keys,
              'metadata_bad_rows': self.bad_rows,
              'metadata_column_types': dict(sorted(self.column_types.items())),
              'metadata_missing_values': dict(sorted(
                  self.missing_values.items()))}
    if self.columns_left_out:
      result['metadata_columns_left_out'] = dict(sorted(
          self.columns_left_out.items()))
    if self.numbers_made_text:
      result['metadata_numbers_made_text'] = dict(sorted(
          self.numbers_made_text.items()))
    if list_keys:
      result['metadata_rows_without_file_first_keys'] = sorted(
          self.first_keys_without_file)
    return result


def summary_warnings(metadata: Mapping[str, Any]) -> List[str]:
  """Log lines for what the user should know of the table's columns.

  Args:
    metadata: `TableStats.to_json`'s output (the summary's `metadata`).
  """
  lines = [f'Metadata column {column!r} is not exported: it {why}.'
           for column, why in metadata.get('metadata_columns_left_out',
                                           {}).items()]
  for column, found in metadata.get('metadata_numbers_made_text', {}).items():
    lines.append(
        f'Metadata column {column!r} is text, not numbers, because of '
        f'{found["value"]!r} on line {found["line"]} of {found["file"]} '
        f'({found["text_values"]} text values, {found["number_values"]} '
        f'numbers). Declare column_types={{{column!r}: \'float\'}} to reject '
        'the rows that do not parse instead, or clean the table.')
  return lines


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


class _ObserveFn(beam.CombineFn):
  """`table_values.TableObservation` of every well-formed row."""

  def __init__(self, specs: Sequence[tables.TableSpec]):
    self._specs = tuple(specs)

  def create_accumulator(self):
    return table_values.TableObservation()

  def add_input(self, accumulator, numbered):
    table, line, record = numbered
    if tables.MALFORMED not in record:
      accumulator.add(record, self._specs[table].candidates(record), table,
                      line)
    return accumulator

  def merge_accumulators(self, accumulators):
    merged = table_values.TableObservation()
    for accumulator in accumulators:
      merged.merge(accumulator)
    return merged

  def extract_output(self, accumulator):
    return accumulator


class _DistinctFn(beam.CombineFn):
  """The sorted distinct values (label values: class names, few)."""

  def create_accumulator(self):
    return set()

  def add_input(self, accumulator, value):
    accumulator.add(value)
    return accumulator

  def merge_accumulators(self, accumulators):
    return set().union(*accumulators)

  def extract_output(self, accumulator):
    return sorted(accumulator)


def _in_global_window(value: Any) -> windowed_value.WindowedValue:
  return windowed_value.WindowedValue(
      value, window.GlobalWindow().max_timestamp(), (window.GlobalWindow(),))


def _columns(specs: Sequence[tables.TableSpec],
             observation: table_values.TableObservation
            ) -> table_values.Columns:
  """The exported columns (the parameters are the same for every table)."""
  return table_values.decide_columns(observation, specs[0].extra_columns,
                                     specs[0].column_types)


class _ParseRowsFn(beam.DoFn):
  """(key, ParsedRow or RowError) per row; counts rows without a key."""

  def __init__(self, specs: Sequence[tables.TableSpec], show_keys: bool):
    self._specs = tuple(specs)
    self._show_keys = show_keys

  def start_bundle(self):
    self._stats = TableStats()
    self._decided = None

  def process(self, numbered, observation) -> Iterator[Tuple[str, Any]]:
    table, line, record = numbered
    spec = self._specs[table]
    self._stats.rows += 1
    cell = record.get(spec.key_column)
    if (spec.key_source == table_keys.RELATIVE_PATH and
        table_keys.leaves_folder(cell)):
      self._stats.rows_without_file += 1
      if self._show_keys:
        self._stats.add_keys([cell])
      return
    key = table_keys.table_key(cell, spec.key_source, spec.folder)
    if key is None:
      self._stats.rows_without_key += 1
      return
    if tables.MALFORMED in record:
      yield key, table_values.RowError(
          f'{spec.name} {record[tables.MALFORMED]}')
      return
    if self._decided is None:
      self._decided = _columns(self._specs, observation)
    try:
      yield key, table_values.parse_row(
          record, line, spec.label_column, spec.label_separator,
          spec.integer_labels, spec.group_column, self._decided)
    except table_values.RowError as e:
      yield key, table_values.RowError(f'{spec.name} {e.detail}', e.reason)

  def finish_bundle(self):
    yield beam.pvalue.TaggedOutput(_STATS, _in_global_window(self._stats))


class _KeyFilesFn(beam.DoFn):
  """Files -> (key, (index, file, name label)) for splits with a table,
  (index, file, name label) for splits without; problems pass by."""

  def __init__(self, key_fns: Sequence[KeyFn], label_fns: Sequence[LabelFn],
               has_table: Sequence[bool]):
    self._key_fns = tuple(key_fns)
    self._label_fns = tuple(label_fns)
    self._has_table = tuple(has_table)

  def process(self, indexed):
    index, item = indexed
    if item.problem:  # Rejected `unreadable` by the conversion.
      yield beam.pvalue.TaggedOutput(_UNKEYED, (index, item, None))
      return
    try:
      label = self._label_fns[index](item)
      key = self._key_fns[index](item) if self._has_table[index] else None
    except rejects.RejectError as e:
      yield beam.pvalue.TaggedOutput(
          _UNKEYED, (index, item, JoinResult(None, e.reason, e.detail)))
      return
    if not self._has_table[index]:
      yield beam.pvalue.TaggedOutput(_NAMED, (index, item, label))
    elif key is None:
      yield beam.pvalue.TaggedOutput(_UNKEYED, (index, item, JoinResult(
          None, rejects.NO_METADATA_ROW, 'the file has no join key')))
    else:
      yield key, (index, item, label)


def _with_name_label(result: JoinResult, label: Optional[str],
                     vocabulary: table_values.Vocabulary) -> JoinResult:
  """The file's result, labelled by its name when `label` is set."""
  if label is None or result.reason:
    return result
  row = result.row or Row()
  try:
    ids, names = table_values.resolve_labels(
        vocabulary, vocabulary.index, [label], 'the file name')
  except table_values.RowError as e:
    return JoinResult(None, e.reason, e.detail)
  return JoinResult(dataclasses.replace(row, labels=ids, label_names=names))


class _ResolveFn(beam.DoFn):
  """Files and rows of one key -> (split index, file, JoinResult)."""

  def __init__(self, key_column: str, show_keys: bool):
    self._key_column = key_column
    self._show_keys = show_keys

  def start_bundle(self):
    self._stats = TableStats()

  def process(self, grouped, vocabulary: table_values.Vocabulary):
    key, groups = grouped
    files, rows = list(groups['files']), list(groups['rows'])
    if not files:
      self._stats.rows_without_file += len(rows)
      if self._show_keys:
        self._stats.add_keys([key])
      return
    self._stats.matched_rows += len(rows)
    result = self._result(key, rows, vocabulary)
    for index, item, label in files:
      yield index, item, _with_name_label(result, label, vocabulary)

  def _result(self, key: str, rows: List[Any],
              vocabulary: table_values.Vocabulary) -> JoinResult:
    named = f' {key!r}' if self._show_keys else ''
    if not rows:
      return JoinResult(None, rejects.NO_METADATA_ROW,
                        f'no row has the {self._key_column}{named}')
    if len(rows) > 1:
      self._stats.duplicate_keys += 1
      lines = sorted(getattr(r, 'line', 0) for r in rows)
      return JoinResult(
          None, rejects.DUPLICATE_METADATA_ROW,
          f'{len(rows)} rows have the {self._key_column}{named}'
          + (f' (lines {", ".join(map(str, lines))})' if all(lines) else ''))
    (parsed,) = rows
    try:
      if isinstance(parsed, table_values.RowError):
        raise parsed
      labels, names = table_values.resolve_labels(
          vocabulary, vocabulary.index, parsed.labels, f'line {parsed.line}')
    except table_values.RowError as e:
      self._stats.bad_rows += 1
      return JoinResult(None, e.reason, e.detail)
    return JoinResult(Row(labels, names, parsed.group, dict(parsed.extras)))

  def finish_bundle(self):
    yield beam.pvalue.TaggedOutput(_STATS, _in_global_window(self._stats))


def _named(named: Tuple[int, listing.ListedFile, Optional[str]],
           vocabulary: table_values.Vocabulary):
  index, item, label = named
  return index, item, _with_name_label(JoinResult(Row()), label, vocabulary)


def _row_labels(keyed: Tuple[str, Any]) -> Sequence[str]:
  parsed = keyed[1]
  return parsed.labels if isinstance(parsed, table_values.ParsedRow) else ()


def _file_label(keyed: Tuple[str, Tuple[int, Any, Optional[str]]]
               ) -> Sequence[str]:
  label = keyed[1][2]
  return () if label is None else (label,)


def _named_label(named: Tuple[int, Any, Optional[str]]) -> Sequence[str]:
  return () if named[2] is None else (named[2],)


def _add_columns(stats: TableStats,
                 observation: table_values.TableObservation,
                 specs: Sequence[tables.TableSpec]) -> TableStats:
  """`stats` with what became of each column."""
  decided = _columns(specs, observation)
  stats.column_types = {c: str(t) for c, t in decided.types.items()}
  stats.columns_left_out = dict(decided.left_out)
  for column, column_type in decided.types.items():
    found = observation.columns.get(column, table_values.ColumnStats())
    stats.missing_values[column] = observation.rows - found.values
    if (not column_type.declared and column_type.kind == table_values.BYTES
        and table_values.numbers_made_text(found)):
      table, line, value = found.first_text
      stats.numbers_made_text[column] = {
          'value': value, 'line': line, 'file': specs[table].name,
          'text_values': found.texts, 'number_values': found.numbers}
  return stats


class _ReadTableFn(beam.DoFn):
  """Streams a table's rows (one worker reads it, rows go on by key)."""

  def __init__(self, open_fn: tables.OpenFn):
    self._open_fn = open_fn

  def process(self, indexed: Tuple[int, tables.TableSpec]):
    table, spec = indexed
    for line, record in tables.iter_records(spec, self._open_fn):
      yield table, line, record


@beam.ptransform_fn
def JoinTable(  # pylint: disable=invalid-name
    files: beam.PCollection,
    split_tables: Sequence[Optional[tables.TableSpec]],
    key_fns: Sequence[KeyFn], label_fns: Sequence[LabelFn],
    open_fn: tables.OpenFn, class_names: Optional[Sequence[str]] = None
) -> Dict[str, beam.PCollection]:
  """Joins (split index, ListedFile) to the tables' rows and name labels.

  Args:
    files: (input split index, file) for every listed file.
    split_tables: per input split, its table (None: none; then labels come
      from names). Splits may share one table.
    key_fns: per input split, the join key of a file (None: no key; may
      raise rejects.RejectError).
    label_fns: per input split, the class of a file from its name (None:
      labels do not come from names; may raise rejects.RejectError).
    open_fn: opens a table for binary reading (`open_fn(path)`).
    class_names: the label vocabulary in label order, if fixed.

  Returns:
    'items': (split index, file, JoinResult or None for unreadable files);
    VOCABULARY: one table_values.Vocabulary; TABLE_STATS (with tables): one
    TableStats.
  """
  pipeline = files.pipeline
  specs = list({spec.path: spec for spec in split_tables if spec}.values())
  keyed = files | 'KeyFiles' >> beam.ParDo(_KeyFilesFn(
      key_fns, label_fns, [spec is not None for spec in split_tables])
  ).with_outputs(_UNKEYED, _NAMED, main=_KEYED)
  labels = [keyed[_KEYED] | 'FileLabels' >> beam.FlatMap(_file_label),
            keyed[_NAMED] | 'NamedLabels' >> beam.FlatMap(_named_label)]
  outputs = {}
  if specs:
    show_keys = specs[0].key_source in table_keys.NAMED_SOURCES
    records = (pipeline
               | 'Tables' >> beam.Create(list(enumerate(specs)))
               | 'ReadTable' >> beam.ParDo(_ReadTableFn(open_fn)))
    observation = records | 'Observe' >> beam.CombineGlobally(
        _ObserveFn(specs))
    parsed = records | 'ParseRows' >> beam.ParDo(
        _ParseRowsFn(specs, show_keys),
        observation=beam.pvalue.AsSingleton(observation)).with_outputs(
            _STATS, main='rows')
    labels.append(parsed.rows | 'RowLabels' >> beam.FlatMap(_row_labels))
  vocabulary = (labels
                | 'FlattenLabels' >> beam.Flatten()
                | 'LabelValues' >> beam.CombineGlobally(_DistinctFn())
                | 'Vocabulary' >> beam.Map(
                    table_values.make_vocabulary, class_names,
                    any(spec.integer_labels for spec in specs)))
  named = keyed[_NAMED] | 'LabelByName' >> beam.Map(
      _named, vocabulary=beam.pvalue.AsSingleton(vocabulary))
  items = [keyed[_UNKEYED], named]
  if specs:
    joined = (
        {'files': keyed[_KEYED], 'rows': parsed.rows}
        | 'CoGroup' >> beam.CoGroupByKey()
        | 'Resolve' >> beam.ParDo(
            _ResolveFn(specs[0].key_column, show_keys),
            vocabulary=beam.pvalue.AsSingleton(vocabulary)).with_outputs(
                _STATS, main='items'))
    items.append(joined.items)
    outputs[TABLE_STATS] = (
        (parsed[_STATS], joined[_STATS])
        | 'FlattenStats' >> beam.Flatten()
        | 'MergeStats' >> beam.CombineGlobally(_MergeStatsFn())
        | 'Columns' >> beam.Map(
            _add_columns, beam.pvalue.AsSingleton(observation), specs))
  outputs['items'] = items | 'FlattenItems' >> beam.Flatten()
  outputs[VOCABULARY] = vocabulary
  return outputs
