"""ImageFolderExampleGen's executor: one Beam transform from files to Examples."""

import os
from typing import Any, Dict, List, Optional, Tuple

import tensorflow as tf
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from image_example_gen import conversion
from image_example_gen import example
from image_example_gen import executor_base
from image_example_gen import keys
from image_example_gen import rejects
from image_example_gen.image_folder import decoding
from image_example_gen.image_folder import layout

CLASS_NAMES_KEY = 'class_names'
EXIF_TRANSPOSE_KEY = 'exif_transpose'
MAX_SIZE_KEY = 'max_size'
MAX_REJECT_FRACTION_KEY = executor_base.MAX_REJECT_FRACTION_KEY
VOCABULARY_FILE = 'label_vocabulary.txt'

_GLOB_CHARS = frozenset('*?[{')


def pattern_prefix(split_pattern: str) -> str:
  """The folders of a split pattern before its first wildcard ('' or 'a/b/')."""
  fixed = []
  for part in split_pattern.split('/')[:-1]:
    if _GLOB_CHARS & set(part):
      break
    fixed.append(part)
  return ''.join(f'{part}/' for part in fixed)


class ImageFileConverter(conversion.FileConverter):
  """Decodes, validates and labels one image file."""

  def __init__(self, prefix: str, vocabulary: List[str], salt: str,
               exif_transpose: bool, max_size: Optional[int]):
    self._prefix = prefix
    self._labels = {name: i for i, name in enumerate(vocabulary)}
    self._salt = salt
    self._exif_transpose = exif_transpose
    self._max_size = max_size

  def convert(self, rel_path: str, path: str,
              size: int) -> Tuple[List[tf.train.Example], str]:
    if layout.is_hidden(rel_path):
      raise conversion.RejectError(rejects.HIDDEN_FILE)
    class_name = layout.class_of(rel_path[len(self._prefix):],
                                 has_split_folders=False)
    if class_name is None:
      raise conversion.RejectError(rejects.OUTSIDE_CLASS_FOLDER)
    if class_name not in self._labels:
      raise conversion.RejectError(rejects.UNKNOWN_CLASS,
                                   f'folder {class_name!r}')
    if size == 0:
      raise conversion.RejectError(rejects.EMPTY_FILE)
    try:
      with conversion.open_file(path) as f:
        data = f.read()
    except OSError as e:
      raise conversion.RejectError(rejects.UNREADABLE, str(e)) from e
    try:
      image = decoding.convert(data, self._exif_transpose, self._max_size)
    except decoding.ImageRejected as e:
      raise conversion.RejectError(e.reason, e.detail) from e
    features = example.image_features(
        image.encoded, image.format, image.height, image.width,
        image.channels, keys.keyed_hash(rel_path, self._salt, 'image'))
    features[example.LABEL] = self._labels[class_name]
    features[example.LABEL_NAME] = class_name
    return [example.make_example(features)], ''


class Executor(executor_base.ImageExampleGenExecutor):
  """Converts every file of an image folder into an Example or a reject."""

  def prepare(self, exec_properties: Dict[str, Any], output_uri: str) -> None:
    self._salt = keys.resolve_salt()
    self._vocabulary = (
        executor_base.list_property(exec_properties, CLASS_NAMES_KEY) or
                        _discover_classes(self._input_base,
                                          _input_patterns(exec_properties)))
    with fileio.open(os.path.join(output_uri, VOCABULARY_FILE), 'w') as f:
      f.write(''.join(f'{name}\n' for name in self._vocabulary))

  def make_converter(self, exec_properties: Dict[str, Any],
                     split_pattern: str) -> conversion.FileConverter:
    max_size = exec_properties.get(MAX_SIZE_KEY)
    return ImageFileConverter(
        pattern_prefix(split_pattern), self._vocabulary, self._salt,
        bool(exec_properties[EXIF_TRANSPOSE_KEY]),
        int(max_size) if max_size else None)


def _input_patterns(exec_properties: Dict[str, Any]) -> List[str]:
  input_config = example_gen_pb2.Input()
  proto_utils.json_to_proto(
      exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
  return [split.pattern for split in input_config.splits]


def _discover_classes(input_base: str, patterns: List[str]) -> List[str]:
  """Sorted union of the class folders below each pattern's fixed prefix."""
  names = set()
  for pattern in patterns:
    folder = os.path.join(input_base, pattern_prefix(pattern))
    if not fileio.isdir(folder):
      continue
    for name in fileio.listdir(folder):
      name = name.rstrip('/')
      if (not name.startswith('.') and
          fileio.isdir(os.path.join(folder, name))):
        names.add(name)
  if not names:
    raise ValueError(f'No class folders found in {input_base} for patterns '
                     f'{patterns}.')
  return layout.class_vocabulary(names)
