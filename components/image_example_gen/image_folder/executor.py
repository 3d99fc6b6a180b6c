"""ImageFolderExampleGen's executor: one Beam transform from files to Examples."""

import os
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import apache_beam as beam
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from image_example_gen import checks
from image_example_gen import conversion
from image_example_gen import example
from image_example_gen import executor_base
from image_example_gen import limits as limits_lib
from image_example_gen import listing
from image_example_gen import outputs
from image_example_gen import table_join
from image_example_gen import tables
from image_example_gen.image_folder import converter as converter_lib
from image_example_gen.image_folder import layout

CLASS_NAMES_KEY = 'class_names'
EXIF_TRANSPOSE_KEY = 'exif_transpose'
MAX_SIZE_KEY = 'max_size'
METADATA_FILE_KEY = 'metadata_file'
KEY_COLUMN_KEY = 'key_column'
KEY_SOURCE_KEY = 'key_source'
LABEL_COLUMN_KEY = 'label_column'
LABEL_SEPARATOR_KEY = 'label_separator'
EXTRA_COLUMNS_KEY = 'extra_columns'
GROUP_COLUMN_KEY = 'group_column'
ALLOWED_EXTENSIONS_KEY = executor_base.ALLOWED_EXTENSIONS_KEY
IGNORE_PATTERNS_KEY = executor_base.IGNORE_PATTERNS_KEY
MAX_PIXELS_KEY = executor_base.MAX_PIXELS_KEY
MAX_REJECT_FRACTION_KEY = executor_base.MAX_REJECT_FRACTION_KEY
KEY_SOURCES = (tables.RELATIVE_PATH, tables.FILE_STEM)


def table_spec(exec_properties: Dict[str, Any],
               path: str) -> tables.TableSpec:
  """The TableSpec of the component's parameters for the table at `path`."""
  return tables.TableSpec(
      path=path,
      key_column=exec_properties[KEY_COLUMN_KEY],
      key_source=exec_properties[KEY_SOURCE_KEY],
      label_column=exec_properties.get(LABEL_COLUMN_KEY) or None,
      label_separator=exec_properties.get(LABEL_SEPARATOR_KEY) or None,
      extra_columns=tuple(
          executor_base.list_property(exec_properties, EXTRA_COLUMNS_KEY)),
      group_column=exec_properties.get(GROUP_COLUMN_KEY) or None)


def find_metadata_file(input_base: str,
                       metadata_file: Optional[str]) -> Optional[str]:
  """`metadata_file`, else `metadata.csv`/`.jsonl` at the top of input_base.

  Raises:
    ValueError: `metadata_file` does not exist, or both defaults do.
  """
  if metadata_file:
    if not fileio.exists(metadata_file):
      raise ValueError(f'metadata_file {metadata_file} does not exist.')
    return metadata_file
  found = [os.path.join(input_base, name)
           for name in tables.DEFAULT_METADATA_FILES
           if fileio.exists(os.path.join(input_base, name))]
  if len(found) > 1:
    raise ValueError(f'{input_base} holds both {found}: pass metadata_file to '
                     'say which one holds the labels.')
  return found[0] if found else None


def check_inputs(input_base: str, exec_properties: Dict[str, Any],
                 patterns: Sequence[str]) -> None:
  """The free checks (`checks`): input_base, the table's columns, class_names.

  The component runs them for a local input_base, the executor for every
  one. Raises ValueError.
  """
  checks.check_input_base(input_base)
  path = find_metadata_file(input_base, exec_properties.get(METADATA_FILE_KEY))
  if path:
    checks.check_table(table_spec(exec_properties, path))
    return
  class_names = executor_base.list_property(exec_properties, CLASS_NAMES_KEY)
  if class_names:
    folders = _class_folders(input_base, patterns)
    missing = [name for name in class_names if name not in folders]
    if missing:
      raise ValueError(
          f'class_names {missing} have no folder in {input_base} (its class '
          f'folders: {sorted(folders) or "none"}).')


class Executor(executor_base.ImageExampleGenExecutor):
  """Converts every file of an image folder into an Example or a reject."""

  component_name = 'ImageFolderExampleGen'
  writes_vocabulary = True

  def prepare(self, exec_properties: Dict[str, Any], output_uri: str) -> None:
    check_inputs(self._input_base, exec_properties,
                 _input_patterns(exec_properties))
    self._limits = limits_lib.SizeLimits(
        max_pixels=int(exec_properties[MAX_PIXELS_KEY]))
    self._class_names = executor_base.list_property(exec_properties,
                                                    CLASS_NAMES_KEY)
    path = find_metadata_file(self._input_base,
                              exec_properties.get(METADATA_FILE_KEY))
    self._table = table_spec(exec_properties, path) if path else None
    self._excluded: Tuple[str, ...] = ()
    self._key_prefix = ''
    if self._table is None:
      self._vocabulary = self._class_names or _discover_classes(
          self._input_base, _input_patterns(exec_properties))
      outputs.write_vocabulary(self._vocabulary, output_uri)
      return
    self._vocabulary = []
    rel_path = _below(path, self._input_base)
    if rel_path is not None:
      self._excluded = (rel_path,)
      self._key_prefix = listing.fixed_prefix(rel_path)
    if self._table.group_column:
      self.group_key = example.GROUP_KEY

  def make_converter(self, exec_properties: Dict[str, Any],
                     split_pattern: str) -> conversion.FileConverter:
    max_size = exec_properties.get(MAX_SIZE_KEY)
    return converter_lib.ImageFileConverter(
        listing.fixed_prefix(split_pattern), self._vocabulary, self._salt,
        bool(exec_properties[EXIF_TRANSPOSE_KEY]),
        int(max_size) if max_size else None, self._limits, self._table,
        self._key_prefix)

  def make_join(self, exec_properties: Dict[str, Any],
                converters: Sequence[conversion.FileConverter]
               ) -> Optional[beam.PTransform]:
    if self._table is None:
      return None
    return table_join.JoinTable(  # pylint: disable=no-value-for-parameter
        self._table, [c.join_key for c in converters], conversion.open_file,
        self._class_names or None)

  def excluded_paths(self) -> Sequence[str]:
    return self._excluded

  def counts_duplicates(self) -> bool:
    return True


def _below(path: str, input_base: str) -> Optional[str]:
  if listing.is_local(path):
    path = os.path.abspath(path)
  base = input_base.rstrip('/') + '/'
  return path[len(base):] if path.startswith(base) else None


def _input_patterns(exec_properties: Dict[str, Any]) -> List[str]:
  input_config = example_gen_pb2.Input()
  proto_utils.json_to_proto(
      exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
  return [split.pattern for split in input_config.splits]


def _discover_classes(input_base: str, patterns: List[str]) -> List[str]:
  """Sorted union of the class folders below each pattern's fixed prefix."""
  names = _class_folders(input_base, patterns)
  if not names:
    raise ValueError(f'No class folders found in {input_base} for patterns '
                     f'{patterns}.')
  return layout.class_vocabulary(names)


def _class_folders(input_base: str, patterns: Sequence[str]) -> Set[str]:
  """The class folders below each pattern's fixed prefix."""
  names = set()
  for pattern in patterns:
    folder = os.path.join(input_base, listing.fixed_prefix(pattern))
    if not fileio.isdir(folder):
      continue
    for name in fileio.listdir(folder):
      name = name.rstrip('/')
      if (not name.startswith('.') and
          fileio.isdir(os.path.join(folder, name))):
        names.add(name)
  return names
