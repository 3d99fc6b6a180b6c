"""tf.train.Example construction for the DESIGN.md §3 contract."""

from typing import Mapping, Sequence, Union

import tensorflow as tf

FeatureValues = Union[bytes, str, int, float, Sequence[bytes], Sequence[str],
                      Sequence[int], Sequence[float]]

# Feature keys shared by both components.
IMAGE_ENCODED = 'image/encoded'
IMAGE_FORMAT = 'image/format'
IMAGE_HEIGHT = 'image/height'
IMAGE_WIDTH = 'image/width'
IMAGE_CHANNELS = 'image/channels'
IMAGE_KEY = 'image/key'
IMAGE_BIT_DEPTH = 'image/bit_depth'
LABEL = 'label'
LABEL_NAME = 'label/name'
PATIENT_KEY = 'patient/key'


def _feature(values: FeatureValues) -> tf.train.Feature:
  if isinstance(values, (bytes, str, int, float)):
    values = [values]
  values = list(values)
  if not values:
    raise ValueError('Empty feature values: omit the feature instead.')
  first = values[0]
  if isinstance(first, (bytes, str)):
    return tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[v.encode('utf-8') if isinstance(v, str) else v
               for v in values]))
  if isinstance(first, (bool, int)):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  if isinstance(first, float):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))
  raise TypeError(f'Unsupported feature value type {type(first)}.')


def make_example(features: Mapping[str, FeatureValues]) -> tf.train.Example:
  """A tf.Example of `features`: str/bytes -> bytes, int -> int64, float."""
  return tf.train.Example(features=tf.train.Features(
      feature={key: _feature(values) for key, values in features.items()}))


def image_features(encoded: bytes, image_format: str, height: int, width: int,
                   channels: int, key: str) -> dict:
  """The §3 features every Example carries."""
  return {
      IMAGE_ENCODED: encoded,
      IMAGE_FORMAT: image_format,
      IMAGE_HEIGHT: height,
      IMAGE_WIDTH: width,
      IMAGE_CHANNELS: channels,
      IMAGE_KEY: key,
  }
