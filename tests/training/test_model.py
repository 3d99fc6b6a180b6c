"""Trainer's run_fn, input pipeline and serving signature on tiny Examples.

The transform graph is built with tf.Transform's Beam API from the real
preprocessing_fn (`transform_graph.write_transform_graph`), as the Transform
component builds it, so the Trainer code runs on a real TFTransformOutput.
"""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_data_validation.utils import schema_util
from tensorflow_metadata.proto.v0 import schema_pb2
import tf_keras
from tfx import v1 as tfx

from image_example_gen import codecs
from image_example_gen import example
from image_example_gen import sample_data
from image_example_gen.training import model
from image_example_gen.training import preprocessing
from image_example_gen.training import transform_graph
# pylint: disable=g-direct-tensorflow-import
from tensorflow.python.autograph.core import config as autograph_config
# pylint: enable=g-direct-tensorflow-import

_SCHEMA = (pathlib.Path(__file__).resolve().parents[2] / 'schemas' /
           'image_folder' / 'schema.pbtxt')
_SIZE = 16
_CONFIG = {preprocessing.IMAGE_SIZE_KEY: _SIZE, model.EPOCHS_KEY: 2,
           model.BATCH_SIZE_KEY: 8}
_N_TRAIN, _N_EVAL = 40, 20


def _serialized_example(index: int) -> bytes:
  """Image `index` of the digits sample, 8- or 16-bit, gray or RGB PNG."""
  intensity, digit = sample_data.render_digit(index, size=24)
  dtype = np.uint16 if index % 3 == 0 else np.uint8
  pixels = np.rint(intensity * np.iinfo(dtype).max).astype(dtype)
  if index % 3 == 1:
    pixels = np.stack([pixels] * 3, axis=-1)
  channels = 3 if pixels.ndim == 3 else 1
  features = example.image_features(codecs.encode_png(pixels), 'png', 24, 24,
                                    channels, f'key-{index}')
  features.update({example.LABEL: digit, example.LABEL_NAME: f'digit_{digit}'})
  return example.make_example(features).SerializeToString()


def _write_split(folder: pathlib.Path, indices) -> str:
  """Gzip TFRecords of the Examples; their file pattern."""
  folder.mkdir(parents=True)
  with tf.io.TFRecordWriter(str(folder / 'data.gz'), 'GZIP') as writer:
    for index in indices:
      writer.write(_serialized_example(index))
  return str(folder / '*')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  """(train pattern, eval pattern, transform output dir)."""
  root = tmp_path_factory.mktemp('model')
  # As ImageFolderExampleGen writes it: run_fn takes the class count from it.
  (root / 'label_vocabulary.txt').write_text(
      ''.join(f'digit_{d}\n' for d in range(10)))
  train = _write_split(root / 'Split-train', range(_N_TRAIN))
  eval_ = _write_split(root / 'Split-eval', range(_N_TRAIN,
                                                  _N_TRAIN + _N_EVAL))
  transform_graph.write_transform_graph(
      train, str(_SCHEMA), str(root / 'transform'), str(root / 'tmp'),
      _CONFIG)
  return train, eval_, str(root / 'transform')


@pytest.fixture(scope='module')
def trained(data, tmp_path_factory):
  """run_fn's exported model directory."""
  train, eval_, transform_dir = data
  root = tmp_path_factory.mktemp('trained')
  model.run_fn(tfx.components.FnArgs(
      train_files=[train], eval_files=[eval_],
      transform_output=transform_dir,
      serving_model_dir=str(root / 'serving'),
      model_run_dir=str(root / 'logs'),
      custom_config=_CONFIG))
  return str(root / 'serving')


def _records(pattern: str):
  return [r.numpy() for r in tf.data.TFRecordDataset(
      tf.io.gfile.glob(pattern), compression_type='GZIP')]


def test_make_dataset_decodes_all_examples(data):
  train, _, transform_dir = data
  dataset = model.make_dataset([train], tft.TFTransformOutput(transform_dir),
                               batch_size=16, shuffle=False)
  batches = list(dataset)
  assert [len(labels) for _, labels in batches] == [16, 16, 8]
  images = np.concatenate([images for images, _ in batches])
  labels = np.concatenate([labels for _, labels in batches])
  assert images.shape == (_N_TRAIN, _SIZE, _SIZE, 1)
  assert images.dtype == np.float32
  assert images.min() >= 0.0 and images.max() <= 1.0
  expected = [sample_data.render_digit(i, size=24)[1] for i in range(_N_TRAIN)]
  np.testing.assert_array_equal(labels, expected)


def test_make_dataset_shuffles_every_example_once(data):
  train, _, transform_dir = data
  dataset = model.make_dataset([train], tft.TFTransformOutput(transform_dir),
                               batch_size=7)
  labels = np.concatenate([labels for _, labels in dataset])
  expected = [sample_data.render_digit(i, size=24)[1] for i in range(_N_TRAIN)]
  assert sorted(labels) == sorted(expected)
  assert list(labels) != expected


def test_build_model_outputs_probabilities():
  keras_model = model.build_model([_SIZE, _SIZE, 3], 4)
  probabilities = keras_model(np.random.default_rng(0).random(
      (5, _SIZE, _SIZE, 3), np.float32)).numpy()
  assert probabilities.shape == (5, 4)
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_volumes_get_a_3d_cnn():
  keras_model = model.build_model([6, _SIZE, _SIZE, 1], 2)
  assert any(isinstance(layer, tf_keras.layers.Conv3D)
             for layer in keras_model.layers)
  probabilities = keras_model(np.random.default_rng(0).random(
      (3, 6, _SIZE, _SIZE, 1), np.float32)).numpy()
  assert probabilities.shape == (3, 2)
  with pytest.raises(ValueError, match='volumes'):
    model.build_model([6, 32, 32, 1], 2,
                      backbone=model.Backbone('efficientnet_b0'))


def _label_schema(maximum=None):
  schema = schema_pb2.Schema()
  feature = schema.feature.add(name='label', type=schema_pb2.INT)
  feature.int_domain.min = 0
  if maximum is not None:
    feature.int_domain.max = maximum
  return schema


def test_num_classes_from_the_examples_vocabulary_or_summary(tmp_path):
  # The curated schema says nothing of the class count.
  curated = schema_util.load_schema_text(str(_SCHEMA))
  (tmp_path / 'vocabulary').mkdir()
  (tmp_path / 'vocabulary' / 'label_vocabulary.txt').write_text(
      ''.join(f'class{i}\n' for i in range(11)))
  assert model.num_classes(None, curated, str(tmp_path / 'vocabulary')) == 11
  (tmp_path / 'summary').mkdir()
  (tmp_path / 'summary' / 'ingest_summary.json').write_text(json.dumps(
      {'splits': {'train': {'examples': 4, 'labels': {'0': 2, '2': 2}},
                  'eval': {'examples': 1, 'labels': {'1': 1}}}}))
  assert model.num_classes({model.EPOCHS_KEY: 3}, curated,
                           str(tmp_path / 'summary')) == 3


def test_num_classes_from_custom_config_then_a_label_domain(tmp_path):
  config = {model.NUM_CLASSES_KEY: 12}
  assert model.num_classes(config, schema_pb2.Schema(), str(tmp_path)) == 12
  assert model.num_classes({}, _label_schema(9), str(tmp_path)) == 10


def test_num_classes_unknown_is_an_error_naming_the_flag(tmp_path):
  with pytest.raises(ValueError, match='--num-classes'):
    model.num_classes({}, _label_schema(), str(tmp_path))


def test_leave_tf_keras_unconverted_adds_one_rule():
  model.leave_tf_keras_unconverted()
  model.leave_tf_keras_unconverted()
  rules = [str(rule) for rule in autograph_config.CONVERSION_RULES]
  assert rules.count('DoNotConvert rule for tf_keras') == 1


def test_serving_signature_classifies_raw_examples(trained, data):
  _, eval_, _ = data
  loaded = tf.saved_model.load(trained)
  serve = loaded.signatures[model.SERVING_SIGNATURE]
  records = _records(eval_)
  outputs = serve(**{model.SERVING_INPUT: tf.constant(records)})
  probabilities = outputs[model.SERVING_OUTPUT].numpy()
  assert probabilities.shape == (len(records), 10)
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_serving_matches_the_training_input_pipeline(trained, data):
  """Serving decodes like training: same probabilities for the same images."""
  _, eval_, transform_dir = data
  keras_model = tf_keras.models.load_model(trained)
  images = np.concatenate([images for images, _ in model.make_dataset(
      [eval_], tft.TFTransformOutput(transform_dir), batch_size=8,
      shuffle=False)])
  serve = tf.saved_model.load(trained).signatures[model.SERVING_SIGNATURE]
  served = serve(**{model.SERVING_INPUT: tf.constant(_records(eval_))})
  np.testing.assert_allclose(served[model.SERVING_OUTPUT].numpy(),
                             keras_model.predict(images, verbose=0),
                             atol=1e-5)
