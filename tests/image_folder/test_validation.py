"""The DCT-scaled JPEG validation rejects exactly what a full decode rejects.

`decoding.convert` validates a JPEG it keeps unchanged with libjpeg-turbo at
1/8 scale instead of Pillow's full decode. The reference here is the full
decode it replaced: Pillow decodes the whole image (and, for PNG, every chunk
CRC holds up to IEND). For the test images and the sample folder's broken
("torture") files, each cut at 50 random offsets and with 50 random byte
changes, both must accept and reject the same files.
"""

import io

import numpy as np
from PIL import Image
import pytest

from image_example_gen import rejects
from image_example_gen import sample_data
from image_example_gen.image_folder import decoding
from image_example_gen.image_folder import formats

_MUTATIONS = 50


def _encode(image, image_format, **options):
  buffer = io.BytesIO()
  image.save(buffer, image_format, **options)
  return buffer.getvalue()


def _photo(seed, mode='RGB', size=(96, 64)):
  rng = np.random.default_rng(seed)
  shape = size[::-1] + ((3,) if mode == 'RGB' else ())
  ramp = np.linspace(0, 160, size[0]).reshape((1, size[0]) + (1,) *
                                              (len(shape) - 2))
  pixels = (ramp + rng.integers(0, 90, shape)).astype(np.uint8)
  return Image.fromarray(pixels, mode)


def _full_decode_accepts(data: bytes) -> bool:
  """The reference: the full decode `convert` used for every file."""
  image_format = formats.sniff_format(data[:formats.SNIFF_LENGTH])
  if image_format is None:
    return False
  try:
    if image_format == formats.PNG:
      decoding._check_png(data)  # pylint: disable=protected-access
    image = Image.open(io.BytesIO(data))
    image.load()
  except Exception:  # pylint: disable=broad-except
    return False
  return min(image.size) > 0


def _accepts(data: bytes) -> bool:
  try:
    decoding.convert(data)
  except rejects.RejectError:
    return False
  return True


def _mutations(data: bytes, seed: int):
  rng = np.random.default_rng(seed)
  for offset in rng.integers(1, len(data), _MUTATIONS):
    yield f'cut at {offset}', data[:offset]
  for _ in range(_MUTATIONS):
    mutated = bytearray(data)
    position = int(rng.integers(len(mutated)))
    mutated[position] = (mutated[position] + int(rng.integers(1, 256))) % 256
    yield f'byte {position} changed', bytes(mutated)


@pytest.fixture(scope='module')
def torture_files(tmp_path_factory):
  """The sample folder's broken files: truncated, corrupt, misnamed, empty."""
  sample = sample_data.make_image_folder(
      tmp_path_factory.mktemp('torture'), n_images=40, size=48)
  return {path: (sample.root / path).read_bytes() for path in sample.rejects}


_TEST_IMAGES = {
    'jpeg_rgb': _encode(_photo(1), 'JPEG', quality=90),
    'jpeg_gray': _encode(_photo(2, 'L'), 'JPEG'),
    'jpeg_progressive': _encode(_photo(3), 'JPEG', progressive=True),
    'jpeg_444': _encode(_photo(4), 'JPEG', subsampling=0),
    'jpeg_restart_markers': _encode(_photo(5), 'JPEG', restart_marker_rows=1),
    'png_rgb': _encode(_photo(6), 'PNG'),
    'png_gray': _encode(_photo(7, 'L'), 'PNG'),
    'png_palette': _encode(_photo(8).quantize(32), 'PNG'),
}


def test_torture_files_get_the_same_verdict(torture_files):
  assert torture_files
  differ = {path: _accepts(data) for path, data in torture_files.items()
            if _accepts(data) != _full_decode_accepts(data)}
  assert not differ


@pytest.mark.parametrize('name', sorted(_TEST_IMAGES))
def test_mutations_of_each_test_image_get_the_same_verdict(name):
  data = _TEST_IMAGES[name]
  assert _accepts(data)
  differ = []
  verdicts = set()
  for what, mutated in _mutations(data, seed=len(data)):
    verdict = _accepts(mutated)
    verdicts.add(verdict)
    if verdict != _full_decode_accepts(mutated):
      differ.append((what, verdict))
  assert not differ
  if name.startswith('jpeg'):  # (Every PNG mutation breaks a chunk's CRC.)
    assert verdicts == {True, False}  # The mutations test both ways.


def test_mutations_of_torture_jpegs_get_the_same_verdict(torture_files):
  jpegs = {path: data for path, data in torture_files.items()
           if data[:3] == b'\xff\xd8\xff'}
  assert jpegs
  for path, data in jpegs.items():
    differ = [(what, _accepts(m)) for what, m in _mutations(data, len(data))
              if _accepts(m) != _full_decode_accepts(m)]
    assert not differ, path


def test_a_kept_jpeg_is_validated_at_one_eighth_of_each_side(monkeypatch):
  """The validation decode is scaled (simplejpeg decodes at full size unless
  it is given a minimum output size, whatever its min_factor says)."""
  shapes = []
  decode = decoding.simplejpeg.decode_jpeg

  def recording_decode(*args, **kwargs):
    pixels = decode(*args, **kwargs)
    shapes.append(pixels.shape)
    return pixels

  monkeypatch.setattr(decoding.simplejpeg, 'decode_jpeg', recording_decode)
  data = _encode(_photo(9, size=(400, 240)), 'JPEG', quality=90)
  assert decoding.convert(data).encoded is data
  assert shapes == [(30, 50, 3)]
