"""Transform's `preprocessing_fn`: encoded images and text to model tensors.

Referenced by dotted path (`image_example_gen.training.preprocessing.
preprocessing_fn`), so a Kubeflow container needs no module file. The same
graph runs in the Trainer's input pipeline and in the exported serving
signature, so training and serving decode images identically.

custom_config keys (all optional):
  image_size: side of the square the model sees, in px (default 28).
  channels: 1 (grayscale) or 3 (RGB) (default 1); images of the other kind
    are converted.
  stretch_contrast: rescale each image to span [0, 1] (default True). DICOM
    display ranges differ between images (windows, bit depths, a CT without
    window scaled to the full 16-bit range spans a few percent of it); the
    stretch makes the model see them alike.
  volume_depth: for volume Examples (DicomExampleGen `unit='series'`: one
    PNG per slice in `image/encoded`), the number of slices the model sees:
    each volume is decoded into [depth, height, width, channels] and resized
    to [volume_depth, image_size, image_size, channels] (default: none,
    one image per Example).
  text_feature: a raw bytes feature of free text (UTF-8, one value per
    Example), e.g. 'description' (default: none, images only). It is
    lowercased, split into words (runs of letters and digits) and mapped to
    vocabulary indices: `text_ids`, a sparse bag of words. The vocabulary
    (`text_vocabulary`, computed over the train split) keeps the 10,000 most
    frequent words seen at least 5 times; every other word maps to one
    out-of-vocabulary index, the vocabulary size. Without the key the output
    is `image` and `label` only.
"""

import dataclasses
from typing import Any, Dict, Mapping, Optional

import tensorflow as tf
import tensorflow_transform as tft

from image_example_gen import example
from image_example_gen.training import defaults

# Transformed features.
IMAGE = 'image'
LABEL = 'label'
TEXT_IDS = 'text_ids'

# Raw features the transform reads.
RAW_IMAGE = example.IMAGE_ENCODED
RAW_LABEL = example.LABEL

IMAGE_SIZE_KEY = 'image_size'
CHANNELS_KEY = 'channels'
STRETCH_CONTRAST_KEY = 'stretch_contrast'
TEXT_FEATURE_KEY = 'text_feature'
VOLUME_DEPTH_KEY = 'volume_depth'
DEFAULT_IMAGE_SIZE = defaults.DEFAULT_IMAGE_SIZE
DEFAULT_CHANNELS = defaults.DEFAULT_CHANNELS
_SUPPORTED_CHANNELS = (1, 3)
# Floor of the stretch's divisor: a flat image stays flat, without a 0 / 0.
_MIN_RANGE = 1e-3
# The text vocabulary: its name in Transform's output, which words it keeps,
# and the index buckets of the others (ids >= the vocabulary size).
TEXT_VOCABULARY = 'text_vocabulary'
TEXT_VOCABULARY_TOP_K = 10000
TEXT_MIN_FREQUENCY = 5
TEXT_OOV_BUCKETS = 1
# What separates words: anything but letters and digits (any script).
_NON_WORD = r'[^\pL\pN]+'


@dataclasses.dataclass(frozen=True)
class ImageConfig:
  """How images are prepared for the model (the module's custom_config)."""
  size: int = DEFAULT_IMAGE_SIZE
  channels: int = DEFAULT_CHANNELS
  stretch_contrast: bool = True
  depth: Optional[int] = None  # Volumes: slices the model sees.

  def __post_init__(self):
    if self.size < 1:
      raise ValueError(f'{IMAGE_SIZE_KEY} must be positive, got {self.size}.')
    if self.depth is not None and self.depth < 1:
      raise ValueError(f'{VOLUME_DEPTH_KEY} must be positive, got '
                       f'{self.depth}.')
    if self.channels not in _SUPPORTED_CHANNELS:
      raise ValueError(f'{CHANNELS_KEY} must be one of {_SUPPORTED_CHANNELS}, '
                       f'got {self.channels}.')

  @classmethod
  def from_custom_config(
      cls, custom_config: Optional[Mapping[str, Any]]) -> 'ImageConfig':
    config = custom_config or {}
    return cls(
        size=int(config.get(IMAGE_SIZE_KEY, DEFAULT_IMAGE_SIZE)),
        channels=int(config.get(CHANNELS_KEY, DEFAULT_CHANNELS)),
        stretch_contrast=bool(config.get(STRETCH_CONTRAST_KEY, True)),
        depth=(int(config[VOLUME_DEPTH_KEY])
               if config.get(VOLUME_DEPTH_KEY) is not None else None))


def decode_image(encoded: tf.Tensor, config: ImageConfig) -> tf.Tensor:
  """One PNG or JPEG (8- or 16-bit) as a size x size x channels float image.

  Values are in [0, 1] whatever the bit depth (`decode_image` scales 16-bit
  PNGs by 1/65535, 8-bit images by 1/255), then stretched to span [0, 1] if
  configured. The resize is bilinear with antialiasing, aspect ratio not kept
  (inputs are expected to be square).
  """
  return _scale(_decode_and_resize(encoded, config), config)


def decode_images(encoded: tf.Tensor, config: ImageConfig) -> tf.Tensor:
  """A batch of encoded images ([batch] or [batch, 1]) as [batch, s, s, c].

  Each image as `decode_image` gives it. Only decoding and resizing, whose
  input shapes differ between images, run image by image; the scaling runs
  once on the whole batch.
  """
  return _scale(
      tf.map_fn(
          lambda one: _decode_and_resize(one, config),
          tf.reshape(encoded, [-1]),
          fn_output_signature=tf.TensorSpec(
              (config.size, config.size, config.channels), tf.float32)),
      config)


def decode_volumes(encoded: Any, config: ImageConfig) -> tf.Tensor:
  """A batch of volumes, each a list of encoded slices, as
  [batch, depth, size, size, channels].

  `encoded` is what parsing the `image/encoded` of volume Examples gives: a
  SparseTensor [batch, slices] (a VarLenFeature), a RaggedTensor or a dense
  [batch, slices] tensor. Each slice is decoded and resized as
  `decode_image` does, then the slices are resampled along the depth
  (bilinear) to `config.depth`, so volumes of any number of slices come out
  alike; the stretch (if set) spans each whole volume.
  """
  if isinstance(encoded, tf.SparseTensor):
    encoded = tf.RaggedTensor.from_sparse(encoded)
  elif not isinstance(encoded, tf.RaggedTensor):
    encoded = tf.RaggedTensor.from_tensor(encoded)
  return _scale(
      tf.map_fn(
          lambda one: _decode_volume(one, config), encoded,
          fn_output_signature=tf.TensorSpec(
              (config.depth, config.size, config.size, config.channels),
              tf.float32)),
      config)


def _decode_volume(slices: tf.Tensor, config: ImageConfig) -> tf.Tensor:
  """[slices] encoded images -> [depth, size, size, channels]."""
  volume = tf.map_fn(
      lambda one: _decode_and_resize(one, config), slices,
      fn_output_signature=tf.TensorSpec(
          (config.size, config.size, config.channels), tf.float32))
  # Resampling along the depth: the slices as rows of one image.
  rows = tf.reshape(volume, [-1, config.size * config.size * config.channels,
                             1])
  rows = tf.image.resize(
      rows, (config.depth, config.size * config.size * config.channels),
      antialias=True)
  return tf.reshape(rows, (config.depth, config.size, config.size,
                           config.channels))


def _decode_and_resize(encoded: tf.Tensor, config: ImageConfig) -> tf.Tensor:
  image = tf.io.decode_image(encoded, channels=config.channels,
                             dtype=tf.float32, expand_animations=False)
  return tf.image.resize(image, (config.size, config.size), antialias=True)


def _scale(images: tf.Tensor, config: ImageConfig) -> tf.Tensor:
  """Clips to [0, 1], then stretches each image or volume if set."""
  images = tf.clip_by_value(images, 0.0, 1.0)
  if not config.stretch_contrast:
    return images
  axes = [-4, -3, -2, -1] if config.depth else [-3, -2, -1]
  low = tf.reduce_min(images, axis=axes, keepdims=True)
  high = tf.reduce_max(images, axis=axes, keepdims=True)
  return (images - low) / tf.maximum(high - low, _MIN_RANGE)


def text_feature(custom_config: Optional[Mapping[str, Any]]) -> Optional[str]:
  """The raw text feature of custom_config (`text_feature`), or None."""
  name = (custom_config or {}).get(TEXT_FEATURE_KEY)
  if name is not None and (not isinstance(name, str) or not name):
    raise ValueError(f'{TEXT_FEATURE_KEY} must be a feature name, got '
                     f'{name!r}.')
  return name


def tokenize(text: tf.Tensor) -> tf.SparseTensor:
  """Texts ([batch] or [batch, 1] UTF-8) as [batch, words] lowercase words."""
  words = tf.strings.regex_replace(
      tf.strings.lower(tf.reshape(text, [-1]), encoding='utf-8'),
      _NON_WORD, ' ')
  return tf.strings.split(words).to_sparse()


def preprocessing_fn(inputs: Dict[str, tf.Tensor],
                     custom_config: Optional[Dict[str, Any]] = None
                    ) -> Dict[str, Any]:
  """Decodes, resizes and scales `image/encoded`; `label` as int64 [batch].

  `image` is [batch, size, size, channels], or with `volume_depth`
  [batch, depth, size, size, channels]. With `text_feature` also
  `text_ids`, the text's words as vocabulary indices (int64 SparseTensor
  [batch, words]). Serving feeds no label: TFT's transform layer then leaves
  `label` out.
  """
  config = ImageConfig.from_custom_config(custom_config)
  decode = decode_volumes if config.depth else decode_images
  outputs = {
      IMAGE: decode(inputs[RAW_IMAGE], config),
      LABEL: tf.reshape(tf.cast(inputs[RAW_LABEL], tf.int64), [-1]),
  }
  text = text_feature(custom_config)
  if text:
    outputs[TEXT_IDS] = tft.compute_and_apply_vocabulary(
        tokenize(inputs[text]), top_k=TEXT_VOCABULARY_TOP_K,
        frequency_threshold=TEXT_MIN_FREQUENCY,
        num_oov_buckets=TEXT_OOV_BUCKETS, vocab_filename=TEXT_VOCABULARY)
  return outputs
