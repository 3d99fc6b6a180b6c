"""ImageFolderExampleGen's executor: one Beam transform from files to Examples.

Labels come, in this order of precedence, from file names (`label_pattern`),
from the label column of a metadata table, from class folders, or from
nothing (unlabelled Examples). Tables are found when the run starts: an
explicit `metadata_file`, else `metadata.csv` / `.jsonl` / `.parquet` at the
top of `input_base`, else one in each input split's folder
(`train/metadata.csv`, ...).
"""

import dataclasses
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2

from image_example_gen import checks
from image_example_gen import component_base
from image_example_gen import conversion
from image_example_gen import example
from image_example_gen import executor_base
from image_example_gen import limits as limits_lib
from image_example_gen import listing
from image_example_gen import outputs
from image_example_gen import storage
from image_example_gen import table_params
from image_example_gen import tables
from image_example_gen.image_folder import converter as converter_lib
from image_example_gen.image_folder import layout

CLASS_NAMES_KEY = 'class_names'
EXIF_TRANSPOSE_KEY = 'exif_transpose'
MAX_SIZE_KEY = 'max_size'
LABEL_PATTERN_KEY = 'label_pattern'
LABEL_SEPARATOR_KEY = table_params.LABEL_SEPARATOR_KEY
DETECT_SPLIT_FOLDERS_KEY = 'detect_split_folders'
ALLOWED_EXTENSIONS_KEY = executor_base.ALLOWED_EXTENSIONS_KEY
IGNORE_PATTERNS_KEY = executor_base.IGNORE_PATTERNS_KEY
MAX_PIXELS_KEY = executor_base.MAX_PIXELS_KEY
MAX_REJECT_FRACTION_KEY = executor_base.MAX_REJECT_FRACTION_KEY


def split_folder_splits(input_base: str) -> List[example_gen_pb2.Input.Split]:
  """The input splits of the split folders at the top of input_base ([]).

  Raises:
    ValueError: two folders map to one split.
  """
  folders = layout.detect_split_folders(listing.list_folders(input_base))
  return [example_gen_pb2.Input.Split(name=layout.SPLIT_FOLDERS[f.lower()],
                                      pattern=f'{f}/**')
          for f in folders or ()]


def find_tables(input_base: str, patterns: Sequence[str],
                exists: Callable[[str], bool] = storage.exists
               ) -> List[Optional[str]]:
  """Per input split, the metadata table found by itself, or None.

  A table at the top of `input_base` serves every split; else each split
  folder (a pattern's fixed folders, such as `train/`) may hold its own.

  Raises:
    ValueError: a folder holds two default tables; tables are both at the
      top and in split folders; some split folders have one, others none.
  """
  top = _default_table(input_base, exists)
  prefixes = [listing.fixed_prefix(pattern) for pattern in patterns]
  found = [_default_table(os.path.join(input_base, prefix), exists)
           if prefix else None for prefix in prefixes]
  if top:
    if any(found):
      raise ValueError(f'{input_base} holds {top} at the top and tables in '
                       f'split folders too: keep one kind, or pass '
                       'metadata_file.')
    return [top] * len(patterns)
  if any(found) and not all(found):
    lacking = [prefix for prefix, path in zip(prefixes, found) if not path]
    raise ValueError(
        f'Split folder(s) {lacking} of {input_base} hold no metadata table '
        f'(one of {list(tables.DEFAULT_METADATA_FILES)}) while others do: '
        'give every split folder its table.')
  return found


def _default_table(folder: str, exists: Callable[[str], bool]
                  ) -> Optional[str]:
  found = [os.path.join(folder, name) for name in tables.DEFAULT_METADATA_FILES
           if exists(os.path.join(folder, name))]
  if len(found) > 1:
    raise ValueError(f'{folder} holds {found}: pass metadata_file to say '
                     'which one holds the metadata.')
  return found[0] if found else None


def split_tables(input_base: str, exec_properties: Dict[str, Any],
                 patterns: Sequence[str]) -> List[Optional[tables.TableSpec]]:
  """Per input split, its metadata table, checked (fails naming it)."""
  metadata_file = exec_properties.get(table_params.METADATA_FILE_KEY)
  paths = ([metadata_file] * len(patterns) if metadata_file else
           find_tables(input_base, patterns))
  per_split = len(set(paths)) > 1
  key_source = exec_properties[table_params.KEY_SOURCE_KEY]
  checked = {}
  for path, pattern in zip(paths, patterns):
    if not path or path in checked:
      continue
    folder = (listing.fixed_prefix(pattern) if per_split else
              executor_base.table_folder(path, input_base, key_source))
    spec = table_params.table_spec(exec_properties, path, folder,
                                   export_all=True)
    if exec_properties.get(LABEL_PATTERN_KEY):
      spec = dataclasses.replace(spec, label_column=None,
                                 label_optional=False)
    checked[path] = checks.check_table(spec)
  return [checked.get(path) for path in paths]


def check_inputs(input_base: str, exec_properties: Dict[str, Any],
                 patterns: Sequence[str]) -> List[Optional[tables.TableSpec]]:
  """The free checks (`checks`): input_base, the tables, class_names.

  The component runs them for a local input_base, the executor for every
  one, so that both fail with the same message.

  Returns:
    Per input split, its checked metadata table or None.

  Raises:
    ValueError: naming the path, table, column or class at fault.
  """
  checks.check_input_base(input_base)
  specs = split_tables(input_base, exec_properties, patterns)
  class_names = executor_base.list_property(exec_properties, CLASS_NAMES_KEY)
  if (class_names and not any(specs) and
      not exec_properties.get(LABEL_PATTERN_KEY)):
    folders = _class_folders(input_base, patterns)
    missing = [name for name in class_names if name not in folders]
    if missing:
      raise ValueError(
          f'class_names {missing} have no folder in {input_base} (its class '
          f'folders: {sorted(folders) or "none"}).')
  return specs


class Executor(executor_base.ImageExampleGenExecutor):
  """Converts every file of an image folder into an Example or a reject."""

  component_name = 'ImageFolderExampleGen'
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
    splits = split_folder_splits(self._input_base)
    if not splits:
      return input_config, output_config
    partition = output_config.split_config.partition_feature_name
    if (output_config.split_config.splits and output_config !=
        component_base.hash_split_output_config(partition)):
      raise ValueError(
          f'{self._input_base} holds the split folders '
          f'{[s.pattern[:-3] for s in splits]}, and output_config asks for '
          'hash-bucket splits: pass input_config to say which folders to '
          'read as one split.')
    input_config = example_gen_pb2.Input(splits=splits)
    logging.info('Split folders in %s: %s.', self._input_base, ', '.join(
        f'{s.pattern[:-3]}/ -> {s.name}' for s in input_config.splits))
    return input_config, example_gen_utils.make_default_output_config(
        input_config)

  def prepare(self, exec_properties: Dict[str, Any], output_uri: str) -> None:
    patterns = executor_base.input_patterns(exec_properties)
    self.tables = check_inputs(self._input_base, exec_properties, patterns)
    self._table_of = dict(zip(patterns, self.tables))
    self._limits = limits_lib.SizeLimits(
        max_pixels=int(exec_properties[MAX_PIXELS_KEY]))
    self.class_names = executor_base.list_property(
        exec_properties, CLASS_NAMES_KEY) or None
    self._label_pattern = exec_properties.get(LABEL_PATTERN_KEY) or None
    self.labels_from_names = self._label_pattern is not None
    self._vocabulary = []
    if any(spec and spec.group_column for spec in self.tables):
      self.group_key = example.GROUP_KEY
    if self.labels_from_names or any(spec and spec.label_column
                                     for spec in self.tables):
      return
    classes = self.class_names or sorted(
        _class_folders(self._input_base, patterns))
    table = next((spec.path for spec in self.tables if spec), None)
    if table and len(classes) < 2 and not self.class_names:
      classes = []  # One folder of images beside a table is no class.
    if classes:
      self._vocabulary = layout.class_vocabulary(classes) if (
          not self.class_names) else list(classes)
      outputs.write_vocabulary(self._vocabulary, output_uri)
      if table:
        logging.info('Labels from the class folders of %s; %s adds its '
                     'columns.', self._input_base, table)
    else:
      logging.warning(
          'No labels: %s has no class folders, and %s. The Examples have no '
          '`label` feature (labels come from class folders, label_column or '
          'label_pattern).', self._input_base,
          f'{table} has no label column' if table else 'no metadata table')

  def make_converter(self, exec_properties: Dict[str, Any],
                     split_pattern: str) -> conversion.FileConverter:
    max_size = exec_properties.get(MAX_SIZE_KEY)
    return converter_lib.ImageFileConverter(
        listing.fixed_prefix(split_pattern), self._vocabulary, self._salt,
        bool(exec_properties[EXIF_TRANSPOSE_KEY]),
        int(max_size) if max_size else None, self._limits,
        self._table_of[split_pattern], self._label_pattern)

  def counts_duplicates(self) -> bool:
    return True


def _class_folders(input_base: str, patterns: Sequence[str]) -> List[str]:
  """The class folders below each pattern's fixed prefix, hidden ones aside."""
  names = set()
  for pattern in patterns:
    folder = os.path.join(input_base, listing.fixed_prefix(pattern))
    names.update(name for name in listing.list_folders(folder)
                 if not name.startswith('.'))
  return sorted(names)
