"""A FileBasedDriver that lists what the executor reads, as it reads it.

TFX's driver resolves spans and versions and fingerprints the input with
`fileio.glob`, which does not recurse (with the recursive `**` patterns our
components use, a change deep in an image tree would not invalidate the MLMD
cache) and goes to TensorFlow's filesystems (whose gs:// client cannot be
pointed at anything but Google's endpoint). This driver lists with the
executor's own lister (`listing.list_files`, Beam's filesystems): spans and
versions are found among the files the executor would read, and the cache
key covers exactly those files, broken links and special files included.
The metadata table (a `metadata_file` outside the input tree) and the salt's
fingerprint (`keys.salt_fingerprint`) are part of it too: new labels are not
served from the cache, nor Examples keyed under
another salt.
"""

import os
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

from apache_beam.io.filesystems import FileSystems
from tfx.components.example_gen import driver
from tfx.components.example_gen import input_processor
from tfx.components.example_gen import utils
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2

from image_example_gen import keys
from image_example_gen import listing
from image_example_gen import table_params

# Exec properties that name a metadata table.
TABLE_KEYS = (table_params.METADATA_FILE_KEY,)


def recursive_fingerprint(split_name: str, input_base: str,
                          pattern: str) -> str:
  """TFX-style fingerprint (count, bytes, mtime checksums) of a `**` pattern."""
  files = total_bytes = xor_checksum = sum_checksum = 0
  for item in listing.list_files(input_base, pattern):
    mtime = int(item.mtime)
    files += 1
    total_bytes += item.size
    xor_checksum ^= mtime
    sum_checksum += mtime
  return (f'split:{split_name},num_files:{files},total_bytes:{total_bytes},'
          f'xor_checksum:{xor_checksum},sum_checksum:{sum_checksum}')


def resolve_span_and_version(
    input_base: str, splits: Iterable[example_gen_pb2.Input.Split],
    range_config: Optional[range_config_pb2.RangeConfig] = None
) -> Tuple[int, Optional[int]]:
  """The span and version to read, as TFX resolves them, from listed files.

  Patterns without `{SPAN}` or date specs read span 0. Otherwise the latest
  span (or the static range's) with, for it, the latest `{VERSION}`, among
  the files each pattern matches; every split must resolve to the same.

  Raises:
    ValueError: a split pattern matches no file, or the splits disagree.
  """
  resolved = {(split.name, _latest_span_version(input_base, split,
                                                range_config))
              for split in splits}
  spans_versions = {found for _, found in resolved}
  if len(spans_versions) > 1:
    raise ValueError('The latest span and version should be the same for '
                     f'each split, got {sorted(resolved)}.')
  span, version = spans_versions.pop() if spans_versions else (None, None)
  return span or 0, version


def _latest_span_version(
    input_base: str, split: example_gen_pb2.Input.Split,
    range_config: Optional[range_config_pb2.RangeConfig]
) -> Tuple[Optional[int], Optional[int]]:
  is_span, is_date, is_version = utils.verify_split_pattern_specs(split)
  if not is_span and not is_date:
    return None, None
  # The specs' values are read from the leading folders (or file name) that
  # hold them: a recursive `**` after them must not reach into the specs.
  parts = split.pattern.split('/')
  depth = 1 + max(i for i, part in enumerate(parts) if _has_spec(part))
  head = example_gen_pb2.Input.Split(name=split.name,
                                     pattern='/'.join(parts[:depth]))
  glob, _ = utils._create_matching_glob_and_regex(  # pylint: disable=protected-access
      '', split, is_span, is_date, is_version, range_config)
  _, head_regex = utils._create_matching_glob_and_regex(  # pylint: disable=protected-access
      '', head, is_span, is_date, is_version, range_config)
  head_regex = f'^(?:{head_regex})$'
  found: List[Tuple[int, int]] = []
  for item in listing.list_files(input_base, glob):
    rel_head = '/'.join(item.rel_path.split('/')[:depth])
    if not re.match(head_regex, rel_head):
      continue
    _, span, _, version = utils._find_matched_span_version_from_path(  # pylint: disable=protected-access
        rel_head, head_regex, is_span, is_date, is_version)
    found.append((span, -1 if version is None else version))
  if not found:
    raise ValueError(f'Cannot find matching for split {split.name} based on '
                     f'{split.pattern} in {input_base}.')
  span, version = max(found)
  return span, (version if is_version else None)


def _has_spec(part: str) -> bool:
  return bool(re.search(utils.SPAN_FULL_REGEX, part) or
              re.search(utils.VERSION_FULL_REGEX, part) or
              any(spec in part for spec in utils.DATE_SPECS))


class _RecursiveInputProcessor(input_processor.FileBasedInputProcessor):
  """Resolves spans and fingerprints splits with `listing.list_files`."""

  def resolve_span_and_version(self) -> Tuple[int, Optional[int]]:
    return resolve_span_and_version(self._input_base(), self._splits,
                                    self._range_config)

  def get_input_fingerprint(self, span: int,
                            version: Optional[int]) -> Optional[str]:
    files = [
        recursive_fingerprint(
            split.name, self._input_base(),
            self.get_pattern_for_span_version(split.pattern, span, version))
        for split in self._splits
    ]
    salt = keys.salt_fingerprint(keys.resolve_salt(warn=False))
    return '\n'.join(files + [f'salt:{salt}'])

  def _input_base(self) -> str:
    if listing.is_local(self._input_base_uri):
      return os.path.abspath(self._input_base_uri)
    return self._input_base_uri


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
