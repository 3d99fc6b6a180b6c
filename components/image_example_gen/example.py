"""tf.train.Example construction for the contract of docs/design.md."""

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
IMAGE_CONTENT_KEY = 'image/content_key'
IMAGE_BIT_DEPTH = 'image/bit_depth'
LABEL = 'label'
LABEL_NAME = 'label/name'
PATIENT_KEY = 'patient/key'
GROUP_KEY = 'group/key'


def _set(feature: tf.train.Feature, values: FeatureValues) -> None:
  if isinstance(values, (bytes, str, int, float)):
    values = [values]
  values = list(values)
  if not values:
    raise ValueError('Empty feature values: omit the feature instead.')
  first = values[0]
  if isinstance(first, (bytes, str)):
    feature.bytes_list.value.extend(
        v.encode('utf-8') if isinstance(v, str) else v for v in values)
  elif isinstance(first, (bool, int)):
    feature.int64_list.value.extend(values)
  elif isinstance(first, float):
    feature.float_list.value.extend(values)
  else:
    raise TypeError(f'Unsupported feature value type {type(first)}.')


def make_example(features: Mapping[str, FeatureValues]) -> tf.train.Example:
  """A tf.Example of `features`: str/bytes -> bytes, int -> int64, float.

  Values are appended to the fields in place: building nested messages and
  assigning them would copy each (an image's bytes) once per level.
  """
  example = tf.train.Example()
  feature_map = example.features.feature
  for key, values in features.items():
    _set(feature_map[key], values)
  return example


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
