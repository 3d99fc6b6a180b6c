"""tf.train.Example construction for the contract of docs/design.md.

The Example messages are built from TensorFlow's `example.proto` and
`feature.proto` (the same message names, field numbers and types, so the
same bytes) in a private protobuf descriptor pool instead of importing
`tf.train.Example`: importing TensorFlow cost every Beam worker ~3
CPU-seconds before its first file, and an image folder of JPEG and PNG files
needs nothing else from it. Serialized, these Examples are tf.Examples.
"""

from typing import Any, Mapping, Sequence, Union

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory

FeatureValues = Union[bytes, str, int, float, Sequence[bytes], Sequence[str],
                      Sequence[int], Sequence[float]]

_FieldProto = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, kind: int, label: int = 1,
           type_name: str = '', oneof_index: Any = None) -> _FieldProto:
  field = _FieldProto(name=name, number=number, type=kind, label=label,
                      json_name=name)
  if type_name:
    field.type_name = type_name
  if oneof_index is not None:
    field.oneof_index = oneof_index
  return field


def _example_file() -> descriptor_pb2.FileDescriptorProto:
  """tensorflow/core/example/{feature,example}.proto, as one file."""
  repeated, message = _FieldProto.LABEL_REPEATED, _FieldProto.TYPE_MESSAGE
  lists = [descriptor_pb2.DescriptorProto(
      name=name, field=[_field('value', 1, kind, repeated)])
           for name, kind in (('BytesList', _FieldProto.TYPE_BYTES),
                              ('FloatList', _FieldProto.TYPE_FLOAT),
                              ('Int64List', _FieldProto.TYPE_INT64))]
  feature = descriptor_pb2.DescriptorProto(
      name='Feature', oneof_decl=[descriptor_pb2.OneofDescriptorProto(
          name='kind')],
      field=[_field(f'{kind}_list', number, message,
                    type_name=f'.tensorflow.{name}', oneof_index=0)
             for number, (kind, name) in enumerate(
                 (('bytes', 'BytesList'), ('float', 'FloatList'),
                  ('int64', 'Int64List')), start=1)])
  entry = descriptor_pb2.DescriptorProto(
      name='FeatureEntry',
      field=[_field('key', 1, _FieldProto.TYPE_STRING),
             _field('value', 2, message, type_name='.tensorflow.Feature')],
      options=descriptor_pb2.MessageOptions(map_entry=True))
  features = descriptor_pb2.DescriptorProto(
      name='Features', nested_type=[entry],
      field=[_field('feature', 1, message, repeated,
                    '.tensorflow.Features.FeatureEntry')])
  example = descriptor_pb2.DescriptorProto(
      name='Example', field=[_field('features', 1, message,
                                    type_name='.tensorflow.Features')])
  return descriptor_pb2.FileDescriptorProto(
      name='image_example_gen/example.proto', package='tensorflow',
      syntax='proto3', message_type=[*lists, feature, features, example])


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_example_file())
# The message class of tf.train.Example (`Example()`, `Example.FromString`).
Example = message_factory.MessageFactory(_POOL).GetPrototype(
    _POOL.FindMessageTypeByName('tensorflow.Example'))

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
# DICOM series (docs/design.md §14).
SERIES_KEY = 'series/key'
STUDY_KEY = 'study/key'
SLICE_POSITION = 'slice/position'
IMAGE_DEPTH = 'image/depth'
VOLUME_SPACING = 'volume/spacing'
VOLUME_ORIGIN = 'volume/origin'
VOLUME_DIRECTION = 'volume/direction'


def _set(feature: Any, values: FeatureValues) -> None:
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


def make_example(features: Mapping[str, FeatureValues]) -> Example:
  """A tf.Example of `features`: str/bytes -> bytes, int -> int64, float.

  Values are appended to the fields in place: building nested messages and
  assigning them would copy each (an image's bytes) once per level.
  """
  example = Example()
  add_features(example, features)
  return example


def add_features(example: Example,
                 features: Mapping[str, FeatureValues]) -> None:
  """Adds `features` to `example`, as `make_example` builds them."""
  feature_map = example.features.feature
  for key, values in features.items():
    _set(feature_map[key], values)


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
