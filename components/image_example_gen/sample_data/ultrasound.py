"""Ultrasound and other files with PHI burned into their pixels.

As scanners write them: the patient's name, id, birth date, institution and
the exam date rendered (Pillow's `ImageDraw.text`) into a band around the
Sequence of Ultrasound Regions (PS3.3 C.8.5.5), the same values in the
header. Grey and colour (RGB, YBR_FULL), single frame and cine; native, RLE
and JPEG 2000; a region touching the image's edges, one reaching past the
last row (Max Y1 = Rows, as scanners write), two disjoint regions with text
between them. Band pixels, text included, are at least `BAND_MIN` in some
channel; region pixels are at most `REGION_MAX` in every channel: no band
pixel may be found in an Example. Besides them, one file for each other
burned-in rule (`image_example_gen.dicom.burned_in`) and files that convert
as they are; `BurnedInFile.rule` says which rule each is written to match.
"""

import dataclasses
import io
import pathlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from image_example_gen.sample_data import common

# Every channel of a region pixel is at most REGION_MAX; some channel of a
# band pixel (background or text) is at least BAND_MIN.
REGION_MAX = 191
BAND_MIN = 224

_ROWS, _COLUMNS = 96, 128
_GREY_BAND, _GREY_TEXT = 232, 255
_RGB_BAND, _RGB_TEXT = (240, 236, 40), (255, 255, 255)

# Rule names of `image_example_gen.dicom.burned_in` (not imported: the
# sample must describe the files independently of the code it tests).
RECOGNIZABLE_VISUAL_FEATURES = 'recognizable_visual_features'
ULTRASOUND_REGIONS = 'ultrasound_regions'
BURNED_IN_ANNOTATION_YES = 'burned_in_annotation_yes'
ULTRASOUND_WITHOUT_REGIONS = 'ultrasound_without_regions'
SECONDARY_CAPTURE = 'secondary_capture'
VISIBLE_LIGHT = 'visible_light'

# SOP classes (PS3.4 B.5) and transfer syntaxes (PS3.6 A) written.
_US_IMAGE = '1.2.840.10008.5.1.4.1.1.6.1'
_US_MULTI_FRAME = '1.2.840.10008.5.1.4.1.1.3.1'
_SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7'
_VL_PHOTOGRAPHIC = '1.2.840.10008.5.1.4.1.1.77.1.4'
_CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2'
_NATIVE = '1.2.840.10008.1.2.1'
_RLE = '1.2.840.10008.1.2.5'
_JPEG_2000_LOSSLESS = '1.2.840.10008.1.2.4.90'

# Region corners as written: (Min X0, Min Y0, Max X1, Max Y1), inclusive.
Corners = Tuple[int, int, int, int]


@dataclasses.dataclass(frozen=True)
class BurnedInFile:
  """One file of the sample.

  Attributes:
    rel_path: path relative to the sample root, '/' separated.
    sop_instance_uid: its SOPInstanceUID (`image/key` is its keyed hash).
    rule: the burned-in rule the file is written to match, '' for none.
    regions: the regions as pixel boxes (x0, y0, x1, y1) of columns x0 ..
      x1 - 1 and rows y0 .. y1 - 1, clipped to the frame; () if the file
      has none or one does not fit the frame.
    pixels: the frames as drawn, frames x rows x columns (x 3 for colour)
      uint8: what an Example shows where a region keeps a pixel (YBR_FULL
      files store their conversion, which decodes back to within 1).
    burned_in_text: the lines drawn into the pixels (header PHI).
  """
  rel_path: str
  sop_instance_uid: str
  rule: str
  regions: Tuple[Tuple[int, int, int, int], ...]
  pixels: np.ndarray
  burned_in_text: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class BurnedInSample:
  """What `make_burned_in_sample` wrote.

  Attributes:
    root: the sample's root folder (the ExampleGen's input_base).
    files: every file, in the order written.
    phi_values: every fake PHI value of the headers, all of them also drawn
      into pixels, sorted.
  """
  root: pathlib.Path
  files: List[BurnedInFile]
  phi_values: List[str]

  def file(self, rel_path: str) -> BurnedInFile:
    (found,) = [f for f in self.files if f.rel_path == rel_path]
    return found


@dataclasses.dataclass(frozen=True)
class _Spec:
  """How to write one file."""
  rel_path: str
  rule: str
  sop_class: str
  modality: str
  photometric: str  # MONOCHROME2, RGB or YBR_FULL
  frames: int
  transfer_syntax: str
  regions: Tuple[Corners, ...] = ()
  burned_in_annotation: Optional[str] = None
  recognizable_visual_features: Optional[str] = None
  text: bool = True


_SPECS = (
    _Spec('us/grey_single.dcm', ULTRASOUND_REGIONS, _US_IMAGE, 'US',
          'MONOCHROME2', 1, _NATIVE, ((16, 22, 111, 87),)),
    # Marked NO: scanners write demographics beside the regions all the same.
    _Spec('us/rgb_cine_two_regions.dcm', ULTRASOUND_REGIONS, _US_MULTI_FRAME,
          'US', 'RGB', 4, _RLE, ((8, 20, 119, 63), (0, 72, 127, _ROWS)),
          burned_in_annotation='NO'),
    _Spec('us/ybr_cine_edge.dcm', ULTRASOUND_REGIONS, _US_MULTI_FRAME, 'US',
          'YBR_FULL', 3, _NATIVE, ((20, 0, _COLUMNS - 1, 79),),
          burned_in_annotation='YES'),
    _Spec('us/grey_cine_j2k.dcm', ULTRASOUND_REGIONS, _US_MULTI_FRAME, 'US',
          'MONOCHROME2', 3, _JPEG_2000_LOSSLESS, ((10, 18, 117, 85),)),
    # A second region below the 96 rows: the header describes other pixels.
    _Spec('us/region_outside.dcm', ULTRASOUND_REGIONS, _US_IMAGE, 'US',
          'MONOCHROME2', 1, _NATIVE, ((16, 22, 111, 87), (10, 120, 100, 150))),
    _Spec('us/rgb_without_regions.dcm', ULTRASOUND_WITHOUT_REGIONS, _US_IMAGE,
          'US', 'RGB', 1, _NATIVE),
    _Spec('us/grey_without_regions_marked_no.dcm', '', _US_IMAGE, 'US',
          'MONOCHROME2', 1, _NATIVE, burned_in_annotation='NO', text=False),
    _Spec('sc/screen_capture.dcm', SECONDARY_CAPTURE, _SECONDARY_CAPTURE, 'OT',
          'RGB', 1, _NATIVE),
    _Spec('sc/screen_capture_marked_no.dcm', '', _SECONDARY_CAPTURE, 'OT',
          'MONOCHROME2', 1, _RLE, burned_in_annotation='NO', text=False),
    _Spec('ct/marked_yes.dcm', BURNED_IN_ANNOTATION_YES, _CT_IMAGE, 'CT',
          'MONOCHROME2', 1, _NATIVE, burned_in_annotation='YES'),
    _Spec('ct/plain.dcm', '', _CT_IMAGE, 'CT', 'MONOCHROME2', 1, _NATIVE,
          text=False),
    _Spec('photo/clinical_photo.dcm', VISIBLE_LIGHT, _VL_PHOTOGRAPHIC, 'XC',
          'RGB', 1, _NATIVE),
    _Spec('photo/face_marked_no.dcm', RECOGNIZABLE_VISUAL_FEATURES,
          _VL_PHOTOGRAPHIC, 'XC', 'RGB', 1, _NATIVE,
          burned_in_annotation='NO', recognizable_visual_features='YES',
          text=False),
)


def make_burned_in_sample(out_dir: common.PathLike,
                          seed: int = 0) -> BurnedInSample:
  """Writes the sample's DICOM files (`_SPECS`) into a new or empty folder.

  Every file belongs to its own fake patient, whose name, id, birth date,
  institution and study date are in the header and, where `text` is set,
  burned into the pixels.
  """
  root = common.empty_dir(out_dir)
  files, phi = [], set()
  for number, spec in enumerate(_SPECS):
    header = _patient(seed, number)
    text = _text_lines(header) if spec.text else ()
    pixels = np.stack([_frame(spec, text, seed, number, index)
                       for index in range(spec.frames)])
    ds = _dataset(spec, header, pixels, seed)
    common.write(root, spec.rel_path, _dicom_bytes(ds))
    phi.update(header.values())
    files.append(BurnedInFile(
        rel_path=spec.rel_path, sop_instance_uid=str(ds.SOPInstanceUID),
        rule=spec.rule, regions=_boxes(spec.regions), pixels=pixels,
        burned_in_text=text))
  return BurnedInSample(root=root, files=files, phi_values=sorted(phi))


def _patient(seed: int, number: int) -> Dict[str, str]:
  """Fake PHI of the file's patient: keyword -> value."""
  rng = np.random.default_rng([seed, 7, number])
  last = ('DOE', 'SMITH', 'GARCIA', 'NGUYEN', 'OKAFOR', 'ROSSI')[number % 6]
  first = ('JANE', 'MARIA', 'AMINA', 'YUKI', 'ELENA', 'PRIYA')[number // 6 % 6]
  return {
      'PatientName': f'{last}^{first}',
      'PatientID': f'MRN{rng.integers(10**6, 10**7)}',
      'PatientBirthDate': (f'{rng.integers(1940, 2000)}'
                           f'{rng.integers(1, 13):02d}'
                           f'{rng.integers(1, 29):02d}'),
      'InstitutionName': ('ST MARY GENERAL', 'NORTHSIDE IMAGING')[number % 2],
      'StudyDate': (f'{rng.integers(2015, 2024)}{rng.integers(1, 13):02d}'
                    f'{rng.integers(1, 29):02d}'),
  }


def _text_lines(header: Dict[str, str]) -> Tuple[str, ...]:
  """What a scanner writes beside the image: every PHI value of the header."""
  return (header['PatientName'], header['PatientID'],
          f'DOB {header["PatientBirthDate"]}', header['InstitutionName'],
          header['StudyDate'])


def _boxes(regions: Sequence[Corners]) -> Tuple[Tuple[int, int, int, int],
                                                 ...]:
  """Inclusive corners as exclusive boxes clipped to the frame; () if any
  region lies outside it."""
  boxes = []
  for x0, y0, x1, y1 in regions:
    if x0 >= _COLUMNS or y0 >= _ROWS:
      return ()
    boxes.append((x0, y0, min(x1, _COLUMNS - 1) + 1, min(y1, _ROWS - 1) + 1))
  return tuple(boxes)


def _frame(spec: _Spec, text: Sequence[str], seed: int, number: int,
           index: int) -> np.ndarray:
  """One frame as displayed, `text` burned in.

  With regions: a band of BAND_MIN and above holding the text, the image
  data pasted into the regions (the first alone when another lies outside
  the frame). Without: the text drawn over the image data.
  """
  colour = spec.photometric != 'MONOCHROME2'
  content = _content(np.random.default_rng([seed, 8, number, index]), colour,
                     number, index)
  if not text:
    return content
  regions = _boxes(spec.regions) or _boxes(spec.regions[:1])
  image = (Image.new('RGB' if colour else 'L', (_COLUMNS, _ROWS),
                     _RGB_BAND if colour else _GREY_BAND)
           if regions else Image.fromarray(content))
  draw = ImageDraw.Draw(image)
  font = ImageFont.load_default(size=9)
  fill = _RGB_TEXT if colour else _GREY_TEXT
  # Where scanners put it (and across the regions, which cover it), with a
  # frame clock that changes from frame to frame.
  for row, line in enumerate((*text, f'{index * 0.04:.2f} s')):
    draw.text(((row % 2) * 40, row * 11), line, fill=fill, font=font)
  draw.text((70, _ROWS - 10), text[0], fill=fill, font=font)
  pixels = np.array(image)
  for x0, y0, x1, y1 in regions:
    pixels[y0:y1, x0:x1] = content[y0:y1, x0:x1]
  return pixels


def _content(rng: np.random.Generator, colour: bool, number: int,
             index: int) -> np.ndarray:
  """Image data: a digit in speckle, all values in [0, REGION_MAX]."""
  digit, _ = common.render_digit(number * 8 + index, size=_COLUMNS)
  digit = digit[(_COLUMNS - _ROWS) // 2:][:_ROWS]
  speckle = rng.gamma(4.0, 0.25, (_ROWS, _COLUMNS))
  grey = np.clip(np.rint((0.15 + 0.6 * digit) * speckle * REGION_MAX), 0,
                 REGION_MAX).astype(np.uint8)
  if not colour:
    return grey
  rgb = np.repeat(grey[..., np.newaxis], 3, axis=-1)
  # Colour flow: a red and a blue patch, every channel within REGION_MAX.
  rgb[30:45, 40:60] = (REGION_MAX, 24, 24)
  rgb[50:60, 70:90] = (16, 40, REGION_MAX)
  return rgb


def _dataset(spec: _Spec, header: Dict[str, str], pixels: np.ndarray,
             seed: int):
  """The file's data set, pixel data encoded in the spec's syntax."""
  from pydicom import dataset  # pylint: disable=g-import-not-at-top
  from pydicom.pixels import convert_color_space  # pylint: disable=g-import-not-at-top
  sop_instance_uid = common.uid(seed, 'burned_in', spec.rel_path)
  ds = dataset.Dataset()
  ds.file_meta = dataset.FileMetaDataset()
  ds.file_meta.MediaStorageSOPClassUID = spec.sop_class
  ds.file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
  ds.file_meta.TransferSyntaxUID = _NATIVE
  ds.SpecificCharacterSet = 'ISO_IR 100'
  ds.SOPClassUID = spec.sop_class
  ds.SOPInstanceUID = sop_instance_uid
  ds.StudyInstanceUID = common.uid(seed, 'burned_in_study', spec.rel_path)
  ds.SeriesInstanceUID = common.uid(seed, 'burned_in_series', spec.rel_path)
  ds.Modality = spec.modality
  for keyword, value in header.items():
    setattr(ds, keyword, value)
  if spec.burned_in_annotation is not None:
    ds.BurnedInAnnotation = spec.burned_in_annotation
  if spec.recognizable_visual_features is not None:
    ds.RecognizableVisualFeatures = spec.recognizable_visual_features
  if spec.regions:
    ds.SequenceOfUltrasoundRegions = [_region(corners)
                                      for corners in spec.regions]
  frames, rows, columns = pixels.shape[:3]
  ds.Rows, ds.Columns = rows, columns
  if frames > 1:
    ds.NumberOfFrames = frames
    ds.FrameTime = 40.0
  ds.SamplesPerPixel = 3 if pixels.ndim == 4 else 1
  if ds.SamplesPerPixel == 3:
    ds.PlanarConfiguration = 0
  ds.PhotometricInterpretation = spec.photometric
  ds.BitsAllocated = ds.BitsStored = 8
  ds.HighBit = 7
  ds.PixelRepresentation = 0
  stored = pixels if frames > 1 else pixels[0]
  if spec.photometric == 'YBR_FULL':
    stored = convert_color_space(stored, 'RGB', 'YBR_FULL')
  if spec.transfer_syntax == _NATIVE:
    ds.PixelData = stored.tobytes()
  else:
    ds.compress(spec.transfer_syntax, stored,
                encoding_plugin='pylibjpeg' if spec.transfer_syntax ==
                _JPEG_2000_LOSSLESS else 'pydicom',
                generate_instance_uid=False)
  return ds


def _region(corners: Corners):
  """A 2D tissue item of the Sequence of Ultrasound Regions (C.8.5.5.1)."""
  from pydicom import dataset  # pylint: disable=g-import-not-at-top
  item = dataset.Dataset()
  (item.RegionLocationMinX0, item.RegionLocationMinY0,
   item.RegionLocationMaxX1, item.RegionLocationMaxY1) = corners
  item.RegionSpatialFormat = 1  # 2D
  item.RegionDataType = 1  # Tissue
  item.RegionFlags = 0
  item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = 3  # cm
  item.PhysicalDeltaX = item.PhysicalDeltaY = 0.02
  return item


def _dicom_bytes(ds) -> bytes:
  buffer = io.BytesIO()
  ds.save_as(buffer, enforce_file_format=True)
  return buffer.getvalue()
