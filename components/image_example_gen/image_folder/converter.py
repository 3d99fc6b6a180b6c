"""Converting one file of an image folder into an Example (no Beam, no TFX).

Labels come from the file's class folder, from its row of a metadata table, or
from its name (`label_pattern`); the table and name labels are joined to the
file before conversion (`table_join`). A table without labels adds its
columns to folder labels. Without any of them the Example has no label.
"""

import hashlib
from typing import List, Optional

from image_example_gen import conversion
from image_example_gen import example
from image_example_gen import keys
from image_example_gen import limits as limits_lib
from image_example_gen import listing
from image_example_gen import rejects
from image_example_gen import table_keys
from image_example_gen import table_values
from image_example_gen import tables
from image_example_gen.image_folder import decoding
from image_example_gen.image_folder import formats
from image_example_gen.image_folder import layout


class ImageFileConverter(conversion.FileConverter):
  """Decodes, validates and labels one image file."""

  def __init__(self, prefix: str, vocabulary: List[str], salt: str,
               exif_transpose: bool, max_size: Optional[int],
               limits: limits_lib.SizeLimits,
               table: Optional[tables.TableSpec] = None,
               label_pattern: Optional[str] = None):
    """Configures the converter.

    Args:
      prefix: the split pattern's fixed folders ('' or 'train/').
      vocabulary: class folder names in label order, when labels come from
        class folders; empty otherwise.
      salt: the HMAC salt of the keyed hashes.
      exif_transpose: apply EXIF orientations.
      max_size: downscale larger images to this longer side.
      limits: size limits (`max_pixels`).
      table: the split's metadata table, if any.
      label_pattern: when labels come from names, the pattern that finds the
        class in the path below `prefix`.
    """
    self._prefix = prefix
    self._labels = {name: i for i, name in enumerate(vocabulary)}
    self._salt = salt
    self._exif_transpose = exif_transpose
    self._max_size = max_size
    self._limits = limits
    self._table = table
    self._label_pattern = label_pattern

  def setup(self) -> None:
    limits_lib.allow_in_pillow(self._limits.max_pixels)

  def sniff(self, head: bytes) -> bool:
    return formats.sniff_format(head[:formats.SNIFF_LENGTH]) is not None

  def join_key(self, item: listing.ListedFile) -> Optional[str]:
    """The file's key in the table."""
    return table_keys.file_key(item.rel_path, self._table.key_source,
                               self._table.folder)

  def name_label(self, item: listing.ListedFile) -> Optional[str]:
    """The file's class by `label_pattern`; None without one."""
    if self._label_pattern is None:
      return None
    return layout.name_label(item.rel_path[len(self._prefix):],
                             self._label_pattern)

  def convert(self, item: listing.ListedFile,
              row: Optional[table_values.Row]) -> conversion.Converted:
    features = {} if row is None else self._row_features(row)
    if self._labels:
      features.update(self._folder_label(item.rel_path))
    if item.size == 0:
      raise rejects.RejectError(rejects.EMPTY_FILE)
    data = conversion.read_file(item)
    image = decoding.convert(data, self._exif_transpose, self._max_size,
                             self._limits)
    content_key = keys.keyed_hash(hashlib.sha256(data).hexdigest(), self._salt,
                                  'content')
    features.update(example.image_features(
        image.encoded, image.format, image.height, image.width,
        image.channels, keys.keyed_hash(item.rel_path, self._salt, 'image')))
    features[example.IMAGE_CONTENT_KEY] = content_key
    return conversion.Converted([example.make_example(features)],
                                content_digest=content_key,
                                reencoded=image.encoded is not data)

  def _folder_label(self, rel_path: str) -> dict:
    class_name = layout.class_of(rel_path[len(self._prefix):],
                                 has_split_folders=False)
    if class_name is None:
      raise rejects.RejectError(rejects.OUTSIDE_CLASS_FOLDER)
    if class_name not in self._labels:
      raise rejects.RejectError(rejects.UNKNOWN_CLASS, f'folder {class_name!r}')
    return {example.LABEL: self._labels[class_name],
            example.LABEL_NAME: class_name}

  def _row_features(self, row: table_values.Row) -> dict:
    features = dict(row.extras)
    if row.labels:  # One value or several (multi-label): an int64 list.
      features[example.LABEL] = list(row.labels)
      if row.label_names:
        features[example.LABEL_NAME] = list(row.label_names)
    if row.group is not None:
      features[example.GROUP_KEY] = keys.keyed_hash(row.group, self._salt,
                                                    'group')
    return features
