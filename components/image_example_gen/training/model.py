"""Trainer's `run_fn`: a Keras image classifier on the ExampleGens' Examples.

Referenced by dotted path (`image_example_gen.training.model.run_fn`). The
input pipeline reads the raw gzip TFRecords with tf.data and runs Transform's
graph (decode, resize, scale) on the fly, so decoded pixels never touch disk.
The exported `serving_default` signature takes serialized tf.Examples as the
ExampleGens write them and returns class probabilities.

The image branch is a small CNN or a Keras application (`backbone`); for
volumes (Transform's `volume_depth`: images of [depth, size, size,
channels]) it is a small 3-D CNN. When
Transform's output has `text_ids` (its `text_feature` key), the model also
takes the text: a multi-hot vector over Transform's vocabulary through a
dense layer of its own, concatenated to the image features; serving then
needs the raw text feature too. (Concatenating the multi-hot vector itself to
the CNN's 3,136 image features let the image branch dominate: the captioned
demo scored 0.918 that way, 0.976 with the text layer.)

Keras: TF 2.16's `tf.keras` is Keras 3 unless TF_USE_LEGACY_KERAS=1, while
TFT's transform layer and TFMA are Keras 2 (`tf_keras`). This module imports
`tf_keras` directly, so it builds a Keras 2 model whatever the variable says.

custom_config keys (all optional; the image size and channels come from
Transform's output):
  epochs: passes over the train split (default 12).
  batch_size: examples per step (default 32).
  learning_rate: Adam's learning rate (default 0.002).
  num_classes: the number of classes (default: from the Examples the
    Trainer reads: the lines of their label vocabulary, else 1 + the largest
    label in their ingest summary; else 1 + the max of the schema's `label`
    int_domain).
  backbone: the image branch: 'cnn' (default; two conv layers) or a Keras
    application without its top, then global average pooling:
    'efficientnet_b0' ... 'efficientnet_b7' (`tf_keras.applications.
    EfficientNetB0` ...). EfficientNet wants 3 channels of values in
    [0, 255] (it rescales and normalises itself): the [0, 1] images are
    scaled by 255 and grayscale is repeated to 3 channels inside the model.
    It needs image_size 32 or more (the image shrinks 32-fold).
  backbone_weights: a Keras HDF5 weights file of that backbone without top
    (e.g. `efficientnetb0_notop.h5`), as a local path or any tf.io.gfile URI
    (gs://...; copied to a local temporary file first). Default None: random
    initialisation. Nothing is ever downloaded. To get the ImageNet file,
    once on a machine with internet: `python -c "import tf_keras;
    tf_keras.applications.EfficientNetB0(include_top=False,
    weights='imagenet')"` stores it as
    ~/.keras/models/efficientnetb0_notop.h5 (or download
    https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5,
    b1 ... b7 alike); copy it where the Trainer can read it. Its input
    normalisation is made the same as with `weights='imagenet'`.
  backbone_trainable: False freezes the backbone (default True: fine-tune
    all of it).
  text_feature: the raw text feature (see preprocessing.py); the same value
    as Transform's.
"""

import contextlib
import dataclasses
import os
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Union

from absl import logging
import numpy as np
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
import tensorflow_transform as tft
import tf_keras
from tfx import v1 as tfx

from image_example_gen import console
from image_example_gen import reading
from image_example_gen.training import defaults
from image_example_gen.training import preprocessing
# pylint: disable=g-direct-tensorflow-import
from tensorflow.python.autograph.core import config as autograph_config
# pylint: enable=g-direct-tensorflow-import

EPOCHS_KEY = 'epochs'
BATCH_SIZE_KEY = 'batch_size'
LEARNING_RATE_KEY = 'learning_rate'
NUM_CLASSES_KEY = 'num_classes'
BACKBONE_KEY = 'backbone'
BACKBONE_WEIGHTS_KEY = 'backbone_weights'
BACKBONE_TRAINABLE_KEY = 'backbone_trainable'
DEFAULT_EPOCHS = defaults.DEFAULT_EPOCHS
DEFAULT_BATCH_SIZE = defaults.DEFAULT_BATCH_SIZE
DEFAULT_LEARNING_RATE = defaults.DEFAULT_LEARNING_RATE

SERVING_SIGNATURE = 'serving_default'
SERVING_INPUT = 'examples'
SERVING_OUTPUT = 'probabilities'

_SHUFFLE_BUFFER = 2048
_SEED = 0
# Units of the text branch's dense layer.
_TEXT_UNITS = 32

CNN = defaults.CNN
# Keras applications by `backbone` name: constructors of Keras models.
BACKBONES = {name: getattr(tf_keras.applications,
                           f'EfficientNetB{name[len("efficientnet_b"):]}')
             for name in defaults.BACKBONE_NAMES}
MIN_BACKBONE_IMAGE_SIZE = 32
# What Keras' ImageNet EfficientNet files hold as the Normalization layer's
# mean and variance: the variance is in fact the standard deviation
# (tensorflow/tensorflow#49930).
_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
_IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)

ModelInputs = Union[tf.Tensor, Dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Backbone:
  """The image branch of the model (custom_config's `backbone*` keys)."""
  name: str = CNN
  weights: Optional[str] = None
  trainable: bool = True

  def __post_init__(self):
    if self.name != CNN and self.name not in BACKBONES:
      raise ValueError(
          f'Unknown {BACKBONE_KEY} {self.name!r}; supported: '
          f'{", ".join([CNN] + sorted(BACKBONES))}.')
    if self.name == CNN and self.weights:
      raise ValueError(f'{BACKBONE_WEIGHTS_KEY} needs a {BACKBONE_KEY} '
                       f'other than {CNN!r}.')

  @classmethod
  def from_custom_config(
      cls, custom_config: Optional[Mapping[str, Any]]) -> 'Backbone':
    config = custom_config or {}
    return cls(name=str(config.get(BACKBONE_KEY) or CNN),
               weights=config.get(BACKBONE_WEIGHTS_KEY) or None,
               trainable=bool(config.get(BACKBONE_TRAINABLE_KEY, True)))


def num_classes(custom_config: Optional[Mapping[str, Any]],
                schema: schema_pb2.Schema,
                examples_uri: Optional[str] = None) -> int:
  """The model's number of classes, from the data unless configured.

  Args:
    custom_config: its `num_classes` wins when set.
    schema: a `label` int_domain max gives max + 1, when the Examples say
      nothing.
    examples_uri: the Examples artifact the Trainer reads: its label
      vocabulary or its summary's labels (`reading.class_names`).
  """
  if custom_config and custom_config.get(NUM_CLASSES_KEY):
    return int(custom_config[NUM_CLASSES_KEY])
  names = reading.class_names(examples_uri) if examples_uri else []
  if names:
    return len(names)
  for feature in schema.feature:
    if (feature.name == preprocessing.RAW_LABEL and
        feature.int_domain.HasField('max')):
      return feature.int_domain.max + 1
  raise ValueError(
      'Cannot tell the number of classes: the Examples have no label '
      'vocabulary and no ingest summary with labels, and the schema\'s '
      f'{preprocessing.RAW_LABEL!r} has no int_domain max; set '
      f'{NUM_CLASSES_KEY!r} in custom_config (pipeline.py --num-classes).')


@contextlib.contextmanager
def _local_file(path: str) -> Iterator[str]:
  """`path` itself if local, else a temporary local copy of the URI."""
  if '://' not in path:
    yield path
    return
  with tempfile.TemporaryDirectory() as temp_dir:
    local = os.path.join(temp_dir, os.path.basename(path))
    tf.io.gfile.copy(path, local)
    yield local


def _fix_imagenet_normalization(backbone: tf_keras.Model) -> None:
  """Makes Keras' ImageNet files normalise as `weights='imagenet'` does.

  Their Normalization layer holds the standard deviation as variance, so it
  divides by its square root; `weights='imagenet'` then multiplies by
  1 / sqrt(stddev), which loading the same file by path does not. Squaring
  the variance divides by the standard deviation, as both should. Other
  weights (no ImageNet statistics) are left as they are.
  """
  for layer in backbone.layers:
    if not isinstance(layer, tf_keras.layers.Normalization):
      continue
    mean, variance, count = layer.get_weights()
    if (np.allclose(mean.ravel(), _IMAGENET_MEAN_RGB) and
        np.allclose(variance.ravel(), _IMAGENET_STDDEV_RGB)):
      layer.set_weights([mean, np.square(variance), count])
      layer.finalize_state()


def load_backbone_weights(backbone: tf_keras.Model, path: str) -> None:
  """Loads a weights file (local path or URI) into a backbone."""
  with _local_file(path) as local:
    backbone.load_weights(local)
  _fix_imagenet_normalization(backbone)


def _cnn_features(images: tf.Tensor) -> tf.Tensor:
  """Two conv + max-pool layers, flattened (the default image branch)."""
  x = images
  for filters in (32, 64):
    x = tf_keras.layers.Conv2D(filters, 3, padding='same',
                               activation='relu')(x)
    x = tf_keras.layers.MaxPooling2D()(x)
  return tf_keras.layers.Flatten()(x)


def _cnn3d_features(volumes: tf.Tensor) -> tf.Tensor:
  """Three 3-D conv + max-pool layers, then the maximum over the volume.

  The global maximum makes the features independent of where the object is
  in the volume.
  """
  x = volumes
  for filters in (16, 32, 64):
    x = tf_keras.layers.Conv3D(filters, 3, padding='same',
                               activation='relu')(x)
    x = tf_keras.layers.MaxPooling3D(padding='same')(x)
  return tf_keras.layers.GlobalMaxPooling3D()(x)


def _application_features(images: tf.Tensor, backbone: Backbone) -> tf.Tensor:
  """A Keras application's pooled features of [0, 1] images (1 or 3 ch)."""
  height, width, channels = images.shape[1:]
  if min(height, width) < MIN_BACKBONE_IMAGE_SIZE:
    raise ValueError(
        f'{BACKBONE_KEY} {backbone.name!r} needs images of at least '
        f'{MIN_BACKBONE_IMAGE_SIZE} px, got {height}x{width}: set '
        f'{preprocessing.IMAGE_SIZE_KEY} to {MIN_BACKBONE_IMAGE_SIZE} or more.')
  x = tf_keras.layers.Rescaling(255.0)(images)
  if channels == 1:
    x = tf_keras.layers.Concatenate()([x, x, x])
  application = BACKBONES[backbone.name](
      include_top=False, weights=None, input_shape=(height, width, 3),
      pooling='avg')
  if backbone.weights:
    load_backbone_weights(application, backbone.weights)
  application.trainable = backbone.trainable
  return application(x)


def build_model(image_shape: List[int], n_classes: int,
                learning_rate: float = DEFAULT_LEARNING_RATE,
                backbone: Backbone = Backbone(),
                text_tokens: Optional[int] = None) -> tf_keras.Model:
  """A compiled classifier: [size, size, channels] images -> probabilities.

  Args:
    image_shape: [size, size, channels] of the `image` input, or [depth,
      size, size, channels] for volumes (a 3-D CNN; `backbone` must be the
      default).
    n_classes: the number of classes.
    learning_rate: Adam's learning rate.
    backbone: the image branch.
    text_tokens: None for images only; else the model's inputs are a dict of
      `image` and `text_ids` (sparse int64 ids below `text_tokens`), whose
      multi-hot vector passes a dense layer and joins the image features.
  """
  images = tf_keras.Input(shape=image_shape, name=preprocessing.IMAGE)
  if len(image_shape) == 4:
    if backbone.name != CNN:
      raise ValueError(f'{BACKBONE_KEY} {backbone.name!r} takes images, not '
                       'volumes: use the default 3-D CNN.')
    x = _cnn3d_features(images)
  elif backbone.name == CNN:
    x = _cnn_features(images)
  else:
    x = _application_features(images, backbone)
  inputs = images
  if text_tokens is not None:
    text_ids = tf_keras.Input(shape=(None,), sparse=True, dtype=tf.int64,
                              name=preprocessing.TEXT_IDS)
    inputs = {preprocessing.IMAGE: images, preprocessing.TEXT_IDS: text_ids}
    words = tf_keras.layers.CategoryEncoding(
        num_tokens=text_tokens, output_mode='multi_hot')(text_ids)
    x = tf_keras.layers.Concatenate()([
        x, tf_keras.layers.Dense(_TEXT_UNITS, activation='relu')(words)])
  x = tf_keras.layers.Dense(64, activation='relu')(x)
  x = tf_keras.layers.Dropout(0.25)(x)
  outputs = tf_keras.layers.Dense(n_classes, activation='softmax',
                                  name=SERVING_OUTPUT)(x)
  model = tf_keras.Model(inputs, outputs)
  model.compile(
      optimizer=tf_keras.optimizers.Adam(learning_rate),
      loss=tf_keras.losses.SparseCategoricalCrossentropy(),
      metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name='accuracy')])
  return model


def _raw_spec(tf_transform_output: tft.TFTransformOutput,
              keys: List[str]) -> Dict[str, Any]:
  """The raw feature spec restricted to `keys` (the transform's inputs)."""
  spec = tf_transform_output.raw_feature_spec()
  return {key: spec[key] for key in keys}


def text_tokens(tf_transform_output: tft.TFTransformOutput) -> Optional[int]:
  """How many text ids Transform's output has (words + OOV), None if none."""
  if (preprocessing.TEXT_IDS not in
      tf_transform_output.transformed_feature_spec()):
    return None
  return (tf_transform_output.vocabulary_size_by_name(
      preprocessing.TEXT_VOCABULARY) + preprocessing.TEXT_OOV_BUCKETS)


def _raw_keys(text_feature: Optional[str]) -> List[str]:
  """The raw features the model's inputs come from (label aside)."""
  return [preprocessing.RAW_IMAGE] + ([text_feature] if text_feature else [])


def model_inputs(features: Mapping[str, Any]) -> ModelInputs:
  """The model's inputs among transformed features: image (and text ids)."""
  if preprocessing.TEXT_IDS in features:
    return {key: features[key]
            for key in (preprocessing.IMAGE, preprocessing.TEXT_IDS)}
  return features[preprocessing.IMAGE]


def make_dataset(file_patterns: List[str],
                 tf_transform_output: tft.TFTransformOutput,
                 batch_size: int,
                 shuffle: bool = True,
                 text_feature: Optional[str] = None) -> tf.data.Dataset:
  """(inputs, label) batches from raw gzip TFRecords of tf.Examples.

  Inputs are the image batch, or with `text_feature` (the raw text feature
  Transform turned into `text_ids`) a dict as `model_inputs` makes it.
  Files are read in parallel (interleave), batches parsed with one
  `parse_example` each and run through the transform layer in parallel, and
  the next batches prefetched while the model trains.
  """
  files = tf.data.Dataset.list_files(file_patterns, shuffle=shuffle,
                                     seed=_SEED)
  records = files.interleave(
      lambda path: tf.data.TFRecordDataset(path, compression_type='GZIP'),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if shuffle:
    records = records.shuffle(_SHUFFLE_BUFFER, seed=_SEED)
  spec = _raw_spec(tf_transform_output,
                   _raw_keys(text_feature) + [preprocessing.RAW_LABEL])
  transform_layer = tf_transform_output.transform_features_layer()

  def to_inputs_and_label(serialized):
    features = transform_layer(tf.io.parse_example(serialized, spec))
    return model_inputs(features), features[preprocessing.LABEL]

  return (records.batch(batch_size)
          .map(to_inputs_and_label, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))


def make_serving_fn(model: tf_keras.Model,
                    tf_transform_output: tft.TFTransformOutput,
                    text_feature: Optional[str] = None
                   ) -> Callable[[tf.Tensor], Dict[str, tf.Tensor]]:
  """A tf.function from serialized tf.Examples to class probabilities.

  The Examples need `image/encoded`, and `text_feature` when given.
  """
  # Tracked by the model, so that the saved model carries the transform graph.
  model.tft_layer = tf_transform_output.transform_features_layer()
  spec = _raw_spec(tf_transform_output, _raw_keys(text_feature))

  @tf.function(input_signature=[
      tf.TensorSpec(shape=[None], dtype=tf.string, name=SERVING_INPUT)])
  def serve(serialized):
    features = model.tft_layer(tf.io.parse_example(serialized, spec))
    return {SERVING_OUTPUT: model(model_inputs(features))}

  return serve


class ProgressLine(tf_keras.callbacks.Callback):
  """A line on the console at intervals and at the end, not one per epoch.

  Keras' `verbose=2` prints two lines an epoch; on a long training the
  console (`console.logger`) gets one line per `interval_s`, with the epoch
  and its metrics, and a last line with the final metrics.
  """

  def __init__(self, epochs: int,
               interval_s: float = console.PROGRESS_INTERVAL_S):
    super().__init__()
    self._epochs = epochs
    self._interval_s = interval_s

  def on_train_begin(self, logs=None):
    self._start = self._last = time.monotonic()

  def on_epoch_end(self, epoch, logs=None):
    now = time.monotonic()
    if epoch + 1 == self._epochs or now - self._last >= self._interval_s:
      self._last = now
      metrics = ', '.join(f'{k} {v:.4f}' for k, v in (logs or {}).items())
      console.logger().info('Trainer: epoch %d/%d, %s (%s)', epoch + 1,
                            self._epochs, metrics,
                            console.duration(now - self._start))


def leave_tf_keras_unconverted() -> None:
  """Makes AutoGraph leave `tf_keras` alone, as TF 2.16 does for `keras`.

  TF 2.16's AutoGraph rules skip the `keras` package (Keras 2 up to TF 2.15)
  but not its new name `tf_keras`, so the first `fit` in a process converts
  all of Keras' training code: 30 s or more on 2 cores, for nothing, since
  Keras 2 is written to run unconverted. Idempotent.
  """
  rule = autograph_config.DoNotConvert('tf_keras')
  rules = tuple(autograph_config.CONVERSION_RULES)
  if str(rule) not in map(str, rules):
    autograph_config.CONVERSION_RULES = (rule,) + rules


def _text_feature(config: Mapping[str, Any],
                  tokens: Optional[int]) -> Optional[str]:
  """The raw text feature; checks that Transform made text ids of it."""
  text_feature = preprocessing.text_feature(config)
  if (text_feature is None) != (tokens is None):
    raise ValueError(
        f'Transform\'s output {"has" if tokens else "lacks"} '
        f'{preprocessing.TEXT_IDS!r}, but the Trainer\'s custom_config '
        f'{preprocessing.TEXT_FEATURE_KEY!r} is {text_feature!r}: give '
        f'Transform and Trainer the same {preprocessing.TEXT_FEATURE_KEY!r}.')
  return text_feature


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains the model and exports it with the serving signature (Trainer)."""
  config = fn_args.custom_config or {}
  epochs = int(config.get(EPOCHS_KEY, DEFAULT_EPOCHS))
  batch_size = int(config.get(BATCH_SIZE_KEY, DEFAULT_BATCH_SIZE))
  learning_rate = float(config.get(LEARNING_RATE_KEY, DEFAULT_LEARNING_RATE))
  backbone = Backbone.from_custom_config(config)
  tf_keras.utils.set_random_seed(_SEED)
  leave_tf_keras_unconverted()

  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  image_shape = tf_transform_output.transformed_feature_spec()[
      preprocessing.IMAGE].shape
  n_classes = num_classes(config, tf_transform_output.raw_metadata.schema,
                          reading.examples_uri_of(fn_args.train_files[0]))
  tokens = text_tokens(tf_transform_output)
  text_feature = _text_feature(config, tokens)
  logging.info('Training %s on %s images%s, %d classes, %d epochs.',
               backbone.name, image_shape,
               f' and {text_feature!r} ({tokens} text ids)' if tokens else '',
               n_classes, epochs)

  model = build_model(list(image_shape), n_classes, learning_rate, backbone,
                      tokens)
  model.fit(
      make_dataset(fn_args.train_files, tf_transform_output, batch_size,
                   text_feature=text_feature),
      epochs=epochs,
      validation_data=make_dataset(fn_args.eval_files, tf_transform_output,
                                   batch_size, shuffle=False,
                                   text_feature=text_feature),
      validation_freq=epochs,
      verbose=0,  # Progress bars and epoch lines flood pipeline logs.
      callbacks=[ProgressLine(epochs), tf_keras.callbacks.TensorBoard(
          log_dir=fn_args.model_run_dir, update_freq='epoch')])
  model.save(fn_args.serving_model_dir, save_format='tf',
             signatures={SERVING_SIGNATURE: make_serving_fn(
                 model, tf_transform_output, text_feature)})
