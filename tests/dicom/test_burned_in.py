"""Burned-in PHI rules, the crop step and the de-identification record.

Pure functions on hand-built headers and arrays, and the converter (no
Beam) on the generated ultrasound sample; the component-level checks are in
test_burned_in_pipeline.py.
"""

import numpy as np
from pydicom import dataset
from pydicom import uid
import pytest
import tensorflow as tf

from image_example_gen import limits
from image_example_gen import listing
from image_example_gen import rejects
from image_example_gen import sample_data
from image_example_gen.dicom import burned_in
from image_example_gen.dicom import converter
from image_example_gen.dicom import decoders
from image_example_gen.dicom import deidentification
from image_example_gen.dicom import display
from image_example_gen.dicom import metadata

R = burned_in


def _header(sop_class=uid.CTImageStorage, modality='CT', regions=None,
            rows=96, columns=128, **attributes):
  ds = dataset.Dataset()
  ds.SOPClassUID = sop_class
  if modality is not None:
    ds.Modality = modality
  ds.Rows, ds.Columns = rows, columns
  for keyword, value in attributes.items():
    setattr(ds, keyword, value)
  if regions is not None:
    ds.SequenceOfUltrasoundRegions = [_region(*r) for r in regions]
  return ds


def _region(x0, y0, x1, y1):
  item = dataset.Dataset()
  (item.RegionLocationMinX0, item.RegionLocationMinY0,
   item.RegionLocationMaxX1, item.RegionLocationMaxY1) = x0, y0, x1, y1
  return item


_US = dict(sop_class=uid.UltrasoundImageStorage, modality='US')
_SC = dict(sop_class=uid.SecondaryCaptureImageStorage, modality='OT')
_PHOTO = dict(sop_class=uid.VLPhotographicImageStorage, modality='XC')
_REGIONS = [(16, 22, 111, 87)]


@pytest.mark.parametrize('header, rule', [
    (dict(), ''),
    (dict(BurnedInAnnotation='NO'), ''),
    (dict(BurnedInAnnotation='YES'), R.BURNED_IN_ANNOTATION_YES),
    (dict(BurnedInAnnotation='yes'), R.BURNED_IN_ANNOTATION_YES),
    (dict(BurnedInAnnotation=['NO', 'YES']), R.BURNED_IN_ANNOTATION_YES),
    (dict(**_US, regions=_REGIONS), R.ULTRASOUND_REGIONS),
    # Regions win over what the file says of itself.
    (dict(**_US, regions=_REGIONS, BurnedInAnnotation='NO'),
     R.ULTRASOUND_REGIONS),
    (dict(**_US, regions=_REGIONS, BurnedInAnnotation='YES'),
     R.ULTRASOUND_REGIONS),
    (dict(sop_class=uid.UltrasoundMultiFrameImageStorage, modality=None,
          regions=_REGIONS), R.ULTRASOUND_REGIONS),
    # Modality US under a secondary capture class: ultrasound all the same.
    (dict(sop_class=uid.SecondaryCaptureImageStorage, modality='US',
          regions=_REGIONS), R.ULTRASOUND_REGIONS),
    (dict(**_US), R.ULTRASOUND_WITHOUT_REGIONS),
    (dict(**_US, regions=[]), R.ULTRASOUND_WITHOUT_REGIONS),
    (dict(sop_class=uid.CTImageStorage, modality='IVUS'),
     R.ULTRASOUND_WITHOUT_REGIONS),
    (dict(**_US, BurnedInAnnotation='NO'), ''),
    (dict(**_SC), R.SECONDARY_CAPTURE),
    (dict(**_SC, BurnedInAnnotation=''), R.SECONDARY_CAPTURE),
    # Only an exact NO, the value the Clean Pixel Data Option writes, clears.
    (dict(**_SC, BurnedInAnnotation='no'), R.SECONDARY_CAPTURE),
    (dict(**_SC, BurnedInAnnotation='NO'), ''),
    (dict(sop_class=uid.MultiFrameTrueColorSecondaryCaptureImageStorage,
          modality='OT'), R.SECONDARY_CAPTURE),
    # Regions outside ultrasound do not make a crop.
    (dict(**_SC, regions=_REGIONS), R.SECONDARY_CAPTURE),
    (dict(**_PHOTO), R.VISIBLE_LIGHT),
    (dict(sop_class=uid.CTImageStorage, modality='ES'), R.VISIBLE_LIGHT),
    (dict(**_PHOTO, BurnedInAnnotation='NO'), ''),
    (dict(**_PHOTO, BurnedInAnnotation='NO', RecognizableVisualFeatures='YES'),
     R.RECOGNIZABLE_VISUAL_FEATURES),
    (dict(**_US, regions=_REGIONS, RecognizableVisualFeatures='YES'),
     R.RECOGNIZABLE_VISUAL_FEATURES),
    (dict(RecognizableVisualFeatures='NO'), ''),
])
def test_matching_rule(header, rule):
  found, why = burned_in.matching_rule(_header(**header))

  assert found == rule
  assert bool(why) == bool(rule)


def test_sop_class_from_the_file_meta():
  ds = _header(sop_class=None, modality='OT')
  del ds.SOPClassUID
  ds.file_meta = dataset.FileMetaDataset()
  ds.file_meta.MediaStorageSOPClassUID = uid.SecondaryCaptureImageStorage

  assert burned_in.matching_rule(ds)[0] == R.SECONDARY_CAPTURE


@pytest.mark.parametrize('header, policy, outcome', [
    (dict(**_US, regions=_REGIONS), R.CROP, R.CROPPED),
    (dict(**_US, regions=_REGIONS), R.REJECT, R.REJECTED),
    (dict(**_US, regions=_REGIONS), R.KEEP, R.KEPT),
    (dict(**_SC), R.CROP, R.REJECTED),
    (dict(**_SC), R.REJECT, R.REJECTED),
    (dict(**_SC), R.KEEP, R.KEPT),
    (dict(**_SC, BurnedInAnnotation='NO'), R.REJECT, ''),
    (dict(), R.CROP, ''),
    (dict(), R.KEEP, ''),
])
def test_policies(header, policy, outcome):
  decision = burned_in.decide(_header(**header), policy)

  assert decision.outcome == outcome
  assert bool(decision.regions) == (outcome == R.CROPPED)
  assert bool(decision.detail) == (outcome == R.REJECTED)
  assert decision.tallies == ((f'{outcome}/{decision.rule}',) if outcome
                              else ())


def test_reject_detail_names_the_rule_and_the_attribute():
  decision = burned_in.decide(_header(**_SC), R.CROP)

  assert decision.detail.startswith('secondary_capture: ')
  assert 'Secondary Capture Image Storage' in decision.detail
  assert 'Burned In Annotation is absent' in decision.detail
  # A header value never reaches a reject record.
  odd = burned_in.decide(_header(**_SC, BurnedInAnnotation='DOE JANE'),
                         R.CROP)
  assert 'not exactly NO' in odd.detail and 'DOE' not in odd.detail


@pytest.mark.parametrize('regions, expected', [
    ([(16, 22, 111, 87)], ((16, 22, 112, 88),)),
    # Scanners write Max X1 = Columns (OBXXXX1A.dcm): clipped to the frame.
    ([(120, 60, 128, 96)], ((120, 60, 128, 96),)),
    ([(0, 0, 127, 95)], ((0, 0, 128, 96),)),
    ([(0, 0, 0, 0)], ((0, 0, 1, 1),)),
    ([(8, 20, 119, 63), (0, 72, 127, 500)],
     ((8, 20, 120, 64), (0, 72, 128, 96))),
])
def test_region_boxes(regions, expected):
  assert burned_in.region_boxes(_header(**_US, regions=regions)) == expected


@pytest.mark.parametrize('regions, message', [
    ([(16, 22, 111, 87), (10, 120, 100, 150)],
     r'region 2 \(10, 120\)-\(100, 150\) lies outside the 128x96 image'),
    ([(128, 0, 140, 10)], 'lies outside'),
    ([(50, 22, 40, 87)], 'region 1 .* is inverted'),
    ([(16, 87, 111, 22)], 'inverted'),
    ([], 'has no region'),
])
def test_regions_that_do_not_fit_are_rejected(regions, message):
  header = _header(**_US, regions=regions)
  with pytest.raises(ValueError, match=message):
    burned_in.region_boxes(header)
  if regions:
    decision = burned_in.decide(header, R.CROP)
    assert decision.outcome == R.REJECTED
    assert decision.rule == R.ULTRASOUND_REGIONS
    assert burned_in.decide(header, R.KEEP).outcome == R.KEPT


def test_a_region_without_a_corner_is_rejected():
  header = _header(**_US, regions=_REGIONS)
  del header.SequenceOfUltrasoundRegions[0].RegionLocationMaxY1
  decision = burned_in.decide(header, R.CROP)

  assert decision.outcome == R.REJECTED
  assert 'region 1 has no valid RegionLocationMaxY1' in decision.detail


def test_check_policy():
  for policy in R.POLICIES:
    burned_in.check_policy(policy)
  with pytest.raises(ValueError, match='burned_in_annotation'):
    burned_in.check_policy('blur')


class TestCropToRegions:

  def test_one_region(self):
    arr = np.arange(12 * 10).reshape(12, 10).astype(np.uint16)
    np.testing.assert_array_equal(
        display.crop_to_regions(arr, [(2, 3, 7, 9)]), arr[3:9, 2:7])

  def test_between_disjoint_regions_is_black(self):
    arr = np.full((10, 10, 3), 200, np.uint8)
    out = display.crop_to_regions(arr, [(0, 0, 4, 3), (6, 5, 10, 10)])

    assert out.shape == (10, 10, 3)
    assert (out[0:3, 0:4] == 200).all() and (out[5:10, 6:10] == 200).all()
    assert out.sum() == 200 * 3 * (4 * 3 + 4 * 5)

  def test_overlapping_regions(self):
    arr = np.arange(100).reshape(10, 10).astype(np.uint8)
    out = display.crop_to_regions(arr, [(2, 2, 6, 6), (4, 4, 8, 8)])

    np.testing.assert_array_equal(out[:4, :4], arr[2:6, 2:6])
    np.testing.assert_array_equal(out[2:, 2:], arr[4:8, 4:8])
    assert out[0, 5] == 0 and out[5, 0] == 0


def test_render_crops_before_the_resize():
  ds = _header(**_US)
  ds.PhotometricInterpretation = 'MONOCHROME2'
  ds.BitsStored, ds.PixelRepresentation = 8, 0
  stored = np.full((96, 128), 250, np.uint8)
  stored[22:88, 16:112] = 100
  pixels, _ = display.render(stored, ds, display.PixelOptions(resize=32),
                             [(16, 22, 112, 88)])

  assert pixels.shape == (32, 32)
  assert pixels.max() == 100  # Nothing of the band, even after the resize.
  with pytest.raises(ValueError, match='full-resolution'):
    display.render(stored[::2, ::2], ds, display.PixelOptions(resize=32),
                   [(16, 22, 112, 88)])


def test_deidentification_record():
  tallies = {'cropped_to_regions/ultrasound_regions': 3,
             'burned_in_rejected/secondary_capture': 2,
             'burned_in_rejected/ultrasound_regions': 1}
  record = deidentification.record(
      R.CROP, metadata.resolve_attributes(), ['label'], False, tallies)

  assert record['burned_in_annotation'] == 'crop'
  assert record['cropped_to_regions'] == 3
  assert record['burned_in_rejected'] == 3
  assert record['burned_in_kept'] == 0
  assert set(record['burned_in_rules']) == set(R.RULES)
  assert record['burned_in_rules']['ultrasound_regions'] == {
      'cropped_to_regions': 3, 'burned_in_kept': 0, 'burned_in_rejected': 1}
  assert record['options']['retain_safe_private'] is False
  assert record['options']['clean_pixel_data'].startswith('applied')
  assert record['attributes'][0] == 'Modality'
  assert record['table_columns'] == ['label']
  assert record['salt'].startswith('secret')
  kept = deidentification.record(R.KEEP, (), (), True, {})
  assert kept['options']['clean_pixel_data'].startswith('not applied')
  assert kept['salt'].startswith('public default')


def test_allow_list_version_follows_the_lists(monkeypatch):
  version = deidentification.allow_list_version()

  assert version.startswith(deidentification.PS3_15_EDITION + '-')
  assert len(version.split('-')[1]) == 12
  assert deidentification.allow_list_version() == version
  monkeypatch.setattr(metadata, 'DEFAULT_ATTRIBUTES',
                      metadata.DEFAULT_ATTRIBUTES + ('SliceThickness',))
  assert deidentification.allow_list_version() != version


@pytest.fixture(scope='module')
def burned_in_sample(tmp_path_factory):
  return sample_data.make_burned_in_sample(
      tmp_path_factory.mktemp('burned_in_sample'))


def _convert(sample, rel_path, options, policy=R.CROP):
  (item,) = [f for f in listing.list_files(str(sample.root), rel_path)]
  return converter.DicomFileConverter(
      None, (), options, 'all', limits.SizeLimits(), 'salt', policy).convert(
          item, None)


def test_a_resized_jpeg_2000_cine_is_cropped_at_full_resolution(
    burned_in_sample):
  # The reduced-resolution path would blend band pixels into the regions.
  converted = _convert(burned_in_sample, 'us/grey_cine_j2k.dcm',
                       display.PixelOptions(resize=32))

  assert len(converted.examples) == 3
  assert converted.tallies == ('cropped_to_regions/ultrasound_regions',)
  for example in converted.examples:
    png = example.features.feature['image/encoded'].bytes_list.value[0]
    pixels = tf.io.decode_png(png).numpy()
    assert pixels.shape == (32, 32, 1)
    assert pixels.max() <= sample_data.ultrasound.REGION_MAX


def test_a_reject_carries_its_tally(burned_in_sample):
  with pytest.raises(rejects.RejectError) as raised:
    _convert(burned_in_sample, 'sc/screen_capture.dcm',
             display.PixelOptions())

  assert raised.value.reason == rejects.BURNED_IN_ANNOTATION
  assert raised.value.tallies == ('burned_in_rejected/secondary_capture',)


def test_overlay_bits_above_bits_stored_are_not_drawn(tmp_path):
  # Retired files kept overlays in the bits above Bits Stored.
  ds = _header()
  ds.file_meta = dataset.FileMetaDataset()
  ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
  ds.file_meta.MediaStorageSOPClassUID = uid.CTImageStorage
  ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = '1.2.3'
  ds.Rows = ds.Columns = 2
  ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
  ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
  ds.PixelRepresentation = 0
  ds.PixelData = np.array([[0x1005, 5], [0xF00F, 7]], '<u2').tobytes()
  ds.save_as(tmp_path / 'overlay.dcm', enforce_file_format=True)
  (frame,) = decoders.iter_frames(str(tmp_path / 'overlay.dcm'), ds,
                                  display.PixelOptions(bit_depth=16))

  np.testing.assert_array_equal(frame.pixels,
                                np.array([[5, 5], [15, 7]]) * 16)
