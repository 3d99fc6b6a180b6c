"""Writing Examples in TFX's layout: gzip TFRecord shards of a chosen size.

Every Example holds a JPEG or PNG, which deflate cannot shrink: on the image
folder benchmark, zlib level 1 or 6 spent 1.4 ms per 50 KiB image (more than
decoding it) to save 1% of the bytes, and made reading 2.4x slower. The files
stay gzip (`.gz`, `tfrecords_gzip`, what every TFX component and
`tf.data.TFRecordDataset(compression_type='GZIP')` reads) with stored deflate
blocks (level 0).

Records are framed here as TensorFlow's writer frames them (length, masked
CRC32C of the length, data, masked CRC32C of the data; CRC32C in hardware by
google-crc32c) and written through Beam's filesystems, so workers need no
TensorFlow: importing it cost each ~3 CPU-seconds before its first file.

Shards: each conversion bundle writes its records, in the order it converted
them, to temporary shards of at most `shard_size_bytes` (rolling over to a
new file when one is full); when every bundle is done, one step renames the
shards of committed bundles to `data_tfrecord-SSSSS-of-NNNNN.gz`, in the
order of a digest of each shard's first record (so the same records give the
same files), and removes the temporary folder, with the shards of retried
bundles in it. Nothing appears under `Split-*` before the whole split is
written, and an empty split still gets one (empty) file.
"""

import gzip
import hashlib
import os
import struct
import uuid
from typing import BinaryIO, Iterator, List, Optional, Tuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms import window
from apache_beam.utils import windowed_value
import google_crc32c

from image_example_gen import storage

GZIP_LEVEL = 0
FILE_PREFIX = 'data_tfrecord'  # TFX's name for the Split-* files
FILE_SUFFIX = '.gz'
DEFAULT_SHARD_SIZE_MB = 128
# Framing per TFRecord: length (8 bytes) and two CRCs (4 each).
_RECORD_OVERHEAD = 16
_CRC_MASK_DELTA = 0xa282ead8


def masked_crc(data: bytes) -> int:
  """TFRecord's masked CRC32C of `data`."""
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xffffffff


# Records are handed to gzip in pieces of at most this size: a volume's
# record can be hundreds of MB, and gzip's output for a piece is a copy.
_WRITE_CHUNK = 8 * 2**20


def frame_parts(record: bytes) -> Tuple[bytes, bytes]:
  """The bytes before and after `record` in its TFRecord: its length and the
  length's CRC; the data's CRC."""
  length = struct.pack('<Q', len(record))
  return (length + struct.pack('<I', masked_crc(length)),
          struct.pack('<I', masked_crc(record)))


def frame(record: bytes) -> bytes:
  """`record` as one TFRecord: length, its CRC, the data, the data's CRC."""
  head, tail = frame_parts(record)
  return b''.join((head, record, tail))


class TFRecordGzipWriter:
  """Writes TFRecords to `path` (any Beam filesystem) as stored gzip."""

  def __init__(self, path: str):
    self._raw: BinaryIO = FileSystems.create(
        path, compression_type=CompressionTypes.UNCOMPRESSED)
    self._gzip = gzip.GzipFile(filename='', mode='wb', fileobj=self._raw,
                               compresslevel=GZIP_LEVEL, mtime=0)

  def write(self, record: bytes) -> None:
    """Writes one framed record, never copying `record` whole."""
    head, tail = frame_parts(record)
    self._gzip.write(head)
    view = memoryview(record)
    for start in range(0, len(record), _WRITE_CHUNK):
      self._gzip.write(view[start:start + _WRITE_CHUNK])
    self._gzip.write(tail)

  def close(self) -> None:
    self._gzip.close()
    self._raw.close()

  def __enter__(self) -> 'TFRecordGzipWriter':
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


class _WriteShardsFn(beam.DoFn):
  """Writes lists of serialized records to rolling temporary shards."""

  def __init__(self, temp_dir: str, shard_size_bytes: int):
    self._temp_dir = temp_dir
    self._shard_size_bytes = shard_size_bytes

  def start_bundle(self):
    self._writer: Optional[TFRecordGzipWriter] = None
    self._path = ''
    self._written = 0

  def process(self, records: List[bytes]) -> Iterator[str]:
    for record in records:
      if self._writer is None:
        # Named for its first record: the final order of the shards.
        first = hashlib.sha256(record).hexdigest()[:24]
        self._path = os.path.join(
            self._temp_dir, f'{first}-{uuid.uuid4().hex[:8]}{FILE_SUFFIX}')
        self._writer = TFRecordGzipWriter(self._path)
        self._written = 0
      self._writer.write(record)
      self._written += len(record) + _RECORD_OVERHEAD
      if self._written >= self._shard_size_bytes:
        yield self._close()

  def finish_bundle(self):
    if self._writer is not None:
      yield windowed_value.WindowedValue(
          self._close(), window.GlobalWindow().max_timestamp(),
          (window.GlobalWindow(),))

  def _close(self) -> str:
    self._writer.close()
    self._writer = None
    return self._path


def _finalize(paths: List[str], split_uri: str, temp_dir: str) -> int:
  """Moves the shards into `split_uri` under their final names."""
  storage.makedirs(split_uri)
  if not paths:
    TFRecordGzipWriter(os.path.join(
        split_uri, f'{FILE_PREFIX}-00000-of-00001{FILE_SUFFIX}')).close()
  final = [os.path.join(split_uri, f'{FILE_PREFIX}-{index:05d}-of-'
                        f'{len(paths):05d}{FILE_SUFFIX}')
           for index in range(len(paths))]
  if paths:
    stale = [path for path in final if FileSystems.exists(path)]  # A retry.
    if stale:
      FileSystems.delete(stale)
    FileSystems.rename(sorted(paths), final)
  storage.remove_tree(temp_dir)
  return max(1, len(paths))


@beam.ptransform_fn
def WriteExamples(  # pylint: disable=invalid-name
    batches: beam.PCollection, split_uri: str, temp_dir: str,
    shard_size_bytes: int = DEFAULT_SHARD_SIZE_MB * 2**20) -> beam.PCollection:
  """Writes lists of serialized Examples as `split_uri/data_tfrecord-*.gz`.

  Returns a PCollection with the number of shards written.
  """
  storage.makedirs(temp_dir)
  return (batches
          | 'WriteShards' >> beam.ParDo(_WriteShardsFn(temp_dir,
                                                       shard_size_bytes))
          | 'Collect' >> beam.combiners.ToList()
          | 'Finalize' >> beam.Map(_finalize, split_uri, temp_dir))
