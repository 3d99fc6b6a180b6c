"""Which matched files are inputs, and which are junk to skip (docs/design.md §5).

A user's folder holds more than images: `.DS_Store`, `._x.jpg` (macOS),
`Thumbs.db`, `desktop.ini` (Windows), `.ipynb_checkpoints/`, a README or a
CSV beside the class folders. Such files are skipped with a reason
(`rejects.SKIP_REASONS`): accounted in the summary and in `skipped/`, never
an Example and never counted against `max_reject_fraction`.

Two kinds of rule, both pure functions of what is known at the time:

* by path, when the files are listed (no file is opened): hidden and system
  files, `ignore_patterns`, `allowed_extensions`;
* by content, when a worker converts the file: a known non-image extension or
  document name (`README`, `notes.txt`, `labels.csv`) whose first bytes are no
  input of the component (`FileConverter.sniff`). A JPEG named `.txt` is still
  read, like any image with a wrong extension.
"""

import dataclasses
import fnmatch
import posixpath
from typing import Iterable, Optional, Tuple

from image_example_gen import rejects

# Operating systems' own files, compared case-insensitively: a file of this
# name, or anything below a folder of this name.
SYSTEM_NAMES = frozenset((
    'thumbs.db', 'ehthumbs.db', 'ehthumbs_vista.db', 'desktop.ini',
    'icon\r', '__macosx', '$recycle.bin', 'system volume information',
))
# Extensions of files that are not images (lower case, with the dot).
NON_IMAGE_EXTENSIONS = frozenset((
    '.txt', '.md', '.rst', '.csv', '.tsv', '.json', '.jsonl', '.xml', '.yaml',
    '.yml', '.html', '.htm', '.pdf', '.doc', '.docx', '.xls', '.xlsx', '.ppt',
    '.pptx', '.rtf', '.odt', '.ods', '.log', '.ini', '.cfg', '.toml', '.py',
    '.ipynb', '.sh', '.bat', '.zip', '.tar', '.gz', '.tgz', '.bz2', '.xz',
    '.7z', '.rar', '.parquet', '.pkl', '.pickle', '.npy', '.npz', '.h5',
    '.hdf5', '.mat', '.db', '.sqlite', '.mp4', '.avi', '.mov', '.mkv', '.mp3',
    '.wav', '.url', '.lnk', '.exe', '.dll', '.so', '.tfrecord', '.pb',
))
# Document names without an extension (lower case).
NON_IMAGE_NAMES = frozenset((
    'readme', 'license', 'licence', 'copying', 'notice', 'authors',
    'changelog', 'changes', 'citation', 'manifest', 'makefile',
))
# Bytes a worker reads to sniff a file of a known non-image name: enough for
# every image signature and for DICOM's 128-byte preamble and `DICM`.
SNIFF_BYTES = 132


def _parts(rel_path: str) -> Tuple[str, ...]:
  return tuple(part for part in rel_path.split('/') if part)


def extension(rel_path: str) -> str:
  """The file's extension, lower case with its dot ('' without one)."""
  return posixpath.splitext(posixpath.basename(rel_path))[1].lower()


def normalize_extensions(extensions: Iterable[str]) -> Tuple[str, ...]:
  """'.JPG', 'png' -> ('.jpg', '.png'); ValueError for an empty one."""
  if isinstance(extensions, str):
    raise ValueError(f'Expected a list of extensions, got the string '
                     f'{extensions!r}.')
  result = []
  for value in extensions:
    if not isinstance(value, str) or not value.strip('.') or '/' in value:
      raise ValueError(f'Invalid extension {value!r} (e.g. ".jpg").')
    result.append('.' + value.lower().lstrip('.'))
  return tuple(sorted(set(result)))


def matches_pattern(rel_path: str, pattern: str) -> bool:
  """Whether a path matches an `ignore_patterns` entry.

  A pattern without '/' is matched against every component of the path (a
  file or folder name: 'README*', '*.txt', 'annotations'); one with '/'
  against the whole relative path, where `*` also crosses folders
  ('train/masks/*').
  """
  if '/' in pattern:
    return fnmatch.fnmatchcase(rel_path, pattern.strip('/'))
  return any(fnmatch.fnmatchcase(part, pattern) for part in _parts(rel_path))


@dataclasses.dataclass(frozen=True)
class Selection:
  """The component's rules for telling inputs from junk (picklable).

  Attributes:
    allowed_extensions: if not empty, only files with these extensions (lower
      case, with the dot) are inputs.
    ignore_patterns: files matching any of these (`matches_pattern`) are
      skipped.
  """
  allowed_extensions: Tuple[str, ...] = ()
  ignore_patterns: Tuple[str, ...] = ()

  def __post_init__(self):
    object.__setattr__(self, 'allowed_extensions',
                       normalize_extensions(self.allowed_extensions))
    if isinstance(self.ignore_patterns, str):
      raise ValueError(f'Expected a list of patterns, got the string '
                       f'{self.ignore_patterns!r}.')
    for pattern in self.ignore_patterns:
      if not isinstance(pattern, str) or not pattern.strip('/'):
        raise ValueError(f'Invalid ignore pattern {pattern!r}.')
    object.__setattr__(self, 'ignore_patterns', tuple(self.ignore_patterns))

  def path_skip(self, rel_path: str) -> Optional[str]:
    """The skip reason of a file from its path alone, or None."""
    parts = _parts(rel_path)
    if any(part.startswith('.') for part in parts):
      return rejects.HIDDEN_FILE
    if any(part.lower() in SYSTEM_NAMES for part in parts):
      return rejects.SYSTEM_FILE
    if any(matches_pattern(rel_path, p) for p in self.ignore_patterns):
      return rejects.IGNORE_PATTERN
    if (self.allowed_extensions and
        extension(rel_path) not in self.allowed_extensions):
      return rejects.EXTENSION_NOT_ALLOWED
    return None


def may_be_junk(rel_path: str) -> bool:
  """Whether the name says 'not an image' (then its bytes decide)."""
  suffix = extension(rel_path)
  return (suffix in NON_IMAGE_EXTENSIONS or
          not suffix and posixpath.basename(rel_path).lower() in
          NON_IMAGE_NAMES)
