"""The PNG encoder: what TensorFlow and Pillow decode equals what was encoded."""

import io

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from image_example_gen import codecs


def _arrays():
  rng = np.random.default_rng(0)
  for dtype in (np.uint8, np.uint16):
    top = np.iinfo(dtype).max
    for shape in ((1, 1), (1, 7), (9, 1), (37, 53), (16, 16, 1), (5, 6, 2),
                  (23, 17, 3), (8, 3, 4)):
      yield rng.integers(0, top, size=shape, endpoint=True, dtype=dtype)
    # Extremes and steps where Sub's modular differences wrap around.
    yield np.array([[0, top, 0, top, 1, top - 1]], dtype=dtype)
    yield np.tile(np.arange(0, 256, dtype=dtype) * (top // 255), (3, 1))


@pytest.mark.parametrize('pixels', list(_arrays()),
                         ids=lambda a: f'{a.dtype}-{"x".join(map(str, a.shape))}')
def test_decoders_return_the_pixels(pixels):
  encoded = codecs.encode_png(pixels)
  expected = pixels if pixels.ndim == 3 else pixels[..., np.newaxis]
  decoded = tf.io.decode_png(encoded, dtype=tf.as_dtype(pixels.dtype)).numpy()
  np.testing.assert_array_equal(decoded, expected)
  image = Image.open(io.BytesIO(encoded))
  image.verify()  # Checks every chunk's CRC.
  image = Image.open(io.BytesIO(encoded))
  assert image.size == (pixels.shape[1], pixels.shape[0])
  if pixels.dtype == np.uint8 or expected.shape[-1] == 1:
    np.testing.assert_array_equal(
        np.asarray(image).reshape(expected.shape).astype(pixels.dtype),
        expected)


def test_header_says_depth_and_colour_type():
  for pixels, depth, colour in ((np.zeros((2, 3), np.uint16), 16, 0),
                                (np.zeros((2, 3, 2), np.uint8), 8, 4),
                                (np.zeros((2, 3, 3), np.uint8), 8, 2),
                                (np.zeros((2, 3, 4), np.uint16), 16, 6)):
    encoded = codecs.encode_png(pixels)
    assert encoded[:8] == b'\x89PNG\r\n\x1a\n'
    assert encoded[12:16] == b'IHDR'
    assert int.from_bytes(encoded[16:20], 'big') == 3
    assert int.from_bytes(encoded[20:24], 'big') == 2
    assert (encoded[24], encoded[25]) == (depth, colour)


@pytest.mark.parametrize('pixels', [
    np.zeros((2, 2), np.int16), np.zeros((2, 2), np.float32),
    np.zeros((2, 2, 5), np.uint8), np.zeros((0, 4), np.uint8),
    np.zeros((2, 2, 2, 2), np.uint8)])
def test_refuses_what_png_cannot_hold(pixels):
  with pytest.raises(ValueError):
    codecs.encode_png(pixels)
