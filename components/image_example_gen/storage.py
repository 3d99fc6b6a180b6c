"""Files and folders on any Beam filesystem: the components' one I/O layer.

Both components and their driver read and write only through Beam's
`FileSystems` (here, `listing`, `conversion.open_file` and
`outputs.write_text`), so that local disks, gs://, s3:// and hdfs:// behave
alike and a server speaking the Cloud Storage JSON API can stand in for
Cloud Storage (`STORAGE_EMULATOR_HOST`, honoured by the client behind Beam's
`gcsio`). TFX's `fileio` would go to TensorFlow's filesystems instead, whose
gs:// client has Google's endpoint compiled in; docs/design.md lists where
TFX itself still uses it.

Object stores have no folders: a folder is the prefix of the names below it,
and a zero-byte object whose name ends in '/' (the Cloud Console's "Create
folder", `gcsfs.makedirs`) only marks one. Such placeholders are never files
(`is_placeholder`).

Free of TFX and TensorFlow imports: Beam workers use it.
"""

import os
from typing import Any, Iterator, List, Optional

from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.filesystems import FileSystems

# Objects per listing request: Cloud Storage's maximum, and its default.
PAGE_SIZE = 1000
_GCS_FIELDS = 'items(name,size,updated),prefixes,nextPageToken'


def is_local(path: str) -> bool:
  return '://' not in path


def is_placeholder(name: str, size: int) -> bool:
  """Whether an object only marks a folder: zero bytes, a name ending in '/'."""
  return name.endswith('/') and size == 0


def exists(path: str) -> bool:
  """Whether a file (or, on local disks, a folder) exists at `path`."""
  return FileSystems.exists(path)


def makedirs(path: str) -> None:
  """Creates a folder and its parents, if absent; object stores need none."""
  try:
    FileSystems.mkdirs(path)
  except IOError:  # Beam's local filesystem: the folder exists.
    if not FileSystems.exists(path):
      raise


def remove_tree(path: str) -> None:
  """Deletes a folder and everything below it; nothing if it is absent."""
  if is_local(path):
    if os.path.lexists(path):
      FileSystems.delete([path])
    return
  below = [m.path for m in iter_objects(path.rstrip('/') + '/')]
  if below:
    FileSystems.delete(below)


def glob(pattern: str) -> List[str]:
  """The sorted paths of the files that a Beam glob matches."""
  (match,) = FileSystems.match([pattern])
  return sorted(m.path for m in match.metadata_list
                if not is_placeholder(m.path, m.size_in_bytes))


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
  return ''.join(f'[{c}]' if c in '*?[' else c for c in path)


def _split_gcs(path: str):
  bucket, _, name = path[len('gs://'):].partition('/')
  return bucket, name


def _gcs_client(path: str) -> Optional[Any]:
  """The Cloud Storage client Beam's gcsio uses for `path`, or None."""
  if not path.startswith('gs://'):
    return None
  # Beam's GCSFileSystem builds its client from the pipeline's options
  # (credentials, impersonation); listing by pages needs the client itself.
  return FileSystems.get_filesystem(path)._gcsIO().client  # pylint: disable=protected-access
