"""ImageFolderExampleGen's executor: one Beam transform from files to Examples."""

import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import apache_beam as beam
from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from image_example_gen import component_base
from image_example_gen import conversion
from image_example_gen import example
from image_example_gen import executor_base
from image_example_gen import keys
from image_example_gen import limits as limits_lib
from image_example_gen import listing
from image_example_gen import outputs
from image_example_gen import storage
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
DETECT_SPLIT_FOLDERS_KEY = 'detect_split_folders'
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
    if not storage.exists(metadata_file):
      raise ValueError(f'metadata_file {metadata_file} does not exist.')
    return metadata_file
  found = [os.path.join(input_base, name)
           for name in tables.DEFAULT_METADATA_FILES
           if storage.exists(os.path.join(input_base, name))]
  if len(found) > 1:
    raise ValueError(f'{input_base} holds both {found}: pass metadata_file to '
                     'say which one holds the labels.')
  return found[0] if found else None


class Executor(executor_base.ImageExampleGenExecutor):
  """Converts every file of an image folder into an Example or a reject."""

  writes_vocabulary = True

  def resolve_splits(
      self, exec_properties: Dict[str, Any],
      input_config: example_gen_pb2.Input,
      output_config: example_gen_pb2.Output
  ) -> Tuple[example_gen_pb2.Input, example_gen_pb2.Output]:
    """Split folders at the top of input_base, when no input_config was given.

    Detected here, where the data is read, so that a pipeline built where
    input_base cannot be read (compiling for Kubeflow on a laptop) reads
    split folders as splits too, never as classes.

    Raises:
      ValueError: split folders are found but output_config asks for other
        output splits, or two folders map to one split.
    """
    if not exec_properties.get(DETECT_SPLIT_FOLDERS_KEY):
      return input_config, output_config
    folders = layout.detect_split_folders(
        listing.list_folders(self._input_base))
    if not folders:
      return input_config, output_config
    partition = output_config.split_config.partition_feature_name
    if (output_config.split_config.splits and output_config !=
        component_base.hash_split_output_config(partition)):
      raise ValueError(
          f'{self._input_base} holds the split folders {folders}, and '
          'output_config asks for hash-bucket splits: pass input_config to '
          'say which folders to read as one split.')
    input_config = example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=layout.SPLIT_FOLDERS[f.lower()],
                                    pattern=f'{f}/**')
        for f in folders])
    logging.info('Split folders in %s: %s.', self._input_base, ', '.join(
        f'{s.pattern[:-3]}/ -> {s.name}' for s in input_config.splits))
    return input_config, example_gen_utils.make_default_output_config(
        input_config)

  def prepare(self, exec_properties: Dict[str, Any], output_uri: str) -> None:
    self._salt = keys.resolve_salt()
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
    # Fails now, naming the file and its columns.
    tables.read_columns(self._table, conversion.open_file)
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
  names = set()
  for pattern in patterns:
    folder = os.path.join(input_base, listing.fixed_prefix(pattern))
    names.update(name for name in listing.list_folders(folder)
                 if not name.startswith('.'))
  if not names:
    raise ValueError(f'No class folders found in {input_base} for patterns '
                     f'{patterns}.')
  return layout.class_vocabulary(names)
