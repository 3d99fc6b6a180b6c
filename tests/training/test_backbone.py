"""The Trainer's pretrained backbone option: EfficientNet, weights, freezing.

Random initialisation and weights files written here: nothing is downloaded.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from image_example_gen.training import model
from image_example_gen.training import preprocessing

_NAME = 'efficientnet_b0'
_SHAPE = [32, 32, 1]
_CLASSES = 3


def _application(keras_model: tf_keras.Model) -> tf_keras.Model:
  """The backbone nested in a model built by `build_model`."""
  (application,) = [layer for layer in keras_model.layers
                    if isinstance(layer, tf_keras.Model)]
  return application


def _normalization(application: tf_keras.Model):
  (layer,) = [layer for layer in application.layers
              if isinstance(layer, tf_keras.layers.Normalization)]
  return layer


@pytest.fixture(scope='module')
def source_backbone():
  """A randomly initialised EfficientNetB0 without top, to save weights of."""
  return tf_keras.applications.EfficientNetB0(
      include_top=False, weights=None, input_shape=(32, 32, 3),
      pooling='avg')


@pytest.fixture(scope='module')
def efficientnet():
  tf_keras.utils.set_random_seed(0)
  return model.build_model(_SHAPE, _CLASSES,
                           backbone=model.Backbone(_NAME))


def test_efficientnet_outputs_probabilities(efficientnet):
  images = np.random.default_rng(0).random([5] + _SHAPE, np.float32)
  probabilities = efficientnet(images).numpy()
  assert probabilities.shape == (5, _CLASSES)
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
  assert _application(efficientnet).input_shape == (None, 32, 32, 3)


def test_efficientnet_trains_a_step(efficientnet):
  rng = np.random.default_rng(1)
  images = rng.random([8] + _SHAPE, np.float32)
  labels = rng.integers(_CLASSES, size=8)
  # Eager: tracing EfficientNet's train step takes 20 s on 2 cores.
  efficientnet.run_eagerly = True
  before = [w.numpy() for w in efficientnet.trainable_weights[:1]]
  history = efficientnet.fit(images, labels, batch_size=4, epochs=1,
                             verbose=0)
  assert np.isfinite(history.history['loss'][0])
  assert not np.array_equal(before[0],
                            efficientnet.trainable_weights[0].numpy())


def test_weights_file_is_loaded_and_backbone_frozen(source_backbone,
                                                    tmp_path):
  path = str(tmp_path / 'efficientnetb0_notop.h5')
  source_backbone.save_weights(path)
  # A URI (an in-memory file system): copied to a local file first.
  uri = 'ram://weights/efficientnetb0_notop.h5'
  tf.io.gfile.makedirs('ram://weights')
  tf.io.gfile.copy(path, uri, overwrite=True)
  keras_model = model.build_model(
      _SHAPE, _CLASSES,
      backbone=model.Backbone(_NAME, weights=uri, trainable=False))
  application = _application(keras_model)
  assert len(application.weights) == len(source_backbone.weights)
  for loaded, saved in zip(application.weights, source_backbone.weights):
    np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
  assert not application.trainable
  # Only the head trains: two Dense layers' kernels and biases.
  assert len(keras_model.trainable_weights) == 4


def test_imagenet_files_normalise_by_the_standard_deviation(source_backbone,
                                                            tmp_path):
  """Keras' ImageNet files store the stddev as variance; it is squared."""
  mean, stddev = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
  normalization = _normalization(source_backbone)
  original = normalization.get_weights()
  normalization.set_weights([np.array(mean), np.array(stddev), original[2]])
  path = str(tmp_path / 'imagenet_notop.h5')
  source_backbone.save_weights(path)
  normalization.set_weights(original)
  keras_model = model.build_model(
      _SHAPE, _CLASSES, backbone=model.Backbone(_NAME, weights=path))
  pixels = np.full((1, 2, 2, 3), 0.5, np.float32)
  np.testing.assert_allclose(
      _normalization(_application(keras_model))(pixels).numpy()[0, 0, 0],
      (0.5 - np.array(mean)) / np.array(stddev), rtol=1e-5)


@pytest.mark.parametrize('config, message', [
    ({model.BACKBONE_KEY: 'resnet_9000'}, 'efficientnet_b0, efficientnet_b1'),
    ({model.BACKBONE_WEIGHTS_KEY: '/w.h5'}, 'backbone_weights needs'),
])
def test_backbone_refuses_bad_values(config, message):
  with pytest.raises(ValueError, match=message):
    model.Backbone.from_custom_config(config)


def test_backbone_needs_32_px():
  with pytest.raises(ValueError, match='at least 32 px'):
    model.build_model([28, 28, 1], _CLASSES, backbone=model.Backbone(_NAME))


def test_backbone_from_custom_config():
  assert model.Backbone.from_custom_config(None) == model.Backbone()
  assert model.Backbone.from_custom_config(
      {model.BACKBONE_KEY: _NAME, model.BACKBONE_WEIGHTS_KEY: 'gs://b/w.h5',
       model.BACKBONE_TRAINABLE_KEY: False, preprocessing.CHANNELS_KEY: 3}
  ) == model.Backbone(_NAME, 'gs://b/w.h5', False)
