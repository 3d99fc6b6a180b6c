"""Inputs that attack the worker: bombs, huge headers, vanishing files, links.

Both ExampleGens run (real Beam, in this process, which is then the worker)
on a folder that mixes ordinary files with every kind of decompression bomb
and oversized header, and with entries that are not readable files. A thread
samples this process's resident set size meanwhile: decoding any of the
bombs would take gigabytes, and the peak must stay below 1 GiB above the
size before the run. Every input must be accounted for.
"""

import io
import os
import pathlib
import struct
import threading
import zlib

from PIL import Image
import psutil
import pydicom
from pydicom import dataset
from pydicom import uid
import pytest

from image_example_gen import DicomExampleGen
from image_example_gen import ImageFolderExampleGen
from image_example_gen import listing
from image_example_gen import rejects
from image_example_gen import sample_data
from image_example_gen.dicom import converter as dicom_converter
from image_example_gen.dicom import display
from image_example_gen.executor_base import read_rejects
from image_example_gen.image_folder import converter as image_converter
from image_example_gen import limits

_GIB = 2**30


def _chunk(kind: bytes, payload: bytes) -> bytes:
  return (struct.pack('>I', len(payload)) + kind + payload +
          struct.pack('>I', zlib.crc32(kind + payload)))


def png_bomb(side: int = 60000) -> bytes:
  """A small PNG that declares side x side 8-bit gray pixels."""
  header = struct.pack('>IIBBBBB', side, side, 8, 0, 0, 0, 0)
  rows = zlib.compress(bytes((side + 1) * 16), 9)
  return (b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', header) +
          _chunk(b'IDAT', rows) + _chunk(b'IEND', b''))


def _encoded(image: Image.Image, image_format: str, **options) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, image_format, **options)
  return buffer.getvalue()


def jpeg_bomb(side: int = 65500) -> bytes:
  """A small JPEG whose frame header claims side x side pixels."""
  data = bytearray(_encoded(Image.new('L', (16, 16), 128), 'JPEG'))
  frame = data.index(b'\xff\xc0')
  data[frame + 5:frame + 9] = struct.pack('>HH', side, side)
  return bytes(data)


def gif_bomb() -> bytes:
  """A GIF whose logical screen is 65535 x 65535, holding one 1x1 image."""
  return (b'GIF89a' + struct.pack('<HHBBB', 65535, 65535, 0, 0, 0) +
          b',' + struct.pack('<HHHHB', 0, 0, 1, 1, 0) + b'\x02\x02\x44\x01\x00'
          + b';')


def bmp_bomb(side: int = 60000) -> bytes:
  """A BMP info header declaring side x side 24-bit pixels, 64 bytes of data."""
  info = struct.pack('<IiiHHIIiiII', 40, side, side, 1, 24, 0, 0, 0, 0, 0, 0)
  return (b'BM' + struct.pack('<IHHI', 14 + 40 + 64, 0, 0, 54) + info +
          bytes(64))


def tiff_bomb(side: int = 60000) -> bytes:
  """A TIFF directory declaring side x side 8-bit pixels in one tiny strip."""
  entries = [(256, 4, 1, side), (257, 4, 1, side), (258, 3, 1, 8),
             (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 8 + 2 + 12 * 8 + 4),
             (278, 4, 1, side), (279, 4, 1, 16)]
  ifd = struct.pack('<H', len(entries)) + b''.join(
      struct.pack('<HHII', *entry) for entry in entries) + struct.pack('<I', 0)
  return b'II*\x00' + struct.pack('<I', 8) + ifd + bytes(16)


def many_frames_gif(frames: int = 2000) -> bytes:
  """A GIF of `frames` small frames: only the first is ever decoded."""
  images = [Image.new('P', (16, 16), i % 256) for i in range(frames)]
  return _encoded(images[0], 'GIF', save_all=True, append_images=images[1:])


def dicom_header_bomb(rows: int, columns: int, frames: int,
                      pixel_bytes: int = 1024) -> bytes:
  """A 16-bit DICOM whose header asks for rows x columns x frames."""
  ds = dataset.Dataset()
  ds.file_meta = dataset.FileMetaDataset()
  ds.file_meta.MediaStorageSOPClassUID = uid.SecondaryCaptureImageStorage
  ds.file_meta.MediaStorageSOPInstanceUID = uid.generate_uid()
  ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
  ds.SOPClassUID = uid.SecondaryCaptureImageStorage
  ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
  ds.Modality = 'OT'
  ds.Rows, ds.Columns = rows, columns
  ds.NumberOfFrames = frames
  ds.SamplesPerPixel = 1
  ds.PhotometricInterpretation = 'MONOCHROME2'
  ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
  ds.PixelRepresentation = 0
  ds.PixelData = bytes(pixel_bytes)
  buffer = io.BytesIO()
  pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
  return buffer.getvalue()


class _PeakRss:
  """The largest RSS of this process while the `with` block runs."""

  def __enter__(self):
    self._process = psutil.Process()
    self.idle = self.peak = self._process.memory_info().rss
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._sample, daemon=True)
    self._thread.start()
    return self

  def _sample(self):
    while not self._stop.wait(0.005):
      self.peak = max(self.peak, self._process.memory_info().rss)

  def __exit__(self, *exc_info):
    self._stop.set()
    self._thread.join()


def _add_unreadable_entries(folder: pathlib.Path, real_file: pathlib.Path):
  """A loop, a link to a parent, a broken link, a FIFO, a folder named .jpg."""
  os.symlink('..', folder / 'loop')
  os.symlink(str(folder.parent), folder / 'parent')
  os.symlink('vanished.jpg', folder / 'broken.jpg')
  os.mkfifo(folder / 'pipe.jpg')
  (folder / 'folder.jpg').mkdir()
  (folder / 'folder.jpg' / 'inside.png').write_bytes(real_file.read_bytes())
  os.symlink(real_file.name, folder / 'alias.png')


_IMAGE_BOMBS = {
    'png_bomb.png': png_bomb, 'jpeg_bomb.jpg': jpeg_bomb,
    'gif_bomb.gif': gif_bomb, 'bmp_bomb.bmp': bmp_bomb,
    'tiff_bomb.tif': tiff_bomb,
}


@pytest.fixture(scope='module')
def image_run(tmp_path_factory, executor_runner):
  root = tmp_path_factory.mktemp('hostile_images')
  sample = sample_data.make_image_folder(root / 'sample', n_images=20,
                                         size=32)
  folder = root / 'in' / 'bombs'
  folder.mkdir(parents=True)
  for i, image in enumerate(sample.images[:10]):
    (folder / f'ok_{i}.png').write_bytes(
        (root / 'sample' / image.rel_path).read_bytes())
  for name, make in _IMAGE_BOMBS.items():
    (folder / name).write_bytes(make())
  (folder / 'frames.gif').write_bytes(many_frames_gif())
  _add_unreadable_entries(folder, folder / 'ok_0.png')
  component = ImageFolderExampleGen(input_base=str(root / 'in'),
                                    max_reject_fraction=1.0)
  with _PeakRss() as rss:
    artifact = executor_runner(component, root / 'out')
  return artifact, rss


def test_image_bombs_are_too_large_in_bounded_memory(image_run):
  artifact, rss = image_run
  got = {r.path: r for r in read_rejects(artifact.uri)}

  for name in _IMAGE_BOMBS:
    reject = got[f'bombs/{name}']
    assert reject.reason == rejects.TOO_LARGE, reject
  assert '60000x60000' in got['bombs/png_bomb.png'].detail
  assert '65500x65500' in got['bombs/jpeg_bomb.jpg'].detail
  assert rss.peak - rss.idle < _GIB


def test_unreadable_entries_are_rejects_and_real_files_count_once(image_run):
  artifact, _ = image_run
  got = {r.path: r for r in read_rejects(artifact.uri)}
  props = artifact.mlmd_artifact.custom_properties

  assert got['bombs/broken.jpg'].reason == rejects.UNREADABLE
  assert 'broken symbolic link' in got['bombs/broken.jpg'].detail
  assert got['bombs/pipe.jpg'].reason == rejects.UNREADABLE
  assert 'FIFO' in got['bombs/pipe.jpg'].detail
  # 10 ordinary files, the alias, the file in `folder.jpg/`, the first frame
  # of the 2000-frame GIF; the loop and the link to a parent add nothing.
  assert props['num_converted_files'].int_value == 13
  assert props['num_input_files'].int_value == 13 + len(got)
  assert len(got) == len(_IMAGE_BOMBS) + 2


_DICOM_BOMBS = {
    'pixels.dcm': (65535, 65535, 1, 'max_pixels'),
    'frames.dcm': (8, 8, 100_000, 'max_frames'),
    'gigabytes.dcm': (4096, 4096, 200, 'max_decoded_bytes'),
}


@pytest.fixture(scope='module')
def dicom_run(tmp_path_factory, executor_runner):
  root = tmp_path_factory.mktemp('hostile_dicom')
  sample = sample_data.make_dicom_sample(root / 'sample', n_images=8, size=32)
  folder = root / 'in'
  folder.mkdir()
  ordinary = [root / 'sample' / image.rel_path for image in sample.images[:6]]
  for i, path in enumerate(ordinary):
    (folder / f'ok_{i}.dcm').write_bytes(path.read_bytes())
  for name, (rows, columns, frames, _) in _DICOM_BOMBS.items():
    (folder / name).write_bytes(dicom_header_bomb(rows, columns, frames))
  (folder / 'short.dcm').write_bytes(dicom_header_bomb(64, 64, 2))
  _add_unreadable_entries(folder, folder / 'ok_0.dcm')
  component = DicomExampleGen(input_base=str(folder), max_reject_fraction=1.0)
  with _PeakRss() as rss:
    artifact = executor_runner(component, root / 'out')
  return artifact, rss


def test_dicom_headers_over_the_limits_are_too_large(dicom_run):
  artifact, rss = dicom_run
  got = {r.path: r for r in read_rejects(artifact.uri)}

  for name, (_, _, _, parameter) in _DICOM_BOMBS.items():
    assert got[name].reason == rejects.TOO_LARGE, got[name]
    assert parameter in got[name].detail
  assert got['short.dcm'].reason == rejects.TRUNCATED
  assert got['broken.jpg'].reason == rejects.UNREADABLE
  assert got['pipe.jpg'].reason == rejects.UNREADABLE
  props = artifact.mlmd_artifact.custom_properties
  assert props['num_converted_files'].int_value >= 6
  assert rss.peak - rss.idle < _GIB


def test_files_that_change_after_listing_are_unreadable(tmp_path):
  (tmp_path / 'cls').mkdir()
  png = tmp_path / 'cls' / 'image.png'
  dcm = tmp_path / 'cls' / 'image.dcm'
  images = image_converter.ImageFileConverter(
      '', ['cls'], 'salt', True, None, limits.SizeLimits())
  dicoms = dicom_converter.DicomFileConverter(
      None, (), display.PixelOptions(), 'all', limits.SizeLimits(), 'salt')

  def listed(path, data):
    path.write_bytes(data)
    (item,) = [f for f in listing.list_files(str(tmp_path), '**')
               if f.path == str(path)]
    return item

  def reject(converter, item):
    with pytest.raises(rejects.RejectError) as raised:
      converter.convert(item, None)
    assert raised.value.reason == rejects.UNREADABLE
    return raised.value.detail

  data = _encoded(Image.new('L', (8, 8), 9), 'PNG')
  item = listed(png, data)
  png.unlink()
  assert 'FileNotFoundError' in reject(images, item)
  item = listed(png, data)
  png.write_bytes(b'')
  assert 'changed while the job ran' in reject(images, item)
  item = listed(png, data)
  png.unlink()
  png.mkdir()
  assert 'IsADirectoryError' in reject(images, item)
  item = listed(dcm, dicom_header_bomb(8, 8, 1, 128))
  dcm.write_bytes(b'')
  assert 'changed while the job ran' in reject(dicoms, item)
  item = listed(dcm, dicom_header_bomb(8, 8, 1, 128))
  dcm.unlink()
  assert 'FileNotFoundError' in reject(dicoms, item)
