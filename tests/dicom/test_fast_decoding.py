"""The faster decoding paths agree with the full-resolution reference.

* With `resize`, JPEG 2000 frames are decoded at a reduced resolution
  (`decoders._iter_reduced`) before the display steps, where the reference
  decodes the full frame, renders it and then resizes. Both must agree
  (Pearson r > 0.99) on a generated mammogram and on every JPEG 2000 file of
  pydicom's test data.
* JPEG Lossless is decoded by dicomsdl; it must give exactly the stored
  values GDCM gives.
"""

import numpy as np
import pydicom
from pydicom import data as pydicom_data
from pydicom import dataset
from pydicom import uid
from pydicom.pixels import pixel_array
import pytest

from image_example_gen.dicom import decoders
from image_example_gen.dicom import display

_J2K = (uid.JPEG2000Lossless, uid.JPEG2000)
_JPEG_LOSSLESS = (uid.JPEGLossless, uid.JPEGLosslessSV1)


def _mammogram(path, rows=2048, columns=1664):
  """A 12-bit MONOCHROME1 mammogram-like image, JPEG 2000 lossless."""
  rng = np.random.default_rng(3)
  y = np.linspace(-1, 1, rows)[:, None]
  x = np.linspace(0, 1, columns)[None, :]
  radius = (x / 0.8)**2 + (y / 0.9)**2
  tissue = 600 + 2000 * np.sqrt(np.clip(1 - radius, 0, 1))
  tissue += 300 * np.sin(x * 40) * np.cos(y * 30) + rng.normal(0, 12, radius.shape)
  stored = (4095 - np.clip(np.where(radius < 1, tissue, 0), 0, 4095)).astype(
      np.uint16)
  ds = dataset.Dataset()
  ds.file_meta = dataset.FileMetaDataset()
  ds.file_meta.MediaStorageSOPClassUID = uid.DigitalMammographyXRayImageStorageForPresentation
  ds.file_meta.MediaStorageSOPInstanceUID = uid.generate_uid()
  ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
  ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
  ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
  ds.Modality = 'MG'
  ds.Rows, ds.Columns = rows, columns
  ds.SamplesPerPixel = 1
  ds.PhotometricInterpretation = 'MONOCHROME1'
  ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
  ds.PixelRepresentation = 0
  ds.WindowCenter, ds.WindowWidth = 1900, 3000
  ds.compress(uid.JPEG2000Lossless, stored, encoding_plugin='pylibjpeg')
  ds.save_as(path, enforce_file_format=True)
  return str(path)


def _agreement(path, size, bit_depth=None):
  """Pearson r of reduced vs full resolution per frame, and the reduced count."""
  header = pydicom.dcmread(path, stop_before_pixels=True)
  options = display.PixelOptions(resize=size, bit_depth=bit_depth)
  fast = [f.pixels for f in decoders.iter_frames(path, header, options)]
  full = [display.resize_square(f.pixels, size) for f in decoders.iter_frames(
      path, header, display.PixelOptions(bit_depth=bit_depth))]
  try:  # Declined (empty) or failing: iter_frames fell back to pydicom.
    reduced = list(decoders._iter_reduced(  # pylint: disable=protected-access
        path, header, list(range(len(full))), size))
  except OSError:
    reduced = []
  assert len(fast) == len(full)
  r = []
  for a, b in zip(fast, full):
    assert a.shape == b.shape == (size, size) + a.shape[2:]
    if np.ptp(b) == 0:
      r.append(1.0 if np.array_equal(a, b) else 0.0)
    else:
      r.append(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])
  return r, len(reduced)


@pytest.fixture(scope='module')
def mammogram(tmp_path_factory):
  return _mammogram(tmp_path_factory.mktemp('mammogram') / 'mg.dcm')


@pytest.mark.parametrize('size, bit_depth', [(512, 8), (1024, None)])
def test_reduced_mammogram_agrees_with_the_full_path(mammogram, size,
                                                     bit_depth):
  r, reduced = _agreement(mammogram, size, bit_depth)
  assert reduced == 1  # Decoded at a reduced resolution, not declined.
  assert min(r) > 0.999


def _j2k_test_files():
  files = []
  for path in pydicom_data.get_testdata_files():
    try:
      header = pydicom.dcmread(path, stop_before_pixels=True)
      if header.file_meta.get('TransferSyntaxUID') in _J2K:
        files.append(path)
    except Exception:  # pylint: disable=broad-except
      continue
  return sorted(files)


def _decodes(path) -> bool:
  try:
    return pixel_array(path).size > 0
  except Exception:  # pylint: disable=broad-except
    return False


def test_every_pydicom_jpeg_2000_file_agrees_at_256_px():
  files = [p for p in _j2k_test_files() if _decodes(p)]
  assert len(files) >= 15
  reduced_files = 0
  for path in files:
    r, reduced = _agreement(path, 256)
    reduced_files += bool(reduced)
    assert min(r) > 0.99, path
  assert reduced_files >= 6


@pytest.mark.parametrize('rows, columns, levels, size, level', [
    (2048, 1664, 5, 512, 2), (2048, 1664, 5, 1024, 1), (2048, 1664, 5, 256, 3),
    (2048, 1664, 1, 256, 1), (2048, 1664, 5, 2048, 0), (513, 100, 5, 257, 1),
    (513, 100, 5, 258, 0),
])
def test_reduction_level_is_the_smallest_at_least_as_large(
    rows, columns, levels, size, level):
  assert decoders.reduction_level(rows, columns, levels, size) == level


def test_j2k_header(mammogram):
  ds = pydicom.dcmread(mammogram)
  codestream = next(pydicom.encaps.generate_frames(ds.PixelData,
                                                   number_of_frames=1))
  assert decoders.j2k_header(codestream) == (2048, 1664, 1, 12, False, 5)
  assert decoders.j2k_header(b'\xff\xd8\xff\xe0' + bytes(60)) is None


def _jpeg_lossless_test_files():
  found = []
  for path in pydicom_data.get_testdata_files():
    try:
      header = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # pylint: disable=broad-except
      continue
    if (header.file_meta.get('TransferSyntaxUID') in _JPEG_LOSSLESS and
        header.get('SamplesPerPixel') == 1 and _decodes(path)):
      found.append(path)
  return found


def test_dicomsdl_gives_gdcms_stored_values():
  files = _jpeg_lossless_test_files()
  assert len(files) >= 2
  for path in files:
    header = pydicom.dcmread(path, stop_before_pixels=True)
    frames = int(header.get('NumberOfFrames') or 1)
    fast = list(decoders._iter_dicomsdl(path, range(frames)))  # pylint: disable=protected-access
    reference = pixel_array(path, decoding_plugin='gdcm')
    reference = reference if frames > 1 else reference[np.newaxis]
    assert len(fast) == frames
    for got, expected in zip(fast, reference):
      np.testing.assert_array_equal(got, expected)
