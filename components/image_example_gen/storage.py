"""Files and folders on any Beam filesystem: the components' one I/O layer.

Both components and their driver read and write only through Beam's
`FileSystems`: listing (`listing`), reading (`conversion.open_file`),
writing (`outputs.write_text`, `records`), and the rest here. So local
disks, gs://, s3:// and hdfs:// behave alike, and a server speaking the
Cloud Storage JSON API can stand in for Cloud Storage
(`STORAGE_EMULATOR_HOST`, honoured by the client behind Beam's `gcsio`).
TFX's `fileio` would go to TensorFlow's filesystems instead, whose gs://
client has Google's endpoint compiled in; docs/design.md §13 lists where
TFX itself still uses it.

Free of TFX and TensorFlow imports: Beam workers use it.
"""

import os
from typing import List

from apache_beam.io.filesystems import FileSystems

from image_example_gen import listing


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
  if listing.is_local(path):
    if os.path.lexists(path):
      FileSystems.delete([path])
    return
  below = [m.path for m in listing.iter_objects(path.rstrip('/') + '/')]
  if below:
    FileSystems.delete(below)


def glob(pattern: str) -> List[str]:
  """The sorted paths of the files that a Beam glob matches."""
  (match,) = FileSystems.match([pattern])
  return sorted(m.path for m in match.metadata_list
                if not listing.is_placeholder(m.path, m.size_in_bytes))
