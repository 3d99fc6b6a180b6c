"""Metadata tables beside the images: reading, typing and parsing rows.

One table format layer for both ExampleGens: DicomExampleGen's labels CSV
(RSNA's `train.csv`) and ImageFolderExampleGen's metadata file (Hugging
Face's `metadata.csv` / `metadata.jsonl`, Kaggle's `train.csv`). Pure
functions; `table_join` runs them in Beam and joins the rows to the files.

Formats, by extension: `.csv` (UTF-8, a header row; a byte order mark, CRLF
and blank lines are accepted; cells are stripped), `.jsonl` / `.json` (one
JSON object per line) and `.parquet`. Rows are streamed, never held whole.

Column types (the feature type of an extra column) are inferred over the
whole table: int64 when every non-empty value is an integer in int64 range,
else float when every one is a finite number, else bytes (UTF-8 text; in a
JSON table, numbers in a text column become their JSON text). A JSON list, or
a Parquet list, makes the column a list column of the narrowest element type.
Empty cells and nulls are left out of the Example.

Problems with the table itself (unreadable, not UTF-8, no header, no rows, a
configured column missing) raise ValueError naming the file and the columns
it has. Problems with a row become a reject of the files that join to it
(`RowError`): a row with another number of fields than the header, an empty
or unparsable label, an empty group, a JSON object or nested list as a
value: `bad_metadata_value`, naming the column and the line.
"""

import collections
import csv
import dataclasses
import io
import json
import math
import posixpath
import re
from typing import (Any, Callable, Dict, FrozenSet, Iterable, Iterator, List,
                    Mapping, Optional, Sequence, Tuple, Union)

from image_example_gen import rejects

RELATIVE_PATH = 'relative_path'
FILE_STEM = 'file_stem'
CSV = 'csv'
JSONL = 'jsonl'
PARQUET = 'parquet'
_EXTENSIONS = {'.csv': CSV, '.jsonl': JSONL, '.json': JSONL,
               '.parquet': PARQUET}
# Hugging Face's names for a metadata file at the top of an image folder.
DEFAULT_METADATA_FILES = ('metadata.csv', 'metadata.jsonl')

# Narrowest first.
INT, FLOAT, BYTES = 'int', 'float', 'bytes'
_TYPE_ORDER = {INT: 0, FLOAT: 1, BYTES: 2}
Scalar = Union[int, float, bytes]
Value = Union[Scalar, Tuple[Scalar, ...]]
OpenFn = Callable[[str], Any]  # Opens a path or URI for binary reading.

_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1
_INT_RE = re.compile(r'[+-]?[0-9]+', re.ASCII)
_DECIMAL_RE = re.compile(
    r'[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?', re.ASCII)
_KEY_PADDING = ' \t\r\n\x00'
# Feature names the Example contract owns.
_RESERVED_FEATURES = frozenset(('label',))
_RESERVED_PREFIXES = ('image/', 'label/', 'patient/', 'group/', 'dicom/')


class RowError(ValueError):
  """A row that cannot be used; its files are rejected with `reason`."""

  def __init__(self, detail: str, reason: str = rejects.BAD_METADATA_VALUE):
    super().__init__(detail)
    self.reason = reason
    self.detail = detail


@dataclasses.dataclass(frozen=True)
class TableSpec:
  """How a table is read and joined to the files.

  Attributes:
    path: the table (any path `open_fn` opens: local or a filesystem URI).
    key_column: the column joined to each file.
    key_source: what the key column holds: 'relative_path' (the path below
      `input_base`, or below the table's folder when the table is inside
      `input_base`), 'file_stem' (the file name without its extension), or,
      for DICOM, an attribute keyword such as 'SOPInstanceUID'.
    label_column: the label column; None for no label.
    label_separator: if set, a label cell holds several labels separated by
      it (multi-label); a JSON list is multi-label too.
    integer_labels: labels must be non-negative integers (DICOM); otherwise
      labels are class names, or integers when every label is one.
    extra_columns: columns exported as features under their own names.
    group_column: rows with one value here never span two splits (DICOM: the
      patient column); hashed, never exported.
  """
  path: str
  key_column: str
  key_source: str = RELATIVE_PATH
  label_column: Optional[str] = 'label'
  label_separator: Optional[str] = None
  integer_labels: bool = False
  extra_columns: Tuple[str, ...] = ()
  group_column: Optional[str] = None

  def __post_init__(self):
    if isinstance(self.extra_columns, str):
      raise ValueError('extra_columns must be a sequence of column names, got '
                       f'{self.extra_columns!r}.')
    object.__setattr__(self, 'extra_columns', tuple(self.extra_columns))
    _check_name('metadata file', self.path)
    _check_name('key_column', self.key_column)
    for field in ('label_column', 'group_column'):
      if getattr(self, field) is not None:
        _check_name(field, getattr(self, field))
    for column in self.extra_columns:
      _check_name('extra_columns', column)
    if self.label_separator is not None and not self.label_separator:
      raise ValueError('label_separator must be None or a non-empty string.')
    table_format(self.path)
    repeated = sorted(c for c, n in collections.Counter(self.columns).items()
                      if n > 1)
    if repeated:
      raise ValueError(f'Table columns must be distinct; {repeated} named more '
                       'than once (key, label, group and extra columns).')
    for column in self.extra_columns:
      if (column in _RESERVED_FEATURES or
          column.startswith(_RESERVED_PREFIXES)):
        raise ValueError(
            f'Extra column {column!r} collides with the Example contract\'s '
            f'features ({sorted(_RESERVED_FEATURES)}, '
            f'{", ".join(p + "*" for p in _RESERVED_PREFIXES)}); rename it.')

  @property
  def columns(self) -> Tuple[str, ...]:
    """Every column the table must have: key, label, group, extras."""
    optional = (self.label_column, self.group_column)
    return ((self.key_column,) + tuple(c for c in optional if c is not None) +
            self.extra_columns)

  @property
  def format(self) -> str:
    return table_format(self.path)


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


def normalize_key(key: str) -> str:
  """A key as compared: without surrounding whitespace or NUL padding."""
  return key.strip(_KEY_PADDING)


def path_key(rel_path: str, key_source: str, prefix: str = '') -> Optional[str]:
  """The key of a file from its path below `input_base`, or None.

  Args:
    rel_path: '/'-separated path below `input_base`.
    key_source: 'relative_path' or 'file_stem'.
    prefix: folder of the table below `input_base` ('' or 'a/b/'): relative
      paths in the table are relative to it, and files outside it have no
      key.

  'file_stem' is the file name without its last extension, where a last
  dot-part of digits only is not an extension (DICOM files named by their
  UID, '1.2.840.113619.2.55.3.4').
  """
  if key_source == RELATIVE_PATH:
    if not rel_path.startswith(prefix):
      return None
    return normalize_key(rel_path[len(prefix):]) or None
  name = posixpath.basename(rel_path.replace('\\', '/'))
  stem, dot, extension = name.rpartition('.')
  key = stem if dot and stem and not extension.isdigit() else name
  return normalize_key(key) or None


def table_key(cell: Any, key_source: str) -> Optional[str]:
  """The key of a row's key cell, as `path_key` forms keys; None if empty."""
  if cell is None or isinstance(cell, (dict, list)):
    return None
  key = normalize_key(str(cell))
  if key_source == RELATIVE_PATH:
    key = posixpath.normpath(key.replace('\\', '/')) if key else key
    key = key[2:] if key.startswith('./') else key
  return key or None


# --- Reading ----------------------------------------------------------------


def read_columns(spec: TableSpec, open_fn: OpenFn) -> List[str]:
  """The table's columns, after checking it has the configured ones and rows.

  For JSONL the columns are those of the first object, which must hold the
  key and label columns (later rows may lack other columns).

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
  columns = list(first[1])
  required = (spec.columns if spec.format != JSONL else
              [c for c in (spec.key_column, spec.label_column) if c])
  missing = [column for column in required if column not in columns]
  if missing:
    raise ValueError(f'Metadata file {spec.path}: missing column(s) {missing}; '
                     f'it has {columns}.')
  return columns


def iter_records(spec: TableSpec,
                 open_fn: OpenFn) -> Iterator[Tuple[int, Dict[str, Any]]]:
  """(line or row number, column -> raw value) for every row, streamed.

  CSV values are stripped strings ('' for empty); a row whose number of
  fields differs from the header maps `_MALFORMED` to its field count.
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


MALFORMED = '\x00malformed'


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


# --- Typing -----------------------------------------------------------------


def value_type(value: Any) -> Optional[str]:
  """The narrowest of INT, FLOAT, BYTES a scalar fits; None when empty.

  Strings (CSV cells) are parsed; JSON numbers and booleans are numbers.

  Raises:
    RowError: for a JSON object or a nested list.
  """
  if value is None or value == '':
    return None
  if isinstance(value, bool):
    return INT
  if isinstance(value, int):
    return INT if _INT64_MIN <= value <= _INT64_MAX else FLOAT
  if isinstance(value, float):
    return FLOAT if math.isfinite(value) else BYTES
  if isinstance(value, (bytes, str)):
    text = value.decode('utf-8', 'replace') if isinstance(value, bytes) else value
    if _INT_RE.fullmatch(text) and _INT64_MIN <= int(text) <= _INT64_MAX:
      return INT
    if _DECIMAL_RE.fullmatch(text) and math.isfinite(float(text)):
      return FLOAT
    return BYTES
  raise RowError(f'a {type(value).__name__} is not a feature value')


@dataclasses.dataclass(frozen=True)
class ColumnType:
  """An extra column's feature type: INT, FLOAT or BYTES, and list or not."""
  kind: str
  is_list: bool = False

  def __str__(self) -> str:
    return f'{self.kind} list' if self.is_list else self.kind


def observe(types: Dict[str, Tuple[int, bool]], column: str,
            value: Any) -> None:
  """Widens `types[column]` ((type order, is list)) to cover `value`.

  Values that are not features (objects) are skipped here; `parse_row`
  rejects their rows.
  """
  is_list = isinstance(value, (list, tuple))
  try:
    kinds = [value_type(v) for v in (value if is_list else [value])]
  except RowError:
    return
  order, was_list = types.get(column, (-1, False))
  for kind in kinds:
    if kind is not None:
      order = max(order, _TYPE_ORDER[kind])
  types[column] = (order, was_list or is_list)


def column_types(observed: Mapping[str, Tuple[int, bool]],
                 columns: Iterable[str]) -> Dict[str, ColumnType]:
  """The ColumnType of each column from what `observe` collected."""
  names = {order: kind for kind, order in _TYPE_ORDER.items()}
  result = {}
  for column in columns:
    order, is_list = observed.get(column, (-1, False))
    result[column] = ColumnType(names.get(order, BYTES), is_list)
  return result


# --- Rows -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ParsedRow:
  """A row, parsed, before its labels are looked up in the vocabulary.

  Attributes:
    line: line (CSV, JSONL) or row (Parquet) number, for reject details.
    labels: the label values as text (several for multi-label); empty
      without a label column.
    group: the group column's value; None without a group column.
    extras: extra column -> typed value; empty values left out.
  """
  line: int
  labels: Tuple[str, ...]
  group: Optional[str]
  extras: Mapping[str, Value]


def parse_row(spec: TableSpec, types: Mapping[str, ColumnType], line: int,
              record: Mapping[str, Any]) -> ParsedRow:
  """The row's labels, group and typed extras.

  Raises:
    RowError: `bad_metadata_value`, naming the column and the line.
  """
  if MALFORMED in record:
    raise RowError(record[MALFORMED])
  labels: Tuple[str, ...] = ()
  if spec.label_column is not None:
    labels = _labels(spec, line, record.get(spec.label_column))
  group = None
  if spec.group_column is not None:
    group = _scalar_text(spec.group_column, line,
                         record.get(spec.group_column))
    if not group:
      raise RowError(f'line {line}: the group column {spec.group_column!r} '
                     'is empty')
  extras = {}
  for column in spec.extra_columns:
    value = _typed(column, line, types[column], record.get(column))
    if value is not None:
      extras[column] = value
  return ParsedRow(line, labels, group, extras)


def _labels(spec: TableSpec, line: int, value: Any) -> Tuple[str, ...]:
  column = spec.label_column
  if isinstance(value, (list, tuple)):
    values = [_scalar_text(column, line, v) for v in value]
  else:
    text = _scalar_text(column, line, value)
    values = (text.split(spec.label_separator) if spec.label_separator else
              [text])
  labels = tuple(v.strip() for v in values if v and v.strip())
  if not labels:
    raise RowError(f'line {line}: the label column {column!r} is empty')
  if spec.integer_labels:
    for label in labels:
      label_index(column, line, label)
  return labels


def label_index(column: str, line: int, label: str) -> int:
  """A non-negative int64 label from '1' or '1.0'; RowError otherwise."""
  if _INT_RE.fullmatch(label):
    value = int(label)
  elif _DECIMAL_RE.fullmatch(label) and float(label).is_integer():
    value = int(float(label))
  else:
    raise RowError(f'line {line}: {column} {label!r} is not an integer')
  if not 0 <= value <= _INT64_MAX:
    raise RowError(f'line {line}: {column} {label!r} is not a non-negative '
                   'int64')
  return value


def is_integer_label(label: str) -> bool:
  return bool(_INT_RE.fullmatch(label)) and 0 <= int(label) <= _INT64_MAX


def _scalar_text(column: str, line: int, value: Any) -> str:
  if value is None:
    return ''
  if isinstance(value, (dict, list, tuple)):
    raise RowError(f'line {line}: column {column!r} holds a '
                   f'{type(value).__name__}, not a value')
  if isinstance(value, bytes):
    return value.decode('utf-8', 'replace').strip()
  if isinstance(value, bool):
    return str(int(value))
  return str(value).strip()


def _typed(column: str, line: int, column_type: ColumnType,
           value: Any) -> Optional[Value]:
  """`value` as its column's type; None when empty."""
  values = value if isinstance(value, (list, tuple)) else [value]
  typed = []
  for item in values:
    if isinstance(item, (dict, list, tuple)):
      raise RowError(f'line {line}: column {column!r} holds a '
                     f'{type(item).__name__}, not a value')
    if item is None or item == '':
      continue
    typed.append(_as(column_type.kind, item))
  if not typed:
    return None
  return tuple(typed) if column_type.is_list else typed[0]


def _as(kind: str, value: Any) -> Scalar:
  if kind == BYTES:
    if isinstance(value, bytes):
      return value
    if isinstance(value, str):
      return value.encode('utf-8')
    return json.dumps(value).encode('utf-8')
  if isinstance(value, bool):
    value = int(value)
  if kind == INT:
    return int(value)
  return float(value)


@dataclasses.dataclass(frozen=True)
class Row:
  """A joined row as the converters use it.

  Attributes:
    labels: label indices (into the vocabulary, or the integer labels).
    label_names: the class names of `labels`; empty for integer labels
      without a vocabulary.
    group: the group (DICOM: patient) value; None without a group column.
    extras: extra column -> typed value.
  """
  labels: Tuple[int, ...] = ()
  label_names: Tuple[str, ...] = ()
  group: Optional[str] = None
  extras: Mapping[str, Value] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """How label values become label indices.

  Attributes:
    names: class names in label order; empty for integer labels.
    integer: labels are integers (then `names`, if given, name them).
  """
  names: Tuple[str, ...] = ()
  integer: bool = False

  @property
  def index(self) -> Dict[str, int]:
    return {name: i for i, name in enumerate(self.names)}


def resolve_labels(vocabulary: Vocabulary, index: Mapping[str, int],
                   parsed: ParsedRow, column: str) -> Tuple[Tuple[int, ...],
                                                            Tuple[str, ...]]:
  """(label indices, names) of a parsed row.

  Raises:
    RowError: `unknown_class` for a name (or integer) outside the
      vocabulary, `bad_metadata_value` for a non-integer integer label.
  """
  ids, names = [], []
  for label in parsed.labels:
    if vocabulary.integer:
      value = label_index(column, parsed.line, label)
      if vocabulary.names:
        if value >= len(vocabulary.names):
          raise RowError(f'line {parsed.line}: label {value} is not below the '
                         f'{len(vocabulary.names)} class_names',
                         rejects.UNKNOWN_CLASS)
        names.append(vocabulary.names[value])
      ids.append(value)
    else:
      if label not in index:
        raise RowError(f'line {parsed.line}: class {label!r} is not in '
                       'class_names', rejects.UNKNOWN_CLASS)
      ids.append(index[label])
      names.append(label)
  return tuple(ids), tuple(names)


def make_vocabulary(label_values: Iterable[str],
                    class_names: Optional[Sequence[str]],
                    integer_labels: bool) -> Vocabulary:
  """The vocabulary: `class_names` if given, else the sorted label values.

  Labels are integers when required (`integer_labels`), or when every label
  value is one and not every value is a class name (then `class_names`, if
  given, names them: label i is `class_names[i]`).
  """
  values = set(label_values)
  names_all = bool(class_names) and values <= set(class_names)
  if integer_labels or (not names_all and values and
                        all(is_integer_label(v) for v in values)):
    return Vocabulary(tuple(class_names or ()), integer=True)
  return Vocabulary(tuple(class_names) if class_names else
                    tuple(sorted(values)))


def reserved_collision(columns: Iterable[str]) -> FrozenSet[str]:
  """Columns whose names the Example contract owns."""
  return frozenset(c for c in columns if c in _RESERVED_FEATURES or
                   c.startswith(_RESERVED_PREFIXES))
