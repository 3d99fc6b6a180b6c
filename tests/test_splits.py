"""SplitAssigner gives every Example the split TFX's own partition gives."""

import collections

import pytest
import tensorflow as tf
from tfx.components.example_gen import base_example_gen_executor
from tfx.proto import example_gen_pb2

from image_example_gen import example
from image_example_gen import splits


def _examples(n):
  return [example.make_example({'image/key': f'key-{i}', 'label': i % 7,
                                'patient/key': f'p-{i // 3}'})
          for i in range(n)]


def _tfx_split(record, config):
  buckets, total = [], 0
  for split in config.splits:
    total += split.hash_buckets
    buckets.append(total)
  # TFX checks for TensorFlow's own class; ours serializes to the same bytes.
  record = tf.train.Example.FromString(record.SerializeToString())
  index = base_example_gen_executor._PartitionFn(  # pylint: disable=protected-access
      record, len(buckets), buckets, config)
  return config.splits[index].name


@pytest.mark.parametrize('feature', ['patient/key', 'label', ''])
def test_same_split_as_tfx(feature):
  config = example_gen_pb2.SplitConfig(
      splits=[example_gen_pb2.SplitConfig.Split(name='train', hash_buckets=7),
              example_gen_pb2.SplitConfig.Split(name='eval', hash_buckets=2),
              example_gen_pb2.SplitConfig.Split(name='test', hash_buckets=1)])
  if feature:
    config.partition_feature_name = feature
  assigner = splits.SplitAssigner.hash_buckets(
      ['train', 'eval', 'test'], [7, 2, 1], feature)
  got = collections.Counter()
  for record in _examples(600):
    serialized = record.SerializeToString(deterministic=True)
    split = assigner.assign(record, serialized)
    assert split == _tfx_split(record, config)
    got[split] += 1
  assert set(got) == {'train', 'eval', 'test'}


def test_missing_partition_feature_fails_clearly():
  assigner = splits.SplitAssigner.hash_buckets(['train', 'eval'], [2, 1],
                                               'group/key')
  record = _examples(1)[0]
  with pytest.raises(RuntimeError, match="'group/key' is not in the Example"):
    assigner.assign(record, record.SerializeToString())


def test_fixed_split():
  record = _examples(1)[0]
  assert splits.SplitAssigner.fixed('eval').assign(record, b'') == 'eval'
