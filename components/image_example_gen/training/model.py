"""Trainer's `run_fn`: a small Keras CNN on the ExampleGens' raw Examples.

Referenced by dotted path (`image_example_gen.training.model.run_fn`). The
input pipeline reads the raw gzip TFRecords with tf.data and runs Transform's
graph (decode, resize, scale) on the fly, so decoded pixels never touch disk.
The exported `serving_default` signature takes serialized tf.Examples as the
ExampleGens write them and returns class probabilities.

Keras: TF 2.16's `tf.keras` is Keras 3 unless TF_USE_LEGACY_KERAS=1, while
TFT's transform layer and TFMA are Keras 2 (`tf_keras`). This module imports
`tf_keras` directly, so it builds a Keras 2 model whatever the variable says.

custom_config keys (all optional; the image size and channels come from
Transform's output):
  epochs: passes over the train split (default 12).
  batch_size: examples per step (default 32).
  learning_rate: Adam's learning rate (default 0.002).
  num_classes: the number of classes (default: 1 + the max of the schema's
    `label` int_domain).
"""

from typing import Any, Callable, Dict, List, Mapping, Optional

from absl import logging
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
import tensorflow_transform as tft
import tf_keras
from tfx import v1 as tfx

from image_example_gen.training import preprocessing
# pylint: disable=g-direct-tensorflow-import
from tensorflow.python.autograph.core import config as autograph_config
# pylint: enable=g-direct-tensorflow-import

EPOCHS_KEY = 'epochs'
BATCH_SIZE_KEY = 'batch_size'
LEARNING_RATE_KEY = 'learning_rate'
NUM_CLASSES_KEY = 'num_classes'
DEFAULT_EPOCHS = 12
DEFAULT_BATCH_SIZE = 32
DEFAULT_LEARNING_RATE = 2e-3

SERVING_SIGNATURE = 'serving_default'
SERVING_INPUT = 'examples'
SERVING_OUTPUT = 'probabilities'

_SHUFFLE_BUFFER = 2048
_SEED = 0


def num_classes(custom_config: Optional[Mapping[str, Any]],
                schema: schema_pb2.Schema) -> int:
  """`num_classes` of custom_config, else 1 + the max of `label`'s domain."""
  if custom_config and custom_config.get(NUM_CLASSES_KEY):
    return int(custom_config[NUM_CLASSES_KEY])
  for feature in schema.feature:
    if feature.name == preprocessing.RAW_LABEL:
      if not feature.int_domain.HasField('max'):
        raise ValueError(
            f'The schema\'s {preprocessing.RAW_LABEL!r} feature needs an '
            f'int_domain with a max (the model has max + 1 classes), or set '
            f'{NUM_CLASSES_KEY!r} in custom_config.')
      return feature.int_domain.max + 1
  raise ValueError(f'The schema has no {preprocessing.RAW_LABEL!r} feature.')


def build_model(image_shape: List[int], n_classes: int,
                learning_rate: float = DEFAULT_LEARNING_RATE) -> tf_keras.Model:
  """A compiled CNN: [size, size, channels] images -> class probabilities."""
  inputs = tf_keras.Input(shape=image_shape, name=preprocessing.IMAGE)
  x = inputs
  for filters in (32, 64):
    x = tf_keras.layers.Conv2D(filters, 3, padding='same',
                               activation='relu')(x)
    x = tf_keras.layers.MaxPooling2D()(x)
  x = tf_keras.layers.Flatten()(x)
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


def make_dataset(file_patterns: List[str],
                 tf_transform_output: tft.TFTransformOutput,
                 batch_size: int,
                 shuffle: bool = True) -> tf.data.Dataset:
  """(image, label) batches from raw gzip TFRecords of tf.Examples.

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
                   [preprocessing.RAW_IMAGE, preprocessing.RAW_LABEL])
  transform_layer = tf_transform_output.transform_features_layer()

  def to_image_and_label(serialized):
    features = transform_layer(tf.io.parse_example(serialized, spec))
    return features[preprocessing.IMAGE], features[preprocessing.LABEL]

  return (records.batch(batch_size)
          .map(to_image_and_label, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))


def make_serving_fn(model: tf_keras.Model,
                    tf_transform_output: tft.TFTransformOutput
                   ) -> Callable[[tf.Tensor], Dict[str, tf.Tensor]]:
  """A tf.function from serialized tf.Examples to class probabilities."""
  # Tracked by the model, so that the saved model carries the transform graph.
  model.tft_layer = tf_transform_output.transform_features_layer()
  spec = _raw_spec(tf_transform_output, [preprocessing.RAW_IMAGE])

  @tf.function(input_signature=[
      tf.TensorSpec(shape=[None], dtype=tf.string, name=SERVING_INPUT)])
  def serve(serialized):
    features = model.tft_layer(tf.io.parse_example(serialized, spec))
    return {SERVING_OUTPUT: model(features[preprocessing.IMAGE])}

  return serve


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


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains the CNN and exports it with the serving signature (TFX Trainer)."""
  config = fn_args.custom_config or {}
  epochs = int(config.get(EPOCHS_KEY, DEFAULT_EPOCHS))
  batch_size = int(config.get(BATCH_SIZE_KEY, DEFAULT_BATCH_SIZE))
  learning_rate = float(config.get(LEARNING_RATE_KEY, DEFAULT_LEARNING_RATE))
  tf_keras.utils.set_random_seed(_SEED)
  leave_tf_keras_unconverted()

  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  image_shape = tf_transform_output.transformed_feature_spec()[
      preprocessing.IMAGE].shape
  n_classes = num_classes(config, tf_transform_output.raw_metadata.schema)
  logging.info('Training a CNN on %s images, %d classes, %d epochs.',
               image_shape, n_classes, epochs)

  model = build_model(list(image_shape), n_classes, learning_rate)
  model.fit(
      make_dataset(fn_args.train_files, tf_transform_output, batch_size),
      epochs=epochs,
      validation_data=make_dataset(fn_args.eval_files, tf_transform_output,
                                   batch_size, shuffle=False),
      validation_freq=epochs,
      verbose=2,  # One line per epoch: progress bars flood pipeline logs.
      callbacks=[tf_keras.callbacks.TensorBoard(
          log_dir=fn_args.model_run_dir, update_freq='epoch')])
  model.save(fn_args.serving_model_dir, save_format='tf',
             signatures={SERVING_SIGNATURE: make_serving_fn(
                 model, tf_transform_output)})
