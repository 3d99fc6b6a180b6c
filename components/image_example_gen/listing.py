"""Listing the input files of a split pattern, every one of them.

Beam's local filesystem skips, silently, every file it cannot stat while
listing (a symlink whose target is gone, a file deleted meanwhile), and
treats FIFOs like files (opening one blocks a worker forever). This lister
accounts for every entry instead: a regular file is listed with its size; any
other entry the pattern matches (a broken symlink, a FIFO, a socket, a
device, a folder that cannot be listed) is listed with the `problem` that
makes it unreadable, so that it becomes a reject, never a silent skip.

Local folders are walked in sorted order with `os.scandir`:

* symlinks to files are followed: each link is one input file, read once
  (two links to one file are two inputs, with equal bytes);
* symlinks to folders inside `input_base` are not followed (their files are
  listed under their real path), symlinks to folders outside it are followed,
  and every real folder is walked at most once, so that a link loop or a link
  to a parent ends;
* a folder is never a file, whatever its name (`scan.dcm/`).

Object stores (`gs://`, ...) have neither symlinks nor special files, nor
folders: a folder is the prefix of the names below it. They are listed below
the pattern's fixed folders (`iter_objects`: on Cloud Storage one page of
names at a time) and matched here. A placeholder object (zero bytes, a name
ending in '/': the Cloud Console's "Create folder", `gcsfs.makedirs`) only
marks a folder: it is not listed. An object named like a folder that holds
bytes is listed with its `problem`.

Free of TFX and TensorFlow imports: Beam workers use it.

Patterns are Beam's globs relative to `input_base`: `*` matches within a
folder name, `**` across folders.
"""

import dataclasses
import os
import re
import stat
from typing import Any, Iterator, List, Optional, Set, Tuple

from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.filesystem import FileSystem
from apache_beam.io.filesystems import FileSystems

_GLOB_CHARS = frozenset('*?[')
# Objects per listing request: Cloud Storage's maximum, and its default.
PAGE_SIZE = 1000
_GCS_FIELDS = 'items(name,size,updated),prefixes,nextPageToken'
_FILE = 'file'
_FOLDER = 'folder'


@dataclasses.dataclass(frozen=True)
class ListedFile:
  """One matched input.

  Attributes:
    path: absolute path or URI, as the converters open it.
    rel_path: path below `input_base`, '/'-separated.
    size: bytes at listing time (0 when `problem` is set).
    mtime: modification time in seconds (of the link itself for a broken
      link).
    problem: '' for a regular file, else why it cannot be read.
  """
  path: str
  rel_path: str
  size: int
  mtime: float
  problem: str = ''


def is_local(input_base: str) -> bool:
  return '://' not in input_base


def is_placeholder(name: str, size: int) -> bool:
  """Whether an object only marks a folder: zero bytes, a name ending in '/'."""
  return name.endswith('/') and size == 0


def fixed_prefix(pattern: str) -> str:
  """The folders of a pattern before its first wildcard ('' or 'a/b/')."""
  fixed = []
  for part in pattern.split('/')[:-1]:
    if _GLOB_CHARS & set(part):
      break
    fixed.append(part)
  return ''.join(f'{part}/' for part in fixed)


def list_files(input_base: str, pattern: str) -> Iterator[ListedFile]:
  """Every entry of `input_base` that `pattern` matches, sorted on local disks.

  Args:
    input_base: a local folder (absolute path) or a filesystem URI.
    pattern: glob relative to `input_base`.
  """
  base = input_base.rstrip('/')
  regex = re.compile(FileSystem.translate_pattern(pattern))
  if not is_local(base):
    yield from _list_remote(base, pattern, regex)
    return
  start = os.path.join(base, fixed_prefix(pattern))
  root = os.path.realpath(base)
  visited: Set[Tuple[int, int]] = set()
  for rel_path, path, status, problem in _walk(start, base, root, visited):
    if not regex.match(rel_path):
      continue
    if problem:
      yield ListedFile(path, rel_path, 0, _lstat_mtime(path), problem)
    else:
      yield ListedFile(path, rel_path, status.st_size, status.st_mtime)


def _walk(
    folder: str, base: str, root: str, visited: Set[Tuple[int, int]]
) -> Iterator[Tuple[str, str, Optional[os.stat_result], str]]:
  """(rel_path, path, stat, problem) of every non-folder entry below `folder`.

  `stat` is the file's (symlinks followed) when `problem` is ''.
  """
  try:
    status = os.stat(folder)
  except OSError:
    return  # The pattern's fixed folders do not exist: nothing matches.
  if (status.st_dev, status.st_ino) in visited:
    return
  visited.add((status.st_dev, status.st_ino))
  try:
    with os.scandir(folder) as it:
      entries = sorted(it, key=lambda entry: entry.name)
  except OSError as e:
    yield (_relative(folder, base), folder, None,
           f'cannot list folder: {e.strerror or e}')
    return
  for entry in entries:
    path = entry.path
    status, kind = _kind(entry)
    if kind == _FOLDER:
      if entry.is_symlink() and _inside(os.path.realpath(path), root):
        continue  # Listed under its real path.
      yield from _walk(path, base, root, visited)
    elif kind == _FILE:
      yield _relative(path, base), path, status, ''
    else:
      yield _relative(path, base), path, None, kind


def _kind(entry: os.DirEntry) -> Tuple[Optional[os.stat_result], str]:
  """The entry's stat (symlinks followed) and _FILE, _FOLDER or a problem."""
  try:
    status = entry.stat()
  except FileNotFoundError:
    return None, ('broken symbolic link' if entry.is_symlink() else
                  'vanished while listed')
  except OSError as e:
    return None, f'cannot stat: {e.strerror or e}'
  mode = status.st_mode
  if stat.S_ISDIR(mode):
    return status, _FOLDER
  if stat.S_ISREG(mode):
    return status, _FILE
  for test, name in ((stat.S_ISFIFO, 'a FIFO'), (stat.S_ISSOCK, 'a socket'),
                     (stat.S_ISCHR, 'a character device'),
                     (stat.S_ISBLK, 'a block device')):
    if test(mode):
      return None, f'not a regular file: {name}'
  return None, 'not a regular file'


def _inside(path: str, root: str) -> bool:
  return path == root or path.startswith(root.rstrip('/') + '/')


def _relative(path: str, base: str) -> str:
  return os.path.relpath(path, base).replace(os.sep, '/')


def _lstat_mtime(path: str) -> float:
  try:
    return os.lstat(path).st_mtime
  except OSError:
    return 0.0


def _list_remote(base: str, pattern: str,
                 regex: 're.Pattern[str]') -> Iterator[ListedFile]:
  prefix = base + '/'
  for metadata in iter_objects(prefix + fixed_prefix(pattern)):
    path, size = metadata.path, metadata.size_in_bytes
    rel_path = path[len(prefix):]
    if is_placeholder(path, size) or not regex.match(rel_path):
      continue
    mtime = metadata.last_updated_in_seconds or 0.0
    if path.endswith('/'):
      yield ListedFile(path, rel_path, 0, mtime,
                       f'an object named like a folder (its name ends in '
                       f'"/") holds {size} bytes')
    else:
      yield ListedFile(path, rel_path, size, mtime)


def iter_objects(prefix: str) -> Iterator[FileMetadata]:
  """Every object whose name starts with `prefix` (a URI), in name order.

  On Cloud Storage the names arrive a page at a time and only the page being
  yielded is held (Beam's own listing keeps every name it has seen, to drop
  duplicates). Other filesystems are listed with `FileSystems.match`.
  Placeholders are yielded too: callers decide.
  """
  client = _gcs_client(prefix)
  if client is None:
    (match,) = FileSystems.match([_escape_glob(prefix) + '**'])
    yield from sorted(match.metadata_list, key=lambda m: m.path)
    return
  bucket, name_prefix = _split_gcs(prefix)
  blobs = client.list_blobs(bucket, prefix=name_prefix, page_size=PAGE_SIZE,
                            fields=_GCS_FIELDS)
  for page in blobs.pages:
    for blob in page:
      updated = blob.updated  # Parsed at each access.
      yield FileMetadata(f'gs://{bucket}/{blob.name}', blob.size or 0,
                         updated.timestamp() if updated else 0.0)


def list_folders(path: str) -> List[str]:
  """The sorted names of the folders directly in `path` ([] if none).

  On object stores a folder is a name prefix ending in '/' below `path`,
  placeholders included, as the Cloud Console shows them.
  """
  base = path.rstrip('/') + '/'
  if is_local(path):
    try:
      with os.scandir(path) as entries:
        return sorted(e.name for e in entries if e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
      return []
  client = _gcs_client(base)
  if client is None:
    names = {m.path[len(base):].split('/', 1)[0]
             for m in iter_objects(base) if '/' in m.path[len(base):]}
    return sorted(names)
  bucket, name_prefix = _split_gcs(base)
  blobs = client.list_blobs(bucket, prefix=name_prefix, delimiter='/',
                            page_size=PAGE_SIZE, fields=_GCS_FIELDS)
  for _ in blobs.pages:  # `prefixes` fills as the pages are read.
    pass
  return sorted(p[len(name_prefix):].rstrip('/') for p in blobs.prefixes)


def _escape_glob(path: str) -> str:
  """`path` with Beam's glob characters made literal."""
  return ''.join(f'[{c}]' if c in _GLOB_CHARS else c for c in path)


def _split_gcs(path: str) -> Tuple[str, str]:
  bucket, _, name = path[len('gs://'):].partition('/')
  return bucket, name


def _gcs_client(path: str) -> Optional[Any]:
  """The Cloud Storage client Beam's gcsio uses for `path`, or None."""
  if not path.startswith('gs://'):
    return None
  # Beam's GCSFileSystem builds its client from the pipeline's options
  # (credentials, impersonation); listing by pages needs the client itself.
  return FileSystems.get_filesystem(path)._gcsIO().client  # pylint: disable=protected-access
