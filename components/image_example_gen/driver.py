"""A FileBasedDriver whose input fingerprint sees nested files and the salt.

TFX's driver fingerprints the files matched by `tf.io.gfile.glob`, which does
not recurse, so with the recursive `**` patterns our components use, a change
deep in an image tree would not invalidate the MLMD cache. Matching with
Beam's `FileSystems.match` (which expands `**` on every filesystem) makes the
cache key cover exactly the files the executor reads. The salt's fingerprint
(`keys.salt_fingerprint`) is part of it too: Examples keyed under one salt
are not reused under another.
"""

import os
from typing import Iterable, Optional

from apache_beam.io.filesystems import FileSystems
from tfx.components.example_gen import driver
from tfx.components.example_gen import input_processor
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2

from image_example_gen import keys


def recursive_fingerprint(split_name: str, file_pattern: str) -> str:
  """TFX-style fingerprint (count, bytes, mtime checksums) of a `**` pattern."""
  metadata = FileSystems.match([file_pattern])[0].metadata_list
  total_bytes = sum(m.size_in_bytes for m in metadata)
  mtimes = [int(m.last_updated_in_seconds) for m in metadata]
  xor_checksum = 0
  for mtime in mtimes:
    xor_checksum ^= mtime
  return (f'split:{split_name},num_files:{len(metadata)},'
          f'total_bytes:{total_bytes},xor_checksum:{xor_checksum},'
          f'sum_checksum:{sum(mtimes)}')


class _RecursiveInputProcessor(input_processor.FileBasedInputProcessor):

  def get_input_fingerprint(self, span: int,
                            version: Optional[int]) -> Optional[str]:
    files = [
        recursive_fingerprint(
            split.name,
            os.path.join(self._input_base_uri,
                         self.get_pattern_for_span_version(
                             split.pattern, span, version)))
        for split in self._splits
    ]
    salt = keys.salt_fingerprint(keys.resolve_salt())
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
