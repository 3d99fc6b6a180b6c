"""Transform's preprocessing_fn: decoding, resizing, scaling, channels."""

import io

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from image_example_gen import codecs
from image_example_gen.training import preprocessing


def _ramp(size: int = 16) -> np.ndarray:
  """A horizontal ramp in [0.25, 0.75]: min and max known after a resize."""
  return np.tile(np.linspace(0.25, 0.75, size, dtype=np.float64), (size, 1))


def _png(values: np.ndarray, dtype) -> bytes:
  top = np.iinfo(dtype).max
  return codecs.encode_png(np.rint(values * top).astype(dtype))


def _jpeg(values: np.ndarray, mode: str) -> bytes:
  image = Image.fromarray(np.rint(values * 255).astype(np.uint8), 'L')
  buffer = io.BytesIO()
  image.convert(mode).save(buffer, 'JPEG', quality=100)
  return buffer.getvalue()


def _decode(encoded: bytes, **config) -> np.ndarray:
  return preprocessing.decode_image(
      tf.constant(encoded), preprocessing.ImageConfig(**config)).numpy()


@pytest.mark.parametrize('encoded', [
    _png(_ramp(), np.uint8),
    _png(_ramp(), np.uint16),
    _png(np.stack([_ramp()] * 3, -1), np.uint8),
    _jpeg(_ramp(), 'L'),
    _jpeg(_ramp(), 'RGB'),
], ids=['png8', 'png16', 'png8_rgb', 'jpeg_gray', 'jpeg_rgb'])
def test_decode_scales_to_unit_range_whatever_the_bit_depth(encoded):
  image = _decode(encoded, size=16, channels=1, stretch_contrast=False)
  assert image.shape == (16, 16, 1)
  assert image.dtype == np.float32
  np.testing.assert_allclose(image[..., 0], _ramp(), atol=0.02)


def test_sixteen_bit_precision_is_kept():
  values = np.full((4, 4), 1000 / 65535)
  image = _decode(_png(values, np.uint16), size=4, channels=1,
                  stretch_contrast=False)
  np.testing.assert_allclose(image, 1000 / 65535, rtol=1e-5)


def test_stretch_contrast_spans_zero_to_one():
  image = _decode(_png(_ramp(), np.uint16), size=16, channels=1)
  assert image.min() == pytest.approx(0.0, abs=1e-6)
  assert image.max() == pytest.approx(1.0, abs=1e-6)


def test_stretch_contrast_keeps_a_flat_image_flat():
  image = _decode(_png(np.full((8, 8), 0.5), np.uint8), size=8, channels=1)
  np.testing.assert_array_equal(image, 0.0)


@pytest.mark.parametrize('channels', [1, 3])
def test_converts_channels(channels):
  for encoded in (_png(_ramp(), np.uint8),
                  _png(np.stack([_ramp()] * 3, -1), np.uint8)):
    image = _decode(encoded, size=16, channels=channels,
                    stretch_contrast=False)
    assert image.shape == (16, 16, channels)
    np.testing.assert_allclose(image[..., -1], _ramp(), atol=0.01)


def test_resizes_with_antialiasing():
  checkerboard = (np.indices((32, 32)).sum(axis=0) % 2).astype(np.float64)
  image = _decode(_png(checkerboard, np.uint8), size=8, channels=1,
                  stretch_contrast=False)
  assert image.shape == (8, 8, 1)
  # Averaged, not sampled: a 1-px checkerboard becomes mid grey.
  np.testing.assert_allclose(image, 0.5, atol=0.05)


def test_preprocessing_fn_on_a_batch():
  encoded = [_png(_ramp(32), np.uint8), _png(_ramp(20), np.uint16),
             _jpeg(_ramp(24), 'RGB')]
  outputs = preprocessing.preprocessing_fn(
      {preprocessing.RAW_IMAGE: tf.constant([[e] for e in encoded]),
       preprocessing.RAW_LABEL: tf.constant([[3], [0], [9]], tf.int64)},
      {preprocessing.IMAGE_SIZE_KEY: 12, preprocessing.CHANNELS_KEY: 3})
  assert set(outputs) == {preprocessing.IMAGE, preprocessing.LABEL}
  assert outputs[preprocessing.IMAGE].shape == (3, 12, 12, 3)
  assert outputs[preprocessing.LABEL].dtype == tf.int64
  np.testing.assert_array_equal(outputs[preprocessing.LABEL], [3, 0, 9])


def test_a_batch_gives_each_image_what_it_gives_alone():
  # Different ranges: a stretch over the whole batch would show.
  encoded = [_png(_ramp(16), np.uint8), _png(_ramp(16) * 0.2, np.uint16),
             _png(np.full((16, 16), 0.5), np.uint8), _jpeg(_ramp(20), 'L')]
  config = preprocessing.ImageConfig(size=8)
  batch = preprocessing.decode_images(tf.constant(encoded), config).numpy()
  for image, one in zip(batch, encoded):
    np.testing.assert_allclose(
        image, preprocessing.decode_image(tf.constant(one), config).numpy(),
        atol=1e-6)


def test_preprocessing_fn_defaults():
  outputs = preprocessing.preprocessing_fn(
      {preprocessing.RAW_IMAGE: tf.constant([[_png(_ramp(), np.uint8)]]),
       preprocessing.RAW_LABEL: tf.constant([[1]], tf.int64)})
  assert outputs[preprocessing.IMAGE].shape == (
      1, preprocessing.DEFAULT_IMAGE_SIZE, preprocessing.DEFAULT_IMAGE_SIZE,
      preprocessing.DEFAULT_CHANNELS)


def test_image_config_from_custom_config():
  config = preprocessing.ImageConfig.from_custom_config(
      {'image_size': 32, 'channels': 3, 'stretch_contrast': False,
       'epochs': 4})
  assert config == preprocessing.ImageConfig(32, 3, False)
  assert (preprocessing.ImageConfig.from_custom_config(None) ==
          preprocessing.ImageConfig())


@pytest.mark.parametrize('config, message', [
    ({'image_size': 0}, 'image_size'),
    ({'channels': 2}, 'channels'),
])
def test_image_config_refuses_bad_values(config, message):
  with pytest.raises(ValueError, match=message):
    preprocessing.ImageConfig.from_custom_config(config)


def _volume_pngs(depth: int, size: int = 8):
  """Slices k = 0 .. depth-1 of a volume whose value grows with k."""
  return [_png(np.full((size, size), 0.1 + 0.8 * k / (depth - 1)), np.uint16)
          for k in range(depth)]


def test_volumes_of_any_depth_come_out_alike_in_slice_order():
  # A SparseTensor, as parsing a VarLenFeature of 6 and 12 slices gives it.
  volumes = [_volume_pngs(6), _volume_pngs(12)]
  sparse = tf.ragged.constant(volumes).to_sparse()
  config = preprocessing.ImageConfig(size=4, depth=9, stretch_contrast=False)
  batch = preprocessing.decode_volumes(sparse, config).numpy()
  assert batch.shape == (2, 9, 4, 4, 1)
  for volume in batch:
    means = volume.mean(axis=(1, 2, 3))
    assert np.all(np.diff(means) > 0)  # First slice first, last last.
    np.testing.assert_allclose(means, np.linspace(0.1, 0.9, 9), atol=0.03)
  np.testing.assert_allclose(batch[0], batch[1], atol=0.03)


def test_volume_stretch_spans_the_whole_volume_not_each_slice():
  sparse = tf.ragged.constant([_volume_pngs(5)]).to_sparse()
  config = preprocessing.ImageConfig(size=4, depth=5)
  (volume,) = preprocessing.decode_volumes(sparse, config).numpy()
  assert volume[0].max() == pytest.approx(0.0, abs=1e-6)
  assert volume[-1].min() == pytest.approx(1.0, abs=1e-6)


def test_preprocessing_fn_with_volume_depth():
  outputs = preprocessing.preprocessing_fn(
      {preprocessing.RAW_IMAGE: tf.ragged.constant(
          [_volume_pngs(4), _volume_pngs(7)]).to_sparse(),
       preprocessing.RAW_LABEL: tf.constant([[1], [0]], tf.int64)},
      {preprocessing.IMAGE_SIZE_KEY: 6, preprocessing.VOLUME_DEPTH_KEY: 5})
  assert outputs[preprocessing.IMAGE].shape == (2, 5, 6, 6, 1)
  assert (preprocessing.ImageConfig.from_custom_config(
      {preprocessing.VOLUME_DEPTH_KEY: 5}).depth == 5)
  with pytest.raises(ValueError, match='volume_depth'):
    preprocessing.ImageConfig(depth=0)
