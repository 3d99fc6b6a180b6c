"""The labels CSV of a DICOM data set and its join to the files.

The CSV (RSNA style: `patient_id,image_id,laterality,view,age,label`) has one
row per image. It is read once, with the csv module, into a `LabelTable` that
maps each join key to its parsed row. Problems with the file itself (missing,
unreadable, not UTF-8, no header, no rows, missing columns) raise ValueError;
problems with a row become the reject reason of the files it joins to:

- a key on more than one row: DUPLICATE_LABEL_ROW, whatever the rows hold;
- a label that is not a non-negative integer ('1' and '1.0' are 1), an empty
  patient id when a patient column is configured, or a row with a different
  number of fields than the header: INVALID_LABEL;
- no row for the key: NO_LABEL_ROW.

Cells and header names are stripped of surrounding whitespace; a UTF-8 byte
order mark, CRLF line ends and blank lines are accepted. Rows with an empty
key cannot join any file and only count in `LabelTable.num_rows`.
"""

import collections
import csv
import dataclasses
import io
import math
import posixpath
import re
from typing import (Any, Callable, Dict, FrozenSet, Iterable, List, Mapping,
                    Optional, Sequence, Tuple, Union)

from pydicom import datadict
from pydicom.dataset import Dataset

from image_example_gen import rejects

FILE_STEM = 'file_stem'
ExtraValue = Union[int, float, bytes]

# Feature names the tf.Example contract (DESIGN.md §3) owns.
_RESERVED_FEATURES = frozenset(('label', 'patient/key'))
_RESERVED_PREFIXES = ('image/', 'label/', 'patient/', 'dicom/')
_NON_DATA_SET_GROUPS = (0x0000, 0x0002)
_UNJOINABLE_VRS = frozenset(
    ('SQ', 'OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'UN'))
_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1
_INT_RE = re.compile(r'[+-]?[0-9]+', re.ASCII)
_DECIMAL_RE = re.compile(
    r'[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?', re.ASCII)
_KEY_PADDING = ' \t\r\n\x00'


@dataclasses.dataclass(frozen=True)
class LabelSpec:
  """How the labels CSV is read and joined to the DICOM files.

  Attributes:
    csv_path: the CSV file (any path `open_fn` of `read_label_table` opens).
    key_column: the column joined to each file, e.g. 'image_id'.
    key_source: what the key column holds for a file: 'file_stem' (the file
      name without its extension, as RSNA's image_id) or the keyword of a
      DICOM attribute, such as 'SOPInstanceUID'. Keys are only joined on and
      never exported.
    label_column: the column exported as `label`, a non-negative integer;
      None for unlabelled data.
    patient_column: the column whose value is the patient id (hashed into
      `patient/key`); None to use the DICOM PatientID.
    extra_columns: columns exported as features under their own names; each
      column is typed int, float or bytes over the whole CSV. Their values are
      exported as they are: list no column that identifies a person.
  """
  csv_path: str
  key_column: str
  key_source: str = FILE_STEM
  label_column: Optional[str] = 'label'
  patient_column: Optional[str] = None
  extra_columns: Tuple[str, ...] = ()

  def __post_init__(self):
    if isinstance(self.extra_columns, str):
      raise ValueError('extra_columns must be a sequence of column names, got '
                       f'{self.extra_columns!r}.')
    object.__setattr__(self, 'extra_columns', tuple(self.extra_columns))
    _check_name('csv_path', self.csv_path)
    _check_name('key_column', self.key_column)
    for field in ('label_column', 'patient_column'):
      if getattr(self, field) is not None:
        _check_name(field, getattr(self, field))
    for column in self.extra_columns:
      _check_name('extra_columns', column)
    _check_key_source(self.key_source)
    columns = self.columns
    repeated = sorted(c for c, n in collections.Counter(columns).items()
                      if n > 1)
    if repeated:
      raise ValueError(f'Label columns must be distinct; {repeated} named more '
                       'than once (key, label, patient and extra columns).')
    for column in self.extra_columns:
      if (column in _RESERVED_FEATURES or
          column.startswith(_RESERVED_PREFIXES)):
        raise ValueError(
            f'Extra column {column!r} collides with the Example contract\'s '
            f'features ({sorted(_RESERVED_FEATURES)}, '
            f'{", ".join(p + "*" for p in _RESERVED_PREFIXES)}); rename it.')

  @property
  def columns(self) -> Tuple[str, ...]:
    """Every column the CSV must have: key, label, patient, extras."""
    optional = (self.label_column, self.patient_column)
    return ((self.key_column,) + tuple(c for c in optional if c is not None) +
            self.extra_columns)


def _check_name(field: str, value: Any) -> None:
  if not isinstance(value, str) or not value or value != value.strip():
    raise ValueError(f'LabelSpec.{field} must be a non-empty string without '
                     f'surrounding whitespace, got {value!r}.')


def _check_key_source(key_source: Any) -> None:
  """'file_stem' or the keyword of a single, data set DICOM attribute."""
  if key_source == FILE_STEM:
    return
  tag = (datadict.tag_for_keyword(key_source)
         if isinstance(key_source, str) else None)
  if tag is None:
    raise ValueError(f'LabelSpec.key_source must be {FILE_STEM!r} or a DICOM '
                     f'keyword, got {key_source!r}.')
  vrs = set(datadict.dictionary_VR(tag).split(' or '))
  if tag >> 16 in _NON_DATA_SET_GROUPS or vrs & _UNJOINABLE_VRS:
    raise ValueError(
        f'LabelSpec.key_source {key_source!r} cannot be joined on: it must be '
        'a data set attribute with a single value, not a sequence, binary '
        'data or a file meta attribute.')


@dataclasses.dataclass(frozen=True)
class LabelRow:
  """One CSV row joined to a file, parsed.

  Attributes:
    patient_id: the patient column's value; None without a patient column.
    label: the label column as an int; None without a label column.
    extras: extra column -> value typed as its column (`column_types`);
      empty cells are left out.
  """
  patient_id: Optional[str]
  label: Optional[int]
  extras: Mapping[str, ExtraValue]


@dataclasses.dataclass(frozen=True)
class LabelTable:
  """The labels CSV, parsed, by join key.

  Attributes:
    rows: key -> row, for the keys on exactly one row that parsed.
    duplicate_rows: key -> number of rows, for keys on more than one row.
    invalid_keys: key -> what is wrong, for keys on one row that did not parse.
    num_rows: data rows in the CSV, blank lines excluded.
    column_types: extra column -> int, float or bytes.
  """
  rows: Dict[str, LabelRow]
  duplicate_rows: Dict[str, int]
  invalid_keys: Dict[str, str]
  num_rows: int
  column_types: Dict[str, type]

  @property
  def duplicate_keys(self) -> FrozenSet[str]:
    """Keys on more than one row (their files are DUPLICATE_LABEL_ROW)."""
    return frozenset(self.duplicate_rows)

  def lookup(self, key: str) -> Union[LabelRow, str]:
    """The row of `key`, or the reject reason of the files with this key.

    The reason is rejects.DUPLICATE_LABEL_ROW, INVALID_LABEL (details in
    `invalid_keys`) or NO_LABEL_ROW.
    """
    key = normalize_key(key)
    if key in self.duplicate_rows:
      return rejects.DUPLICATE_LABEL_ROW
    if key in self.invalid_keys:
      return rejects.INVALID_LABEL
    return self.rows.get(key, rejects.NO_LABEL_ROW)

  def __contains__(self, key: str) -> bool:
    """Whether `key` is on any row of the CSV."""
    key = normalize_key(key)
    return (key in self.rows or key in self.duplicate_rows or
            key in self.invalid_keys)


def normalize_key(key: str) -> str:
  """A key as it is compared: without surrounding whitespace or NUL padding."""
  return key.strip(_KEY_PADDING)


def join_key(spec: LabelSpec, path: str,
             ds: Optional[Dataset] = None) -> Optional[str]:
  """The key of a file for `spec.key_source`; None if the file has none.

  For 'file_stem', the file name of `path` without its last extension, where
  a last dot-part of digits only is not an extension (files named by their
  UID, '1.2.840.113619.2.55.3.4'). For a keyword, the attribute's value in
  `ds`.
  """
  if spec.key_source == FILE_STEM:
    name = posixpath.basename(path.replace('\\', '/'))
    stem, dot, extension = name.rpartition('.')
    key = stem if dot and stem and not extension.isdigit() else name
  else:
    value = ds.get(spec.key_source) if ds is not None else None
    key = '' if value is None else str(value)
  return normalize_key(key) or None


def read_label_table(
    spec: LabelSpec, open_fn: Callable[[str, str], Any] = open) -> LabelTable:
  """Reads and parses the labels CSV once.

  Args:
    spec: what to read and join.
    open_fn: called as `open_fn(spec.csv_path, 'rb')`, returns a file object
      whose read() gives bytes (or str). The builtin open and
      tf.io.gfile.GFile fit; wrap Beam's FileSystems.open as
      `lambda path, _: FileSystems.open(path)`.

  Raises:
    ValueError: naming the file, when it cannot be read or decoded as UTF-8,
      is empty, has no data rows or lacks a configured column.
  """
  path = spec.csv_path
  records = csv.reader(io.StringIO(_read_text(path, open_fn), newline=''))
  try:
    header = [name.strip() for name in next(records, [])]
    if not any(header):
      raise ValueError(f'Labels CSV {path} is empty: no header row.')
    _check_header(path, header, spec.columns)
    index = {name: i for i, name in enumerate(header)}
    lines = [[cell.strip() for cell in line] for line in records]
  except csv.Error as e:
    raise ValueError(f'Labels CSV {path} line {records.line_num}: {e}') from e
  lines = [line for line in lines if any(line)]
  if not lines:
    raise ValueError(f'Labels CSV {path} has a header but no rows.')
  well_formed = [line for line in lines if len(line) == len(header)]
  column_types = {column: _column_type(line[index[column]]
                                       for line in well_formed)
                  for column in spec.extra_columns}
  keyed = []
  key_index = index[spec.key_column]
  for line in lines:
    key = normalize_key(line[key_index]) if key_index < len(line) else ''
    if key:
      keyed.append((key, line))
  counts = collections.Counter(key for key, _ in keyed)
  rows, invalid_keys = {}, {}
  for key, line in keyed:
    if counts[key] > 1:
      continue
    try:
      rows[key] = _parse_row(spec, index, column_types, line, len(header))
    except ValueError as e:
      invalid_keys[key] = str(e)
  return LabelTable(
      rows=rows,
      duplicate_rows={key: n for key, n in counts.items() if n > 1},
      invalid_keys=invalid_keys,
      num_rows=len(lines),
      column_types=column_types)


def _read_text(path: str, open_fn: Callable[[str, str], Any]) -> str:
  """The whole file as text, without a byte order mark."""
  try:
    with open_fn(path, 'rb') as f:
      data = f.read()
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'Cannot read labels CSV {path}: {e}') from e
  if isinstance(data, str):
    return data[1:] if data.startswith('\ufeff') else data
  try:
    return data.decode('utf-8-sig')
  except UnicodeDecodeError as e:
    raise ValueError(f'Labels CSV {path} is not UTF-8: {e}') from e


def _check_header(path: str, header: List[str],
                  columns: Sequence[str]) -> None:
  repeated = sorted(c for c, n in collections.Counter(header).items()
                    if n > 1 and c in columns)
  if repeated:
    raise ValueError(f'Labels CSV {path}: column(s) {repeated} appear more '
                     'than once in the header.')
  missing = [column for column in columns if column not in header]
  if missing:
    raise ValueError(f'Labels CSV {path}: missing column(s) {missing}; the '
                     f'header has {header}.')


def _column_type(cells: Iterable[str]) -> type:
  """The narrowest of int (int64), float and bytes all non-empty cells fit."""
  values = [cell for cell in cells if cell]
  if values and all(_is_int64(cell) for cell in values):
    return int
  if values and all(_is_finite_decimal(cell) for cell in values):
    return float
  return bytes


def _is_int64(text: str) -> bool:
  return bool(_INT_RE.fullmatch(text)) and (
      _INT64_MIN <= int(text) <= _INT64_MAX)


def _is_finite_decimal(text: str) -> bool:
  return bool(_DECIMAL_RE.fullmatch(text)) and math.isfinite(float(text))


def _parse_row(spec: LabelSpec, index: Mapping[str, int],
               column_types: Mapping[str, type], line: List[str],
               num_fields: int) -> LabelRow:
  """The parsed row; ValueError saying what is wrong with it."""
  if len(line) != num_fields:
    raise ValueError(f'row has {len(line)} fields, the header {num_fields}')
  label = None
  if spec.label_column is not None:
    label = _parse_label(spec.label_column, line[index[spec.label_column]])
  patient_id = None
  if spec.patient_column is not None:
    patient_id = line[index[spec.patient_column]]
    if not patient_id:
      raise ValueError(f'empty patient column {spec.patient_column!r}')
  extras = {}
  for column in spec.extra_columns:
    cell = line[index[column]]
    if cell:
      extras[column] = _typed(column_types[column], cell)
  return LabelRow(patient_id=patient_id, label=label, extras=extras)


def _parse_label(column: str, cell: str) -> int:
  """A non-negative int64 from '1' or '1.0'; ValueError otherwise."""
  if _INT_RE.fullmatch(cell):
    value = int(cell)
  elif _DECIMAL_RE.fullmatch(cell) and float(cell).is_integer():
    value = int(float(cell))
  else:
    raise ValueError(f'{column} {cell!r} is not an integer')
  if not 0 <= value <= _INT64_MAX:
    raise ValueError(f'{column} {cell!r} is not a non-negative int64')
  return value


def _typed(column_type: type, cell: str) -> ExtraValue:
  if column_type is bytes:
    return cell.encode('utf-8')
  return column_type(cell)


def summarize_join(table: LabelTable,
                   matched_keys: Iterable[str]) -> Dict[str, int]:
  """Counts for the join's summary log line.

  Args:
    table: the labels.
    matched_keys: the keys of the files found (repeats and keys without a
      row allowed).

  Returns:
    csv_rows: data rows in the CSV; matched: distinct CSV keys with at least
    one file; rows_without_file: CSV rows whose key no file has (rows with an
    empty key included); duplicate_keys: keys on more than one row; invalid:
    keys whose single row did not parse.
  """
  matched = {key for key in map(normalize_key, matched_keys) if key in table}
  matched_rows = sum(table.duplicate_rows.get(key, 1) for key in matched)
  return {
      'csv_rows': table.num_rows,
      'matched': len(matched),
      'rows_without_file': table.num_rows - matched_rows,
      'duplicate_keys': len(table.duplicate_rows),
      'invalid': len(table.invalid_keys),
  }
