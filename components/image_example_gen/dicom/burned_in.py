"""Burned-in PHI: which DICOM images may show identifying text in their pixels.

The attribute allow-list (`metadata.py`) keeps PHI out of the features; the
pixels can hold it too. PS3.15 E.3.1 (Clean Pixel Data Option): information
burned in to the Pixel Data that the Basic Application Level Confidentiality
Profile removes from the header must be removed from the pixels as well;
"CT images do not normally contain such burned in annotation, whereas
Ultrasound images routinely do". These rules decide, from the header alone,
what happens to a file's pixels (docs/design.md §7).

Rules, tried in this order; the first that matches is the file's rule:

1. `recognizable_visual_features`: (0028,0302) Recognizable Visual Features
   YES (PS3.3 C.7.6.1, General Image Module): a face or a body surface that
   identifies the patient; no crop removes it.
2. `ultrasound_regions`: an ultrasound image (`ULTRASOUND_SOP_CLASSES`, or
   Modality US or IVUS) with a Sequence of Ultrasound Regions (0018,6011)
   (PS3.3 C.8.5.5, US Region Calibration Module), whatever its Burned In
   Annotation says: scanners write the patient's name, id, birth date,
   institution and the exam date beside the regions, in files marked NO as
   well. The regions say where the image is.
3. `burned_in_annotation_yes`: (0028,0301) Burned In Annotation YES (PS3.3
   C.7.6.1): the file says that its pixels identify the patient.
   A file whose Burned In Annotation is exactly NO, the value the Clean Pixel
   Data Option writes after cleaning, matches none of the rules below.
4. `ultrasound_without_regions`: ultrasound without usable regions.
5. `secondary_capture`: the Secondary Capture SOP classes
   (`SECONDARY_CAPTURE_SOP_CLASSES`; PS3.3 A.8): screen captures, scanned
   documents, digitized film, whose pixels show what the screen or the page
   showed.
6. `visible_light`: visible-light photographs, endoscopy, microscopy and
   their video (`VISIBLE_LIGHT_SOP_CLASSES`, or Modality XC, ES, GM, SM, OP,
   DMS; PS3.3 A.32): faces, wristbands, slide labels, burned-in captions.

Policies (`burned_in_annotation`):
  'crop' (default): rule 2 crops every frame to its regions (`region_boxes`);
    the other rules reject the file.
  'reject': every rule rejects.
  'keep': pixels are kept as stored whatever the rule (for data already
    cleaned, or to compare pixels with a reference); the rule is counted.
Encapsulated documents (PDF, CDA) have no pixel data and are rejected
before these rules (`no_pixel_data`).
"""

import dataclasses
from typing import Optional, Tuple

from pydicom import multival
from pydicom import uid
from pydicom.dataset import Dataset

from image_example_gen.dicom import display

CROP = 'crop'
REJECT = 'reject'
KEEP = 'keep'
POLICIES = (CROP, REJECT, KEEP)

RECOGNIZABLE_VISUAL_FEATURES = 'recognizable_visual_features'
ULTRASOUND_REGIONS = 'ultrasound_regions'
BURNED_IN_ANNOTATION_YES = 'burned_in_annotation_yes'
ULTRASOUND_WITHOUT_REGIONS = 'ultrasound_without_regions'
SECONDARY_CAPTURE = 'secondary_capture'
VISIBLE_LIGHT = 'visible_light'
RULES = (RECOGNIZABLE_VISUAL_FEATURES, ULTRASOUND_REGIONS,
         BURNED_IN_ANNOTATION_YES, ULTRASOUND_WITHOUT_REGIONS,
         SECONDARY_CAPTURE, VISIBLE_LIGHT)

# What happened to a file a rule matched, as counted in the summary: the
# tally of a file is '<outcome>/<rule>'.
CROPPED = 'cropped_to_regions'
KEPT = 'burned_in_kept'
REJECTED = 'burned_in_rejected'
OUTCOMES = (CROPPED, KEPT, REJECTED)

# PS3.4 Annex B.5 Table B.5-1 (the retired classes still occur in archives).
ULTRASOUND_SOP_CLASSES = frozenset((
    uid.UltrasoundImageStorage,
    uid.UltrasoundMultiFrameImageStorage,
    uid.EnhancedUSVolumeStorage,
    '1.2.840.10008.5.1.4.1.1.6',  # Ultrasound Image Storage (Retired)
    '1.2.840.10008.5.1.4.1.1.3',  # Ultrasound Multi-frame (Retired)
))
SECONDARY_CAPTURE_SOP_CLASSES = frozenset((
    uid.SecondaryCaptureImageStorage,
    uid.MultiFrameSingleBitSecondaryCaptureImageStorage,
    uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    uid.MultiFrameTrueColorSecondaryCaptureImageStorage,
))
VISIBLE_LIGHT_SOP_CLASSES = frozenset((
    uid.VLEndoscopicImageStorage,
    uid.VideoEndoscopicImageStorage,
    uid.VLMicroscopicImageStorage,
    uid.VideoMicroscopicImageStorage,
    uid.VLSlideCoordinatesMicroscopicImageStorage,
    uid.VLPhotographicImageStorage,
    uid.VideoPhotographicImageStorage,
    uid.OphthalmicPhotography8BitImageStorage,
    uid.OphthalmicPhotography16BitImageStorage,
    uid.WideFieldOphthalmicPhotographyStereographicProjectionImageStorage,
    uid.WideFieldOphthalmicPhotography3DCoordinatesImageStorage,
    uid.VLWholeSlideMicroscopyImageStorage,
    uid.DermoscopicPhotographyImageStorage,
))
# PS3.3 C.7.3.1.1.1 Modality defined terms.
ULTRASOUND_MODALITIES = frozenset(('US', 'IVUS'))
VISIBLE_LIGHT_MODALITIES = frozenset(('XC', 'ES', 'GM', 'SM', 'OP', 'DMS'))

_REGION_CORNERS = ('RegionLocationMinX0', 'RegionLocationMinY0',
                   'RegionLocationMaxX1', 'RegionLocationMaxY1')


@dataclasses.dataclass(frozen=True)
class Decision:
  """What happens to a file's pixels.

  Attributes:
    rule: the rule that matched (RULES), '' if none did.
    outcome: '' (no rule), CROPPED (to `regions`), KEPT (as stored) or
      REJECTED (`detail` says why).
    regions: the boxes to crop every frame to, within the frame.
    detail: why the file is rejected, naming the rule.
  """
  rule: str = ''
  outcome: str = ''
  regions: Tuple[display.Box, ...] = ()
  detail: str = ''

  @property
  def tallies(self) -> Tuple[str, ...]:
    """('<outcome>/<rule>',), counted in the summary; () without a rule."""
    return (f'{self.outcome}/{self.rule}',) if self.rule else ()


def check_policy(policy: str) -> None:
  """Raises ValueError unless `policy` is one of POLICIES."""
  if policy not in POLICIES:
    raise ValueError(f'burned_in_annotation must be one of {POLICIES}, got '
                     f'{policy!r}.')


def decide(ds: Dataset, policy: str) -> Decision:
  """The rule of `ds` (a header) and what `policy` does with it."""
  rule, detail = matching_rule(ds)
  if not rule:
    return Decision()
  if policy == KEEP:
    return Decision(rule, KEPT)
  if rule == ULTRASOUND_REGIONS and policy == CROP:
    try:
      return Decision(rule, CROPPED, region_boxes(ds))
    except ValueError as e:
      return Decision(rule, REJECTED, detail=f'{rule}: {e}')
  return Decision(rule, REJECTED, detail=f'{rule}: {detail}')


def matching_rule(ds: Dataset) -> Tuple[str, str]:
  """(rule, why) of the first rule `ds` matches (module docstring); ('', '')."""
  burned_in = _code_string(ds, 'BurnedInAnnotation')
  sop_class = _sop_class(ds)
  modality = _code_string(ds, 'Modality')
  ultrasound = (sop_class in ULTRASOUND_SOP_CLASSES or
                modality in ULTRASOUND_MODALITIES)
  if _says_yes(_code_string(ds, 'RecognizableVisualFeatures')):
    return (RECOGNIZABLE_VISUAL_FEATURES,
            'Recognizable Visual Features is YES: the pixels may show the '
            'patient\'s face or body surface')
  if ultrasound and ds.get('SequenceOfUltrasoundRegions'):
    return ULTRASOUND_REGIONS, ('ultrasound: text beside the regions may '
                                'identify the patient')
  if _says_yes(burned_in):
    return (BURNED_IN_ANNOTATION_YES,
            'Burned In Annotation is YES: the pixels identify the patient')
  if burned_in == 'NO':
    return '', ''
  # The value itself is not repeated: a header value never reaches a record.
  not_no = ('and Burned In Annotation is ' +
            ('absent' if not burned_in else 'not exactly NO'))
  if ultrasound:
    return ULTRASOUND_WITHOUT_REGIONS, (
        f'ultrasound without Sequence of Ultrasound Regions {not_no}: '
        'scanners burn names and dates into ultrasound images')
  if sop_class in SECONDARY_CAPTURE_SOP_CLASSES:
    return SECONDARY_CAPTURE, (
        f'{uid.UID(sop_class).name} {not_no}: screen captures and scanned '
        'documents show names and dates as a rule')
  if (sop_class in VISIBLE_LIGHT_SOP_CLASSES or
      modality in VISIBLE_LIGHT_MODALITIES):
    return VISIBLE_LIGHT, (
        f'visible-light image {not_no}: photographs show faces, labels and '
        'captions as a rule')
  return '', ''


def region_boxes(ds: Dataset) -> Tuple[display.Box, ...]:
  """The regions of the Sequence of Ultrasound Regions, clipped to the frame.

  PS3.3 C.8.5.5.1: Region Location Min X0, Min Y0, Max X1, Max Y1 (UL) are
  the columns and rows of the region's top left and bottom right pixels,
  both included. A region reaching past the last column or row (scanners
  write Max X1 = Columns) is clipped to the frame.

  Raises:
    ValueError: a region lacks a corner, is inverted (Max < Min), or lies
      wholly outside the Rows x Columns frame; or there is no region. A file
      whose regions do not fit its pixels cannot say where its image is.
  """
  rows, columns = int(ds.Rows), int(ds.Columns)
  boxes = []
  for number, item in enumerate(ds.get('SequenceOfUltrasoundRegions') or [],
                                start=1):
    corners = [_unsigned(item, keyword) for keyword in _REGION_CORNERS]
    if None in corners:
      missing = _REGION_CORNERS[corners.index(None)]
      raise ValueError(f'region {number} has no valid {missing}')
    x0, y0, x1, y1 = corners
    if x1 < x0 or y1 < y0:
      raise ValueError(f'region {number} ({x0}, {y0})-({x1}, {y1}) is '
                       'inverted')
    if x0 >= columns or y0 >= rows:
      raise ValueError(f'region {number} ({x0}, {y0})-({x1}, {y1}) lies '
                       f'outside the {columns}x{rows} image')
    boxes.append((x0, y0, min(x1, columns - 1) + 1, min(y1, rows - 1) + 1))
  if not boxes:
    raise ValueError('the Sequence of Ultrasound Regions has no region')
  return tuple(boxes)


def _unsigned(item: Dataset, keyword: str) -> Optional[int]:
  """A non-negative integer attribute of `item`, None if absent or invalid."""
  try:
    value = item.get(keyword)
    value = int(value) if value is not None and value != '' else None
  except (TypeError, ValueError):
    return None
  return value if value is not None and value >= 0 else None


def _says_yes(value: str) -> bool:
  """Whether a YES/NO code string says YES, in any case or among values."""
  return 'YES' in value.upper().split('\\')


def _code_string(ds: Dataset, keyword: str) -> str:
  """A code string attribute, stripped; '' if absent or unreadable.

  Several values (an invalid VM) are joined with '\\'.
  """
  try:
    value = ds.get(keyword)
  except Exception:  # pylint: disable=broad-except
    return ''  # pydicom could not convert the raw value.
  if isinstance(value, multival.MultiValue):
    value = '\\'.join(str(v) for v in value)
  return value.strip() if isinstance(value, str) else ''


def _sop_class(ds: Dataset) -> str:
  """SOP Class UID, or the file meta's Media Storage SOP Class UID."""
  value = ds.get('SOPClassUID')
  if not value:
    file_meta = getattr(ds, 'file_meta', None)
    value = file_meta.get('MediaStorageSOPClassUID') if file_meta else None
  return str(value or '').strip(' \x00')
