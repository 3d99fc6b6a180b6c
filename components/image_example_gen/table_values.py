"""The values of a metadata table: missing values, column types, parsed rows.

Pure functions; `table_join` runs them in Beam over every row.

Missing values: an empty cell, a null, a float NaN, and the text of pandas'
default missing-value tokens (`MISSING_VALUES`: 'NA', 'N/A', 'n/a', 'NaN',
'nan', 'null', 'None', '#N/A', ...) are missing: the feature is absent from
that Example, and a missing value never decides a column's type.

Column types (the feature type of an exported column): declared per column
(`column_types`: 'int', 'float' or 'bytes'; a value that does not parse as
its declared type rejects its row), else inferred over the whole table: int64
when every value is an integer in int64 range, else float when every one is a
finite number, else bytes (UTF-8 text; in a JSON table, numbers in a text
column become their JSON text). A JSON list, or a Parquet list, makes the
column a list column of its elements' type. A column of JSON objects or
nested lists is no feature.

Labels: a label cell holds one label, several separated by `label_separator`,
or a JSON/Parquet list (multi-label). Integer labels are used as they are;
other labels are class names, indexed in the vocabulary (`make_vocabulary`).
"""

import dataclasses
import json
import math
import re
from typing import (Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple,
                    Union)

from image_example_gen import rejects

# Narrowest first.
INT, FLOAT, BYTES = 'int', 'float', 'bytes'
TYPES = (INT, FLOAT, BYTES)
_TYPE_ORDER = {INT: 0, FLOAT: 1, BYTES: 2}
Scalar = Union[int, float, bytes]
Value = Union[Scalar, Tuple[Scalar, ...]]

# pandas' default `na_values` (read_csv): text that means "no value".
MISSING_VALUES = frozenset((
    '', '#N/A', '#N/A N/A', '#NA', '-1.#IND', '-1.#QNAN', '-NaN', '-nan',
    '1.#IND', '1.#QNAN', '<NA>', 'N/A', 'NA', 'NULL', 'NaN', 'None', 'n/a',
    'nan', 'null'))

_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1
_INT_RE = re.compile(r'[+-]?[0-9]+', re.ASCII)
_DECIMAL_RE = re.compile(
    r'[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?', re.ASCII)
# Feature names the Example contract owns.
_RESERVED_FEATURES = frozenset(('label',))
_RESERVED_PREFIXES = ('image/', 'label/', 'patient/', 'group/', 'dicom/')


class RowError(ValueError):
  """A row that cannot be used; its files are rejected with `reason`."""

  def __init__(self, detail: str, reason: str = rejects.BAD_METADATA_VALUE):
    super().__init__(detail)
    self.reason = reason
    self.detail = detail


def is_missing(value: Any) -> bool:
  """Whether a cell holds no value (see the module docstring)."""
  if value is None:
    return True
  if isinstance(value, float):
    return math.isnan(value)
  if isinstance(value, bytes):
    value = value.decode('utf-8', 'replace')
  return isinstance(value, str) and value.strip() in MISSING_VALUES


def is_reserved(column: str) -> bool:
  """Whether the Example contract owns the feature name `column`."""
  return column in _RESERVED_FEATURES or column.startswith(_RESERVED_PREFIXES)


def reserved_names() -> str:
  return (f'{sorted(_RESERVED_FEATURES)}, '
          f'{", ".join(p + "*" for p in _RESERVED_PREFIXES)}')


def check_column_types(column_types: Any) -> Dict[str, str]:
  """`column_types` as a dict, checked: column -> 'int', 'float' or 'bytes'."""
  if column_types is None:
    return {}
  if not isinstance(column_types, Mapping):
    raise ValueError(f'column_types must map column names to one of {TYPES}, '
                     f'got {column_types!r}.')
  for column, kind in column_types.items():
    if not isinstance(column, str) or not column or kind not in TYPES:
      raise ValueError(f'column_types must map column names to one of '
                       f'{TYPES}; got {column!r}: {kind!r}.')
  return dict(column_types)


# --- Typing -----------------------------------------------------------------


def _is_nested(value: Any) -> bool:
  """A JSON object, or a list holding objects or lists: no feature value."""
  if isinstance(value, dict):
    return True
  return isinstance(value, (list, tuple)) and any(
      isinstance(v, (dict, list, tuple)) for v in value)


def value_type(value: Any) -> Optional[str]:
  """The narrowest of INT, FLOAT, BYTES a scalar fits; None when missing.

  Strings (CSV cells) are parsed; JSON numbers and booleans are numbers.
  """
  if is_missing(value):
    return None
  if isinstance(value, bool):
    return INT
  if isinstance(value, int):
    return INT if _INT64_MIN <= value <= _INT64_MAX else FLOAT
  if isinstance(value, float):
    return FLOAT if math.isfinite(value) else BYTES
  text = value.decode('utf-8', 'replace') if isinstance(value, bytes) else (
      str(value))
  if _INT_RE.fullmatch(text) and _INT64_MIN <= int(text) <= _INT64_MAX:
    return INT
  if _DECIMAL_RE.fullmatch(text) and math.isfinite(float(text)):
    return FLOAT
  return BYTES


@dataclasses.dataclass
class ColumnStats:
  """What one column's values were, over the rows seen (mergeable).

  Attributes:
    order: the widest type seen (its `_TYPE_ORDER`), -1 for none.
    is_list: a list value was seen.
    nested: a JSON object or nested list was seen.
    values: rows with a value (not missing).
    numbers: scalar values that are numbers.
    texts: scalar values that are text.
    first_text: (table, line, value) of the first text value.
  """
  order: int = -1
  is_list: bool = False
  nested: bool = False
  values: int = 0
  numbers: int = 0
  texts: int = 0
  first_text: Optional[Tuple[int, int, str]] = None

  def add(self, value: Any, table: int, line: int) -> None:
    if _is_nested(value):
      self.nested = True
      self.values += 1
      return
    is_list = isinstance(value, (list, tuple))
    typed = [(value_type(item), item)
             for item in (value if is_list else [value])]
    typed = [(kind, item) for kind, item in typed if kind is not None]
    if not typed:
      return
    self.values += 1
    self.is_list = self.is_list or is_list
    for kind, item in typed:
      self.order = max(self.order, _TYPE_ORDER[kind])
      if kind == BYTES:
        self.texts += 1
        where = (table, line, _text(item))
        self.first_text = min(self.first_text or where, where)
      else:
        self.numbers += 1

  def merge(self, other: 'ColumnStats') -> None:
    self.order = max(self.order, other.order)
    self.is_list = self.is_list or other.is_list
    self.nested = self.nested or other.nested
    self.values += other.values
    self.numbers += other.numbers
    self.texts += other.texts
    if other.first_text is not None:
      self.first_text = min(self.first_text or other.first_text,
                            other.first_text)


def _text(value: Any) -> str:
  """A value as text: numbers and booleans as JSON writes them, dates and
  other Parquet values as Python prints them."""
  if isinstance(value, bytes):
    return value.decode('utf-8', 'replace')
  if isinstance(value, (bool, int, float)):
    return json.dumps(value)
  return str(value)


@dataclasses.dataclass
class TableObservation:
  """Rows and per-column stats of the tables, over every row (mergeable)."""
  rows: int = 0
  columns: Dict[str, ColumnStats] = dataclasses.field(default_factory=dict)

  def add(self, record: Mapping[str, Any], columns: Iterable[str], table: int,
          line: int) -> None:
    self.rows += 1
    for column in columns:
      if column in record:
        self.columns.setdefault(column, ColumnStats()).add(
            record[column], table, line)

  def merge(self, other: 'TableObservation') -> None:
    self.rows += other.rows
    for column, stats in other.columns.items():
      self.columns.setdefault(column, ColumnStats()).merge(stats)


@dataclasses.dataclass(frozen=True)
class ColumnType:
  """An exported column's feature type: INT, FLOAT or BYTES, and list or not.

  Attributes:
    kind: INT, FLOAT or BYTES.
    is_list: values are lists (multi-valued features).
    declared: the type comes from `column_types`: values that do not parse
      as it reject their rows.
  """
  kind: str
  is_list: bool = False
  declared: bool = False

  def __str__(self) -> str:
    return f'{self.kind} list' if self.is_list else self.kind


@dataclasses.dataclass(frozen=True)
class Columns:
  """The exported columns of the tables, decided over every row.

  Attributes:
    types: exported column -> its ColumnType.
    left_out: column -> why it is not exported (every-column export only).
  """
  types: Mapping[str, ColumnType]
  left_out: Mapping[str, str] = dataclasses.field(default_factory=dict)


def decide_columns(observation: TableObservation,
                   extra_columns: Optional[Sequence[str]],
                   column_types: Mapping[str, str]) -> Columns:
  """The exported columns and their types.

  Args:
    observation: what every row held (`TableObservation` of the candidate
      columns).
    extra_columns: the columns to export; None exports every observed
      column except those without a name, those of JSON objects or nested
      lists and those the Example contract owns, which are left out.
    column_types: declared types, which win over the inferred ones.
  """
  names = {order: kind for kind, order in _TYPE_ORDER.items()}
  types, left_out = {}, {}
  for column in (sorted(observation.columns) if extra_columns is None
                 else extra_columns):
    stats = observation.columns.get(column, ColumnStats())
    if extra_columns is None and not column.strip():
      left_out[column] = 'has no name (an index pandas wrote?)'
      continue
    if extra_columns is None and stats.nested:
      left_out[column] = 'holds JSON objects or nested lists'
      continue
    if extra_columns is None and is_reserved(column):
      left_out[column] = 'its name belongs to the Example contract'
      continue
    if column in column_types:
      types[column] = ColumnType(column_types[column], stats.is_list, True)
    else:
      types[column] = ColumnType(names.get(stats.order, BYTES), stats.is_list)
  return Columns(types, left_out)


def numbers_made_text(stats: ColumnStats) -> bool:
  """Whether a few text values made a column of numbers text."""
  return 0 < stats.texts < stats.numbers


# --- Rows -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ParsedRow:
  """A row, parsed, before its labels are looked up in the vocabulary.

  Attributes:
    line: line (CSV, JSONL) or row (Parquet) number, for reject details.
    labels: the label values as text (several for multi-label); empty
      without a label column.
    group: the group column's value; None without a group column.
    extras: exported column -> typed value; missing values left out.
  """
  line: int
  labels: Tuple[str, ...]
  group: Optional[str]
  extras: Mapping[str, Value]


def parse_row(record: Mapping[str, Any], line: int,
              label_column: Optional[str], label_separator: Optional[str],
              integer_labels: bool, group_column: Optional[str],
              columns: Columns) -> ParsedRow:
  """The row's labels, group and typed exported values.

  Raises:
    RowError: `bad_metadata_value`, naming the column and the line.
  """
  labels: Tuple[str, ...] = ()
  if label_column is not None:
    labels = _labels(label_column, label_separator, integer_labels, line,
                     record.get(label_column))
  group = None
  if group_column is not None:
    group = _scalar_text(group_column, line, record.get(group_column))
    if not group:
      raise RowError(f'line {line}: the group column {group_column!r} is '
                     'empty')
  extras = {}
  for column, column_type in columns.types.items():
    value = _typed(column, line, column_type, record.get(column))
    if value is not None:
      extras[column] = value
  return ParsedRow(line, labels, group, extras)


def _labels(column: str, separator: Optional[str], integer_labels: bool,
            line: int, value: Any) -> Tuple[str, ...]:
  if isinstance(value, (list, tuple)):
    values = [_scalar_text(column, line, v) for v in value]
  else:
    text = _scalar_text(column, line, value)
    values = text.split(separator) if separator else [text]
  labels = tuple(v.strip() for v in values if v and v.strip())
  if not labels:
    raise RowError(f'line {line}: the label column {column!r} is empty')
  if integer_labels:
    for label in labels:
      label_index(label, f'line {line}: {column}')
  return labels


def label_index(label: str, where: str) -> int:
  """A non-negative int64 label from '1' or '1.0'; RowError otherwise."""
  if _INT_RE.fullmatch(label):
    value = int(label)
  elif _DECIMAL_RE.fullmatch(label) and float(label).is_integer():
    value = int(float(label))
  else:
    raise RowError(f'{where} {label!r} is not an integer')
  if not 0 <= value <= _INT64_MAX:
    raise RowError(f'{where} {label!r} is not a non-negative int64')
  return value


def is_integer_label(label: str) -> bool:
  return bool(_INT_RE.fullmatch(label)) and 0 <= int(label) <= _INT64_MAX


def _scalar_text(column: str, line: int, value: Any) -> str:
  """A label or group cell as text; '' when missing."""
  if isinstance(value, (dict, list, tuple)):
    raise RowError(f'line {line}: column {column!r} holds a '
                   f'{type(value).__name__}, not a value')
  if is_missing(value):
    return ''
  if isinstance(value, bytes):
    return value.decode('utf-8', 'replace').strip()
  if isinstance(value, bool):
    return str(int(value))
  return str(value).strip()


def _typed(column: str, line: int, column_type: ColumnType,
           value: Any) -> Optional[Value]:
  """`value` as its column's type; None when missing."""
  values = value if isinstance(value, (list, tuple)) else [value]
  typed = []
  for item in values:
    if isinstance(item, (dict, list, tuple)):
      raise RowError(f'line {line}: column {column!r} holds a '
                     f'{type(item).__name__}, not a value')
    if is_missing(item):
      continue
    converted = _as(column_type.kind, item)
    if converted is None:
      kind = 'an int' if column_type.kind == INT else 'a float'
      raise RowError(f'line {line}: column {column!r} value {_text(item)!r} '
                     f'is not {kind} (column_types)')
    typed.append(converted)
  if not typed:
    return None
  return tuple(typed) if column_type.is_list else typed[0]


def _as(kind: str, value: Any) -> Optional[Scalar]:
  """`value` as `kind`; None when it is no such value (declared types)."""
  if kind == BYTES:
    return value if isinstance(value, bytes) else _text(value).encode('utf-8')
  found = value_type(value)
  if found == BYTES or (kind == INT and found == FLOAT and not float(
      value).is_integer()):
    return None
  if kind == INT:
    number = int(float(value)) if found == FLOAT else int(value)
    return number if _INT64_MIN <= number <= _INT64_MAX else None
  return float(value)


# --- Labels -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
  """A joined row as the converters use it.

  Attributes:
    labels: label indices (into the vocabulary, or the integer labels).
    label_names: the class names of `labels`; empty for integer labels
      without a vocabulary.
    group: the group (DICOM: patient) value; None without a group column.
    extras: exported column -> typed value.
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
                   labels: Sequence[str],
                   where: str) -> Tuple[Tuple[int, ...], Tuple[str, ...]]:
  """(label indices, names) of label values found at `where` ('line 3').

  Raises:
    RowError: `unknown_class` for a name (or integer) outside the
      vocabulary, `bad_metadata_value` for a non-integer integer label.
  """
  ids, names = [], []
  for label in labels:
    if vocabulary.integer:
      value = label_index(label, f'{where}: label')
      if vocabulary.names:
        if value >= len(vocabulary.names):
          raise RowError(f'{where}: label {value} is not below the '
                         f'{len(vocabulary.names)} class_names',
                         rejects.UNKNOWN_CLASS)
        names.append(vocabulary.names[value])
      ids.append(value)
    else:
      if label not in index:
        raise RowError(f'{where}: class {label!r} is not in class_names',
                       rejects.UNKNOWN_CLASS)
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
