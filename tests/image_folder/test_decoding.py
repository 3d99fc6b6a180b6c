"""Tests for image_example_gen.image_folder.decoding and formats.

Every accepted image is checked against the Trainer's decoder: the metadata
must equal the shape `tf.io.decode_image` yields, and the pixels must equal
Pillow's decode of the source. Pillow decodes JPEG with libjpeg's default
ISLOW integer IDCT, while `tf.io.decode_image` uses IFAST, so JPEG pixels are
compared with `tf.io.decode_jpeg(dct_method='INTEGER_ACCURATE')`, which is
ISLOW too: equal to the last bit, no tolerance needed.
"""

import io
import pathlib
import pickle
import struct
import zlib

import numpy as np
from PIL import Image
import pydicom
from pydicom import encaps
import pytest
import tensorflow as tf

from image_example_gen import rejects
from image_example_gen.image_folder import decoding
from image_example_gen.image_folder import formats

_RNG_SEED = 7
_ORIENTATION_TAG = 0x0112


def _noise(shape, dtype=np.uint8, seed=_RNG_SEED):
  """Random pixels with a gradient, so that JPEG has structure to code."""
  rng = np.random.default_rng(seed)
  high = np.iinfo(dtype).max
  gradient = np.linspace(0, high // 2, shape[1])
  gradient = gradient.reshape((1, shape[1]) + (1,) * (len(shape) - 2))
  pixels = gradient + rng.integers(0, high // 2, shape)
  return pixels.astype(dtype)


def _encode(image, image_format, **options):
  buffer = io.BytesIO()
  image.save(buffer, image_format, **options)
  return buffer.getvalue()


def _from_array(pixels, mode=None):
  return Image.fromarray(pixels, mode) if mode else Image.fromarray(pixels)


def _pillow_pixels(data, mode=None):
  """Pillow's full decode of `data`, converted to `mode` if given, HxWxC."""
  image = Image.open(io.BytesIO(data))
  if mode and image.mode != mode:
    image = image.convert(mode)
  pixels = np.asarray(image)
  return pixels if pixels.ndim == 3 else pixels[..., np.newaxis]


def _tf_pixels(encoded, dtype=tf.uint8):
  return tf.io.decode_image(encoded, dtype=dtype,
                            expand_animations=False).numpy()


def _tf_accepts(data):
  try:
    _tf_pixels(data)
  except tf.errors.InvalidArgumentError:
    return False
  return True


def _assert_metadata_matches_tf(result):
  assert result.format in ('jpeg', 'png')
  decoded = _tf_pixels(result.encoded)
  assert decoded.shape == (result.height, result.width, result.channels)


def _png_chunk(chunk_type, payload):
  return (struct.pack('>I', len(payload)) + chunk_type + payload +
          struct.pack('>I', zlib.crc32(chunk_type + payload)))


def _raw_png(width, height, color_type, rows, interlace=0, extra_chunks=()):
  """A PNG written by hand, for layouts that Pillow does not write."""
  header = struct.pack('>IIBBBBB', width, height, 8, color_type, 0, 0,
                       interlace)
  return (b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', header) +
          b''.join(_png_chunk(*chunk) for chunk in extra_chunks) +
          _png_chunk(b'IDAT', zlib.compress(rows)) + _png_chunk(b'IEND', b''))


def _interlaced_png(pixels):
  """An Adam7-interlaced 8-bit RGB PNG of HxWx3 `pixels`."""
  passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
            (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
  rows = b''
  for x0, y0, dx, dy in passes:
    reduced = pixels[y0::dy, x0::dx]
    if reduced.size:
      rows += b''.join(b'\x00' + row.tobytes() for row in reduced)
  return _raw_png(pixels.shape[1], pixels.shape[0], 2, rows, interlace=1)


def _dicom_jpeg(name):
  """The JPEG stream of a DICOM file shipped with pydicom."""
  path = pathlib.Path(pydicom.__file__).parent / 'data' / 'test_files' / name
  dataset = pydicom.dcmread(path)
  return next(encaps.generate_frames(dataset.PixelData, number_of_frames=1))


def _relabel_sof(data, old, new):
  """`data` with its start-of-frame marker changed (same entropy data)."""
  position = data.index(bytes([0xFF, old]))
  return data[:position] + bytes([0xFF, new]) + data[position + 2:]


def _with_orientation(image, image_format, orientation, **options):
  exif = Image.Exif()
  exif[_ORIENTATION_TAG] = orientation
  return _encode(image, image_format, exif=exif.tobytes(), **options)


def _convert_rejected(data, **options):
  with pytest.raises(rejects.RejectError) as raised:
    decoding.convert(data, **options)
  return raised.value


_GRAY = _noise((21, 34))
_RGB = _noise((21, 34, 3))
_PALETTE = _from_array(_RGB).quantize(16)


@pytest.mark.parametrize('image_format, data', [
    ('jpeg', _encode(_from_array(_GRAY), 'JPEG')),
    ('png', _encode(_from_array(_GRAY), 'PNG')),
    ('gif', _encode(_PALETTE, 'GIF')),
    ('webp', _encode(_from_array(_RGB), 'WEBP')),
    ('bmp', _encode(_from_array(_RGB), 'BMP')),
    ('tiff', _encode(_from_array(_RGB), 'TIFF')),
    ('tiff', b'MM\x00*\x00\x00\x00\x08'),
    ('tiff', b'II+\x00\x08\x00\x00\x00'),
    ('bmp', b'BM\x36'),
    ('netpbm', _encode(_from_array(_RGB), 'PPM')),
    ('netpbm', b'P2\n# a comment\n3 1\n255\n'),
    ('pcx', _encode(_from_array(_RGB), 'PCX')),
    ('sgi', _encode(_from_array(_RGB), 'SGI')),
    ('qoi', _encode(_from_array(_RGB), 'QOI')),
    ('tga', _encode(_from_array(_RGB), 'TGA')),
    ('tga', _encode(_PALETTE, 'TGA', compression='tga_rle')),
    ('ico', _encode(_from_array(_RGB), 'ICO')),
    ('dds', _encode(_from_array(_RGB), 'DDS')),
    ('jpeg2000', _encode(_from_array(_RGB), 'JPEG2000')),
    ('jpeg2000', _encode(_from_array(_RGB), 'JPEG2000', no_jp2=True)),
    (None, b'BMW cars are not images, despite their first two bytes.'),
    (None, b'P1 is a plain text file, not a bitmap.'),
    (None, bytes(range(18))),
    (None, b'\x00\x00\x01\x00\x00\x00'),  # An icon of no image.
    (None, b'RIFF\x24\x00\x00\x00WAVEfmt '),
    (None, b'%PDF-1.7\n'),
    (None, b''),
])
def test_sniff_format(image_format, data):
  assert formats.sniff_format(data[:formats.SNIFF_LENGTH]) == image_format


@pytest.mark.parametrize('data, channels', [
    (_encode(_from_array(_GRAY), 'JPEG'), 1),
    (_encode(_from_array(_RGB), 'JPEG', quality=90), 3),
    (_encode(_from_array(_RGB), 'JPEG', progressive=True), 3),
    (_encode(_from_array(_RGB), 'JPEG', subsampling=0), 3),
    # RGB coded without colour transform, flagged by an Adobe marker.
    (_dicom_jpeg('SC_jpeg_no_color_transform.dcm'), 3),
    # Arithmetic coding, which no common encoder writes: Huffman streams
    # relabelled as arithmetic-coded (SOF9, SOF10). They decode to noise, but
    # through the arithmetic decoder of both libraries.
    (_relabel_sof(_encode(_from_array(_RGB), 'JPEG'), 0xC0, 0xC9), 3),
    (_relabel_sof(_encode(_from_array(_GRAY), 'JPEG', progressive=True),
                  0xC2, 0xCA), 1),
])
def test_jpeg_is_stored_unchanged(data, channels):
  result = decoding.convert(data)

  assert result.encoded is data
  assert result.format == 'jpeg'
  assert result.channels == channels
  _assert_metadata_matches_tf(result)
  trainer_pixels = tf.io.decode_jpeg(
      data, dct_method='INTEGER_ACCURATE').numpy()
  np.testing.assert_array_equal(trainer_pixels, _pillow_pixels(data))


@pytest.mark.parametrize('data, channels, mode', [
    (_encode(_from_array(_GRAY), 'PNG'), 1, None),
    (_encode(_from_array(_GRAY > 128), 'PNG'), 1, 'L'),
    (_encode(_from_array(_noise((9, 13), np.uint16)), 'PNG'), 1, None),
    (_encode(_from_array(_noise((9, 13, 2)), 'LA'), 'PNG'), 2, None),
    (_encode(_from_array(_RGB), 'PNG'), 3, None),
    (_encode(_from_array(_noise((9, 13, 4)), 'RGBA'), 'PNG'), 4, None),
    (_encode(_PALETTE, 'PNG'), 3, 'RGB'),
    (_encode(_PALETTE, 'PNG', bits=4), 3, 'RGB'),
    (_encode(_PALETTE, 'PNG', transparency=3), 4, 'RGBA'),
    # Grayscale and RGB with a transparent colour: TF drops the tRNS chunk.
    (_encode(_from_array(_GRAY), 'PNG', transparency=9), 1, None),
    (_encode(_from_array(_RGB), 'PNG', transparency=(1, 2, 3)), 3, None),
    (_interlaced_png(_RGB), 3, None),
])
def test_png_is_stored_unchanged(data, channels, mode):
  result = decoding.convert(data)

  assert result.encoded is data
  assert result.format == 'png'
  assert result.channels == channels
  _assert_metadata_matches_tf(result)
  source = _pillow_pixels(data, mode)
  np.testing.assert_array_equal(_tf_pixels(data, tf.as_dtype(source.dtype)),
                                source)


@pytest.mark.parametrize('channels', [1, 2, 3, 4])
def test_16_bit_png_is_stored_unchanged(channels):
  pixels = _noise((9, 13, channels), np.uint16)
  data = tf.io.encode_png(pixels).numpy()

  result = decoding.convert(data)

  assert result.encoded is data
  assert (result.height, result.width, result.channels) == pixels.shape
  np.testing.assert_array_equal(_tf_pixels(data, tf.uint16), pixels)


def test_palette_png_channels_follow_libpng_on_a_bad_trns_chunk():
  # libpng ignores a tRNS chunk with more entries than the palette has.
  palette = (b'PLTE', bytes(range(6)))
  too_long = (b'tRNS', b'\x00\x80\xff')
  data = _raw_png(2, 2, 3, b'\x00\x00\x01' * 2,
                  extra_chunks=[palette, too_long])

  result = decoding.convert(data)

  assert result.encoded is data
  assert result.channels == 3
  _assert_metadata_matches_tf(result)


def _cmyk_jpeg():
  return _encode(_from_array(_noise((21, 34, 4)), 'CMYK'), 'JPEG')


@pytest.mark.parametrize('data, mode, channels, dtype', [
    (_cmyk_jpeg(), 'RGB', 3, tf.uint8),
    # Lossless JPEG (SOF3): Pillow's libjpeg-turbo 3 decodes it, TF's not.
    (_dicom_jpeg('SC_rgb_jpeg_gdcm.dcm'), 'RGB', 3, tf.uint8),
    (_encode(_PALETTE, 'GIF'), 'RGB', 3, tf.uint8),
    (_encode(_PALETTE, 'GIF', transparency=3), 'RGBA', 4, tf.uint8),
    (_encode(_from_array(_RGB), 'BMP'), 'RGB', 3, tf.uint8),
    (_encode(_from_array(_GRAY), 'BMP'), 'L', 1, tf.uint8),
    (_encode(_PALETTE, 'BMP'), 'RGB', 3, tf.uint8),
    (_encode(_from_array(_GRAY > 128), 'BMP'), 'L', 1, tf.uint8),
    (_encode(_from_array(_RGB), 'WEBP', lossless=True), 'RGB', 3, tf.uint8),
    (_encode(_from_array(_RGB), 'WEBP'), 'RGB', 3, tf.uint8),
    (_encode(_from_array(_noise((9, 13, 4)), 'RGBA'), 'WEBP', lossless=True),
     'RGBA', 4, tf.uint8),
    (_encode(_from_array(_RGB), 'TIFF', compression='tiff_lzw'), 'RGB', 3,
     tf.uint8),
    (_encode(_from_array(_noise((9, 13, 2)), 'LA'), 'TIFF'), 'LA', 2,
     tf.uint8),
    (_encode(_from_array(_noise((9, 13, 4)), 'CMYK'), 'TIFF'), 'RGB', 3,
     tf.uint8),
    (_encode(_PALETTE, 'TIFF'), 'RGB', 3, tf.uint8),
    (_encode(_from_array(_noise((9, 13), np.uint16)), 'TIFF'), None, 1,
     tf.uint16),
    (_encode(_from_array(_RGB), 'PPM'), 'RGB', 3, tf.uint8),
    (_encode(_from_array(_GRAY), 'PPM'), 'L', 1, tf.uint8),
    (_encode(_from_array(_GRAY > 128), 'PPM'), 'L', 1, tf.uint8),
    (_encode(_from_array(_noise((9, 13), np.uint16), 'I;16'), 'PPM'), None,
     1, tf.uint16),
    (b'P2\n3 1\n1000\n0 500 1000\n', None, 1, tf.uint16),
    (_encode(_from_array(_RGB), 'PCX'), 'RGB', 3, tf.uint8),
    (_encode(_PALETTE, 'PCX'), 'RGB', 3, tf.uint8),
    (_encode(_from_array(_noise((9, 13, 4)), 'RGBA'), 'SGI'), 'RGBA', 4,
     tf.uint8),
    (_encode(_from_array(_RGB), 'QOI'), 'RGB', 3, tf.uint8),
    (_encode(_from_array(_GRAY), 'TGA', compression='tga_rle'), 'L', 1,
     tf.uint8),
    (_encode(_from_array(_noise((16, 16, 4)), 'RGBA'), 'ICO'), 'RGBA', 4,
     tf.uint8),
    (_encode(_from_array(_RGB), 'DDS'), 'RGB', 3, tf.uint8),
    (_encode(_from_array(_RGB), 'JPEG2000'), 'RGB', 3, tf.uint8),
])
def test_other_images_are_reencoded_as_lossless_png(data, mode, channels,
                                                    dtype):
  result = decoding.convert(data)

  assert result.format == 'png'
  assert result.channels == channels
  _assert_metadata_matches_tf(result)
  np.testing.assert_array_equal(_tf_pixels(result.encoded, dtype),
                                _pillow_pixels(data, mode))


@pytest.mark.parametrize('header, maxval', [
    (b'P6\n13 9\n65535\n', 65535), (b'P6 # a comment\n13 9 4095\n', 4095)])
def test_16_bit_rgb_netpbm_keeps_16_bits(header, maxval):
  pixels = _noise((9, 13, 3), np.uint16) % (maxval + 1)
  raw = decoding.convert(header + pixels.astype('>u2').tobytes())
  plain = decoding.convert(b'P3\n13 9\n%d\n' % maxval + ' '.join(
      map(str, pixels.ravel())).encode())

  expected = np.round(pixels * (65535 / maxval)).astype(np.uint16)
  for result in (raw, plain):
    assert (result.format, result.channels) == ('png', 3)
    _assert_metadata_matches_tf(result)
    np.testing.assert_array_equal(_tf_pixels(result.encoded, tf.uint16),
                                  expected)


def test_16_bit_rgb_netpbm_is_downscaled_in_16_bits():
  pixels = np.full((40, 20, 3), 40000, np.uint16)
  result = decoding.convert(b'P6\n20 40\n65535\n' +
                            pixels.astype('>u2').tobytes(), max_size=10)

  assert (result.height, result.width) == (10, 5)
  assert (_tf_pixels(result.encoded, tf.uint16) == 40000).all()


@pytest.mark.parametrize('data, reason', [
    (b'P6\n4 3\n65535\n' + bytes(10), rejects.TRUNCATED),
    (b'P3\n2 1\n1000\n1 2 3 4\n', rejects.TRUNCATED),
    (b'P6\n2 1\n1000\n' + np.full(6, 1001, '>u2').tobytes(),
     rejects.INVALID_IMAGE),
    (b'P6\n4 3\n255\n' + bytes(10), rejects.TRUNCATED),
    (b'Pf\n2 1\n-1.0\n' + bytes(8), rejects.INVALID_IMAGE),
])
def test_bad_netpbm_files_are_rejected_with_their_reason(data, reason):
  assert _convert_rejected(data).reason == reason


def test_cmyk_jpeg_becomes_the_rgb_that_tf_would_decode():
  data = _cmyk_jpeg()

  result = decoding.convert(data)

  # Both compute (255 - C) * (255 - K) / 255; Pillow rounds, TF truncates.
  tf_rgb = tf.io.decode_jpeg(data, dct_method='INTEGER_ACCURATE').numpy()
  difference = _tf_pixels(result.encoded).astype(int) - tf_rgb
  assert difference.min() >= 0 and difference.max() <= 1


def test_32_bit_integer_tiff_in_16_bit_range_becomes_16_bit_png():
  pixels = _noise((9, 13), np.uint16)
  data = _encode(_from_array(pixels.astype(np.int32)), 'TIFF')

  result = decoding.convert(data)

  np.testing.assert_array_equal(_tf_pixels(result.encoded, tf.uint16),
                                pixels[..., np.newaxis])


def test_first_frame_of_an_animated_gif():
  frames = [_from_array(_noise((9, 13, 3), seed=seed)).quantize(8)
            for seed in range(3)]
  data = _encode(frames[0], 'GIF', save_all=True, append_images=frames[1:])

  result = decoding.convert(data)

  np.testing.assert_array_equal(_tf_pixels(result.encoded),
                                np.asarray(frames[0].convert('RGB')))


def test_jpeg_without_end_marker_is_reencoded():
  # Pillow decodes every row without EOI; TF's decoder fails reading past it.
  data = _encode(_from_array(_RGB), 'JPEG')
  data = data[:-2] + bytes(8)  # EOI replaced by padding
  assert not _tf_accepts(data)

  result = decoding.convert(data)

  assert result.format == 'png'
  np.testing.assert_array_equal(_tf_pixels(result.encoded),
                                _pillow_pixels(data))


def test_lossless_jpeg_is_one_tf_cannot_decode():
  assert not _tf_accepts(_dicom_jpeg('SC_rgb_jpeg_gdcm.dcm'))


def _transposed(pixels, orientation):
  """`pixels` as a viewer shows them for an EXIF orientation (TIFF 6.0)."""
  return {
      2: np.fliplr(pixels),
      3: np.rot90(pixels, 2),
      4: np.flipud(pixels),
      5: np.swapaxes(pixels, 0, 1),
      6: np.rot90(pixels, -1),
      7: np.rot90(np.swapaxes(pixels, 0, 1), 2),
      8: np.rot90(pixels, 1),
  }[orientation]


@pytest.mark.parametrize('orientation', [2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_is_applied(orientation):
  data = _with_orientation(_from_array(_RGB), 'PNG', orientation)

  result = decoding.convert(data)

  assert result.format == 'png'
  _assert_metadata_matches_tf(result)
  np.testing.assert_array_equal(_tf_pixels(result.encoded),
                                _transposed(_RGB, orientation))


def test_exif_orientation_of_jpeg_is_applied():
  data = _with_orientation(_from_array(_RGB), 'JPEG', 6)

  result = decoding.convert(data)

  assert result.format == 'png'
  np.testing.assert_array_equal(_tf_pixels(result.encoded),
                                _transposed(_pillow_pixels(data), 6))


@pytest.mark.parametrize('image_format, options', [
    ('WEBP', {'lossless': True}), ('TIFF', {})])
def test_exif_orientation_of_other_formats_is_applied(image_format, options):
  data = _with_orientation(_from_array(_RGB), image_format, 6, **options)

  result = decoding.convert(data)

  np.testing.assert_array_equal(_tf_pixels(result.encoded),
                                _transposed(_RGB, 6))


@pytest.mark.parametrize('image_format', ['JPEG', 'PNG'])
def test_exif_orientation_is_ignored_when_asked(image_format):
  data = _with_orientation(_from_array(_RGB), image_format, 6)

  result = decoding.convert(data, exif_transpose=False)

  assert result.encoded is data
  assert (result.height, result.width) == _RGB.shape[:2]


@pytest.mark.parametrize('orientation', [2, 6, 8])
def test_tiff_orientation_is_ignored_when_asked(orientation):
  # Pillow orients TIFF while decoding; convert undoes it.
  data = _with_orientation(_from_array(_RGB), 'TIFF', orientation)

  result = decoding.convert(data, exif_transpose=False)

  np.testing.assert_array_equal(_tf_pixels(result.encoded), _RGB)


@pytest.mark.parametrize('orientation', [1, 0, 9])
def test_upright_or_invalid_orientation_keeps_the_bytes(orientation):
  data = _with_orientation(_from_array(_RGB), 'JPEG', orientation)

  assert decoding.convert(data).encoded is data


def test_max_size_downscales_keeping_aspect_ratio():
  data = _encode(_from_array(_noise((30, 40, 3))), 'JPEG')

  result = decoding.convert(data, max_size=20)

  assert result.format == 'png'
  assert (result.height, result.width, result.channels) == (15, 20, 3)
  expected = Image.open(io.BytesIO(data)).resize((20, 15),
                                                 Image.Resampling.LANCZOS)
  np.testing.assert_array_equal(_tf_pixels(result.encoded),
                                np.asarray(expected))


def test_max_size_keeps_16_bits():
  data = _encode(_from_array(_noise((50, 30), np.uint16)), 'PNG')

  result = decoding.convert(data, max_size=10)

  assert (result.height, result.width, result.channels) == (10, 6, 1)
  pixels = _tf_pixels(result.encoded, tf.uint16)
  assert np.any(pixels % 257)  # not 8-bit values scaled up


def test_max_size_keeps_at_least_one_pixel():
  data = _encode(_from_array(_noise((2, 300))), 'PNG')

  result = decoding.convert(data, max_size=10)

  assert (result.height, result.width) == (1, 10)


def test_max_size_applies_after_orientation():
  data = _with_orientation(_from_array(_noise((20, 40, 3))), 'PNG', 6)

  result = decoding.convert(data, max_size=10)

  assert (result.height, result.width) == (10, 5)


@pytest.mark.parametrize('max_size', [40, 41])
def test_images_within_max_size_keep_their_bytes(max_size):
  data = _encode(_from_array(_noise((30, 40, 3))), 'JPEG')

  assert decoding.convert(data, max_size=max_size).encoded is data


@pytest.mark.parametrize('max_size', [0, -5, 2.5, '64', True])
def test_max_size_must_be_a_positive_integer(max_size):
  with pytest.raises(ValueError, match='max_size'):
    decoding.convert(_encode(_from_array(_GRAY), 'PNG'), max_size=max_size)


def _truncated(data, fraction):
  return data[:int(len(data) * fraction)]


def _corrupt_png_crc(data):
  position = data.index(b'IDAT') + 8
  return data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1:]


def _corrupt_png_data_keeping_crc():
  rows = b''.join(b'\x00' + row.tobytes() for row in _GRAY)
  stream = bytearray(zlib.compress(rows))
  stream[len(stream) // 2:] = bytes(len(stream) - len(stream) // 2)
  header = struct.pack('>IIBBBBB', _GRAY.shape[1], _GRAY.shape[0], 8, 0, 0, 0,
                       0)
  return (b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', header) +
          _png_chunk(b'IDAT', bytes(stream)) + _png_chunk(b'IEND', b''))


_JPEG = _encode(_from_array(_RGB), 'JPEG')
_PNG = _encode(_from_array(_RGB), 'PNG')


@pytest.mark.parametrize('data, reason', [
    (b'', rejects.EMPTY_FILE),
    (b'name,label\ncat.jpg,cat\n', rejects.NOT_AN_IMAGE),
    (_PNG[1:], rejects.NOT_AN_IMAGE),
    (_truncated(_JPEG, 0.6), rejects.TRUNCATED),
    (_JPEG[:-2], rejects.TRUNCATED),
    (_JPEG[:40], rejects.TRUNCATED),
    (_truncated(_encode(_from_array(_RGB), 'JPEG', progressive=True), 0.7),
     rejects.TRUNCATED),
    (_truncated(_PNG, 0.5), rejects.TRUNCATED),
    (_PNG[:-12], rejects.TRUNCATED),
    (_truncated(_interlaced_png(_RGB), 0.5), rejects.TRUNCATED),
    (_truncated(_encode(_PALETTE, 'GIF'), 0.5), rejects.TRUNCATED),
    (_truncated(_encode(_from_array(_RGB), 'BMP'), 0.5), rejects.TRUNCATED),
    (_truncated(_encode(_from_array(_RGB), 'WEBP'), 0.5), rejects.TRUNCATED),
    (_truncated(_encode(_from_array(_RGB), 'TIFF'), 0.5), rejects.TRUNCATED),
    (_JPEG[:3] + bytes(200), rejects.UNDECODABLE),
    (_corrupt_png_crc(_PNG), rejects.UNDECODABLE),
    (_corrupt_png_data_keeping_crc(), rejects.UNDECODABLE),
    (_raw_png(2, 1, 5, b'\x00' * 7), rejects.UNDECODABLE),
    (_raw_png(0, 3, 0, b''), rejects.INVALID_IMAGE),
    (_encode(_from_array(np.ones((3, 4), np.float32)), 'TIFF'),
     rejects.INVALID_IMAGE),
    (_encode(_from_array(np.full((3, 4), 70000, np.int32)), 'TIFF'),
     rejects.INVALID_IMAGE),
])
def test_bad_files_are_rejected_with_their_reason(data, reason):
  assert _convert_rejected(data).reason == reason


def test_12_bit_jpeg_is_rejected_as_undecodable():
  error = _convert_rejected(_dicom_jpeg('JPGExtended.dcm'))

  assert error.reason == rejects.UNDECODABLE
  assert '12-bit' in error.detail


def test_pillow_decompression_bomb_error_is_too_large(monkeypatch):
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 100)

  error = _convert_rejected(_encode(_from_array(_GRAY), 'PNG'))

  assert error.reason == rejects.TOO_LARGE
  assert 'max_pixels' in error.detail


def test_png_wider_than_tf_can_decode_is_rejected_as_invalid():
  data = _encode(Image.new('L', (1_000_001, 1)), 'PNG')

  error = _convert_rejected(data)

  assert error.reason == rejects.INVALID_IMAGE
  assert 'max_size' in error.detail
  assert decoding.convert(data, max_size=1000).width == 1000


def _mutations(data, count, seed):
  """Deterministic truncations and byte changes of `data`."""
  rng = np.random.default_rng(seed)
  for _ in range(count):
    mutated = bytearray(data)
    if rng.random() < 0.3:
      mutated = mutated[:rng.integers(1, len(mutated))]
    else:
      for _ in range(rng.integers(1, 4)):
        mutated[rng.integers(len(mutated))] = rng.integers(256)
    yield bytes(mutated)


@pytest.mark.parametrize('data', [
    _JPEG,
    _encode(_from_array(_GRAY), 'JPEG', progressive=True),
    _encode(_PALETTE, 'PNG', transparency=3),
    _encode(_from_array(_RGB), 'WEBP'),
], ids=['jpeg', 'progressive', 'palette_png', 'webp'])
def test_every_accepted_mutation_decodes_in_tensorflow(data):
  expected_reasons = {rejects.NOT_AN_IMAGE, rejects.TRUNCATED,
                      rejects.UNDECODABLE, rejects.INVALID_IMAGE}
  for mutated in _mutations(data, count=60, seed=len(data)):
    try:
      result = decoding.convert(mutated)
    except rejects.RejectError as e:
      assert e.reason in expected_reasons
      continue
    _assert_metadata_matches_tf(result)


def test_image_rejected_carries_reason_and_detail():
  error = rejects.RejectError(rejects.TRUNCATED, 'cut at byte 10')

  assert (error.reason, error.detail) == (rejects.TRUNCATED, 'cut at byte 10')
  assert str(error) == 'truncated: cut at byte 10'
  copy = pickle.loads(pickle.dumps(error))
  assert (copy.reason, copy.detail) == (error.reason, error.detail)
  with pytest.raises(ValueError, match='Unknown reject or skip reason'):
    rejects.RejectError('blurry', '')
