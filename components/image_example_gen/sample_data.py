"""Deterministic sample inputs: an RSNA-like DICOM tree, image folders.

Pixels are scikit-learn's handwritten digits (`load_digits`, shipped with the
package), upscaled to `size` px with a small seeded jitter (scale, shift,
noise), so any number of images can be made and the digit class is the label.
The same arguments give the same bytes on every run: UIDs, ids and fake PHI
derive from the seed, nothing from the clock.

Both samples hold, on purpose, every input variant the ExampleGens must handle
and one file for each way an input can be broken; the returned dataclasses say
what each file is and how it is expected to end (Example or reject reason).
A third sample, captioned images (`make_captioned_images`), has a Hugging
Face style metadata.jsonl with a label and a description per image.

Command line (writes into empty or new folders; `both` writes `OUT/dicom` and
`OUT/images`):

    python -m image_example_gen.sample_data --out OUT
        --kind {dicom,images,both,captioned} --n N [--size PX] [--seed S]
        [--images-per-patient K] [--split-folders]

`--split-folders` puts the image folder's classes under `train/`, `val/` and
`test/`. The console script `image-example-gen-samples` is the same command.
"""

import argparse
import csv
import dataclasses
import functools
import io
import json
import math
import os
import pathlib
import sys
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from image_example_gen import rejects

PathLike = Union[str, os.PathLike]

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
CLASS_NAMES = tuple(f'digit_{d}' for d in range(10))
SPLIT_FOLDER_NAMES = ('train', 'val', 'test')

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


def _uid(seed: int, *parts: str) -> str:
  """A deterministic UID under pydicom's root, from the seed and `parts`."""
  from pydicom import uid  # pylint: disable=g-import-not-at-top
  return uid.generate_uid(
      entropy_srcs=[_UID_NAMESPACE, str(seed), *parts])


# ---------------------------------------------------------------------------
# Pixels.


@functools.lru_cache(maxsize=None)
def _digits() -> Tuple[np.ndarray, np.ndarray]:
  """scikit-learn's digits: (1797x8x8 float images in 0..16, labels)."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  return digits.images.astype(np.float32), digits.target.astype(np.int64)


@functools.lru_cache(maxsize=None)
def _sample_order(seed: int) -> np.ndarray:
  """A seeded permutation of the digits, so image i is sample order[i % n]."""
  return np.random.default_rng([seed, 0]).permutation(len(_digits()[1]))


def render_digit(index: int, size: int = 64,
                 seed: int = 0) -> Tuple[np.ndarray, int]:
  """Image `index` of the sample: (size x size float32 in [0, 1], digit).

  A bright digit on a dark background: a digits sample upscaled (bicubic) to
  72-84% of `size`, shifted by up to size/64 px and with Gaussian noise
  (sigma 0.02). Mild on purpose: a small CNN trained on 1200 of them scores
  about 0.98 on 400 others (shifts of size/32 cost a point). Depends only on
  (index, size, seed), not on how many images are made.
  """
  if size < 8:
    raise ValueError(f'size must be at least 8 px, got {size}.')
  images, labels = _digits()
  sample = _sample_order(seed)[index % len(labels)]
  rng = np.random.default_rng([seed, 1, index])
  digit_px = max(2, round(size * 0.8 * rng.uniform(0.9, 1.05)))
  digit = Image.fromarray(images[sample] / 16.0, mode='F').resize(
      (digit_px, digit_px), Image.Resampling.BICUBIC)
  max_shift = size // 64
  top, left = np.clip((size - digit_px) // 2 +
                      rng.integers(-max_shift, max_shift + 1, size=2),
                      0, size - digit_px)
  canvas = np.zeros((size, size), np.float32)
  canvas[top:top + digit_px, left:left + digit_px] = np.asarray(digit)
  canvas += rng.normal(0.0, 0.02, canvas.shape).astype(np.float32)
  return np.clip(canvas, 0.0, 1.0), int(labels[sample])


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
      'StudyInstanceUID': _uid(seed, 'study', patient_id),
      'FrameOfReferenceUID': _uid(seed, 'frame', patient_id),
  }
  return _Patient(patient_id, study_year - birth_year, header,
                  pick(_DEVICES))


def _base_dataset(patient: _Patient, image_id: str, modality: str,
                  seed: int):
  """A dataset with file meta, patient/study/series/instance modules."""
  from pydicom import dataset  # pylint: disable=g-import-not-at-top
  sop_instance_uid = _uid(seed, 'sop', image_id)
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
  ds.SeriesInstanceUID = _uid(seed, 'series', image_id)
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


def _empty_dir(out_dir: PathLike) -> pathlib.Path:
  """Creates `out_dir`; raises if it exists and is not empty."""
  root = pathlib.Path(out_dir)
  if root.exists() and any(root.iterdir()):
    raise FileExistsError(
        f'{root} is not empty: sample data is written to a new or empty '
        f'folder so that no stale file changes the expected results.')
  root.mkdir(parents=True, exist_ok=True)
  return root


def _write(root: pathlib.Path, rel_path: str, data: bytes) -> None:
  path = root / rel_path
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(data)


def make_dicom_sample(out_dir: PathLike,
                      n_images: int = 48,
                      images_per_patient: int = 4,
                      size: int = 64,
                      seed: int = 0) -> DicomSample:
  """Writes an RSNA-mammography-like DICOM tree with a labels CSV.

  Layout: `out_dir/train_images/<patient_id>/<image_id>.dcm` and
  `out_dir/train.csv` (`CSV_HEADER`). The `n_images` good files cycle through
  photometric interpretations, bit depths, windows and transfer syntaxes
  (each at least once for n_images >= 12); their headers carry fake PHI that
  differs from the dataset ids. Besides them: a text file named `.dcm`, a
  truncated file, a DICOM without pixel data, an undecodable JPEG 2000 file
  (each with a CSV row), a good file without a CSV row, and a CSV row without
  a file.

  Args:
    out_dir: a new or empty folder.
    n_images: number of good, labelled files.
    images_per_patient: good files per patient (views L/R x CC/MLO in turn).
    size: rows and columns of every image, at least `MIN_DICOM_SIZE`.
    seed: everything derives from it.

  Returns:
    What was written, and how each file is expected to end.
  """
  if n_images < 1 or images_per_patient < 1:
    raise ValueError('n_images and images_per_patient must be positive.')
  if size < MIN_DICOM_SIZE:
    raise ValueError(
        f'size must be at least {MIN_DICOM_SIZE} px for DICOM, got {size}: '
        f'the JPEG 2000 encoder (OpenJPEG, 6 wavelet resolutions) needs it.')
  root = _empty_dir(out_dir)
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
    intensity, label = render_digit(i, size, seed)
    variant = _dicom_variant(i, with_jpeg_ls)
    ds = _image_dataset(patient, image_ids[i], laterality, view, intensity,
                        variant, seed)
    rel_path = _dicom_path(patient.patient_id, image_ids[i])
    _write(root, rel_path, _dicom_bytes(ds))
    phi.update(_phi_in(ds))
    images.append(_dicom_image(rel_path, patient, image_ids[i], label,
                               laterality, view, i, variant, ds))
    rows.append((patient.patient_id, image_ids[i], laterality, view,
                 patient.age, label))

  # Extra file k belongs to patient k (mod n): rejects, then a row w/o file.
  for k, reason in enumerate(_EXTRA_FILES):
    index = n_images + k
    patient = patients[k % n_patients]
    laterality, view = _VIEWS[k % len(_VIEWS)]
    intensity, label = render_digit(index, size, seed)
    if reason != rejects.NO_METADATA_ROW:
      rows.append((patient.patient_id, image_ids[index], laterality, view,
                   patient.age, label))
    if reason is None:
      missing_files.append(image_ids[index])
      continue
    data, ds = _reject_file(reason, patient, image_ids[index], laterality,
                            view, intensity, seed)
    rel_path = _dicom_path(patient.patient_id, image_ids[index])
    _write(root, rel_path, data)
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


# ---------------------------------------------------------------------------
# Image folder.


@dataclasses.dataclass(frozen=True)
class FolderImage:
  """One good image file of the folder sample.

  Attributes:
    rel_path: path relative to the sample root, '/' separated.
    class_name: its top-level class folder (below the split folder, if any).
    label: index of `class_name` in the sample's `class_names`.
    stored_format: 'jpeg' or 'png': how the ExampleGen stores it (JPEG and
      PNG bytes unchanged; anything else, CMYK and EXIF-rotated JPEGs
      re-encoded as PNG).
    split: 'train', 'val' or 'test' with split folders, else None.
    source_format: what the bytes are: 'jpeg', 'png', 'bmp', 'gif', 'webp' or
      'tiff' (whatever the extension says).
    index: the `render_digit` index of its pixels (upright, after EXIF).
  """
  rel_path: str
  class_name: str
  label: int
  stored_format: str
  split: Optional[str]
  source_format: str
  index: int


@dataclasses.dataclass(frozen=True)
class ImageFolderSample:
  """What `make_image_folder` wrote.

  Attributes:
    root: the sample's root folder (the ExampleGen's input_base).
    class_names: the sorted class folders holding good images (all of
      `CLASS_NAMES`, label = digit, unless n_images is too small for every
      digit to occur).
    images: the good files, in index order.
    rejects: rel_path -> the reason (`image_example_gen.rejects`) each other
      file is expected to be rejected for.
  """
  root: pathlib.Path
  class_names: List[str]
  images: List[FolderImage]
  rejects: Dict[str, str]


@dataclasses.dataclass(frozen=True)
class _FolderVariant:
  """How one image file is written."""
  extension: str
  pil_format: str
  mode: str
  stored_format: str
  exif_orientation: Optional[int] = None
  nested: bool = False


_SAVE_OPTIONS = {'JPEG': {'quality': 95}, 'WEBP': {'lossless': True}}
_COMMON_FOLDER_VARIANTS = (
    _FolderVariant('.jpg', 'JPEG', 'RGB', 'jpeg'),
    _FolderVariant('.jpg', 'JPEG', 'L', 'jpeg'),
    _FolderVariant('.png', 'PNG', 'L', 'png'),
    _FolderVariant('.png', 'PNG', 'RGB', 'png'),
)
_SPECIAL_FOLDER_VARIANTS = (
    _FolderVariant('.jpg', 'BMP', 'RGB', 'png'),  # a BMP named .jpg
    _FolderVariant('.gif', 'GIF', 'L', 'png'),
    _FolderVariant('.webp', 'WEBP', 'RGB', 'png'),
    _FolderVariant('.tif', 'TIFF', 'RGB', 'png'),
    _FolderVariant('.JPG', 'JPEG', 'RGB', 'jpeg'),
    _FolderVariant('.PNG', 'PNG', 'L', 'png'),
    _FolderVariant('.jpg', 'JPEG', 'CMYK', 'png'),
    _FolderVariant('.jpg', 'JPEG', 'RGB', 'png', exif_orientation=6),
    _FolderVariant('.png', 'PNG', 'L', 'png', nested=True),  # <class>/extra/
    _FolderVariant('.jpeg', 'JPEG', 'L', 'jpeg'),
)
_NESTED_FOLDER = 'extra'
_APPLE_DOUBLE = b'\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x00'
_DS_STORE = b'\x00\x00\x00\x01Bud1' + bytes(24)
_NOTES = b'Scanned handwritten digits, one folder per digit.\n'
_TRUNCATED_FRACTION = 0.6


def _folder_variant(i: int) -> _FolderVariant:
  """Image i's variant: the special ones at odd i < 20, then every 10th."""
  if i % 2 == 1 and i // 2 < len(_SPECIAL_FOLDER_VARIANTS):
    return _SPECIAL_FOLDER_VARIANTS[i // 2]
  if i >= 2 * len(_SPECIAL_FOLDER_VARIANTS) and i % 10 == 5:
    return _SPECIAL_FOLDER_VARIANTS[(i // 10) % len(_SPECIAL_FOLDER_VARIANTS)]
  return _COMMON_FOLDER_VARIANTS[(i // 2) % len(_COMMON_FOLDER_VARIANTS)]


def _split_of(i: int) -> str:
  """train/val/test, 14/3/3 in every 20 images."""
  position = i % 20
  if position in (3, 10, 17):
    return 'val'
  if position in (6, 13, 19):
    return 'test'
  return 'train'


def _encode_image(intensity: np.ndarray, variant: _FolderVariant) -> bytes:
  """The file bytes of an intensity image ([0, 1]) in the variant's format.

  With an EXIF orientation the stored pixels are rotated so that applying
  the orientation (as `PIL.ImageOps.exif_transpose` does) shows the digit
  upright.
  """
  image = Image.fromarray(np.rint(intensity * 255).astype(np.uint8), mode='L')
  image = image.convert(variant.mode)
  options = dict(_SAVE_OPTIONS.get(variant.pil_format, {}))
  if variant.exif_orientation == 6:  # Displayed = stored turned 90° clockwise.
    image = image.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = variant.exif_orientation  # Orientation
    options['exif'] = exif.tobytes()
  buffer = io.BytesIO()
  image.save(buffer, variant.pil_format, **options)
  return buffer.getvalue()


def make_image_folder(out_dir: PathLike,
                      n_images: int = 60,
                      size: int = 64,
                      seed: int = 0,
                      split_folders: bool = False) -> ImageFolderSample:
  """Writes a PetImages-like class-per-folder tree of digit images.

  Layout: `out_dir/digit_<d>/<i>.<ext>` (or `out_dir/<split>/digit_<d>/...`
  with `split_folders`). Mostly RGB and grayscale JPEGs and PNGs; odd images
  below 20 (and every tenth after) are the special cases: a BMP named .jpg,
  GIF, WebP, TIFF, upper-case .JPG/.PNG, CMYK JPEG, EXIF-rotated JPEG, a file
  in a sub-folder `digit_<d>/extra/`, a .jpeg. Besides them, in class folders
  of the first images: an empty .jpg, a truncated JPEG, an AppleDouble
  `._0.jpg`, a `.DS_Store` and a `notes.txt`.

  Args:
    out_dir: a new or empty folder.
    n_images: number of good images; every variant occurs for n_images >= 20.
    size: width and height of every image.
    seed: everything derives from it.
    split_folders: put the class folders under train/ val/ test/ (14/3/3 of
      every 20 images).

  Returns:
    What was written, and how each file is expected to end.
  """
  if n_images < 1:
    raise ValueError(f'n_images must be positive, got {n_images}.')
  root = _empty_dir(out_dir)
  written = []
  for i in range(n_images):
    intensity, digit = render_digit(i, size, seed)
    variant = _folder_variant(i)
    split = _split_of(i) if split_folders else None
    class_name = CLASS_NAMES[digit]
    folder = '/'.join(filter(None, (
        split, class_name, _NESTED_FOLDER if variant.nested else None)))
    rel_path = f'{folder}/{i}{variant.extension}'
    _write(root, rel_path, _encode_image(intensity, variant))
    written.append((rel_path, class_name, split, variant, i))

  class_names = sorted({class_name for _, class_name, *_ in written})
  images = [
      FolderImage(rel_path=rel_path, class_name=class_name,
                  label=class_names.index(class_name),
                  stored_format=variant.stored_format, split=split,
                  source_format=variant.pil_format.lower(), index=i)
      for rel_path, class_name, split, variant, i in written]

  def folder_of(k: int) -> str:
    """The class folder (with split) of good image k (mod n)."""
    image = images[k % n_images]
    return '/'.join(filter(None, (image.split, image.class_name)))

  truncated, _ = render_digit(n_images + 1, size, seed)
  truncated_jpeg = _encode_image(truncated, _COMMON_FOLDER_VARIANTS[0])
  bad_files = {
      f'{folder_of(0)}/._0.jpg': (_APPLE_DOUBLE, rejects.HIDDEN_FILE),
      f'{folder_of(0)}/.DS_Store': (_DS_STORE, rejects.HIDDEN_FILE),
      f'{folder_of(1)}/{n_images}.jpg': (b'', rejects.EMPTY_FILE),
      f'{folder_of(2)}/{n_images + 1}.jpg': (
          truncated_jpeg[:int(len(truncated_jpeg) * _TRUNCATED_FRACTION)],
          rejects.TRUNCATED),
      f'{folder_of(3)}/notes.txt': (_NOTES, rejects.NOT_AN_IMAGE),
  }
  for rel_path, (data, _) in bad_files.items():
    _write(root, rel_path, data)
  return ImageFolderSample(
      root=root, class_names=class_names, images=images,
      rejects={rel_path: reason for rel_path, (_, reason) in bad_files.items()})


# ---------------------------------------------------------------------------
# Captioned images (Hugging Face `imagefolder` with metadata.jsonl).

METADATA_FILE = 'metadata.jsonl'
CAPTIONED_IMAGES_FOLDER = 'images'
# Class name of each digit, as metadata.jsonl's `label` column says it.
DIGIT_NAMES = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven',
               'eight', 'nine')
# What a description says of digit d: its parity and whether it exceeds four,
# each in one of a few phrasings. Together they narrow the ten digits down to
# two or three, which is where a noisy image is ambiguous (1/7, 3/8, 4/9).
_PARITY_PHRASES = (('an even number', 'even', 'a multiple of two'),
                   ('an odd number', 'odd'))
_MAGNITUDE_PHRASES = (('less than five', 'at most four', 'a small digit'),
                      ('greater than four', 'more than four',
                       'a large digit'))
# Neutral words: drawn independently of the digit.
_OPENERS = ('A', 'One', 'This is a', 'Here is a')
_ADJECTIVES = ('scanned', 'handwritten', 'faded', 'smudged', 'pencil',
               'blurry')
_NOUNS = ('digit', 'numeral', 'figure', 'character')
# Harder than `render_digit` alone: contrast down to this fraction, and
# Gaussian noise of this sigma, so that the image alone is often ambiguous.
_CAPTIONED_MIN_CONTRAST = 0.4
_CAPTIONED_NOISE = 0.6
_CAPTIONED_VARIANT = _FolderVariant('.png', 'PNG', 'L', 'png')


@dataclasses.dataclass(frozen=True)
class CaptionedImage:
  """One image of the captioned sample and its metadata.jsonl row.

  Attributes:
    file_name: path relative to the sample root, as in metadata.jsonl.
    class_name: the row's `label`, one of `DIGIT_NAMES`.
    label: index of `class_name` in the sample's sorted `class_names`.
    description: the row's `description`, an English sentence.
    index: the `render_digit` index of its pixels.
  """
  file_name: str
  class_name: str
  label: int
  description: str
  index: int


@dataclasses.dataclass(frozen=True)
class CaptionedSample:
  """What `make_captioned_images` wrote.

  Attributes:
    root: the sample's root folder (the ExampleGen's input_base).
    metadata_path: `root/metadata.jsonl`, one JSON object per image.
    class_names: the sorted class names that occur (label = index).
    images: every image, in index order (the order of metadata.jsonl).
  """
  root: pathlib.Path
  metadata_path: pathlib.Path
  class_names: List[str]
  images: List[CaptionedImage]


def describe_digit(index: int, digit: int, seed: int = 0) -> str:
  """The description of image `index`, of digit `digit`.

  Says, in random order and phrasing, whether the digit is even and whether
  it is greater than four, among neutral words; e.g. 'A smudged numeral, a
  large digit and odd.'
  """
  rng = np.random.default_rng([seed, 5, index])
  pick = lambda options: options[rng.integers(len(options))]
  facts = [pick(_PARITY_PHRASES[digit % 2]),
           pick(_MAGNITUDE_PHRASES[int(digit > 4)])]
  first, second = rng.permutation(facts)
  return (f'{pick(_OPENERS)} {pick(_ADJECTIVES)} {pick(_NOUNS)}, {first} '
          f'and {second}.')


def render_noisy_digit(index: int, size: int = 32,
                       seed: int = 0) -> Tuple[np.ndarray, int]:
  """`render_digit` at a random lower contrast under strong noise."""
  intensity, digit = render_digit(index, size, seed)
  rng = np.random.default_rng([seed, 6, index])
  intensity = intensity * rng.uniform(_CAPTIONED_MIN_CONTRAST, 1.0)
  intensity = intensity + rng.normal(0.0, _CAPTIONED_NOISE, intensity.shape)
  return np.clip(intensity, 0.0, 1.0).astype(np.float32), digit


def make_captioned_images(out_dir: PathLike,
                          n_images: int,
                          size: int = 32,
                          seed: int = 0) -> CaptionedSample:
  """Writes digit images with a Hugging Face style metadata.jsonl.

  Layout: `out_dir/images/<nnnnn>.png` (grayscale, `render_noisy_digit`) and
  `out_dir/metadata.jsonl` with one line per image, in index order:
  `{"file_name": "images/00000.png", "label": "seven", "description": "..."}`
  (`file_name` relative to the folder of metadata.jsonl). The label is the
  digit's English name; the description (`describe_digit`) carries part of
  the signal: a model of image and text beats either alone.

  Args:
    out_dir: a new or empty folder.
    n_images: number of images.
    size: width and height of every image.
    seed: everything derives from it.

  Returns:
    What was written.
  """
  if n_images < 1:
    raise ValueError(f'n_images must be positive, got {n_images}.')
  root = _empty_dir(out_dir)
  rows = []
  for i in range(n_images):
    intensity, digit = render_noisy_digit(i, size, seed)
    file_name = f'{CAPTIONED_IMAGES_FOLDER}/{i:05d}.png'
    _write(root, file_name, _encode_image(intensity, _CAPTIONED_VARIANT))
    rows.append((file_name, DIGIT_NAMES[digit], describe_digit(i, digit, seed),
                 i))
  metadata_path = root / METADATA_FILE
  with open(metadata_path, 'w', encoding='utf-8') as f:
    for file_name, class_name, description, _ in rows:
      f.write(json.dumps({'file_name': file_name, 'label': class_name,
                          'description': description}) + '\n')
  class_names = sorted({class_name for _, class_name, _, _ in rows})
  return CaptionedSample(
      root=root, metadata_path=metadata_path, class_names=class_names,
      images=[CaptionedImage(file_name=file_name, class_name=class_name,
                             label=class_names.index(class_name),
                             description=description, index=i)
              for file_name, class_name, description, i in rows])


# ---------------------------------------------------------------------------
# Command line.


def main(argv: Optional[Sequence[str]] = None) -> int:
  """The command line: writes the samples and prints what it wrote."""
  parser = argparse.ArgumentParser(
      prog='image-example-gen-samples',
      description='Writes deterministic DICOM / image-folder sample data.')
  parser.add_argument('--out', required=True,
                      help='a new or empty folder to write into')
  parser.add_argument('--kind',
                      choices=('dicom', 'images', 'both', 'captioned'),
                      default='both',
                      help='both writes OUT/dicom and OUT/images; captioned '
                           'writes images with a metadata.jsonl')
  parser.add_argument('--n', type=int, default=48,
                      help='number of good images of each kind')
  parser.add_argument('--size', type=int, default=64, help='image size in px')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--images-per-patient', type=int, default=4,
                      help='DICOM files per patient')
  parser.add_argument('--split-folders', action='store_true',
                      help='image folder: classes under train/ val/ test/')
  args = parser.parse_args(argv)
  out = pathlib.Path(args.out)
  if args.kind in ('dicom', 'both'):
    dicom = make_dicom_sample(
        out / 'dicom' if args.kind == 'both' else out, n_images=args.n,
        images_per_patient=args.images_per_patient, size=args.size,
        seed=args.seed)
    print(f'{dicom.root}: {len(dicom.images)} good DICOM files, '
          f'{len(dicom.rejects)} to be rejected, '
          f'{len(dicom.missing_files)} CSV row(s) without file; labels in '
          f'{dicom.csv_path}')
  if args.kind in ('images', 'both'):
    folder = make_image_folder(
        out / 'images' if args.kind == 'both' else out, n_images=args.n,
        size=args.size, seed=args.seed, split_folders=args.split_folders)
    print(f'{folder.root}: {len(folder.images)} good images in '
          f'{len(folder.class_names)} classes, {len(folder.rejects)} to be '
          f'rejected')
  if args.kind == 'captioned':
    captioned = make_captioned_images(out, n_images=args.n, size=args.size,
                                      seed=args.seed)
    print(f'{captioned.root}: {len(captioned.images)} images in '
          f'{len(captioned.class_names)} classes; labels and descriptions in '
          f'{captioned.metadata_path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
