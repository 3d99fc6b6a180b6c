"""The metadata-table parameters both components take, and their TableSpec.

DicomExampleGen and ImageFolderExampleGen name the table join alike:
`metadata_file`, `key_column`, `key_source`, `label_column`, `group_column`,
`extra_columns`, `column_types`. This module holds their exec-property
names, the checks both constructors run, DicomExampleGen's deprecated names,
and the one function that builds a `tables.TableSpec` from exec properties
(at construction, to fail early, and in both executors).
"""

import json
import warnings
from typing import Any, Dict, Mapping, Optional, Sequence

from image_example_gen import table_keys
from image_example_gen import table_values
from image_example_gen import tables

METADATA_FILE_KEY = 'metadata_file'
KEY_COLUMN_KEY = 'key_column'
KEY_SOURCE_KEY = 'key_source'
LABEL_COLUMN_KEY = 'label_column'
GROUP_COLUMN_KEY = 'group_column'
EXTRA_COLUMNS_KEY = 'extra_columns'
COLUMN_TYPES_KEY = 'column_types'
# ImageFolderExampleGen only.
LABEL_SEPARATOR_KEY = 'label_separator'

# DicomExampleGen's names before the one vocabulary -> today's names. They
# still work, with a DeprecationWarning, until the next release.
DEPRECATED_NAMES = {
    'labels_csv': METADATA_FILE_KEY,
    'label_key_column': KEY_COLUMN_KEY,
    'label_key_source': KEY_SOURCE_KEY,
    'patient_column': GROUP_COLUMN_KEY,
}


class _DefaultName(str):
  """A column name given by default, told apart from the same name passed."""


# `label_column`'s default: the table's `label` column when it has one.
DEFAULT_LABEL_COLUMN = _DefaultName(tables.DEFAULT_LABEL_COLUMN)


def is_default(label_column: Optional[str]) -> bool:
  """Whether `label_column` is the default, not a name the user passed."""
  return isinstance(label_column, _DefaultName)


def renamed(component: str, given: Mapping[str, Any],
            values: Dict[str, Any], defaults: Mapping[str, Any]) -> None:
  """Moves values given under deprecated names to their names, warning.

  Args:
    component: the component's class name, for the messages.
    given: deprecated name -> value (None: not given).
    values: name -> value of the current parameters, updated in place.
    defaults: name -> the current parameter's default, to tell whether both
      names were given.

  Raises:
    ValueError: a value is given under both names.
  """
  for old, value in given.items():
    if value is None:
      continue
    new = DEPRECATED_NAMES[old]
    if values[new] != defaults[new]:
      raise ValueError(f'{component}: {old} is the deprecated name of {new}; '
                       'pass only ' + new + '.')
    warnings.warn(f'{component}(..., {old}=...) is deprecated: use {new}= '
                  '(the same meaning); the old name goes in the next release.',
                  DeprecationWarning, stacklevel=3)
    values[new] = value


def exec_properties(metadata_file: Optional[str], key_column: str,
                    key_source: str, label_column: Optional[str],
                    group_column: Optional[str],
                    extra_columns: Optional[Sequence[str]],
                    column_types: Optional[Mapping[str, str]],
                    keywords: bool, export_all: bool) -> Dict[str, Any]:
  """The table parameters as exec properties, checked.

  `label_column` becomes None when it is the default (the table's `label`
  column if it has one), '' for none, else the name the table must have.
  `extra_columns` None means every column for image folders, none for DICOM.

  Args:
    keywords: whether `key_source` may be a DICOM keyword (DicomExampleGen
      checks the keyword itself).
    export_all: `extra_columns` None exports every column (`table_spec`).

  Raises:
    ValueError: for a wrong value, at construction time.
  """
  table_keys.check_key_source(key_source, keywords)
  if isinstance(extra_columns, str):
    raise ValueError('extra_columns must be a sequence of column names, got '
                     f'{extra_columns!r}.')
  properties = {
      METADATA_FILE_KEY: metadata_file,
      KEY_COLUMN_KEY: key_column,
      KEY_SOURCE_KEY: key_source,
      LABEL_COLUMN_KEY: None if is_default(label_column) else (
          label_column or ''),
      GROUP_COLUMN_KEY: group_column,
      EXTRA_COLUMNS_KEY: (None if extra_columns is None else
                          list(extra_columns)),
      COLUMN_TYPES_KEY: table_values.check_column_types(column_types) or None,
  }
  table_spec(properties, metadata_file or tables.DEFAULT_METADATA_FILES[0],
             export_all=export_all)
  return properties


def _decoded(value: Any) -> Any:
  """A list or dict exec property: orchestrators may pass it JSON-encoded."""
  return json.loads(value) if isinstance(value, str) else value


def table_spec(properties: Mapping[str, Any], path: str, folder: str = '',
               integer_labels: bool = False,
               export_all: bool = False) -> tables.TableSpec:
  """The TableSpec of the table parameters for the table at `path`.

  Args:
    properties: the component's exec properties.
    path: the table.
    folder: the table's folder below `input_base` (`table_keys`).
    integer_labels: labels must be non-negative integers (DICOM).
    export_all: `extra_columns` None exports every column (image folders);
      else it exports none.
  """
  label_column = properties.get(LABEL_COLUMN_KEY)
  extra_columns = _decoded(properties.get(EXTRA_COLUMNS_KEY))
  if extra_columns is None and not export_all:
    extra_columns = ()
  return tables.TableSpec(
      path=path,
      key_column=properties[KEY_COLUMN_KEY],
      key_source=properties[KEY_SOURCE_KEY],
      label_column=(tables.DEFAULT_LABEL_COLUMN if label_column is None else
                    label_column or None),
      label_optional=label_column is None,
      label_separator=properties.get(LABEL_SEPARATOR_KEY) or None,
      integer_labels=integer_labels,
      extra_columns=extra_columns,
      group_column=properties.get(GROUP_COLUMN_KEY) or None,
      column_types=_decoded(properties.get(COLUMN_TYPES_KEY)) or {},
      folder=folder)
