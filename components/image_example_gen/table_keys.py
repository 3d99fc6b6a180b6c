"""Join keys: how a file and a row of a metadata table name the same image.

A key source says what a table's key column holds, and how a file's key is
formed from its path (pure functions; DicomExampleGen reads keyword keys from
each file's header itself):

* 'relative_path': the path below the table's folder (Hugging Face's
  `file_name`);
* 'file_stem': the file name without its extension (Kaggle's `id`, RSNA's
  `image_id`);
* a regular expression with one group, searched in the path below the
  table's folder: the group is the key (`r'^([^/]+)/'`, the top folder, joins
  `<patient_id>/<series>/<n>.dcm` to a table with a row per patient);
* DicomExampleGen only: a single-valued DICOM keyword (`SOPInstanceUID`).

The table's folder is where its relative paths start: the split folder of a
table found in one (`train/metadata.csv`), the table's own folder when it is
elsewhere inside `input_base`, else `input_base`. Only files below it join the
table, and keys are qualified by it, so the tables of several split folders
never share a key. A relative path in a table that leaves its folder (a `..`
component, an absolute path, a URL scheme or a drive letter) never matches a
file: such a row names no file.
"""

import posixpath
import re
from typing import Any, Optional

RELATIVE_PATH = 'relative_path'
FILE_STEM = 'file_stem'
NAMED_SOURCES = (RELATIVE_PATH, FILE_STEM)

_KEY_PADDING = ' \t\r\n\x00'
# What a DICOM keyword looks like; a regular expression with a group never
# does.
_KEYWORD_RE = re.compile(r'[A-Za-z][A-Za-z0-9]*')
# `gs:`, `https:`, `C:` at the start of a path: not below any folder.
_SCHEME_RE = re.compile(r'[A-Za-z][A-Za-z0-9+.-]*:')


def one_group_pattern(value: Any, parameter: str) -> re.Pattern:
  """`value` compiled: a regular expression with exactly one group.

  Raises:
    ValueError: naming `parameter`, when `value` is not such a pattern.
  """
  try:
    pattern = re.compile(value)
  except (re.error, TypeError) as e:
    raise ValueError(f'{parameter} {value!r} is not a regular expression: '
                     f'{e}.') from e
  if pattern.groups != 1:
    raise ValueError(f'{parameter} {value!r} must have exactly one group, '
                     f'the part it extracts; it has {pattern.groups}.')
  return pattern


def is_keyword(key_source: str) -> bool:
  """Whether `key_source` has the form of a DICOM keyword."""
  return (key_source not in NAMED_SOURCES and
          bool(_KEYWORD_RE.fullmatch(key_source)))


def check_key_source(key_source: Any, keywords: bool = False) -> None:
  """Checks a key source: a name, a one-group pattern, or (DICOM) a keyword.

  Args:
    key_source: the `key_source` parameter.
    keywords: whether keyword-like values are allowed (DicomExampleGen checks
      them against the DICOM dictionary itself).

  Raises:
    ValueError: for anything else.
  """
  if not isinstance(key_source, str) or not key_source:
    raise ValueError(f'key_source must be a non-empty string, got '
                     f'{key_source!r}.')
  if key_source in NAMED_SOURCES or (keywords and is_keyword(key_source)):
    return
  forms = (f'{RELATIVE_PATH!r}, {FILE_STEM!r}' +
           (', a DICOM keyword' if keywords else '') +
           ' or a regular expression with one group')
  try:
    one_group_pattern(key_source, 'key_source')
  except ValueError as e:
    raise ValueError(f'key_source must be {forms}: {e}') from e


def normalize_key(key: str) -> str:
  """A key as compared: without surrounding whitespace or NUL padding."""
  return key.strip(_KEY_PADDING)


def file_stem(rel_path: str) -> str:
  """The file name without its last extension.

  A last dot-part of digits only is not an extension (DICOM files named by
  their UID, '1.2.840.113619.2.55.3.4').
  """
  name = posixpath.basename(rel_path.replace('\\', '/'))
  stem, dot, extension = name.rpartition('.')
  return stem if dot and stem and not extension.isdigit() else name


def file_key(rel_path: str, key_source: str,
             folder: str = '') -> Optional[str]:
  """The key of a file from its path below `input_base`, or None.

  Args:
    rel_path: '/'-separated path below `input_base`.
    key_source: 'relative_path', 'file_stem' or a one-group pattern.
    folder: the table's folder below `input_base` ('' or 'a/b/'); files
      outside it have no key.
  """
  if not rel_path.startswith(folder):
    return None
  path = rel_path[len(folder):]
  if key_source == RELATIVE_PATH:
    key = path
  elif key_source == FILE_STEM:
    key = file_stem(path)
  else:
    match = re.search(key_source, path)
    key = match.group(1) if match and match.group(1) else ''
  key = normalize_key(key)
  return folder + key if key else None


def leaves_folder(cell: Any) -> bool:
  """Whether a relative-path cell points outside its table's folder.

  True for a `..` component, an absolute path ('/x', '\\\\server\\x') and a
  URL scheme or drive ('gs://b/x', 'C:\\x'); such a key never matches a file.
  """
  if not isinstance(cell, str):
    return False
  path = normalize_key(cell).replace('\\', '/')
  return (path.startswith('/') or bool(_SCHEME_RE.match(path)) or
          '..' in path.split('/'))


def table_key(cell: Any, key_source: str, folder: str = '') -> Optional[str]:
  """The key of a row's key cell, as `file_key` forms keys; None if empty.

  Relative paths have '\\' turned into '/', repeated and trailing '/' and a
  leading './' removed; `leaves_folder` cells must be set aside first.
  """
  if cell is None or isinstance(cell, (dict, list)):
    return None
  key = normalize_key(str(cell))
  if key_source == RELATIVE_PATH and key:
    key = posixpath.normpath(key.replace('\\', '/'))
    key = '' if key == '.' else key
  return folder + key if key else None
