"""WriteExamples: TFX's gzip TFRecord layout, images not deflated again."""

import gzip
import os

import apache_beam as beam
from apache_beam.testing import util as beam_testing
import numpy as np
import pytest
import tensorflow as tf
from tfx_bsl.public import tfxio

from image_example_gen import example
from image_example_gen import records


@pytest.fixture(name='examples')
def _examples():
  """Examples whose payload deflate would shrink 10x, were it applied."""
  rng = np.random.default_rng(0)
  return [
      example.make_example({
          example.IMAGE_ENCODED: rng.bytes(2_000) * 10,
          example.IMAGE_KEY: f'key-{i}',
          example.LABEL: i % 3,
      }) for i in range(30)
  ]


def _write(examples, split_uri: str, shard_size_bytes: int = 2**20,
           batch: int = 4) -> list:
  serialized = [e.SerializeToString(deterministic=True) for e in examples]
  temp_dir = split_uri + '.temp'
  with beam.Pipeline() as pipeline:
    _ = (pipeline
         | beam.Create([serialized[i:i + batch]
                        for i in range(0, len(serialized), batch)])
         | records.WriteExamples(split_uri, temp_dir, shard_size_bytes))
  assert not os.path.exists(temp_dir)
  return sorted(tf.io.gfile.glob(os.path.join(split_uri, '*')))


def test_written_files_are_tfx_gzip_tfrecords(examples, tmp_path):
  files = _write(examples, str(tmp_path / 'Split-train'))

  assert files and all(
      os.path.basename(f).startswith('data_tfrecord-') and f.endswith('.gz')
      for f in files)
  read = [tf.train.Example.FromString(r.numpy())
          for r in tf.data.TFRecordDataset(files, compression_type='GZIP')]
  assert sorted(e.SerializeToString(deterministic=True) for e in read) == (
      sorted(e.SerializeToString(deterministic=True) for e in examples))


def test_tfx_reads_them_with_its_own_compression_detection(examples, tmp_path):
  _write(examples, str(tmp_path / 'Split-train'))
  source = tfxio.TFExampleRecord(
      file_pattern=str(tmp_path / 'Split-train' / '*'))

  with beam.Pipeline() as pipeline:
    counts = (pipeline | source.BeamSource()
              | beam.Map(lambda batch: batch.num_rows)
              | beam.CombineGlobally(sum))
    beam_testing.assert_that(counts, beam_testing.equal_to([len(examples)]))


def test_payload_is_stored_not_deflated(examples, tmp_path):
  files = _write(examples, str(tmp_path / 'Split-train'))
  raw = sum(len(e.SerializeToString()) + 16 for e in examples)
  stored = sum(os.path.getsize(f) for f in files)
  # Stored deflate blocks add 5 bytes per 64 KiB plus the gzip framing.
  assert raw <= stored <= raw * 1.01 + 100
  with gzip.open(files[0], 'rb') as f:
    assert f.read(1)  # A valid gzip stream for any gzip reader.


def test_shards_roll_over_at_the_shard_size(examples, tmp_path):
  size = len(examples[0].SerializeToString()) + 16
  files = _write(examples, str(tmp_path / 'Split-train'),
                 shard_size_bytes=5 * size)

  assert [os.path.basename(f) for f in files] == [
      f'data_tfrecord-{i:05d}-of-00006.gz' for i in range(6)]
  counts = [sum(1 for _ in tf.data.TFRecordDataset(f, compression_type='GZIP'))
            for f in files]
  assert counts == [5] * 6


def test_an_empty_split_gets_one_empty_file(tmp_path):
  files = _write([], str(tmp_path / 'Split-eval'))

  assert [os.path.basename(f) for f in files] == [
      'data_tfrecord-00000-of-00001.gz']
  assert not list(tf.data.TFRecordDataset(files, compression_type='GZIP'))
