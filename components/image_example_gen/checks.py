"""Checks that cost nothing, made before any file is converted (docs/design.md §11).

A wrong path or column found an hour into a Beam job (or, on Kubeflow, only
in the pod) wastes the hour. The components run these checks in `__init__`
when `input_base` is a local path, and the executors run the same functions
at their start for every path (remote ones included), so a check fails with
the same message wherever it runs. Each reads at most a folder listing, a
table's header and its first labels.
"""

import os

from apache_beam.io.filesystems import FileSystems

from image_example_gen import conversion
from image_example_gen import listing
from image_example_gen import storage
from image_example_gen import table_values
from image_example_gen import tables

# Labels read to decide whether a DICOM label column holds integers.
LABELS_CHECKED = 100


def check_input_base(input_base: str) -> None:
  """ValueError unless `input_base` is a folder (local) or holds files (URI)."""
  if listing.is_local(input_base):
    if not os.path.exists(input_base):
      raise ValueError(f'input_base {input_base} does not exist.')
    if not os.path.isdir(input_base):
      raise ValueError(f'input_base {input_base} is not a folder.')
    return
  (match,) = FileSystems.match([input_base.rstrip('/') + '/**'], limits=[1])
  if not match.metadata_list:
    raise ValueError(f'input_base {input_base} holds no files.')


def check_table(spec: tables.TableSpec) -> tables.TableSpec:
  """ValueError unless the table exists and has the configured columns.

  Reads the header (JSONL: the first row) only (`tables.check_table`).

  Returns:
    `spec`, without its label column when that is optional and missing.
  """
  if not storage.exists(spec.path):
    raise ValueError(f'metadata_file {spec.path} does not exist.')
  return tables.check_table(spec, conversion.open_file)


def check_integer_labels(spec: tables.TableSpec,
                         limit: int = LABELS_CHECKED) -> None:
  """ValueError when none of the first `limit` labels is an integer.

  One label that does not parse is a reject of its file
  (`bad_metadata_value`); a column of class names is a configuration error,
  said once here instead of once per file.
  """
  if not spec.label_column:
    return
  checked, first = 0, None
  for line, record in tables.iter_records(spec, conversion.open_file):
    value = record.get(spec.label_column)
    if tables.MALFORMED in record or value is None or value == '':
      continue
    try:
      table_values.label_index(str(value), f'line {line}: {spec.label_column}')
      return
    except table_values.RowError:
      first = first or (line, value)
    checked += 1
    if checked >= limit:
      break
  if first:
    raise ValueError(
        f'label_column {spec.label_column!r} of {spec.path} holds no integer '
        f'among its first {checked} labels (line {first[0]}: {first[1]!r}). '
        'DicomExampleGen exports labels as int64 class indices: map the '
        'classes to 0, 1, ... in the table, or export the column as text '
        'with extra_columns and label_column=None.')
