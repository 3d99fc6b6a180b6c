"""A FileBasedDriver whose input fingerprint sees what the executor reads.

TFX's driver fingerprints the files matched by `tf.io.gfile.glob`, which does
not recurse, so with the recursive `**` patterns our components use, a change
deep in an image tree would not invalidate the MLMD cache. Listing with the
executor's own lister (`listing.list_files`) makes the cache key cover
exactly the files the executor reads, broken links and special files
included. The metadata table (a `metadata_file` or `labels_csv` outside the
input tree) and the salt's fingerprint (`keys.salt_fingerprint`) are part of
it too: new labels are not served from the cache, nor Examples keyed under
another salt.
"""

import os
from typing import Any, Dict, Iterable, Optional

from apache_beam.io.filesystems import FileSystems
from tfx.components.example_gen import driver
from tfx.components.example_gen import input_processor
from tfx.components.example_gen import utils
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2

from image_example_gen import keys
from image_example_gen import listing

# Exec properties that name a metadata table.
TABLE_KEYS = ('metadata_file', 'labels_csv')


def recursive_fingerprint(split_name: str, input_base: str,
                          pattern: str) -> str:
  """TFX-style fingerprint (count, bytes, mtime checksums) of a `**` pattern."""
  metadata = list(listing.list_files(input_base, pattern))
  total_bytes = sum(m.size for m in metadata)
  mtimes = [int(m.mtime) for m in metadata]
  xor_checksum = 0
  for mtime in mtimes:
    xor_checksum ^= mtime
  return (f'split:{split_name},num_files:{len(metadata)},'
          f'total_bytes:{total_bytes},xor_checksum:{xor_checksum},'
          f'sum_checksum:{sum(mtimes)}')


class _RecursiveInputProcessor(input_processor.FileBasedInputProcessor):

  def get_input_fingerprint(self, span: int,
                            version: Optional[int]) -> Optional[str]:
    input_base = (os.path.abspath(self._input_base_uri)
                  if listing.is_local(self._input_base_uri) else
                  self._input_base_uri)
    files = [
        recursive_fingerprint(
            split.name, input_base,
            self.get_pattern_for_span_version(split.pattern, span, version))
        for split in self._splits
    ]
    salt = keys.salt_fingerprint(keys.resolve_salt(warn=False))
    return '\n'.join(files + [f'salt:{salt}'])


class RecursiveFileBasedDriver(driver.FileBasedDriver):
  """FileBasedDriver that fingerprints recursive (`**`) split patterns."""

  def get_input_processor(
      self,
      splits: Iterable[example_gen_pb2.Input.Split],
      range_config: Optional[range_config_pb2.RangeConfig] = None,
      input_base_uri: Optional[str] = None
  ) -> input_processor.InputProcessor:
    assert input_base_uri
    return _RecursiveInputProcessor(input_base_uri, splits, range_config)

  def resolve_exec_properties(self, exec_properties: Dict[str, Any], *args,
                              **kwargs) -> Dict[str, Any]:
    exec_properties = super().resolve_exec_properties(exec_properties, *args,
                                                      **kwargs)
    tables = [exec_properties.get(key) for key in TABLE_KEYS]
    lines = [table_fingerprint(path) for path in tables if path]
    if lines:
      exec_properties[utils.FINGERPRINT_PROPERTY_NAME] = '\n'.join(
          [exec_properties[utils.FINGERPRINT_PROPERTY_NAME]] + lines)
    return exec_properties


def table_fingerprint(path: str) -> str:
  """Size and modification time of a metadata table ('missing' if absent)."""
  try:
    (metadata,) = FileSystems.match([path])[0].metadata_list
  except (ValueError, IOError):
    return f'table:{path},missing'
  return (f'table:{path},bytes:{metadata.size_in_bytes},'
          f'mtime:{int(metadata.last_updated_in_seconds)}')
