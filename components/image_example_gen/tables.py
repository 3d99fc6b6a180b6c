"""Metadata tables beside the images: what a table is, and reading its rows.

One table layer for both ExampleGens: DicomExampleGen's labels table (RSNA's
`train.csv`) and ImageFolderExampleGen's metadata file (Hugging Face's
`metadata.csv` / `metadata.jsonl`, Kaggle's `train.csv`). Pure functions;
`table_keys` forms the join keys, `table_values` types and parses the rows,
and `table_join` runs them in Beam and joins the rows to the files.

Formats, by extension: `.csv` (UTF-8, a header row; a byte order mark, CRLF
and blank lines are accepted; cells are stripped), `.jsonl` / `.json` (one
JSON object per line) and `.parquet`. Rows are streamed, never held whole.

Problems with the table itself (unreadable, not UTF-8, no header, no rows, a
configured column missing) raise ValueError naming the file and the columns
it has. A row with another number of fields than the header, or a JSONL line
that is no JSON object, is marked `MALFORMED`: its files are rejected.
"""

import collections
import csv
import dataclasses
import io
import json
import posixpath
from typing import (Any, Callable, Dict, Iterable, Iterator, Mapping,
                    Optional, Tuple)

from image_example_gen import table_keys
from image_example_gen import table_values

CSV = 'csv'
JSONL = 'jsonl'
PARQUET = 'parquet'
_EXTENSIONS = {'.csv': CSV, '.jsonl': JSONL, '.json': JSONL,
               '.parquet': PARQUET}
# The names of a table found by itself (Hugging Face's), in this order.
DEFAULT_METADATA_FILES = ('metadata.csv', 'metadata.jsonl', 'metadata.parquet')
DEFAULT_LABEL_COLUMN = 'label'
# The key of a row's record that says why the row is malformed.
MALFORMED = '\x00malformed'
OpenFn = Callable[[str], Any]  # Opens a path or URI for binary reading.


@dataclasses.dataclass(frozen=True)
class TableSpec:
  """How a table is read and joined to the files.

  Attributes:
    path: the table (any path `open_fn` opens: local or a filesystem URI).
    key_column: the column joined to each file.
    key_source: what the key column holds (`table_keys`): 'relative_path',
      'file_stem', a regular expression with one group, or, for DICOM, an
      attribute keyword such as 'SOPInstanceUID'.
    label_column: the label column; None for no label.
    label_optional: the label column is the default one, used only when the
      table has it (`check_table` drops it otherwise).
    label_separator: if set, a label cell holds several labels separated by
      it (multi-label); a JSON list is multi-label too.
    integer_labels: labels must be non-negative integers (DICOM); otherwise
      labels are class names, or integers when every label is one.
    extra_columns: columns exported as features under their own names; None
      exports every column but the key, label and group columns (nested
      values and reserved names left out, `table_values.decide_columns`).
    group_column: rows with one value here never span two splits (DICOM: the
      patient column); hashed, never exported.
    column_types: column -> 'int', 'float' or 'bytes', declared instead of
      inferred.
    folder: the table's folder below `input_base` ('' or 'train/'): relative
      paths in it start there, and only files below it join it
      (`table_keys`).
  """
  path: str
  key_column: str
  key_source: str = table_keys.RELATIVE_PATH
  label_column: Optional[str] = DEFAULT_LABEL_COLUMN
  label_optional: bool = False
  label_separator: Optional[str] = None
  integer_labels: bool = False
  extra_columns: Optional[Tuple[str, ...]] = ()
  group_column: Optional[str] = None
  column_types: Mapping[str, str] = dataclasses.field(default_factory=dict)
  folder: str = ''

  def __post_init__(self):
    if isinstance(self.extra_columns, str):
      raise ValueError('extra_columns must be a sequence of column names, got '
                       f'{self.extra_columns!r}.')
    if self.extra_columns is not None:
      object.__setattr__(self, 'extra_columns', tuple(self.extra_columns))
    object.__setattr__(self, 'column_types',
                       table_values.check_column_types(self.column_types))
    _check_name('metadata file', self.path)
    _check_name('key_column', self.key_column)
    for field in ('label_column', 'group_column'):
      if getattr(self, field) is not None:
        _check_name(field, getattr(self, field))
    for column in self.extra_columns or ():
      _check_name('extra_columns', column)
    if self.label_separator is not None and not self.label_separator:
      raise ValueError('label_separator must be None or a non-empty string.')
    table_format(self.path)
    repeated = sorted(c for c, n in collections.Counter(self.columns).items()
                      if n > 1)
    if repeated:
      raise ValueError(f'Table columns must be distinct; {repeated} named more '
                       'than once (key, label, group and extra columns; only '
                       'the group may be the key).')
    for column in self.extra_columns or ():
      if table_values.is_reserved(column):
        raise ValueError(
            f'Extra column {column!r} collides with the Example contract\'s '
            f'features ({table_values.reserved_names()}); rename it.')
    joined = {self.key_column, self.label_column, self.group_column}
    for column in self.column_types:
      if column in joined or (self.extra_columns is not None and
                              column not in self.extra_columns):
        raise ValueError(
            f'column_types names {column!r}, which is not exported: it '
            'applies to extra columns only.')

  @property
  def columns(self) -> Tuple[str, ...]:
    """Every column named: key, label, group (may be the key), extras."""
    group = None if self.group_column == self.key_column else self.group_column
    return ((self.key_column,) +
            tuple(c for c in (self.label_column, group) if c is not None) +
            (self.extra_columns or ()))

  @property
  def format(self) -> str:
    return table_format(self.path)

  @property
  def name(self) -> str:
    """The table's file name, as reject details name it."""
    return posixpath.basename(self.path.rstrip('/'))

  def candidates(self, record: Mapping[str, Any]) -> Iterable[str]:
    """The columns of `record` that may be exported."""
    if self.extra_columns is not None:
      return self.extra_columns
    joined = (self.key_column, self.label_column, self.group_column,
              MALFORMED)
    return [column for column in record if column not in joined]


def _check_name(field: str, value: Any) -> None:
  if not isinstance(value, str) or not value or value != value.strip():
    raise ValueError(f'{field} must be a non-empty string without '
                     f'surrounding whitespace, got {value!r}.')


def table_format(path: str) -> str:
  """'csv', 'jsonl' or 'parquet', from the file's extension."""
  extension = posixpath.splitext(path.lower())[1]
  if extension not in _EXTENSIONS:
    raise ValueError(f'Metadata file {path}: the extension must be one of '
                     f'{sorted(_EXTENSIONS)}.')
  return _EXTENSIONS[extension]


# --- Reading ----------------------------------------------------------------


def check_table(spec: TableSpec, open_fn: OpenFn) -> TableSpec:
  """Checks that the table has rows and the configured columns.

  For JSONL the columns are those of the first object, which must hold the
  key and (unless optional) label columns; later rows may lack others.

  Returns:
    `spec`, without its label column when that is optional and missing.

  Raises:
    ValueError: naming the file, when it cannot be read, is empty, has no
      rows, or lacks a configured column.
  """
  records = iter_records(spec, open_fn)
  try:
    first = next(records, None)
  except (ValueError, OSError) as e:
    raise ValueError(f'Cannot read metadata file {spec.path}: {e}') from e
  if first is None:
    raise ValueError(f'Metadata file {spec.path} has no rows.')
  columns = [column for column in first[1] if column != MALFORMED]
  if spec.label_optional and spec.label_column not in columns:
    spec = dataclasses.replace(spec, label_column=None, label_optional=False)
  required = list(spec.columns)
  if spec.format == JSONL:
    required = [c for c in (spec.key_column, spec.label_column) if c]
  elif spec.extra_columns is None:
    required += list(spec.column_types)
  missing = [column for column in required if column not in columns]
  if missing:
    raise ValueError(f'Metadata file {spec.path}: missing column(s) {missing}; '
                     f'it has {columns}.')
  return spec


def iter_records(spec: TableSpec,
                 open_fn: OpenFn) -> Iterator[Tuple[int, Dict[str, Any]]]:
  """(line or row number, column -> raw value) for every row, streamed.

  CSV values are stripped strings ('' for empty); a row whose number of
  fields differs from the header maps `MALFORMED` to why.
  JSONL and Parquet values are as decoded (str, int, float, bool, list,
  None, ...).
  """
  if spec.format == PARQUET:
    yield from _iter_parquet(spec.path, open_fn)
  else:
    with open_fn(spec.path) as raw:
      text = io.TextIOWrapper(raw, encoding='utf-8-sig', newline='')
      if spec.format == CSV:
        yield from _iter_csv(spec.path, text)
      else:
        yield from _iter_jsonl(spec.path, text)



def _iter_csv(path: str, text: io.TextIOBase
              ) -> Iterator[Tuple[int, Dict[str, Any]]]:
  reader = csv.reader(text)
  try:
    header = [name.strip() for name in next(reader, [])]
    if not any(header):
      raise ValueError(f'Metadata file {path} is empty: no header row.')
    repeated = sorted(c for c, n in collections.Counter(header).items()
                      if n > 1)
    if repeated:
      raise ValueError(f'Metadata file {path}: column(s) {repeated} appear '
                       'more than once in the header.')
    for cells in reader:
      if not any(cell.strip() for cell in cells):
        continue
      record = dict(zip(header, (cell.strip() for cell in cells)))
      if len(cells) != len(header):
        record[MALFORMED] = (f'line {reader.line_num} has {len(cells)} fields, '
                             f'the header {len(header)}')
      yield reader.line_num, record
  except UnicodeDecodeError as e:
    raise ValueError(f'Metadata file {path} is not UTF-8: {e}') from e
  except csv.Error as e:
    raise ValueError(f'Metadata file {path} line {reader.line_num}: {e}') from e


def _iter_jsonl(path: str, text: io.TextIOBase
                ) -> Iterator[Tuple[int, Dict[str, Any]]]:
  try:
    for number, line in enumerate(text, start=1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
      except json.JSONDecodeError as e:
        yield number, {MALFORMED: f'line {number} is not JSON: {e}'}
        continue
      if not isinstance(record, dict):
        yield number, {MALFORMED: f'line {number} is not a JSON object'}
        continue
      yield number, record
  except UnicodeDecodeError as e:
    raise ValueError(f'Metadata file {path} is not UTF-8: {e}') from e


def _iter_parquet(path: str, open_fn: OpenFn
                  ) -> Iterator[Tuple[int, Dict[str, Any]]]:
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  with open_fn(path) as f:
    number = 0
    for batch in pq.ParquetFile(f).iter_batches(batch_size=4096):
      for record in batch.to_pylist():
        number += 1
        yield number, record


