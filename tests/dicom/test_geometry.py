"""Slice geometry (image_example_gen.dicom.geometry): pure functions, no Beam."""

import math

import numpy as np
from pydicom.dataset import Dataset
import pytest

from image_example_gen import rejects
from image_example_gen.dicom import geometry

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
_C, _S = math.cos(math.radians(20)), math.sin(math.radians(20))
# Rotated 20 degrees about the row direction: the normal leaves z.
OBLIQUE = (1.0, 0.0, 0.0, 0.0, _C, _S)


def _planes(positions, orientation=AXIAL, spacing=(0.7, 0.7)):
  return [geometry.Plane(tuple(p), orientation, spacing) for p in positions]


def _along(orientation, values, origin=(10.0, -20.0, 30.0)):
  """IPPs at `values` mm along the orientation's normal from `origin`."""
  n = geometry.normal(orientation)
  return [tuple(np.asarray(origin) + v * n) for v in values]


@pytest.mark.parametrize('orientation, expected', [
    (AXIAL, (0, 0, 1)),       # Feet to head: +z, Superior.
    (SAGITTAL, (-1, 0, 0)),   # Rows go posterior, columns down: n = -x.
    (CORONAL, (0, 1, 0)),     # Rows go left, columns down: n = +y.
    (OBLIQUE, (0, -_S, _C)),
])
def test_normal_is_row_cross_column(orientation, expected):
  np.testing.assert_allclose(geometry.normal(orientation), expected,
                             atol=1e-12)


def test_slice_position_is_the_position_along_the_normal():
  n = geometry.normal(OBLIQUE)
  position = np.array([3.0, 4.0, 5.0]) + 7.5 * n
  assert geometry.slice_position(position, n) == pytest.approx(
      np.dot([3.0, 4.0, 5.0], n) + 7.5)


def test_stack_sorts_by_position_whatever_the_input_order():
  values = [4.0, -2.0, 0.0, 8.0, 2.0, 6.0]
  volume = geometry.stack(_planes(_along(OBLIQUE, values), OBLIQUE))
  assert [values[i] for i in volume.order] == [-2, 0, 2, 4, 6, 8]
  assert volume.spacing == pytest.approx((2.0, 0.7, 0.7))
  np.testing.assert_allclose(volume.origin, _along(OBLIQUE, [-2.0])[0])
  np.testing.assert_allclose(volume.direction,
                             (*OBLIQUE, *geometry.normal(OBLIQUE)))
  assert volume.duplicates == ()


def test_stack_of_a_series_numbered_from_the_head_down():
  # Scanners number from the head: IPP z decreases as InstanceNumber grows.
  z = [100.0 - 2.5 * k for k in range(8)]
  volume = geometry.stack(_planes([(0, 0, v) for v in z]))
  assert list(volume.order) == list(range(7, -1, -1))
  assert volume.origin == (0, 0, 82.5)
  assert volume.spacing[0] == pytest.approx(2.5)


def test_sagittal_positions_follow_minus_x():
  x = [5.0, 3.0, 1.0, -1.0]
  volume = geometry.stack(_planes([(v, 0, 0) for v in x], SAGITTAL))
  assert [x[i] for i in volume.order] == [5.0, 3.0, 1.0, -1.0]
  assert volume.spacing[0] == pytest.approx(2.0)


def test_spacing_comes_from_positions_not_thickness_and_allows_jitter():
  jitter = [0.0, 1.03, 1.98, 3.0, 4.05]  # Gaps within 5% of 1 mm.
  volume = geometry.stack(_planes([(0, 0, v) for v in jitter]))
  assert volume.spacing[0] == pytest.approx(4.05 / 4)


def test_a_missing_slice_is_irregular_spacing():
  z = [0.0, 1.0, 2.0, 4.0, 5.0]
  with pytest.raises(geometry.GeometryError) as e:
    geometry.stack(_planes([(0, 0, v) for v in z]))
  assert e.value.reason == rejects.IRREGULAR_SPACING
  assert '2.000 mm' in e.value.detail and 'median' in e.value.detail


def test_spacing_tolerance_is_a_fraction_of_the_median_gap():
  z = [0.0, 1.0, 2.0, 3.15, 4.15]  # One gap 15% longer.
  with pytest.raises(geometry.GeometryError):
    geometry.stack(_planes([(0, 0, v) for v in z]), spacing_tolerance=0.1)
  assert geometry.stack(_planes([(0, 0, v) for v in z]),
                        spacing_tolerance=0.2).spacing[0] == pytest.approx(
                            4.15 / 4)
  assert geometry.check_spacing([0, 1, 2, 3], 0.0) == 1.0


def test_duplicate_positions_are_reported_not_stacked():
  z = [0.0, 1.0, 1.0 + geometry.DUPLICATE_POSITION_MM / 2, 2.0, 3.0]
  volume = geometry.stack(_planes([(0, 0, v) for v in z]))
  assert volume.order == (0, 1, 3, 4)
  assert volume.duplicates == ((1, 2),)
  assert volume.spacing[0] == pytest.approx(1.0)


def test_one_position_for_all_slices_is_inconsistent():
  with pytest.raises(geometry.GeometryError) as e:
    geometry.stack(_planes([(0, 0, 5.0)] * 3))
  assert e.value.reason == rejects.INCONSISTENT_SERIES


def test_orientations_must_agree_within_the_tolerance():
  close = (1.0, 0.0, 0.0, 0.0, 1.0, geometry.ORIENTATION_TOLERANCE / 2)
  planes = _planes([(0, 0, 0), (0, 0, 1)]) + [
      geometry.Plane((0, 0, 2), close, (0.7, 0.7))]
  assert len(geometry.stack(planes).order) == 3
  planes[1] = geometry.Plane((0, 0, 1), OBLIQUE, (0.7, 0.7))
  with pytest.raises(geometry.GeometryError) as e:
    geometry.stack(planes)
  assert e.value.reason == rejects.INCONSISTENT_SERIES
  assert 'orientation' in e.value.detail


def test_pixel_spacings_must_agree():
  planes = _planes([(0, 0, 0), (0, 0, 1), (0, 0, 2)])
  planes[2] = geometry.Plane((0, 0, 2), AXIAL, (0.7, 0.8))
  with pytest.raises(geometry.GeometryError) as e:
    geometry.stack(planes)
  assert e.value.reason == rejects.INCONSISTENT_SERIES
  assert 'pixel spacing' in e.value.detail


def test_a_sheared_stack_is_no_regular_grid():
  # A gantry tilted by 15 degrees: each slice moves in-plane by gap * tan.
  shift = 2.0 * math.tan(math.radians(15))
  positions = [(0.0, k * shift, 2.0 * k) for k in range(5)]
  with pytest.raises(geometry.GeometryError) as e:
    geometry.stack(_planes(positions))
  assert e.value.reason == rejects.IRREGULAR_SPACING
  assert 'shifted' in e.value.detail


def _image(**attributes) -> Dataset:
  ds = Dataset()
  ds.ImagePositionPatient = [-125.0, -130.5, 40.25]
  ds.ImageOrientationPatient = list(AXIAL)
  ds.PixelSpacing = [0.5, 0.6]
  for keyword, value in attributes.items():
    if value is None:
      delattr(ds, keyword)
    else:
      setattr(ds, keyword, value)
  return ds


def test_planes_of_a_single_frame_image():
  (plane,) = geometry.planes(_image())
  assert plane.position == (-125.0, -130.5, 40.25)
  assert plane.orientation == AXIAL
  assert plane.pixel_spacing == (0.5, 0.6)
  assert plane.slice_position == 40.25
  assert geometry.frame_positions(_image()) == [40.25]


@pytest.mark.parametrize('attributes, words', [
    ({'ImagePositionPatient': None}, 'no ImagePositionPatient'),
    ({'ImageOrientationPatient': None}, 'no ImageOrientationPatient'),
    ({'PixelSpacing': None}, 'no PixelSpacing'),
    ({'ImagePositionPatient': [1.0, 2.0]}, '3 finite numbers'),
    ({'ImageOrientationPatient': [1, 0, 0, 1, 0, 0]}, 'orthogonal unit'),
    ({'ImageOrientationPatient': [2, 0, 0, 0, 1, 0]}, 'orthogonal unit'),
])
def test_missing_or_broken_geometry(attributes, words):
  with pytest.raises(geometry.GeometryError) as e:
    geometry.planes(_image(**attributes))
  assert e.value.reason == rejects.NO_GEOMETRY
  assert words in e.value.detail
  assert geometry.frame_positions(_image(**attributes)) is None


def _item(**sequences) -> Dataset:
  """A functional group item with one-item macro sequences."""
  item = Dataset()
  for sequence, attributes in sequences.items():
    macro = Dataset()
    for keyword, value in attributes.items():
      setattr(macro, keyword, value)
    setattr(item, sequence, [macro])
  return item


def _enhanced(z_of_frames, per_frame_orientation=None) -> Dataset:
  ds = Dataset()
  ds.NumberOfFrames = len(z_of_frames)
  ds.SharedFunctionalGroupsSequence = [_item(
      PixelMeasuresSequence={'PixelSpacing': [0.8, 0.8]},
      PlaneOrientationSequence={'ImageOrientationPatient': list(AXIAL)})]
  ds.PerFrameFunctionalGroupsSequence = [
      _item(PlanePositionSequence={'ImagePositionPatient': [0.0, 0.0, z]})
      for z in z_of_frames]
  if per_frame_orientation is not None:
    ds.PerFrameFunctionalGroupsSequence[0].PlaneOrientationSequence = [
        _item(PlaneOrientationSequence={
            'ImageOrientationPatient': list(per_frame_orientation)})
        .PlaneOrientationSequence[0]]
  return ds


def test_enhanced_multi_frame_positions_per_frame_orientation_shared():
  planes = geometry.planes(_enhanced([6.0, 0.0, 4.0, 2.0]))
  assert [p.slice_position for p in planes] == [6.0, 0.0, 4.0, 2.0]
  assert {p.pixel_spacing for p in planes} == {(0.8, 0.8)}
  volume = geometry.stack(planes)
  assert volume.order == (1, 3, 2, 0)  # Frames stored out of order.
  assert volume.spacing == pytest.approx((2.0, 0.8, 0.8))


def test_a_per_frame_orientation_overrides_the_shared_one():
  planes = geometry.planes(_enhanced([0.0, 1.0], SAGITTAL))
  assert planes[0].orientation == SAGITTAL
  assert planes[1].orientation == AXIAL


def test_multi_frame_without_per_frame_positions_has_no_geometry():
  ds = _image()
  ds.NumberOfFrames = 3
  with pytest.raises(geometry.GeometryError) as e:
    geometry.planes(ds)
  assert e.value.reason == rejects.NO_GEOMETRY
  assert 'no position per frame' in e.value.detail
