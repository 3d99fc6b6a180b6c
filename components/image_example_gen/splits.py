"""Output split assignment, with TFX's hash-bucket rule, inside the conversion.

TFX's ExampleGen assigns an Example to a hash-bucket split in a separate Beam
step (`base_example_gen_executor._PartitionFn`): the SHA-256 of the
deterministic serialization of the `partition_feature_name` feature (or of
the whole Example without one), modulo the total number of buckets, bisected
into the splits' cumulative bucket counts. `SplitAssigner` applies the same
rule while the Example is being built, so that a file costs no extra Beam
step, and the workers need not import TFX. tests/test_splits.py checks that
both give every Example the same split.
"""

import bisect
import dataclasses
import hashlib
from typing import Sequence, Tuple

from image_example_gen import example as example_lib


@dataclasses.dataclass(frozen=True)
class SplitAssigner:
  """Which output split an Example goes to.

  Attributes:
    names: the output split names, in the order of `buckets`.
    buckets: cumulative hash buckets per split (TFX's `hash_buckets` summed);
      empty for a single input split that is written as `names[0]`.
    partition_feature: the feature hashed (TFX's `partition_feature_name`);
      '' hashes the whole serialized Example.
  """
  names: Tuple[str, ...]
  buckets: Tuple[int, ...] = ()
  partition_feature: str = ''

  @classmethod
  def fixed(cls, name: str) -> 'SplitAssigner':
    return cls(names=(name,))

  @classmethod
  def hash_buckets(cls, names: Sequence[str], hash_buckets: Sequence[int],
                   partition_feature: str) -> 'SplitAssigner':
    cumulative = []
    for count in hash_buckets:
      if count <= 0:
        raise ValueError(f'hash_buckets must be positive, got {hash_buckets}.')
      cumulative.append((cumulative[-1] if cumulative else 0) + count)
    return cls(tuple(names), tuple(cumulative), partition_feature)

  def assign(self, example: example_lib.Example, serialized: bytes) -> str:
    """The split of `example` (`serialized` is its deterministic form)."""
    if not self.buckets:
      return self.names[0]
    if self.partition_feature:
      key = _partition_key(example, self.partition_feature)
    else:
      key = serialized
    bucket = int(hashlib.sha256(key).hexdigest(), 16) % self.buckets[-1]
    return self.names[bisect.bisect(self.buckets, bucket)]


def _partition_key(example: example_lib.Example, name: str) -> bytes:
  """The serialized partition feature; RuntimeError as in TFX without one."""
  features = example.features.feature
  if name not in features:
    raise RuntimeError(f'Partition feature {name!r} is not in the Example; '
                       'set output_config.split_config.partition_feature_name '
                       'to a feature every Example has.')
  feature = features[name]
  if not (feature.HasField('bytes_list') or feature.HasField('int64_list')):
    raise RuntimeError(f'Partition feature {name!r} must be bytes or int64.')
  return feature.SerializeToString(deterministic=True)
