"""A JPEG's header read from its bytes agrees with Pillow's reading of it.

`decoding.convert` keeps a valid JPEG without opening it in Pillow when the
header says enough; these tests hold `jpeg` to what Pillow reports for the
same bytes: size, precision, and the EXIF orientation wherever `jpeg` gives
one (None sends the file to Pillow).
"""

import io
import struct

import numpy as np
from PIL import Image
import pytest

from image_example_gen import rejects
from image_example_gen.image_folder import decoding
from image_example_gen.image_folder import jpeg

_ORIENTATION = 0x0112
_XMP = b'http://ns.adobe.com/xap/1.0/\x00'


def _jpeg(size=(40, 24), **options) -> bytes:
  pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3),
                                             dtype=np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, 'JPEG', **options)
  return buffer.getvalue()


def _segment(marker: int, payload: bytes) -> bytes:
  return bytes([0xFF, marker]) + struct.pack('>H', len(payload) + 2) + payload


def _with_app1(data: bytes, *payloads: bytes) -> bytes:
  """`data` with APP1 segments inserted after the start-of-image marker."""
  return data[:2] + b''.join(_segment(0xE1, p) for p in payloads) + data[2:]


def _exif(entries, order='<') -> bytes:
  """An EXIF payload with one directory of (tag, type, count, value)."""
  head = (b'II*\x00' if order == '<' else b'MM\x00*') + struct.pack(
      order + 'I', 8)
  directory = struct.pack(order + 'H', len(entries))
  for tag, value_type, count, value in entries:
    packed = (struct.pack(order + 'H', value) + b'\x00\x00'
              if value_type == 3 else struct.pack(order + 'I', value))
    directory += struct.pack(order + 'HHI', tag, value_type, count) + packed
  return b'Exif\x00\x00' + head + directory + struct.pack(order + 'I', 0)


def _pillow_orientation(data: bytes) -> int:
  return Image.open(io.BytesIO(data)).getexif().get(_ORIENTATION, 1)


_CASES = {
    'no APP1': _jpeg(),
    'no orientation': _with_app1(_jpeg(), _exif([(0x010F, 3, 1, 7)])),
    'big-endian 6': _with_app1(_jpeg(), _exif([(_ORIENTATION, 3, 1, 6)],
                                              '>')),
    'as a LONG': _with_app1(_jpeg(), _exif([(_ORIENTATION, 4, 1, 8)])),
    'twice': _with_app1(_jpeg(), _exif([(_ORIENTATION, 3, 1, 1),
                                        (_ORIENTATION, 3, 1, 6)])),
    'with XMP': _with_app1(
        _jpeg(), _exif([(0x010F, 3, 1, 7)]),
        _XMP + b'<x:xmpmeta><rdf:Description tiff:Orientation="8"/>'),
    'two EXIF segments': _with_app1(_jpeg(), _exif([(0x010F, 3, 1, 7)]),
                                    _exif([(_ORIENTATION, 3, 1, 3)])),
    'cut directory': _with_app1(_jpeg(), _exif([(_ORIENTATION, 3, 1, 6)])[:18]),
    'not TIFF': _with_app1(_jpeg(), b'Exif\x00\x00XX*\x00\x08\x00\x00\x00'),
    'XMP only': _with_app1(_jpeg(), _XMP + b'<x tiff:Orientation="6"/>'),
}


def _pillow_exif(orientation: int) -> bytes:
  exif = Image.Exif()
  exif[_ORIENTATION] = orientation
  return exif.tobytes()


_CASES.update({f'Pillow-written {value}': _jpeg(exif=_pillow_exif(value))
               for value in range(1, 9)})


@pytest.mark.parametrize('name', sorted(_CASES))
def test_the_orientation_read_here_is_pillows(name):
  data = _CASES[name]
  orientation = jpeg.exif_orientation(data, jpeg.read_header(data))
  if orientation is not None:
    assert orientation == _pillow_orientation(data)


def test_orientations_are_read_here_in_the_usual_cases():
  read = {name: jpeg.exif_orientation(data, jpeg.read_header(data))
          for name, data in _CASES.items()}
  assert read['no APP1'] == read['no orientation'] == 1
  assert read['big-endian 6'] == 6
  assert [read[f'Pillow-written {v}'] for v in range(1, 9)] == list(
      range(1, 9))
  for name in ('as a LONG', 'twice', 'with XMP', 'two EXIF segments',
               'cut directory', 'not TIFF', 'XMP only'):
    assert read[name] is None, name


@pytest.mark.parametrize('name', sorted(_CASES))
def test_convert_applies_the_orientation_pillow_reads(name):
  data = _CASES[name]
  result = decoding.convert(data)
  orientation = _pillow_orientation(data)
  rotated = orientation in (5, 6, 7, 8)
  assert (result.encoded is data) == (orientation not in range(2, 9))
  assert (result.width, result.height) == ((24, 40) if rotated else (40, 24))


@pytest.mark.parametrize('options', [{}, {'progressive': True},
                                     {'subsampling': 0}])
def test_size_and_components_are_pillows(options):
  data = _jpeg((33, 17), **options)
  header = jpeg.read_header(data)
  assert jpeg.frame_size(data, header) == Image.open(io.BytesIO(data)).size
  assert jpeg.precision(data, header) == 8
  assert jpeg.components_for_tf(data, header) == 3
  assert not jpeg.ends_early(data, header)


def test_a_cut_file_ends_early_and_is_not_kept():
  data = _jpeg()
  cut = data[:len(data) // 2]
  assert jpeg.ends_early(cut, jpeg.read_header(cut))
  assert jpeg.components_for_tf(cut, jpeg.read_header(cut)) == 0
  with pytest.raises(rejects.RejectError) as raised:
    decoding.convert(cut)
  assert raised.value.reason == rejects.TRUNCATED


def test_the_pixel_limit_holds_without_pillow():
  data = _jpeg((64, 64))
  with pytest.raises(rejects.RejectError) as raised:
    decoding.convert(data, limits=decoding.limits_lib.SizeLimits(
        max_pixels=64 * 64 - 1))
  assert raised.value.reason == rejects.TOO_LARGE
