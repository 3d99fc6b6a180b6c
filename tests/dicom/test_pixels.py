"""Tests for image_example_gen.dicom.pixels: each display step, then real files.

Real files are pydicom's and pydicom-data's test files (offline); expected
values are computed here from pydicom's own pixel_array and LUT functions and
the standard's formulas, not from the module under test.
"""

import numpy as np
from PIL import Image
import pydicom
from pydicom import uid
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.encaps import generate_frames
from pydicom.pixels import apply_color_lut
from pydicom.pixels import apply_modality_lut
from pydicom.pixels import apply_voi_lut
from pydicom.pixels import get_decoder
from pydicom.pixels import iter_pixels
import pytest

from image_example_gen import rejects
from image_example_gen.dicom import decoders
from image_example_gen.dicom import display
from image_example_gen.dicom import integrity


def _testdata(name: str) -> str:
  path = get_testdata_file(name)
  if path is None:
    pytest.skip(f'{name} is not installed (pydicom-data).')
  return path


def _header(path) -> Dataset:
  return pydicom.dcmread(path, stop_before_pixels=True)


def _frames(path, options=display.PixelOptions(), **kwargs):
  return list(decoders.iter_frames(path, _header(path), options, **kwargs))


def _mono(**attributes) -> Dataset:
  """A 12-bit unsigned MONOCHROME2 header, with `attributes` set on top."""
  ds = Dataset()
  ds.file_meta = FileMetaDataset()
  ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
  ds.Rows, ds.Columns = 2, 3
  ds.SamplesPerPixel = 1
  ds.PhotometricInterpretation = 'MONOCHROME2'
  ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
  ds.PixelRepresentation = 0
  for keyword, value in attributes.items():
    setattr(ds, keyword, value)
  return ds


def _lut_item(descriptor, data) -> Dataset:
  item = Dataset()
  item.LUTDescriptor = descriptor
  item.LUTData = data
  return item


def _write_jpeg_ls(path, arr: np.ndarray, bits_stored: int) -> str:
  """Writes `arr` as a JPEG-LS Secondary Capture file; returns its path."""
  ds = Dataset()
  ds.file_meta = FileMetaDataset()
  ds.SOPClassUID = uid.SecondaryCaptureImageStorage
  ds.SOPInstanceUID = uid.generate_uid()
  ds.set_pixel_data(arr, 'MONOCHROME2', bits_stored)
  ds.compress(uid.JPEGLSLossless, encoding_plugin='pyjpegls')
  ds.save_as(path, enforce_file_format=True)
  return str(path)


def _standard_linear(x, center, width, y_min, y_max):
  """PS3.3 C.11.2.1.2.1, written out."""
  x = np.asarray(x, dtype=np.float64)
  c, w = center - 0.5, width - 1
  out = ((x - c) / w + 0.5) * (y_max - y_min) + y_min
  out[x <= c - w / 2] = y_min
  out[x > c + w / 2] = y_max
  return out


def _standard_linear_exact(x, center, width, y_min, y_max):
  """PS3.3 C.11.2.1.3.2, written out."""
  x = np.asarray(x, dtype=np.float64)
  out = ((x - center) / width + 0.5) * (y_max - y_min) + y_min
  out[x <= center - width / 2] = y_min
  out[x > center + width / 2] = y_max
  return out


class TestPixelOptions:

  @pytest.mark.parametrize('kwargs', [{'bit_depth': 12}, {'resize': 0},
                                      {'resize': 2.5}, {'resize': True}])
  def test_rejects_bad_values(self, kwargs):
    with pytest.raises(ValueError):
      display.PixelOptions(**kwargs)


class TestCheckPixelAttributes:

  def test_complete_header(self):
    assert integrity.check_pixel_attributes(_mono()) is None

  def test_object_without_image(self):
    ds = Dataset()
    ds.Modality = 'SR'
    assert integrity.check_pixel_attributes(ds) == rejects.NO_PIXEL_DATA

  def test_missing_attribute(self):
    ds = _mono()
    del ds.BitsStored
    assert integrity.check_pixel_attributes(ds) == rejects.MISSING_ATTRIBUTE

  def test_empty_attribute(self):
    ds = _mono(PhotometricInterpretation='')
    assert integrity.check_pixel_attributes(ds) == rejects.MISSING_ATTRIBUTE

  def test_palette_without_lut(self):
    ds = _mono(PhotometricInterpretation='PALETTE COLOR')
    assert integrity.check_pixel_attributes(ds) == rejects.MISSING_ATTRIBUTE

  @pytest.mark.parametrize('attributes', [
      {'PhotometricInterpretation': 'YBR_PARTIAL_422', 'SamplesPerPixel': 3},
      {'PhotometricInterpretation': 'RGB'},
      {'Rows': 0},
  ])
  def test_invalid_image(self, attributes):
    ds = _mono(**attributes)
    assert integrity.check_pixel_attributes(ds) == rejects.INVALID_IMAGE

  def test_real_header(self):
    ds = _header(_testdata('CT_small.dcm'))
    assert integrity.check_pixel_attributes(ds) is None


class TestFrameDataset:

  def _group(self, **attributes) -> Dataset:
    group = Dataset()
    if 'RescaleSlope' in attributes:
      group.PixelValueTransformationSequence = [Dataset()]
      transformation = group.PixelValueTransformationSequence[0]
      transformation.RescaleSlope = attributes['RescaleSlope']
      transformation.RescaleIntercept = attributes['RescaleIntercept']
    if 'WindowCenter' in attributes:
      group.FrameVOILUTSequence = [Dataset()]
      group.FrameVOILUTSequence[0].WindowCenter = attributes['WindowCenter']
      group.FrameVOILUTSequence[0].WindowWidth = attributes['WindowWidth']
    return group

  def test_without_functional_groups(self):
    ds = _mono()
    assert display.frame_dataset(ds, 0) is ds

  def test_per_frame_groups_override_shared_ones(self):
    ds = _mono(NumberOfFrames=2)
    ds.SharedFunctionalGroupsSequence = [
        self._group(RescaleSlope=2, RescaleIntercept=-10, WindowCenter=40,
                    WindowWidth=400)
    ]
    ds.PerFrameFunctionalGroupsSequence = [
        self._group(),
        self._group(WindowCenter=300, WindowWidth=50)
    ]
    first, second = (display.frame_dataset(ds, i) for i in (0, 1))
    assert (first.RescaleSlope, first.WindowCenter) == (2, 40)
    assert (second.RescaleIntercept, second.WindowCenter,
            second.WindowWidth) == (-10, 300, 50)
    assert 'WindowCenter' not in ds and 'RescaleSlope' not in ds

  def test_enhanced_ct_uses_shared_rescale_and_window(self):
    path = _testdata('eCT_Supplemental.dcm')
    flat = pydicom.dcmread(path)
    flat.RescaleSlope, flat.RescaleIntercept = 1, -1024
    flat.WindowCenter, flat.WindowWidth = 49, 102
    windowed = apply_voi_lut(apply_modality_lut(flat.pixel_array, flat), flat)
    frames = _frames(path)
    assert len(frames) == 2
    for frame, expected in zip(frames, windowed):
      # Window output spans the rescaled 16-bit range [-1024, 64511].
      np.testing.assert_array_equal(frame.pixels, np.rint(expected + 1024))


class TestModality:

  def test_stored_range(self):
    assert display.stored_range(_mono()) == (0, 4095)
    assert display.stored_range(_mono(PixelRepresentation=1)) == (-2048, 2047)

  def test_rescale(self):
    ds = _mono(RescaleSlope=2, RescaleIntercept=-1024)
    values = display.modality_values(np.array([0, 10, 4095]), ds)
    np.testing.assert_array_equal(values, [-1024, -1004, 7166])
    assert display.modality_range(ds) == (-1024, 7166)

  def test_negative_slope_range_is_ordered(self):
    ds = _mono(RescaleSlope=-1, RescaleIntercept=100)
    assert display.modality_range(ds) == (100 - 4095, 100)

  def test_signed_rescale_range(self):
    ds = _mono(PixelRepresentation=1, RescaleSlope=1, RescaleIntercept=-1024)
    assert display.modality_range(ds) == (-2048 - 1024, 2047 - 1024)

  def test_no_modality_lut(self):
    stored = np.array([[0, 7, 4095]], dtype=np.uint16)
    np.testing.assert_array_equal(display.modality_values(stored, _mono()),
                                  stored)
    assert display.modality_range(_mono()) == (0, 4095)

  def test_modality_lut_sequence(self):
    # Inputs below the first mapped value (-2) take the first entry, above
    # the last (1) the last entry (PS3.3 C.11.1.1.1).
    ds = _mono(PixelRepresentation=1, BitsStored=4,
               ModalityLUTSequence=[_lut_item([4, -2, 16],
                                              [500, 100, 3000, 2000])])
    values = display.modality_values(np.array([-8, -2, -1, 0, 1, 7]), ds)
    np.testing.assert_array_equal(values, [500, 500, 100, 3000, 2000, 2000])
    assert display.modality_range(ds) == (100, 3000)


class TestVoi:

  def test_linear_window(self):
    ds = _mono(BitsStored=8, WindowCenter=100, WindowWidth=11)
    x = np.arange(85, 115)
    values, value_range = display.voi_values(x, ds)
    np.testing.assert_allclose(values, _standard_linear(x, 100, 11, 0, 255))
    assert value_range == (0, 255)
    assert values[x == 94] == 0 and values[x == 105] == 255
    assert values[x == 95] == pytest.approx(12.75)

  def test_linear_exact_window(self):
    ds = _mono(BitsStored=8, WindowCenter=100, WindowWidth=10,
               VOILUTFunction='LINEAR_EXACT')
    x = np.arange(85, 115)
    values, value_range = display.voi_values(x, ds)
    np.testing.assert_allclose(values,
                               _standard_linear_exact(x, 100, 10, 0, 255))
    assert values[x == 96] == pytest.approx(25.5)
    assert value_range == (0, 255)

  def test_sigmoid_window(self):
    ds = _mono(BitsStored=8, WindowCenter=100, WindowWidth=10,
               VOILUTFunction='SIGMOID')
    x = np.arange(60, 140)
    values, value_range = display.voi_values(x, ds)
    # PS3.3 C.11.2.1.3.1.
    np.testing.assert_allclose(values, 255 / (1 + np.exp(-4 * (x - 100) / 10)))
    assert value_range == (0, 255)

  def test_window_range_follows_rescale(self):
    ds = _mono(PixelRepresentation=1, RescaleSlope=1, RescaleIntercept=-1024,
               WindowCenter=40, WindowWidth=400)
    values, value_range = display.voi_values(np.array([-2000.0, 40, 3000]), ds)
    assert value_range == (-3072, 1023)
    np.testing.assert_allclose(values[[0, 2]], value_range)

  def test_multi_valued_window_uses_the_first(self):
    x = np.arange(0, 400, 7)
    first, _ = display.voi_values(
        x, _mono(WindowCenter=[100, 300], WindowWidth=[10, 50]))
    single, _ = display.voi_values(x, _mono(WindowCenter=100, WindowWidth=10))
    other, _ = display.voi_values(x, _mono(WindowCenter=300, WindowWidth=50))
    np.testing.assert_array_equal(first, single)
    assert not np.array_equal(first, other)

  def test_voi_lut_sequence(self):
    ds = _mono(VOILUTSequence=[_lut_item([4, 10, 16], [0, 50, 100, 200])])
    values, value_range = display.voi_values(
        np.array([9, 10, 11, 11.4, 12, 13, 20]), ds)
    np.testing.assert_array_equal(values, [0, 0, 50, 50, 100, 200, 200])
    assert value_range == (0, 200)

  def test_voi_lut_sequence_wins_over_window(self):
    ds = _mono(VOILUTSequence=[_lut_item([2, 0, 8], [10, 20])],
               WindowCenter=2048, WindowWidth=4096)
    values, value_range = display.voi_values(np.array([0, 1, 3000]), ds)
    np.testing.assert_array_equal(values, [10, 20, 20])
    assert value_range == (10, 20)

  @pytest.mark.parametrize('attributes', [
      {},
      {'WindowCenter': 100, 'WindowWidth': 0},
      {'WindowCenter': 100, 'WindowWidth': 10, 'VOILUTFunction': 'CUBIC'},
      {'WindowCenter': 100},
  ])
  def test_no_usable_voi_gives_modality_range(self, attributes):
    ds = _mono(RescaleSlope=2, RescaleIntercept=0, **attributes)
    x = np.array([0.0, 10, 8190])
    values, value_range = display.voi_values(x, ds)
    np.testing.assert_array_equal(values, x)
    assert value_range == (0, 8190)


class TestScaleAndInvert:

  def test_scale_to_8_bits(self):
    out = display.scale_to_bits(np.array([-5, 0, 2048, 4095, 5000]), (0, 4095),
                               8)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [0, 0, 128, 255, 255])

  def test_scale_to_16_bits(self):
    out = display.scale_to_bits(np.array([-1024.0, 0, 1023]), (-1024, 1023), 16)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [0, 32784, 65535])

  def test_reversed_range_keeps_the_first_end_dark(self):
    out = display.scale_to_bits(np.array([100, 0]), (100, 0), 8)
    np.testing.assert_array_equal(out, [0, 255])

  def test_empty_range(self):
    out = display.scale_to_bits(np.array([7, 7]), (7, 7), 8)
    np.testing.assert_array_equal(out, [0, 0])

  def test_invert_monochrome1(self):
    arr = np.array([0, 1, 65535], dtype=np.uint16)
    np.testing.assert_array_equal(
        display.invert_monochrome1(arr, _mono(PhotometricInterpretation=
                                             'MONOCHROME1')),
        [65535, 65534, 0])
    assert display.invert_monochrome1(arr, _mono()) is arr

  @pytest.mark.parametrize('attributes, bit_depth, expected', [
      ({}, None, 16),
      ({'BitsStored': 8, 'BitsAllocated': 8}, None, 8),
      ({}, 8, 8),
      ({'BitsStored': 8, 'BitsAllocated': 8}, 16, 16),
      ({'PhotometricInterpretation': 'RGB', 'SamplesPerPixel': 3}, 16, 8),
      ({'PhotometricInterpretation': 'PALETTE COLOR'}, None, 8),
  ])
  def test_output_bit_depth(self, attributes, bit_depth, expected):
    options = display.PixelOptions(bit_depth=bit_depth)
    assert display.output_bit_depth(_mono(**attributes), options) == expected


class TestToRgb8:

  def _palette(self, bits, red, green, blue, first_mapped=0):
    dtype = '<u1' if bits == 8 else '<u2'
    ds = _mono(PhotometricInterpretation='PALETTE COLOR', BitsStored=8,
               BitsAllocated=8)
    for colour, values in (('Red', red), ('Green', green), ('Blue', blue)):
      setattr(ds, f'{colour}PaletteColorLookupTableDescriptor',
              [len(values), first_mapped, bits])
      setattr(ds, f'{colour}PaletteColorLookupTableData',
              np.asarray(values, dtype=dtype).tobytes())
    return ds

  def test_palette_8_bit(self):
    ds = self._palette(8, [0, 10, 255], [1, 20, 128], [2, 30, 0])
    out = display.to_rgb8(np.array([[0, 1, 2, 9]], dtype=np.uint8), ds)
    assert out.dtype == np.uint8 and out.shape == (1, 4, 3)
    np.testing.assert_array_equal(
        out[0], [[0, 1, 2], [10, 20, 30], [255, 128, 0], [255, 128, 0]])

  def test_palette_16_bit_is_scaled(self):
    ds = self._palette(16, [0, 65535], [257, 32768], [65535, 0])
    out = display.to_rgb8(np.array([[0, 1]], dtype=np.uint8), ds)
    np.testing.assert_array_equal(out[0], [[0, 1, 255], [255, 128, 0]])

  def test_palette_of_8_bit_entries_in_16_bit_words(self):
    ds = self._palette(16, [0, 255], [128, 0], [255, 1])
    ds.RedPaletteColorLookupTableDescriptor = [2, 0, 8]
    out = display.to_rgb8(np.array([[0, 1]], dtype=np.uint8), ds)
    np.testing.assert_array_equal(out[0], [[0, 128, 255], [255, 0, 1]])

  def test_rgb_8_bit_passes_through(self):
    ds = _mono(PhotometricInterpretation='RGB', SamplesPerPixel=3,
               BitsStored=8, BitsAllocated=8)
    arr = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(display.to_rgb8(arr, ds), arr)

  def test_rgb_12_bit_is_scaled(self):
    ds = _mono(PhotometricInterpretation='RGB', SamplesPerPixel=3)
    arr = np.array([[[0, 4095, 2048]]], dtype=np.uint16)
    np.testing.assert_array_equal(display.to_rgb8(arr, ds), [[[0, 255, 128]]])

  def test_unsupported_colour_space(self):
    ds = _mono(PhotometricInterpretation='YBR_PARTIAL_422', SamplesPerPixel=3)
    with pytest.raises(ValueError, match='YBR_PARTIAL_422'):
      display.to_rgb8(np.zeros((1, 1, 3), dtype=np.uint8), ds)


class TestResizeSquare:

  def test_tall_grayscale_is_centred_between_black_bands(self):
    arr = np.full((100, 50), 40000, dtype=np.uint16)
    out = display.resize_square(arr, 64)
    assert out.shape == (64, 64) and out.dtype == np.uint16
    assert (out[:, :16] == 0).all() and (out[:, 48:] == 0).all()
    assert (out[:, 16:48] == 40000).all()

  def test_wide_rgb_keeps_channels(self):
    arr = np.zeros((30, 60, 3), dtype=np.uint8)
    arr[..., 1] = 200
    out = display.resize_square(arr, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert (out[:8] == 0).all() and (out[24:] == 0).all()
    np.testing.assert_array_equal(out[8:24, :, 1], 200)
    assert (out[8:24, :, [0, 2]] == 0).all()

  def test_odd_band_goes_to_the_right(self):
    out = display.resize_square(np.full((10, 7), 9, dtype=np.uint8), 10)
    np.testing.assert_array_equal(out[0], [0, 9, 9, 9, 9, 9, 9, 9, 0, 0])

  def test_downscale_is_antialiased(self):
    checkerboard = (np.indices((16, 16)).sum(axis=0) % 2 * 200).astype(
        np.uint8)
    out = display.resize_square(checkerboard, 4)
    assert (np.abs(out.astype(int) - 100) <= 10).all()


  @pytest.mark.parametrize('shape', [(300, 200), (200, 300, 3), (97, 61)])
  def test_8_bit_path_is_within_one_of_the_float_path(self, shape):
    rng = np.random.default_rng(5)
    smooth = np.asarray(Image.fromarray(
        rng.random((8, 8)).astype(np.float32) * 255).resize(
            shape[1::-1], Image.Resampling.BICUBIC))
    arr = np.clip(smooth[..., None] + rng.normal(0, 20, shape[:2] + (
        shape[2] if len(shape) == 3 else 1,)), 0, 255).astype(np.uint8)
    arr = arr.reshape(shape)
    eight = display.resize_square(arr, 64)
    floats = display.resize_square(arr.astype(np.uint16), 64)
    assert eight.dtype == np.uint8 and eight.shape == floats.shape
    assert np.abs(eight.astype(int) - floats.astype(int)).max() <= 1


class TestRender:

  def test_monochrome1_window_16_bit(self):
    ds = _mono(PhotometricInterpretation='MONOCHROME1', WindowCenter=2048,
               WindowWidth=4096, VOILUTFunction='LINEAR_EXACT')
    stored = np.array([[0, 1024, 2048], [3072, 4095, 4095]], dtype=np.uint16)
    out, bit_depth = display.render(stored, ds, display.PixelOptions())
    expected = 65535 - np.rint(stored / 4096 * 4095 * 65535 / 4095)
    assert bit_depth == 16 and out.dtype == np.uint16
    np.testing.assert_array_equal(out, expected)
    assert out[0, 0] == 65535  # Lowest MONOCHROME1 value is the brightest.

  def test_voi_switch_off_uses_modality_range(self):
    ds = _mono(WindowCenter=100, WindowWidth=10)
    stored = np.array([[0, 100, 4095]], dtype=np.uint16)
    with_voi, _ = display.render(stored, ds, display.PixelOptions(bit_depth=8))
    without, _ = display.render(stored, ds,
                               display.PixelOptions(apply_voi=False,
                                                   bit_depth=8))
    # LINEAR at the centre: ((100 - 99.5) / 9 + 0.5) * 255 = 141.7.
    np.testing.assert_array_equal(with_voi, [[0, 142, 255]])
    np.testing.assert_array_equal(without, [[0, 6, 255]])

  def test_resize_option(self):
    out, _ = display.render(np.zeros((2, 3), dtype=np.uint16), _mono(),
                           display.PixelOptions(resize=12))
    assert out.shape == (12, 12)


_LUT_HEADERS = {
    'window': dict(WindowCenter=1900, WindowWidth=3000),
    'monochrome1 exact window': dict(
        PhotometricInterpretation='MONOCHROME1', WindowCenter=40,
        WindowWidth=1, VOILUTFunction='LINEAR_EXACT'),
    'sigmoid after rescale': dict(
        RescaleSlope=0.5, RescaleIntercept=-1024, WindowCenter=40,
        WindowWidth=400, VOILUTFunction='SIGMOID'),
    'negative slope, no window': dict(RescaleSlope=-2, RescaleIntercept=7),
    'signed, window': dict(PixelRepresentation=1, WindowCenter=-100,
                           WindowWidth=700),
    'modality and voi lut sequences': dict(
        ModalityLUTSequence=[_lut_item([64, 100, 16],
                                       list(range(0, 6400, 100)))],
        VOILUTSequence=[_lut_item([256, 0, 16],
                                  list(range(65535, 0, -256)))]),
}


@pytest.mark.parametrize('name', sorted(_LUT_HEADERS))
@pytest.mark.parametrize('options', [
    display.PixelOptions(), display.PixelOptions(bit_depth=8),
    display.PixelOptions(apply_voi=False), display.PixelOptions(bit_depth=16)],
    ids=['defaults', '8-bit', 'no-voi', '16-bit'])
def test_lookup_table_equals_the_steps(name, options):
  """Every storable value, and values outside the declared bits too."""
  ds = _mono(**_LUT_HEADERS[name])
  dtype = np.int16 if ds.PixelRepresentation else np.uint16
  info = np.iinfo(dtype)
  stored = np.arange(info.min, info.max + 1, dtype=np.int64).astype(
      dtype).reshape(256, 256)
  bit_depth = display.output_bit_depth(ds, options)
  out, _ = display.render(stored, ds, options)
  np.testing.assert_array_equal(
      out, display.grayscale_steps(stored, ds, options, bit_depth))


@pytest.mark.parametrize('name', [
    'CT_small.dcm', 'MR_small.dcm', 'JPEG2000.dcm', 'emri_small_RLE.dcm',
    'MR-SIEMENS-DICOM-WithOverlays.dcm', 'liver.dcm', 'mlut_18.dcm',
    'vlut_04.dcm', 'MR_small_bigendian.dcm'])
def test_real_files_lookup_table_equals_the_steps(name):
  path = _testdata(name)
  header = _header(path)
  if header.PhotometricInterpretation not in display.MONOCHROME:
    pytest.skip('colour')
  for options in (display.PixelOptions(), display.PixelOptions(bit_depth=8)):
    for index, stored in enumerate(iter_pixels(path)):
      frame = display.frame_dataset(header, index)
      out, bit_depth = display.render(stored, frame, options)
      np.testing.assert_array_equal(
          out, display.grayscale_steps(stored, frame, options, bit_depth))


@pytest.mark.parametrize('name, num_frames, shape, dtype, bit_depth', [
    ('CT_small.dcm', 1, (128, 128), np.uint16, 16),
    ('JPEG2000.dcm', 1, (1024, 256), np.uint16, 16),
    ('JPEG-LL.dcm', 1, (1024, 256), np.uint16, 16),
    ('MR-SIEMENS-DICOM-WithOverlays.dcm', 1, (484, 484), np.uint16, 16),
    ('mlut_18.dcm', 1, (512, 512), np.uint16, 16),
    ('image_dfl.dcm', 1, (512, 512), np.uint8, 8),
    ('liver.dcm', 3, (512, 512), np.uint8, 8),
    ('rtdose.dcm', 15, (10, 10), np.uint16, 16),
    ('SC_rgb_jpeg_dcmtk.dcm', 1, (100, 100, 3), np.uint8, 8),
    ('GDCMJ2K_TextGBR.dcm', 1, (400, 400, 3), np.uint8, 8),
    ('examples_ybr_color.dcm', 30, (240, 320, 3), np.uint8, 8),
    ('OBXXXX1A.dcm', 1, (600, 800, 3), np.uint8, 8),
])
def test_real_files_render(name, num_frames, shape, dtype, bit_depth):
  frames = _frames(_testdata(name))
  assert [f.index for f in frames] == list(range(num_frames))
  for frame in frames:
    assert frame.pixels.shape == shape
    assert frame.pixels.dtype == dtype
    assert frame.bit_depth == bit_depth


@pytest.mark.parametrize('names', [
    ('MR_small.dcm', 'MR_small_RLE.dcm', 'MR_small_jp2klossless.dcm',
     'MR_small_jpeg_ls_lossless.dcm', 'MR_small_bigendian.dcm'),
    ('emri_small.dcm', 'emri_small_RLE.dcm', 'emri_small_jpeg_2k_lossless.dcm',
     'emri_small_jpeg_ls_lossless.dcm'),
    ('SC_rgb.dcm', 'SC_rgb_rle.dcm', 'SC_rgb_jpeg_gdcm.dcm'),
])
def test_lossless_transfer_syntaxes_agree(names):
  reference = _frames(_testdata(names[0]))
  for name in names[1:]:
    frames = _frames(_testdata(name))
    assert len(frames) == len(reference), name
    for frame, expected in zip(frames, reference):
      np.testing.assert_array_equal(frame.pixels, expected.pixels, name)


@pytest.mark.parametrize('name', [
    'SC_rgb_jpeg_dcmtk.dcm', 'SC_ybr_full_uncompressed.dcm',
    'SC_ybr_full_422_uncompressed.dcm'
])
def test_ybr_becomes_rgb(name):
  expected = pydicom.dcmread(_testdata('SC_rgb.dcm')).pixel_array
  (frame,) = _frames(_testdata(name))
  difference = np.abs(frame.pixels.astype(int) - expected.astype(int))
  assert difference.max() <= 8  # Lossy YCbCr rounding, not a colour swap.


def test_ybr_rct_jpeg2000_matches_pydicom():
  path = _testdata('GDCMJ2K_TextGBR.dcm')
  (frame,) = _frames(path)
  np.testing.assert_array_equal(frame.pixels, pydicom.dcmread(path).pixel_array)


def test_ct_without_window_scales_the_modality_range():
  path = _testdata('CT_small.dcm')
  ds = pydicom.dcmread(path)
  hounsfield = apply_modality_lut(ds.pixel_array, ds)
  # Signed 16 bits stored, slope 1, intercept -1024.
  low, high = -32768 - 1024, 32767 - 1024
  expected = np.rint((hounsfield - low) * 65535 / (high - low))
  (frame,) = _frames(path)
  np.testing.assert_array_equal(frame.pixels, expected)


def test_mr_window_matches_pydicom():
  path = _testdata('MR_small.dcm')
  ds = pydicom.dcmread(path)
  windowed = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
  # pydicom's window output spans the signed 16-bit stored range.
  expected = np.rint(windowed + 32768)
  (frame,) = _frames(path)
  np.testing.assert_array_equal(frame.pixels, expected)
  (eight_bit,) = _frames(path, display.PixelOptions(bit_depth=8))
  np.testing.assert_array_equal(eight_bit.pixels,
                                np.rint((windowed + 32768) * 255 / 65535))


def test_monochrome1_window_matches_pydicom_inverted():
  path = _testdata('RG3_UNCR.dcm')
  ds = pydicom.dcmread(path)
  windowed = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
  expected = 65535 - np.rint(windowed * 65535 / 1023)  # 10 bits stored.
  (frame,) = _frames(path)
  np.testing.assert_array_equal(frame.pixels, expected)


def test_voi_lut_sequence_matches_pydicom():
  path = _testdata('vlut_04.dcm')
  ds = pydicom.dcmread(path)
  looked_up = apply_voi_lut(ds.pixel_array, ds).astype(np.float64)
  descriptor = ds.VOILUTSequence[0].LUTDescriptor
  whole_lut = apply_voi_lut(
      np.arange(descriptor[1], descriptor[1] + descriptor[0]), ds)
  low, high = whole_lut.min(), whole_lut.max()
  expected = np.rint((looked_up - low) * 255 / (high - low))
  (frame,) = _frames(path)
  assert frame.bit_depth == 8
  np.testing.assert_array_equal(frame.pixels, expected)


@pytest.mark.parametrize('name', ['OBXXXX1A.dcm', 'gdcm-US-ALOKA-16.dcm'])
def test_16_bit_palette_matches_pydicom_scaled(name):
  path = _testdata(name)
  ds = pydicom.dcmread(path)
  assert ds.RedPaletteColorLookupTableDescriptor[2] == 16
  rgb16 = apply_color_lut(ds.pixel_array, ds)[..., :3]
  (frame,) = _frames(path)
  np.testing.assert_array_equal(frame.pixels, np.rint(rgb16 / 257))


def test_deflated_file_object_matches_pydicom():
  path = _testdata('image_dfl.dcm')
  with open(path, 'rb') as f:
    f.seek(5)
    (frame,) = decoders.iter_frames(f, _header(path), display.PixelOptions())
    assert f.tell() == 5
  np.testing.assert_array_equal(frame.pixels, pydicom.dcmread(path).pixel_array)


def test_frame_indices_from_file_object():
  path = _testdata('emri_small_jpeg_2k_lossless.dcm')
  everything = _frames(path)
  with open(path, 'rb') as f:
    f.seek(17)
    chosen = list(decoders.iter_frames(f, _header(path), display.PixelOptions(),
                                     frame_indices=[3, 1]))
    assert f.tell() == 17
  assert [frame.index for frame in chosen] == [3, 1]
  np.testing.assert_array_equal(chosen[0].pixels, everything[3].pixels)
  np.testing.assert_array_equal(chosen[1].pixels, everything[1].pixels)


def test_frame_index_out_of_range():
  path = _testdata('emri_small.dcm')
  with pytest.raises(IndexError):
    _frames(path, frame_indices=[10])


@pytest.fixture(name='seven_bit_jpeg_ls')
def _seven_bit_jpeg_ls(tmp_path):
  """A JPEG-LS file that pyjpegls decodes and GDCM refuses (7 bits)."""
  if 'pyjpegls' not in get_decoder(uid.JPEGLSLossless).available_plugins:
    pytest.skip('pyjpegls is not installed.')
  arr = (np.arange(24 * 16).reshape(24, 16) % 128).astype(np.uint8)
  path = _write_jpeg_ls(tmp_path / 'seven_bit.dcm', arr, bits_stored=7)
  with pytest.raises(RuntimeError, match='6 or 7 bits'):
    next(iter_pixels(path, decoding_plugin='gdcm'))
  return path, np.rint(arr * 255.0 / 127)


def test_preferred_plugin_decodes_first(seven_bit_jpeg_ls, caplog):
  path, expected = seven_bit_jpeg_ls
  (frame,) = _frames(path)
  np.testing.assert_array_equal(frame.pixels, expected)
  assert '6 or 7 bits' not in caplog.text  # GDCM, pydicom's first, not tried.


def test_preferred_plugin_failure_falls_back(seven_bit_jpeg_ls, monkeypatch):
  path, expected = seven_bit_jpeg_ls
  monkeypatch.setitem(decoders._PREFERRED_PLUGINS, uid.JPEGLSLossless, 'gdcm')
  (frame,) = _frames(path)
  np.testing.assert_array_equal(frame.pixels, expected)


class TestDecodeErrors:

  def _cut(self, tmp_path, name, keep):
    data = open(_testdata(name), 'rb').read()
    path = tmp_path / f'cut_{name}'
    path.write_bytes(data[:int(len(data) * keep)])
    return str(path)

  def _reason(self, source, header_path=None):
    """The reason of the converter's steps: pre-check, then decode."""
    with open(header_path or source, 'rb') as f:
      header = pydicom.dcmread(f, stop_before_pixels=True)
      with pytest.raises(Exception) as raised:
        integrity.check_pixel_data(f, header, f.tell())
        list(decoders.iter_frames(source, header, display.PixelOptions()))
    return integrity.decode_error_reason(raised.value)

  def _with_codestream(self, tmp_path, name, change):
    ds = pydicom.dcmread(_testdata(name))
    (codestream,) = generate_frames(ds.PixelData, number_of_frames=1)
    ds.PixelData = encapsulate([change(codestream)])
    path = tmp_path / f'changed_{name}'
    ds.save_as(path)
    return str(path)

  def test_truncated_native_file(self, tmp_path):
    path = self._cut(tmp_path, 'CT_small.dcm', 0.9)
    assert self._reason(path) == rejects.TRUNCATED

  def test_truncated_jpeg2000_file_object(self, tmp_path):
    path = self._cut(tmp_path, 'MR_small_jp2klossless.dcm', 0.9)
    with open(path, 'rb') as f:
      assert self._reason(f, path) == rejects.TRUNCATED

  def test_truncated_multi_frame_rle(self, tmp_path):
    path = self._cut(tmp_path, 'emri_small_RLE.dcm', 0.6)
    assert self._reason(path) == rejects.TRUNCATED

  def test_jpeg2000_codestream_ending_early(self, tmp_path):
    path = self._with_codestream(tmp_path, 'MR_small_jp2klossless.dcm',
                                 lambda c: c[:len(c) // 2])
    assert self._reason(path) == rejects.TRUNCATED

  def test_corrupt_jpeg2000_codestream(self, tmp_path):
    # Ends in EOC, 0xFF fill and the 0x00 that pads the item to even length.
    path = self._with_codestream(tmp_path, 'MR_small_jp2klossless.dcm',
                                 lambda c: bytes(40) + c[40:] + b'\xff')
    assert self._reason(path) == rejects.UNDECODABLE

  def test_more_frames_in_header_than_in_data(self, tmp_path):
    ds = pydicom.dcmread(_testdata('emri_small.dcm'))
    ds.NumberOfFrames = 12
    path = tmp_path / 'twelve.dcm'
    ds.save_as(path)
    assert self._reason(str(path)) == rejects.TRUNCATED

  def test_only_a_missing_sequence_delimiter_is_repaired(self):
    path = _testdata('emri_small_jpeg_2k_lossless_too_short.dcm')
    with open(path, 'rb') as f:
      header = pydicom.dcmread(f, stop_before_pixels=True)
      assert integrity.check_pixel_data(f, header, f.tell()) == (
          integrity.MISSING_SEQUENCE_DELIMITER)
    assert len(_frames(path)) == 10

  def test_complete_pixel_data_needs_no_repair(self):
    for name in ('emri_small_jpeg_2k_lossless.dcm', 'CT_small.dcm',
                 'SC_rgb_jpeg.dcm'):
      with open(_testdata(name), 'rb') as f:
        header = pydicom.dcmread(f, stop_before_pixels=True)
        assert integrity.check_pixel_data(f, header, f.tell()) == ''

  def test_transfer_syntax_without_decoder(self, tmp_path):
    ds = pydicom.dcmread(_testdata('CT_small.dcm'))
    ds.file_meta.TransferSyntaxUID = uid.MPEG2MPML
    ds.PixelData = encapsulate([ds.PixelData])
    path = tmp_path / 'mpeg2.dcm'
    ds.save_as(path)
    with pytest.raises(integrity.UnsupportedTransferSyntaxError):
      _frames(str(path))
    assert self._reason(str(path)) == rejects.UNSUPPORTED_TRANSFER_SYNTAX

  def test_twelve_bit_jpeg_extended_without_plugin(self):
    if 'pylibjpeg' in get_decoder(uid.JPEGExtended12Bit).available_plugins:
      pytest.skip('pylibjpeg-libjpeg decodes 12-bit JPEG Extended here.')
    path = _testdata('JPGExtended.dcm')
    assert self._reason(path) == rejects.UNSUPPORTED_TRANSFER_SYNTAX

  def test_no_pixel_data_element(self, tmp_path):
    ds = pydicom.dcmread(_testdata('CT_small.dcm'))
    del ds.PixelData
    path = tmp_path / 'no_pixels.dcm'
    ds.save_as(path)
    assert self._reason(str(path)) == rejects.NO_PIXEL_DATA

  def test_other_errors_are_undecodable(self):
    assert integrity.decode_error_reason(ValueError('boom')) == rejects.UNDECODABLE
