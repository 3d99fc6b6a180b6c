"""Slice geometry: where each frame lies in the patient, and stacking a series.

Pure functions of headers and numbers (no pixels, no Beam), for
DicomExampleGen's `unit='series'` and the `slice/position` of `unit='image'`
(docs/design.md §14).

Conventions (PS3.3 C.7.6.2.1.1, Image Position and Image Orientation):
  * Coordinates are the patient-based LPS system in mm: +x towards the
    patient's Left, +y Posterior, +z Superior (head).
  * Image Orientation (Patient) (0020,0037) holds the row cosines r (the
    direction in which the column index increases along a row) and then the
    column cosines c (the direction in which the row index increases).
  * Image Position (Patient) (0020,0032) is the centre of the first
    transmitted pixel (row 0, column 0).
  * The slice normal is n = r x c. A slice's position is p = IPP . n, in mm
    along n; slices are stacked by increasing p, whatever their
    InstanceNumber or file name says.
  * Pixel Spacing (0028,0030) is [row spacing, column spacing]: the distance
    between the centres of adjacent rows, then of adjacent columns.

Enhanced multi-frame files carry the same attributes per frame in functional
groups (PS3.3 C.7.6.16): Plane Position (Patient) (C.7.6.16.2.3) in the
frame's item of the Per-Frame Functional Groups Sequence, Plane Orientation
(Patient) (C.7.6.16.2.4) and Pixel Measures (C.7.6.16.2.1) per frame or, as
usual, in the Shared Functional Groups Sequence.

`stack` turns the planes of a series into a volume: one orientation and
pixel spacing for all, slices sorted along n, duplicates found, and the gaps
between slices checked to be regular within a tolerance; the volume's
spacing, origin and direction come out (`Volume`).
"""

import dataclasses
from typing import List, Optional, Sequence, Tuple

import numpy as np
from pydicom.dataset import Dataset

from image_example_gen import rejects

Vector = Tuple[float, float, float]

# Default of `spacing_tolerance`: consecutive gaps may differ from the
# series' median gap by this fraction of it.
DEFAULT_SPACING_TOLERANCE = 0.1
# Direction cosines of two slices that differ by more than this (in any of
# the six values) are different orientations. DICOM writers round cosines to
# 6 decimal places or more; a tilt of 0.01 degrees changes them by 1.7e-4.
ORIENTATION_TOLERANCE = 1e-4
# Row and column cosines must be unit vectors and orthogonal within this.
UNIT_TOLERANCE = 1e-3
# Pixel spacings of two slices that differ by more than this fraction differ.
PIXEL_SPACING_TOLERANCE = 1e-3
# Two slices closer than this along n share a position (mm; real slice gaps
# are 0.1 mm or more, DS values round to 1e-6 mm or coarser).
DUPLICATE_POSITION_MM = 0.01


class GeometryError(ValueError):
  """A frame or a series without usable geometry; `reason` names the reject."""

  def __init__(self, reason: str, detail: str):
    super().__init__(detail)
    self.reason = reason
    self.detail = detail


@dataclasses.dataclass(frozen=True)
class Plane:
  """Where one frame lies (PS3.3 C.7.6.2).

  Attributes:
    position: Image Position (Patient), mm, LPS.
    orientation: Image Orientation (Patient): row cosines, column cosines.
    pixel_spacing: (row spacing, column spacing), mm.
  """
  position: Vector
  orientation: Tuple[float, float, float, float, float, float]
  pixel_spacing: Tuple[float, float]

  @property
  def normal(self) -> np.ndarray:
    return normal(self.orientation)

  @property
  def slice_position(self) -> float:
    """mm along the normal: IPP . n."""
    return slice_position(self.position, self.normal)


@dataclasses.dataclass(frozen=True)
class Volume:
  """A series stacked along its normal.

  Attributes:
    order: indices into the stacked planes, by increasing position, one per
      distinct position (the first of each group of duplicates).
    duplicates: (kept index, duplicate index) pairs: planes that share a
      position with a kept one and are left out of `order`.
    spacing: [slice spacing, row spacing, column spacing] in mm; the slice
      spacing is the mean gap, (last position - first) / (depth - 1).
    origin: Image Position (Patient) of the first slice, mm, LPS.
    direction: row cosines, column cosines, n (9 values).
  """
  order: Tuple[int, ...]
  duplicates: Tuple[Tuple[int, int], ...]
  spacing: Tuple[float, float, float]
  origin: Vector
  direction: Tuple[float, ...]


def normal(orientation: Sequence[float]) -> np.ndarray:
  """n = row cosines x column cosines (PS3.3 C.7.6.2.1.1), unit length."""
  row, column = np.asarray(orientation[:3], float), np.asarray(
      orientation[3:6], float)
  n = np.cross(row, column)
  return n / np.linalg.norm(n)


def slice_position(position: Sequence[float], n: np.ndarray) -> float:
  """The position of a slice along its normal `n`: IPP . n, in mm."""
  return float(np.dot(np.asarray(position, float), n))


def check_orientation(orientation: Sequence[float]) -> None:
  """Raises GeometryError unless the cosines are orthogonal unit vectors."""
  row, column = np.asarray(orientation[:3], float), np.asarray(
      orientation[3:6], float)
  if (abs(np.linalg.norm(row) - 1) > UNIT_TOLERANCE or
      abs(np.linalg.norm(column) - 1) > UNIT_TOLERANCE or
      abs(np.dot(row, column)) > UNIT_TOLERANCE):
    raise GeometryError(
        rejects.NO_GEOMETRY,
        f'ImageOrientationPatient {list(orientation)} is not two orthogonal '
        'unit vectors')


def same_orientation(a: Sequence[float], b: Sequence[float],
                     tolerance: float = ORIENTATION_TOLERANCE) -> bool:
  """Whether two orientations' cosines agree within `tolerance` each."""
  return bool(np.max(np.abs(np.subtract(a, b))) <= tolerance)


def _floats(value, count: int, keyword: str) -> Tuple[float, ...]:
  """`count` finite floats of a multi-valued DS/FD attribute."""
  try:
    values = tuple(float(v) for v in value)
  except (TypeError, ValueError) as e:
    raise GeometryError(rejects.NO_GEOMETRY,
                        f'{keyword} does not parse: {value!r}') from e
  if len(values) != count or not all(np.isfinite(values)):
    raise GeometryError(rejects.NO_GEOMETRY,
                        f'{keyword} must hold {count} finite numbers, got '
                        f'{list(values)}')
  return values


def _macro(groups: Sequence[Dataset], sequence: str, keyword: str):
  """`keyword` of the first functional group in `groups` whose macro has it."""
  for group in groups:
    items = group.get(sequence) if group is not None else None
    if items and items[0].get(keyword) not in (None, ''):
      return items[0].get(keyword)
  return None


def planes(ds: Dataset) -> List[Plane]:
  """The plane of every frame of `ds` (a header; pixels are not needed).

  Single-frame images: the Image Plane module (PS3.3 C.7.6.2). Enhanced
  multi-frame images: per frame, the Plane Position (Patient), Plane
  Orientation (Patient) and Pixel Measures functional groups of its
  Per-Frame item, else of the Shared item (C.7.6.16.2.1, .2.3, .2.4);
  top-level attributes are the last resort for orientation and spacing.

  Raises:
    GeometryError (`no_geometry`): an attribute is missing or does not parse,
      or a multi-frame image has no per-frame positions.
  """
  frames = int(ds.get('NumberOfFrames') or 1)
  per_frame = list(ds.get('PerFrameFunctionalGroupsSequence') or [])
  shared = list(ds.get('SharedFunctionalGroupsSequence') or [])[:1]
  if frames > 1 and len(per_frame) < frames:
    raise GeometryError(
        rejects.NO_GEOMETRY,
        f'{frames} frames without a Per-Frame Functional Groups item each: '
        'no position per frame')
  result = []
  for index in range(frames):
    groups = per_frame[index:index + 1] + shared
    position = _macro(groups, 'PlanePositionSequence', 'ImagePositionPatient')
    orientation = _macro(groups, 'PlaneOrientationSequence',
                         'ImageOrientationPatient')
    spacing = _macro(groups, 'PixelMeasuresSequence', 'PixelSpacing')
    if position is None and frames == 1:
      position = ds.get('ImagePositionPatient')
    orientation = (orientation if orientation is not None else
                   ds.get('ImageOrientationPatient'))
    spacing = spacing if spacing is not None else ds.get('PixelSpacing')
    missing = [name for name, value in (
        ('ImagePositionPatient', position),
        ('ImageOrientationPatient', orientation),
        ('PixelSpacing', spacing)) if value in (None, '')]
    if missing:
      where = f' of frame {index}' if frames > 1 else ''
      raise GeometryError(rejects.NO_GEOMETRY,
                          f'no {" or ".join(missing)}{where}')
    orientation = _floats(orientation, 6, 'ImageOrientationPatient')
    check_orientation(orientation)
    result.append(Plane(
        _floats(position, 3, 'ImagePositionPatient'), orientation,
        _floats(spacing, 2, 'PixelSpacing')))
  return result


def frame_positions(ds: Dataset) -> Optional[List[float]]:
  """Each frame's position along its normal (mm), None without geometry."""
  try:
    return [plane.slice_position for plane in planes(ds)]
  except GeometryError:
    return None


def stack(slices: Sequence[Plane],
          spacing_tolerance: float = DEFAULT_SPACING_TOLERANCE) -> Volume:
  """Stacks the planes of one series into a volume.

  Checks, in this order: one orientation (`ORIENTATION_TOLERANCE`) and one
  pixel spacing (`PIXEL_SPACING_TOLERANCE`) for all planes; at least two
  distinct positions along n; every gap between consecutive distinct
  positions within `spacing_tolerance` of the median gap; each slice shifted
  from the previous one within its plane by at most `spacing_tolerance`
  times the gap (a tilted gantry's shear is not a regular grid).

  Args:
    slices: the planes, in any order.
    spacing_tolerance: the fraction by which gaps may differ.

  Raises:
    GeometryError: `inconsistent_series` (orientations or pixel spacings
      differ, or every slice shares one position) or `irregular_spacing`.
  """
  if not slices:
    raise ValueError('No slices to stack.')
  first = slices[0]
  for i, plane in enumerate(slices):
    if not same_orientation(plane.orientation, first.orientation):
      raise GeometryError(
          rejects.INCONSISTENT_SERIES,
          f'slices differ in orientation: {_rounded(first.orientation)} and '
          f'{_rounded(plane.orientation)} (slice {i})')
    if not np.allclose(plane.pixel_spacing, first.pixel_spacing,
                       rtol=PIXEL_SPACING_TOLERANCE, atol=0):
      raise GeometryError(
          rejects.INCONSISTENT_SERIES,
          f'slices differ in pixel spacing: {list(first.pixel_spacing)} and '
          f'{list(plane.pixel_spacing)} mm (slice {i})')
  n = first.normal
  positions = np.array([slice_position(p.position, n) for p in slices])
  by_position = sorted(range(len(slices)), key=lambda i: (positions[i], i))
  order, duplicates = [by_position[0]], []
  for i in by_position[1:]:
    if positions[i] - positions[order[-1]] <= DUPLICATE_POSITION_MM:
      duplicates.append((order[-1], i))
    else:
      order.append(i)
  if len(order) < 2:
    raise GeometryError(
        rejects.INCONSISTENT_SERIES,
        f'all {len(slices)} slices share one position '
        f'({positions[order[0]]:.3f} mm along the normal)')
  check_spacing([float(positions[i]) for i in order], spacing_tolerance)
  _check_stacked([slices[i].position for i in order], n, spacing_tolerance)
  depth_spacing = float(positions[order[-1]] - positions[order[0]]) / (
      len(order) - 1)
  origin = slices[order[0]].position
  return Volume(
      order=tuple(order), duplicates=tuple(duplicates),
      spacing=(depth_spacing, *first.pixel_spacing),
      origin=tuple(origin),
      direction=tuple(float(v) for v in (*first.orientation, *n)))


def check_spacing(positions: Sequence[float],
                  tolerance: float = DEFAULT_SPACING_TOLERANCE) -> float:
  """The median gap of sorted, distinct positions; raises if irregular.

  Raises:
    GeometryError (`irregular_spacing`): a gap differs from the median gap
      by more than `tolerance` times it (e.g. a missing slice: one gap of
      twice the others).
  """
  gaps = np.diff(np.asarray(positions, float))
  median = float(np.median(gaps))
  worst = int(np.argmax(np.abs(gaps - median)))
  if abs(gaps[worst] - median) > tolerance * median:
    raise GeometryError(
        rejects.IRREGULAR_SPACING,
        f'gap of {gaps[worst]:.3f} mm between slices {worst} and '
        f'{worst + 1} (of {len(positions)}, by position) against a median '
        f'gap of {median:.3f} mm; spacing_tolerance is {tolerance:g}')
  return median


def _check_stacked(positions: Sequence[Sequence[float]], n: np.ndarray,
                   tolerance: float) -> None:
  """Raises unless each slice lies along n from the previous one."""
  steps = np.diff(np.asarray(positions, float), axis=0)
  along = steps @ n
  across = np.linalg.norm(steps - np.outer(along, n), axis=1)
  worst = int(np.argmax(across / along))
  if across[worst] > tolerance * along[worst]:
    raise GeometryError(
        rejects.IRREGULAR_SPACING,
        f'slice {worst + 1} is shifted by {across[worst]:.3f} mm within the '
        f'plane from slice {worst} ({along[worst]:.3f} mm apart along the '
        'normal): the slices are sheared (a tilted gantry?), not a regular '
        'grid')


def _rounded(values: Sequence[float]) -> List[float]:
  return [round(float(v), 6) for v in values]
