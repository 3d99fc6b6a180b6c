"""An RSNA-like DICOM tree and labels CSV, with every pixel variant and broken file."""

import csv
import dataclasses
import io
import math
import pathlib
from typing import Dict, List, Optional, Tuple

import numpy as np

from image_example_gen import rejects

from image_example_gen.sample_data import common


# Transfer syntaxes written (PS3.6 Annex A).
EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1'
RLE_LOSSLESS = '1.2.840.10008.1.2.5'
JPEG_LS_LOSSLESS = '1.2.840.10008.1.2.4.80'
JPEG_2000_LOSSLESS = '1.2.840.10008.1.2.4.90'

# SOP classes written, by Modality.
_SOP_CLASS = {
    'MG': '1.2.840.10008.5.1.4.1.1.1.2',  # Digital Mammography, For Presentation
    'DX': '1.2.840.10008.5.1.4.1.1.1.1',  # Digital X-Ray, For Presentation
    'CR': '1.2.840.10008.5.1.4.1.1.1',    # Computed Radiography
    'CT': '1.2.840.10008.5.1.4.1.1.2',    # CT Image
    'SR': '1.2.840.10008.5.1.4.1.1.88.11',  # Basic Text SR (no pixels)
}

# pydicom encoding plugin per compressed transfer syntax.
_ENCODER = {
    RLE_LOSSLESS: 'pylibjpeg',
    JPEG_2000_LOSSLESS: 'pylibjpeg',
    JPEG_LS_LOSSLESS: 'pyjpegls',
}

# Header attributes holding fake PHI; every value written is in `phi_values`.
PHI_KEYWORDS = (
    'PatientName', 'PatientID', 'OtherPatientIDs', 'PatientBirthDate',
    'StudyDate', 'SeriesDate', 'ContentDate', 'StudyTime', 'AccessionNumber',
    'InstitutionName', 'InstitutionAddress', 'ReferringPhysicianName',
    'OperatorsName', 'StudyID', 'StudyInstanceUID', 'SeriesInstanceUID',
    'SOPInstanceUID', 'FrameOfReferenceUID', 'DeviceSerialNumber',
)

CSV_HEADER = ('patient_id', 'image_id', 'laterality', 'view', 'age', 'label')

_UID_NAMESPACE = 'image_example_gen.sample_data'
_VIEWS = (('L', 'CC'), ('L', 'MLO'), ('R', 'CC'), ('R', 'MLO'))
_LAST_NAMES = ('DOE', 'SMITH', 'JOHNSON', 'GARCIA', 'MILLER', 'NGUYEN', 'KIM',
               'PATEL', 'MUELLER', 'ROSSI', 'TANAKA', 'OKAFOR', 'SILVA')
_FIRST_NAMES = ('JANE', 'MARY', 'LINDA', 'SUSAN', 'MARIA', 'ANNA', 'GRACE',
                'HELEN', 'AMINA', 'YUKI', 'SOFIA', 'ELENA', 'PRIYA')
_PHYSICIANS = ('WELBY^MARCUS', 'HOUSE^GREGORY', 'QUINN^MICHAELA',
               'KILDARE^JAMES', 'YANG^CRISTINA')
_OPERATORS = ('TECH^ANNA', 'RADTECH^OLIVER', 'MAMMO^BEATRICE', 'XRAY^SAMUEL')
_INSTITUTIONS = (
    ('SAINT MARY GENERAL HOSPITAL', 'ELM STREET, SPRINGFIELD'),
    ('NORTHSIDE WOMENS IMAGING CENTER', 'LAKE AVENUE, RIVERTON'),
    ('MERCY VALLEY MEDICAL CENTER', 'HILL ROAD, FAIRVIEW'),
)
_DEVICES = (('HOLOGIC, Inc.', 'Selenia Dimensions'),
            ('GE MEDICAL SYSTEMS', 'Senographe Pristina'),
            ('SIEMENS', 'MAMMOMAT Revelation'),
            ('FUJIFILM Corporation', 'AMULET Innovality'))




# ---------------------------------------------------------------------------
# DICOM tree.


@dataclasses.dataclass(frozen=True)
class DicomImage:
  """One good DICOM file of the sample (decodable and labelled).

  Attributes:
    rel_path: path relative to the sample root, '/' separated.
    patient_id: the dataset's patient id (folder name and CSV), not the MRN.
    image_id: the dataset's image id (file stem and CSV).
    label: the digit, 0-9, as in the CSV.
    laterality: 'L' or 'R', as in the CSV and ImageLaterality.
    view: 'CC' or 'MLO', as in the CSV and ViewPosition.
    index: the `render_digit` index of its pixels.
    modality: 'MG', 'DX', 'CR' or 'CT'.
    photometric: 'MONOCHROME1' or 'MONOCHROME2'.
    bits_stored: 8, 12 or 16 (BitsAllocated 8 for 8, else 16).
    pixel_representation: 0 unsigned, 1 signed.
    rescale_intercept: RescaleIntercept (slope 1); 0.0 where absent.
    transfer_syntax_uid: the file's transfer syntax.
    window: the first (WindowCenter, WindowWidth), or None without a window.
    voi_lut_function: VOILUTFunction as written, or None where absent.
    sop_instance_uid: SOPInstanceUID (fake PHI, unique per file).
  """
  rel_path: str
  patient_id: str
  image_id: str
  label: int
  laterality: str
  view: str
  index: int
  modality: str
  photometric: str
  bits_stored: int
  pixel_representation: int
  rescale_intercept: float
  transfer_syntax_uid: str
  window: Optional[Tuple[float, float]]
  voi_lut_function: Optional[str]
  sop_instance_uid: str


@dataclasses.dataclass(frozen=True)
class DicomSample:
  """What `make_dicom_sample` wrote.

  Attributes:
    root: the sample's root folder (the ExampleGen's input_base).
    csv_path: the labels CSV, `root/train.csv`.
    images: the good, labelled files, in CSV order.
    rejects: rel_path -> the reason (`image_example_gen.rejects`) each other
      file is expected to be rejected for.
    missing_files: image ids of CSV rows whose file does not exist.
    phi_values: every fake PHI string written in any header, sorted.
  """
  root: pathlib.Path
  csv_path: pathlib.Path
  images: List[DicomImage]
  rejects: Dict[str, str]
  missing_files: List[str]
  phi_values: List[str]


@dataclasses.dataclass(frozen=True)
class _PixelVariant:
  """How one DICOM file stores its pixels."""
  photometric: str
  bits_stored: int
  signed: bool
  window: Optional[str]  # None, or the VOI LUT function ('LINEAR': absent)
  transfer_syntax_uid: str
  modality: str
  two_windows: bool = False


# Spread over the good files in turn, so every variant appears once n >= 12.
_DICOM_VARIANTS = (
    _PixelVariant('MONOCHROME2', 8, False, None, EXPLICIT_VR_LITTLE_ENDIAN,
                  'MG'),
    _PixelVariant('MONOCHROME1', 12, False, 'LINEAR', RLE_LOSSLESS, 'MG'),
    _PixelVariant('MONOCHROME2', 16, False, None, JPEG_2000_LOSSLESS, 'MG'),
    _PixelVariant('MONOCHROME2', 12, False, 'LINEAR_EXACT', JPEG_LS_LOSSLESS,
                  'MG'),
    _PixelVariant('MONOCHROME1', 16, False, 'SIGMOID',
                  EXPLICIT_VR_LITTLE_ENDIAN, 'MG'),
    _PixelVariant('MONOCHROME2', 16, True, 'LINEAR', EXPLICIT_VR_LITTLE_ENDIAN,
                  'CT'),
    _PixelVariant('MONOCHROME2', 12, False, None, RLE_LOSSLESS, 'DX'),
    _PixelVariant('MONOCHROME1', 8, False, None, JPEG_2000_LOSSLESS, 'MG'),
    _PixelVariant('MONOCHROME2', 16, False, 'LINEAR', RLE_LOSSLESS, 'MG',
                  two_windows=True),
    _PixelVariant('MONOCHROME1', 12, False, None, JPEG_LS_LOSSLESS, 'CR'),
    _PixelVariant('MONOCHROME2', 12, False, 'SIGMOID', JPEG_2000_LOSSLESS,
                  'MG'),
    _PixelVariant('MONOCHROME2', 16, True, None, RLE_LOSSLESS, 'CT'),
)

# Stored values a digit spans, background to brightest, by (bits, signed):
# a sub-range of the bit depth, so a window around it is narrower than the
# full range.
_STORED_RANGE = {
    (8, False): (20, 220),
    (12, False): (300, 3500),
    (16, False): (4000, 56000),
    (16, True): (-300, 2700),
}
_CT_RESCALE_INTERCEPT = -1024.0
# OpenJPEG encodes with 6 resolutions, 5 halvings: smaller images fail.
MIN_DICOM_SIZE = 32


def jpeg_ls_available() -> bool:
  """Whether pydicom can encode JPEG-LS here (the `pyjpegls` package)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  return importlib.util.find_spec('jpeg_ls') is not None


def _dicom_variant(i: int, with_jpeg_ls: bool) -> _PixelVariant:
  """The pixel variant of good file i; JPEG-LS becomes JPEG 2000 without it."""
  variant = _DICOM_VARIANTS[i % len(_DICOM_VARIANTS)]
  if variant.transfer_syntax_uid == JPEG_LS_LOSSLESS and not with_jpeg_ls:
    return dataclasses.replace(variant, transfer_syntax_uid=JPEG_2000_LOSSLESS)
  return variant


def _stored_pixels(intensity: np.ndarray, variant: _PixelVariant) -> np.ndarray:
  """Stored values of an intensity image ([0, 1], 1 = bright) (PS3.3 C.7.6.3).

  For MONOCHROME1 the minimum is displayed white, so stored = max - value.
  """
  lo, hi = _STORED_RANGE[(variant.bits_stored, variant.signed)]
  values = np.rint(lo + intensity.astype(np.float64) * (hi - lo))
  if variant.photometric == 'MONOCHROME1':
    values = (2**variant.bits_stored - 1) - values
  if variant.bits_stored == 8:
    return values.astype(np.uint8)
  return values.astype(np.int16 if variant.signed else np.uint16)


def _windows(variant: _PixelVariant) -> List[Tuple[float, float]]:
  """(center, width) pairs, the first spanning the data with 20% margin.

  Windows apply to modality values (after the rescale), and the data's range
  there is a sub-range of the bit depth, so the window is narrower than the
  full range but keeps the whole digit visible.
  """
  if variant.window is None:
    return []
  lo, hi = _STORED_RANGE[(variant.bits_stored, variant.signed)]
  if variant.photometric == 'MONOCHROME1':
    top = 2**variant.bits_stored - 1
    lo, hi = top - hi, top - lo
  if variant.signed:
    lo, hi = lo + _CT_RESCALE_INTERCEPT, hi + _CT_RESCALE_INTERCEPT
  center, width = (lo + hi) / 2, round(1.2 * (hi - lo))
  windows = [(float(center), float(width))]
  if variant.two_windows:
    windows.append((float(center), float(width // 2)))
  return windows


@dataclasses.dataclass(frozen=True)
class _Patient:
  """A patient's dataset id and the fake PHI of their (one) study."""
  patient_id: str
  age: int
  header: Dict[str, str]  # keyword -> value, shared by the study's files
  manufacturer: Tuple[str, str]


def _make_patient(patient_id: str, seed: int) -> _Patient:
  """A patient with realistic-looking but fake identifying attributes."""
  rng = np.random.default_rng([seed, 2, int(patient_id)])
  pick = lambda options: options[rng.integers(len(options))]
  birth_year = int(rng.integers(1940, 1985))
  study_year = int(rng.integers(2015, 2023))
  institution, street = pick(_INSTITUTIONS)
  header = {
      'PatientName': (f'{pick(_LAST_NAMES)}^{pick(_FIRST_NAMES)}^'
                      f'{chr(ord("A") + int(rng.integers(26)))}'),
      'PatientID': f'MRN{rng.integers(10**6, 10**7)}',
      'OtherPatientIDs': f'EXT-{rng.integers(10**7, 10**8)}',
      'PatientBirthDate': (f'{birth_year:04d}{rng.integers(1, 13):02d}'
                           f'{rng.integers(1, 29):02d}'),
      'StudyDate': (f'{study_year:04d}{rng.integers(1, 13):02d}'
                    f'{rng.integers(1, 29):02d}'),
      'StudyTime': (f'{rng.integers(7, 19):02d}{rng.integers(60):02d}'
                    f'{rng.integers(60):02d}'),
      'AccessionNumber': f'ACC{rng.integers(10**8, 10**9)}',
      'StudyID': f'ST{rng.integers(10**5, 10**6)}',
      'InstitutionName': institution,
      'InstitutionAddress': f'{rng.integers(10, 9999)} {street}',
      'ReferringPhysicianName': pick(_PHYSICIANS),
      'OperatorsName': pick(_OPERATORS),
      'DeviceSerialNumber': f'SN{rng.integers(10**6, 10**7)}',
      'StudyInstanceUID': common.uid(seed, 'study', patient_id),
      'FrameOfReferenceUID': common.uid(seed, 'frame', patient_id),
  }
  return _Patient(patient_id, study_year - birth_year, header,
                  pick(_DEVICES))


def _base_dataset(patient: _Patient, image_id: str, modality: str,
                  seed: int):
  """A dataset with file meta, patient/study/series/instance modules."""
  from pydicom import dataset  # pylint: disable=g-import-not-at-top
  sop_instance_uid = common.uid(seed, 'sop', image_id)
  ds = dataset.Dataset()
  ds.file_meta = dataset.FileMetaDataset()
  ds.file_meta.MediaStorageSOPClassUID = _SOP_CLASS[modality]
  ds.file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
  ds.file_meta.TransferSyntaxUID = EXPLICIT_VR_LITTLE_ENDIAN
  ds.SpecificCharacterSet = 'ISO_IR 100'
  ds.SOPClassUID = _SOP_CLASS[modality]
  ds.SOPInstanceUID = sop_instance_uid
  ds.Modality = modality
  for keyword, value in patient.header.items():
    setattr(ds, keyword, value)
  ds.SeriesDate = ds.ContentDate = patient.header['StudyDate']
  ds.SeriesInstanceUID = common.uid(seed, 'series', image_id)
  ds.Manufacturer, ds.ManufacturerModelName = patient.manufacturer
  ds.SeriesNumber = 1
  ds.InstanceNumber = 1
  return ds


def _image_dataset(patient: _Patient, image_id: str, laterality: str,
                   view: str, intensity: np.ndarray, variant: _PixelVariant,
                   seed: int):
  """A complete image dataset, pixel data encoded in the variant's syntax."""
  ds = _base_dataset(patient, image_id, variant.modality, seed)
  ds.BodyPartExamined = 'CHEST' if variant.modality == 'CT' else 'BREAST'
  ds.ImageLaterality = laterality
  ds.ViewPosition = view
  ds.PatientOrientation = ['A', 'R'] if laterality == 'L' else ['P', 'L']
  ds.ImageType = ['ORIGINAL', 'PRIMARY']
  ds.PresentationIntentType = 'FOR PRESENTATION'
  stored = _stored_pixels(intensity, variant)
  ds.Rows, ds.Columns = stored.shape
  ds.SamplesPerPixel = 1
  ds.PhotometricInterpretation = variant.photometric
  ds.BitsAllocated = 8 if variant.bits_stored == 8 else 16
  ds.BitsStored = variant.bits_stored
  ds.HighBit = variant.bits_stored - 1
  ds.PixelRepresentation = int(variant.signed)
  ds.PixelSpacing = [0.1, 0.1]
  if variant.signed:
    ds.RescaleIntercept = _CT_RESCALE_INTERCEPT
    ds.RescaleSlope = 1.0
    ds.RescaleType = 'HU'
  windows = _windows(variant)
  if windows:
    centers, widths = zip(*windows)
    ds.WindowCenter = list(centers) if len(windows) > 1 else centers[0]
    ds.WindowWidth = list(widths) if len(windows) > 1 else widths[0]
    if variant.window != 'LINEAR':
      ds.VOILUTFunction = variant.window
  if variant.transfer_syntax_uid == EXPLICIT_VR_LITTLE_ENDIAN:
    ds.PixelData = stored.tobytes()
  else:
    ds.compress(variant.transfer_syntax_uid, stored,
                encoding_plugin=_ENCODER[variant.transfer_syntax_uid],
                generate_instance_uid=False)
  return ds


def _no_pixel_dataset(patient: _Patient, image_id: str, seed: int):
  """A Basic Text SR-like dataset: a valid DICOM file without pixel data."""
  ds = _base_dataset(patient, image_id, 'SR', seed)
  ds.ValueType = 'CONTAINER'
  ds.ContinuityOfContent = 'SEPARATE'
  ds.CompletionFlag = 'COMPLETE'
  ds.VerificationFlag = 'UNVERIFIED'
  return ds


def _dicom_bytes(ds) -> bytes:
  """The dataset as a DICOM file: 128-byte preamble, DICM, file meta."""
  buffer = io.BytesIO()
  ds.save_as(buffer, enforce_file_format=True)
  return buffer.getvalue()


def _truncated(ds) -> bytes:
  """The file with the second half of its (last, native) pixel data cut."""
  data = _dicom_bytes(ds)
  return data[:len(data) - len(ds.PixelData) // 2]


def _corrupt_jpeg_2000(ds, seed: int) -> None:
  """Overwrites the tile data of a JPEG 2000 codestream with noise, in place.

  The main header (SOC, SIZ, COD, QCD) and the fragment lengths stay valid,
  so the file parses; the tile-parts from the first SOT to EOC are garbage.
  """
  data = bytearray(ds.PixelData)
  start = data.index(b'\xff\x90', data.index(b'\xff\x4f\xff\x51'))
  end = data.rindex(b'\xff\xd9')
  noise = np.random.default_rng([seed, 3]).integers(
      0, 256, end - start, dtype=np.uint8)
  noise[:2] = 0  # No SOT marker where one must be.
  data[start:end] = noise.tobytes()
  ds.PixelData = bytes(data)


def _phi_in(ds) -> List[str]:
  """The PHI values written in a dataset's header."""
  from pydicom import multival  # pylint: disable=g-import-not-at-top
  values = []
  for keyword in PHI_KEYWORDS:
    if keyword in ds:
      value = ds.data_element(keyword).value
      items = value if isinstance(value, multival.MultiValue) else [value]
      values.extend(str(item) for item in items)
  return values


_NOT_DICOM_TEXT = b'Export log: this is a text file, not a DICOM data set.\n'

# The files besides the good ones, by expected reject reason; None is the CSV
# row whose file does not exist.
_EXTRA_FILES = (rejects.NOT_DICOM, rejects.TRUNCATED, rejects.NO_PIXEL_DATA,
                rejects.UNDECODABLE, rejects.NO_METADATA_ROW, None)


# Pixel variants of the image files among the rejects: truncation cuts
# native pixel data, corruption hits a JPEG 2000 codestream.
_REJECT_VARIANTS = {
    rejects.TRUNCATED: _PixelVariant('MONOCHROME2', 12, False, None,
                                     EXPLICIT_VR_LITTLE_ENDIAN, 'MG'),
    rejects.UNDECODABLE: _PixelVariant('MONOCHROME2', 16, False, None,
                                       JPEG_2000_LOSSLESS, 'MG'),
    rejects.NO_METADATA_ROW: _PixelVariant('MONOCHROME2', 8, False, None,
                                        EXPLICIT_VR_LITTLE_ENDIAN, 'MG'),
}


def _reject_file(reason: str, patient: _Patient, image_id: str,
                 laterality: str, view: str, intensity: np.ndarray, seed: int):
  """(file bytes, dataset or None) of a file to be rejected for `reason`."""
  if reason == rejects.NOT_DICOM:
    return _NOT_DICOM_TEXT, None
  if reason == rejects.NO_PIXEL_DATA:
    ds = _no_pixel_dataset(patient, image_id, seed)
    return _dicom_bytes(ds), ds
  variant = _REJECT_VARIANTS[reason]
  ds = _image_dataset(patient, image_id, laterality, view, intensity, variant,
                      seed)
  if reason == rejects.TRUNCATED:
    return _truncated(ds), ds
  if reason == rejects.UNDECODABLE:
    _corrupt_jpeg_2000(ds, seed)
  return _dicom_bytes(ds), ds


def _dicom_path(patient_id: str, image_id: str) -> str:
  return f'train_images/{patient_id}/{image_id}.dcm'


def _dicom_image(rel_path: str, patient: _Patient, image_id: str, label: int,
                 laterality: str, view: str, index: int,
                 variant: _PixelVariant, ds) -> DicomImage:
  """The record of a good file."""
  windows = _windows(variant)
  return DicomImage(
      rel_path=rel_path, patient_id=patient.patient_id, image_id=image_id,
      label=label, laterality=laterality, view=view, index=index,
      modality=variant.modality, photometric=variant.photometric,
      bits_stored=variant.bits_stored,
      pixel_representation=int(variant.signed),
      rescale_intercept=_CT_RESCALE_INTERCEPT if variant.signed else 0.0,
      transfer_syntax_uid=variant.transfer_syntax_uid,
      window=windows[0] if windows else None,
      voi_lut_function=ds.get('VOILUTFunction'),
      sop_instance_uid=str(ds.SOPInstanceUID))





def make_dicom_sample(out_dir: common.PathLike,
                      n_images: int = 48,
                      images_per_patient: int = 4,
                      size: int = 64,
                      seed: int = 0,
                      broken_files: bool = True) -> DicomSample:
  """Writes an RSNA-mammography-like DICOM tree with a labels CSV.

  Layout: `out_dir/train_images/<patient_id>/<image_id>.dcm` and
  `out_dir/train.csv` (`CSV_HEADER`). The `n_images` good files cycle through
  photometric interpretations, bit depths, windows and transfer syntaxes
  (each at least once for n_images >= 12); their headers carry fake PHI that
  differs from the dataset ids. Besides them (with `broken_files`): a text
  file named `.dcm`, a truncated file, a DICOM without pixel data, an
  undecodable JPEG 2000 file (each with a CSV row), a good file without a CSV
  row, and a CSV row without a file. These five rejects exceed the default
  `max_reject_fraction` (5%) below about 95 good files.

  Args:
    out_dir: a new or empty folder.
    n_images: number of good, labelled files.
    images_per_patient: good files per patient (views L/R x CC/MLO in turn).
    size: rows and columns of every image, at least `MIN_DICOM_SIZE`.
    seed: everything derives from it.
    broken_files: also write the broken files and the row without a file.

  Returns:
    What was written, and how each file is expected to end.
  """
  if n_images < 1 or images_per_patient < 1:
    raise ValueError('n_images and images_per_patient must be positive.')
  if size < MIN_DICOM_SIZE:
    raise ValueError(
        f'size must be at least {MIN_DICOM_SIZE} px for DICOM, got {size}: '
        f'the JPEG 2000 encoder (OpenJPEG, 6 wavelet resolutions) needs it.')
  root = common.empty_dir(out_dir)
  with_jpeg_ls = jpeg_ls_available()
  rng = np.random.default_rng([seed, 4])
  n_patients = math.ceil(n_images / images_per_patient)
  patient_ids = np.sort(rng.choice(max(90000, 2 * n_patients), n_patients,
                                   replace=False) + 10000)
  patients = [_make_patient(str(p), seed) for p in patient_ids]
  image_ids = [str(i) for i in rng.choice(
      2**31 - 10**8, n_images + len(_EXTRA_FILES), replace=False) + 10**8]
  rows, images, phi, expected_rejects, missing_files = [], [], set(), {}, []
  for i in range(n_images):
    patient = patients[i // images_per_patient]
    laterality, view = _VIEWS[i % images_per_patient % len(_VIEWS)]
    intensity, label = common.render_digit(i, size, seed)
    variant = _dicom_variant(i, with_jpeg_ls)
    ds = _image_dataset(patient, image_ids[i], laterality, view, intensity,
                        variant, seed)
    rel_path = _dicom_path(patient.patient_id, image_ids[i])
    common.write(root, rel_path, _dicom_bytes(ds))
    phi.update(_phi_in(ds))
    images.append(_dicom_image(rel_path, patient, image_ids[i], label,
                               laterality, view, i, variant, ds))
    rows.append((patient.patient_id, image_ids[i], laterality, view,
                 patient.age, label))

  # Extra file k belongs to patient k (mod n): rejects, then a row w/o file.
  for k, reason in enumerate(_EXTRA_FILES if broken_files else ()):
    index = n_images + k
    patient = patients[k % n_patients]
    laterality, view = _VIEWS[k % len(_VIEWS)]
    intensity, label = common.render_digit(index, size, seed)
    if reason != rejects.NO_METADATA_ROW:
      rows.append((patient.patient_id, image_ids[index], laterality, view,
                   patient.age, label))
    if reason is None:
      missing_files.append(image_ids[index])
      continue
    data, ds = _reject_file(reason, patient, image_ids[index], laterality,
                            view, intensity, seed)
    rel_path = _dicom_path(patient.patient_id, image_ids[index])
    common.write(root, rel_path, data)
    if ds is not None:
      phi.update(_phi_in(ds))
    expected_rejects[rel_path] = reason

  rows.sort(key=lambda row: (int(row[0]), int(row[1])))
  csv_path = root / 'train.csv'
  with open(csv_path, 'w', newline='', encoding='utf-8') as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
  row_number = {(row[0], row[1]): n for n, row in enumerate(rows)}
  images.sort(key=lambda im: row_number[(im.patient_id, im.image_id)])
  return DicomSample(root=root, csv_path=csv_path, images=images,
                     rejects=expected_rejects, missing_files=missing_files,
                     phi_values=sorted(phi))

