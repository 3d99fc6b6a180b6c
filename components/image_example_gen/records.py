"""Writing Examples in TFX's layout: gzip TFRecords, without recompressing.

Every Example holds a JPEG or PNG, which deflate cannot shrink: on the image
folder benchmark, zlib level 1 or 6 spent 1.4 ms per 50 KiB image (more than
decoding it) to save 1% of the bytes, and made reading 2.4x slower. The files
stay gzip (`.gz`, `tfrecords_gzip`, what every TFX component and
`tf.data.TFRecordDataset(compression_type='GZIP')` reads) with stored deflate
blocks (level 0). TensorFlow's writer also frames records with hardware
CRC32C, where Beam's TFRecord sink computes it in Python.
"""

import apache_beam as beam
from apache_beam import coders
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes
import tensorflow as tf

GZIP_LEVEL = 0
FILE_PREFIX = 'data_tfrecord'  # TFX's name for the Split-* files
FILE_SUFFIX = '.gz'


class _GzipTFRecordSink(filebasedsink.FileBasedSink):
  """Serialized records into gzip TFRecord shards, via TensorFlow's writer."""

  def __init__(self, file_path_prefix: str):
    super().__init__(file_path_prefix, coder=coders.BytesCoder(),
                     file_name_suffix=FILE_SUFFIX,
                     mime_type='application/octet-stream',
                     compression_type=CompressionTypes.UNCOMPRESSED)

  def open(self, temp_path: str) -> tf.io.TFRecordWriter:
    return tf.io.TFRecordWriter(
        temp_path, tf.io.TFRecordOptions(compression_type='GZIP',
                                         compression_level=GZIP_LEVEL))

  def write_encoded_record(self, file_handle: tf.io.TFRecordWriter,
                           encoded_value: bytes) -> None:
    file_handle.write(encoded_value)


@beam.ptransform_fn
def WriteExamples(  # pylint: disable=invalid-name
    examples: beam.PCollection, split_uri: str) -> beam.PCollection:
  """Writes tf.train.Examples as `split_uri/data_tfrecord-*.gz`."""
  return (examples
          | 'Serialize' >> beam.Map(
              lambda e: e.SerializeToString(deterministic=True))
          | 'Write' >> beam.io.Write(
              _GzipTFRecordSink(f'{split_uri}/{FILE_PREFIX}')))
